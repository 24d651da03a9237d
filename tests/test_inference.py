"""Tiled whole-volume inference (mdcsrn_tf.inference) and exported weights (mdcsrn_tf.weights)."""
import json

import keras
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.infer import forward, inference, tiling
from mdcsrn_tf.errors import InputError, NonFiniteOutput
from mdcsrn_tf.weights.card import ModelCard
from mdcsrn_tf.models import analysis, build_model, mdcsrn

ODD_SHAPE = (45, 53, 39)


@pytest.fixture(scope="module")
def tiny_generator():
  """A real mDCSRN (1 block of 2 units, growth 4): receptive-field radius 3, cheap on CPU."""
  keras.utils.set_random_seed(1)
  return mdcsrn.mdcsrn(blocks=1, units=2, growth_rate=4, name="tiny", identity_init=False)


@pytest.fixture(scope="module")
def odd_volume():
  return np.random.default_rng(0).random(ODD_SHAPE, dtype=np.float32)


def raw_whole_volume(model, volume):
  return model(volume[np.newaxis, ..., np.newaxis], training=False).numpy()[0, ..., 0]


def whole_volume(model, volume):
  """The model on the whole volume at once, negatives set to 0 as super_resolve does."""
  return np.maximum(raw_whole_volume(model, volume), 0.0)


def test_plan_covers_every_voxel_once_with_windows_inside():
  for n, tile, margin in [(45, 16, 3), (53, 16, 5), (39, 64, 3), (7, 2, 0), (64, 64, 3)]:
    plan = tiling.plan_axis(n, tile, margin)
    owned = np.zeros(n, int)
    for start, tile_start, window_start in zip(plan.owned_starts, plan.tile_starts,
                                               plan.window_starts):
      owned[start:min(start + plan.tile, n)] += 1
      assert 0 <= window_start and window_start + plan.window <= n
      # the window holds the computed tile and `margin` voxels on each side inside the volume
      assert window_start <= max(tile_start - margin, 0)
      assert window_start + plan.window >= min(tile_start + plan.tile + margin, n)
    assert (owned == 1).all()


def test_tiled_equals_whole_volume_when_margin_covers_receptive_field(tiny_generator, odd_volume):
  radius = analysis.receptive_field_radius(tiny_generator)
  assert radius == 3
  whole = whole_volume(tiny_generator, odd_volume)
  tiled = inference.super_resolve(tiny_generator, odd_volume, tile=16, margin=radius, batch=3,
                                  progress=False)
  assert tiled.shape == ODD_SHAPE and tiled.dtype == np.float32
  np.testing.assert_allclose(tiled, whole, atol=1e-5)
  # the random network outputs negative values, and super_resolve clips them at 0
  assert (raw_whole_volume(tiny_generator, odd_volume) < -1e-3).any() and tiled.min() == 0.0
  # a margin below the radius is not exact: the seams show
  short = inference.super_resolve(tiny_generator, odd_volume, tile=16, margin=1, batch=3,
                                  progress=False)
  assert np.abs(short - whole).max() > 1e-3


def test_b1u8_paper_margin_differs_only_at_seams_and_radius_margin_is_exact(odd_volume):
  keras.utils.set_random_seed(2)
  model = build_model("b1u8", identity_init=False)
  radius = analysis.receptive_field_radius(model)
  assert radius == 9
  volume = odd_volume[:, :40, :]
  whole = whole_volume(model, volume)
  exact = inference.super_resolve(model, volume, tile=24, margin=radius, progress=False)
  np.testing.assert_allclose(exact, whole, atol=1e-5)
  paper = inference.super_resolve(model, volume, tile=24, margin=3, progress=False)
  difference = np.abs(paper - whole)
  print(f"b1u8 random weights, margin 3: max |tiled - whole| = {difference.max():.4g}")
  assert difference.max() > 1e-4
  # exactly the voxels whose window holds their whole receptive field are unchanged
  exact_mask = np.ones(volume.shape, bool)
  for axis, plan in enumerate(tiling.plan_tiles(volume.shape, 24, 3)):
    n = volume.shape[axis]
    covered = np.zeros(n, bool)
    for start, window_start in zip(plan.owned_starts, plan.window_starts):
      for i in range(start, min(start + plan.tile, n)):
        covered[i] = (window_start <= max(i - radius, 0)
                      and window_start + plan.window >= min(i + radius + 1, n))
    exact_mask &= np.expand_dims(covered, [a for a in range(3) if a != axis])
  assert 0 < exact_mask.mean() < 1
  assert difference[exact_mask].max() < 1e-5
  assert difference[~exact_mask].max() == difference.max()


def test_no_retracing_across_tiles_batches_and_volumes(tiny_generator, odd_volume):
  forward = inference.forward_function(tiny_generator, fused=False)  # a small volume's pass
  inference.super_resolve(tiny_generator, odd_volume, tile=16, margin=3, batch=4, progress=False)
  traced = forward.experimental_get_tracing_count()
  # 27 tiles in batches of 4 (a smaller last batch), then another shape and batch size
  inference.super_resolve(tiny_generator, odd_volume[:20, :31, :17], tile=8, margin=2, batch=5,
                          progress=False)
  assert traced == 1 and forward.experimental_get_tracing_count() == 1
  assert inference.forward_function(tiny_generator, fused=False) is forward


def test_only_calls_that_repay_the_compilation_run_the_fused_kernels(tiny_generator, odd_volume,
                                                                    monkeypatch):
  """Fused or not, the pass computes the same sums: in float32 each of the path's five
  layers adds a relative error of at most K * 2^-24 for its widest sum (K = 27 * 12
  products), under 1e-4 of the output's range in all; a wrong scale or offset is off by
  orders more."""
  computed = tiling.computed_voxels(ODD_SHAPE, 16, 3)
  chosen, forward_function = [], inference.forward_function

  def recording(model, jit_compile=False, fused=True):
    chosen.append(fused)
    return forward_function(model, jit_compile, fused)

  monkeypatch.setattr(inference, "forward_function", recording)
  outputs = []
  for threshold in (computed + 1, computed):
    monkeypatch.setattr(inference, "FUSED_MIN_VOXELS", threshold)
    outputs.append(inference.super_resolve(tiny_generator, odd_volume, tile=16, margin=3,
                                           progress=False))
  assert chosen == [False, True]
  np.testing.assert_allclose(outputs[1], outputs[0], rtol=0, atol=1e-4 * np.abs(outputs[0]).max())


@pytest.mark.parametrize("divide", [lambda x: x / x, lambda x: 1.0 / x], ids=["nan", "inf"])
def test_an_output_with_nan_or_inf_voxels_is_refused_with_their_count(divide):
  """0 / 0 is NaN and 1 / 0 is +Inf in IEEE arithmetic: a network dividing by its input
  gives exactly as many bad voxels as the volume has zeros, whichever tiles they fall in."""
  windows = keras.Input((None, None, None, 1))
  model = keras.Model(windows, keras.layers.Lambda(divide)(windows))
  volume = np.random.default_rng(3).uniform(0.5, 1.0, (20, 17, 13)).astype(np.float32)
  zeros = [(0, 0, 0), (7, 16, 5), (19, 3, 12), (12, 9, 6)]
  volume[tuple(np.transpose(zeros))] = 0.0
  with pytest.raises(NonFiniteOutput) as raised:
    inference.super_resolve(model, volume, tile=8, margin=2, progress=False)
  assert (raised.value.bad, raised.value.total) == (len(zeros), volume.size)
  assert str(raised.value) == f"{len(zeros)} of {volume.size} output voxels are NaN or Inf"
  volume[tuple(np.transpose(zeros))] = 1.0
  assert np.all(np.isfinite(inference.super_resolve(model, volume, tile=8, margin=2,
                                                    progress=False)))


def test_batch_for_memory_counts_whole_windows_of_the_pass_activations(tiny_generator):
  # (16 + 2 * 3)^3 voxels per window, each holding the rewritten pass's peak (144 bytes for
  # this network: tests/test_forward.py derives it)
  per_window = 22**3 * forward.activation_bytes_per_voxel(tiny_generator)
  assert per_window == 22**3 * 144
  assert inference.batch_for_memory(tiny_generator, 10**8, tile=16, margin=3) == (
      10**8 // per_window)
  assert inference.batch_for_memory(tiny_generator, per_window - 1, tile=16, margin=3) == 1


def test_generator_round_trip_through_weights_and_card(tmp_path, tiny_generator):
  keras.utils.set_random_seed(3)
  model = build_model("b2u4", identity_init=False)
  base = weights.save_generator(model, tmp_path / "gen.weights.h5",
                                ModelCard("b2u4", resumed_from_step=7))
  assert base == str(tmp_path / "gen")
  assert json.loads((tmp_path / "gen.json").read_text())["resumed_from_step"] == 7
  loaded, _ = weights.load_generator(tmp_path / "gen")
  x = np.random.default_rng(1).random((1, 8, 9, 10, 1), dtype=np.float32)
  np.testing.assert_array_equal(loaded(x, training=False).numpy(), model(x, training=False).numpy())
  assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_bad_weights_are_input_errors(tmp_path):
  keras.utils.set_random_seed(4)
  random_b2u4 = build_model("b2u4", identity_init=False)
  weights.save_generator(random_b2u4, tmp_path / "gen", ModelCard("b2u4"))
  with pytest.raises(InputError, match="not b4u4"):
    weights.load_generator(tmp_path / "gen", model_name="b4u4")
  with pytest.raises(InputError, match="no such weights"):
    weights.load_generator(tmp_path / "missing")
  (tmp_path / "gen.weights.h5").write_bytes(b"not hdf5")
  with pytest.raises(InputError, match="SHA-256"):  # not the file the card describes
    weights.load_generator(tmp_path / "gen")
  (tmp_path / "gen.json").write_text(json.dumps({"model": "b2u4"}))  # a card without checksum
  with pytest.raises(InputError, match="records no SHA-256"):
    weights.load_generator(tmp_path / "gen")
  with pytest.raises(InputError, match="cannot load"):
    weights.load_generator(tmp_path / "gen", allow_unverified=True)
  random_b2u4 = build_model("b2u4", identity_init=False)
  weights.save_generator(random_b2u4, tmp_path / "wrong", ModelCard("b3u4"))
  with pytest.raises(InputError, match="cannot load weights into b3u4"):
    weights.load_generator(tmp_path / "wrong")
  (tmp_path / "wrong.json").write_text("{broken")
  with pytest.raises(InputError, match="unreadable model card"):
    weights.load_generator(tmp_path / "wrong")


def test_a_pass_holds_no_volume_once_it_returns(tiny_generator, odd_volume):
  """tf.data keeps the function of a dataset made from a generator for the process's life:
  each call once kept its input volume so (a whole volume per test-time augmentation pass,
  per file of a batch). The input and the output are freed once the caller lets them go."""
  import gc  # pylint: disable=import-outside-toplevel
  import weakref  # pylint: disable=import-outside-toplevel

  volume = odd_volume.copy()  # contiguous float32: the pass reads it without a copy
  output = inference.super_resolve(tiny_generator, volume, tile=16, margin=3, progress=False)
  held = [weakref.ref(volume), weakref.ref(output)]
  del volume, output
  gc.collect()
  assert [ref() is None for ref in held] == [True, True]
