"""Test-time augmentation (infer/tta.py) over the acquisition-keeping transforms
(data/transforms.py): each transform undone exactly, the running mean and standard deviation
equal to those of the passes kept whole, an equivariant network's mean equal to one pass,
and `mdcsrn-sr --tta` writing the uncertainty map and showing it on the QC page."""
import contextlib
import dataclasses
import html as html_text
import io
import itertools
import json

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import cli
from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.data import pipeline, transforms
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import __main__ as sr_command
from mdcsrn_tf.infer import inference, outputs, trust, tta
from mdcsrn_tf.infer.predict import PredictOptions

U = 2.0**-24  # float32's unit round-off


def test_every_transform_then_its_inverse_is_the_identity_exactly():
  volume = np.random.default_rng(0).random((7, 7, 5)).astype(np.float32)
  stack = np.random.default_rng(1).random((2, 6, 6, 4)).astype(np.float32)
  keeping = transforms.keeping(PAPER.swap_axes)
  assert len(keeping) == transforms.MOST == 16 and keeping[0] == transforms.Transform()
  moved = [t.apply(volume) for t in keeping]
  assert len({m.tobytes() + bytes(m.shape) for m in moved}) == 16  # 16 different transforms
  for transform, result in zip(keeping, moved):
    assert np.array_equal(transform.invert(result), volume), transform.describe()
    assert np.array_equal(transform.invert(transform.apply(stack, 1), 1), stack)
  # an acquisition without two equal factors keeps its axes: the 8 flips
  assert Acquisition((1, 2, 4)).swap_axes is None
  assert [t.swap for t in transforms.keeping(None)] == [None] * 8


@pytest.mark.parametrize("swap_axes", [(0, 1), (1, 2), None])
def test_the_first_2_4_8_transforms_are_groups(swap_axes):
  """So that --tta 2, 4 or 8 averages over transforms closed under composition."""
  keeping = transforms.keeping(swap_axes)
  volume = np.arange(5 * 5 * 5, dtype=np.float32).reshape(5, 5, 5)
  for size in (2, 4, 8, 16)[:len(keeping).bit_length() - 1]:
    outcomes = {keeping[i].apply(volume).tobytes() for i in range(size)}
    assert len(outcomes) == size
    for first, second in itertools.product(keeping[:size], repeat=2):
      assert second.apply(first.apply(volume)).tobytes() in outcomes


def test_training_augmentation_draws_the_same_transforms():
  """pipeline.augment draws from the one definition: a swap, then flips."""
  pair = np.random.default_rng(2).random((2, 5, 5, 5)).astype(np.float32)
  for draws in itertools.product((0.2, 0.7), repeat=4):
    expected = np.swapaxes(pair, 1, 2) if draws[0] < 0.5 else pair
    flips = [1 + a for a in range(3) if draws[1 + a] < 0.5]
    expected = np.flip(expected, flips) if flips else expected
    assert np.array_equal(pipeline.augment(pair, draws, (0, 1)), expected)


def pointwise_network(seed=3, hidden=8):
  """1x1x1 convolutions (1 -> hidden -> 1 channels): the same function of each voxel alone,
  so equivariant to every flip and swap."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((None, None, None, 1))
  hidden_layer = keras.layers.Conv3D(hidden, 1, activation="elu")(inputs)
  return keras.Model(inputs, keras.layers.Conv3D(1, 1)(hidden_layer))


def test_an_equivariant_networks_mean_is_one_pass_to_float_round_off():
  model = pointwise_network()
  volume = np.random.default_rng(4).random((20, 20, 12)).astype(np.float32)
  one = inference.super_resolve(model, volume, tile=8, margin=1, progress=False)
  mean, spread = tta.super_resolve(model, volume, tile=8, margin=1, passes=16,
                                   swap_axes=(0, 1), progress=False)
  # Each voxel's output sums hidden + 1 float32 terms (the bias too) in the same order for
  # any tile or transform; were the order to change, it would move by at most
  # (hidden + 1) * U times the sum of the terms' magnitudes (Higham's gamma_n); Welford's
  # update over 16 passes adds at most 16 * 3 * U of the mean (a subtraction, a division
  # and an addition per pass).
  kernel, bias = (w.numpy() for w in model.layers[-1].weights)
  first_kernel, first_bias = (w.numpy() for w in model.layers[1].weights)
  activation = keras.activations.elu(volume[..., None] * first_kernel[0, 0, 0, 0]
                                     + first_bias).numpy()
  magnitudes = np.abs(activation) @ np.abs(kernel[0, 0, 0, :, 0]) + abs(bias[0])
  bound = (9 * magnitudes + 16 * 3 * np.abs(one)) * U
  assert np.all(np.abs(mean - one) <= bound)
  assert np.all(spread <= np.sqrt(16) * bound)


def test_running_mean_and_deviation_are_those_of_the_passes_kept_whole():
  keras.utils.set_random_seed(5)
  inputs = keras.Input((None, None, None, 1))
  model = keras.Model(inputs, keras.layers.Conv3D(1, 3, padding="same")(inputs))  # not
  volume = np.random.default_rng(6).random((16, 14, 10)).astype(np.float32)      # equivariant
  chosen = tta.passes_for(4, (0, 1))
  passes = np.stack([t.invert(inference.super_resolve(model, t.apply(volume), tile=8, margin=2,
                                                      progress=False)) for t in chosen])
  mean, spread = tta.super_resolve(model, volume, tile=8, margin=2, passes=4, swap_axes=(0, 1),
                                   progress=False)
  np.testing.assert_allclose(mean, passes.mean(axis=0), rtol=0, atol=8 * U * passes.max())
  np.testing.assert_allclose(spread, passes.std(axis=0), rtol=1e-4, atol=1e-6)
  assert spread.max() > 1e-3  # the flips do change this network's output
  assert tta.super_resolve(model, volume, tile=8, margin=2, passes=1, progress=False)[1] is None


def run_sr(argv) -> tuple:
  """mdcsrn-sr in this process: (exit status, stdout, stderr)."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    with pytest.raises(SystemExit) as stopped:
      cli.run(sr_command.main, PredictOptions, sr_command.__doc__, argv=["mdcsrn-sr", *argv],
              exit_within=None)
  return stopped.value.code or 0, out.getvalue(), err.getvalue()


def test_mdcsrn_sr_writes_the_mean_and_the_uncertainty_map_and_shows_it(tmp_path, colin27_crop,
                                                                         generator_weights):
  scan = colin27_crop(tmp_path / "scan.nii.gz")
  out, page = tmp_path / "sr.nii.gz", tmp_path / "qc.html"
  status, _, err = run_sr([str(scan), str(out), "--weights", generator_weights, "--tile", "16",
                           "--tta", "4", "--report", str(page)])
  assert status == 0, err
  uncertainty = tmp_path / "sr_uncertainty.nii.gz"
  assert outputs.uncertainty_path(out) == str(uncertainty)
  written, spread = nib.load(out), nib.load(uncertainty)
  np.testing.assert_allclose(spread.affine, written.affine)
  assert spread.shape == written.shape and spread.get_fdata().max() > 0
  html = page.read_text(encoding="utf-8")
  assert html.count('alt="uncertainty (std of the passes)"') == 3  # one per plane
  assert html_text.escape(trust.UNCHECKED) in html  # generator_weights' card has no domain
  # an existing uncertainty map is not replaced unasked, and nothing else is written
  out.unlink()
  status, _, err = run_sr([str(scan), str(out), "--weights", generator_weights, "--tta", "2"])
  assert status == 2 and "sr_uncertainty.nii.gz" in err and not out.exists()


@pytest.mark.parametrize("value", ["0", "17"])
def test_tta_outside_1_to_16_is_refused(value, tmp_path):
  status, _, err = run_sr(["a.nii.gz", str(tmp_path / "b.nii.gz"), "--tta", value])
  assert status == 2 and err.startswith("error:") and "--tta" in err


def test_mdcsrn_bids_writes_desc_uncertainty_with_its_sidecar(tmp_path, bids_tree,
                                                              generator_weights):
  from mdcsrn_tf.bids.app import BidsOptions, run_app  # pylint: disable=import-outside-toplevel

  dataset, out = bids_tree(tmp_path / "raw"), tmp_path / "derivatives"
  options = BidsOptions(participant_label=("02",), weights=generator_weights, tile="16", tta=2)
  assert run_app(options, [dataset, str(out), "participant"], log=lambda *a, **k: None) == ["02"]
  anat = out / "sub-02" / "anat"
  assert sorted(p.name for p in anat.iterdir()) == [
      "sub-02_desc-mdcsrn_T1w.json", "sub-02_desc-mdcsrn_T1w.nii.gz",
      "sub-02_desc-uncertainty_T1w.json", "sub-02_desc-uncertainty_T1w.nii.gz"]
  sidecar = json.loads((anat / "sub-02_desc-mdcsrn_T1w.json").read_text())
  assert sidecar["TestTimeAugmentation"]["Passes"] == 2
  assert sidecar["TestTimeAugmentation"]["Uncertainty"] == "sub-02_desc-uncertainty_T1w.nii.gz"
  assert json.loads((anat / "sub-02_desc-uncertainty_T1w.json").read_text())["Passes"] == 2
  page = (out / "sub-02.html").read_text(encoding="utf-8")
  assert page.count('alt="uncertainty (std of the passes)"') == 3
  # done: a rerun skips it; the folder's settings now include --tta
  assert run_app(options, [dataset, str(out), "participant"], log=lambda *a, **k: None) == []
  with pytest.raises(InputError, match=r"other settings \(--tta 2 there, 1 now\)"):
    run_app(dataclasses.replace(options, tta=1), [dataset, str(out), "participant"])
