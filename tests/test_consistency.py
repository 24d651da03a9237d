"""Measured-band consistency (infer/consistency.py): closed forms on a real head, the tiled
pass and mdcsrn-sr with weights whose card asks for it, and the card and training checks."""
import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import kspace
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import consistency, inference
from mdcsrn_tf.models import build_model
from mdcsrn_tf.train.config import TrainConfig
from mdcsrn_tf.weights import card as cards
from mdcsrn_tf.weights.card import ModelCard
from tests.test_tta import run_sr

U = 2.0**-24  # float32's unit round-off
ZERO_FILLED = Acquisition(placement="zero_filled")  # the paper's 2 x 2 x 1 truncation


def tolerance(volume, change) -> float:
  """Round-off of input + IFFT(FFT(change) masked) in float32: the sum's rounding of the
  volume's largest value, and the FFT pair's error, at most about 2 log2(N) U of the
  change's largest size (Higham, Accuracy and Stability, ch. 24), with a factor 4 to spare."""
  return 4 * U * (np.abs(volume).max() + 2 * np.log2(volume.size) * np.abs(change).max())


@pytest.fixture(scope="module")
def head(colin27):
  """A zero-filled network input made from a real head: a 48 x 56 x 40 crop of Colin27."""
  hr = np.asarray(colin27.dataobj, np.float32)[66:114, 80:136, 60:100]
  return kspace.degrade(hr / hr.max(), ZERO_FILLED)


def test_a_change_inside_the_kept_band_is_undone(head):
  shifted = head + np.float32(0.01)  # a constant offset: the mean, kept by every truncation
  kept = consistency.keep_measured_band(shifted, head, ZERO_FILLED)
  np.testing.assert_allclose(kept, head, rtol=0, atol=tolerance(head, shifted - head))


def test_a_change_in_the_removed_band_passes_unchanged(head):
  # (-1)^i along a truncated axis: that axis' Nyquist frequency, which its mirror shares
  nyquist = np.float32(0.02) * (-1.0) ** np.arange(head.shape[0])[:, None, None]
  changed = (head + nyquist).astype(np.float32)
  kept = consistency.keep_measured_band(changed, head, ZERO_FILLED)
  np.testing.assert_allclose(kept, changed, rtol=0, atol=tolerance(head, nyquist))


def test_the_projection_is_idempotent_and_keeps_the_input_of_an_identity(head):
  noisy = head + np.random.default_rng(0).normal(0, 0.05, head.shape).astype(np.float32)
  once = consistency.keep_measured_band(noisy, head, ZERO_FILLED)
  twice = consistency.keep_measured_band(once, head, ZERO_FILLED)
  np.testing.assert_allclose(twice, once, rtol=0, atol=2 * tolerance(head, noisy - head))
  assert np.abs(once - noisy).max() > 0.01  # the noise's kept band did go
  np.testing.assert_array_equal(consistency.keep_measured_band(head, head, ZERO_FILLED), head)


@pytest.mark.parametrize("acquisition", [Acquisition(placement="linear"),
                                         Acquisition((1, 1, 4), "boxcar", "zero_filled")])
def test_only_an_input_that_holds_the_measured_band_can_keep_it(acquisition, head):
  assert not acquisition.band_is_measured
  with pytest.raises(ValueError, match="measured band"):
    consistency.keep_measured_band(head, head, acquisition)


def biased_identity(bias):
  """b2u4 started as the identity map, its reconstruction's bias set: output = input + bias."""
  model = build_model("b2u4")
  layer = model.get_layer("reconstruction")
  layer.bias.assign(np.full(layer.bias.shape, bias, np.float32))
  return model


def test_the_tiled_pass_keeps_the_measured_band_of_its_input(head):
  model = biased_identity(0.05)
  plain = inference.super_resolve(model, head, tile=24, margin=3, progress=False)
  np.testing.assert_allclose(plain, head + np.float32(0.05), rtol=0, atol=1e-5)
  kept = inference.super_resolve(model, head, tile=24, margin=3, progress=False,
                                 keep_band=ZERO_FILLED)
  np.testing.assert_allclose(kept, head, rtol=0, atol=1e-5 + tolerance(head, 0.05))


def test_mdcsrn_sr_keeps_the_band_when_the_card_says_so(tmp_path, colin27_crop):
  scan = colin27_crop(tmp_path / "scan.nii.gz", shape=(32, 40, 24))
  base = tmp_path / "biased"
  for keeps in (False, True):
    weights.save_generator(biased_identity(0.05), base, ModelCard(
        "b2u4", acquisition=ZERO_FILLED, keeps_measured_band=keeps))
    out = tmp_path / f"sr_{keeps}.nii.gz"
    status, _, err = run_sr([str(scan), str(out), "--weights", str(base), "--tile", "16"])
    assert status == 0, err
    voxels = nib.load(scan).get_fdata(dtype=np.float32)
    written = nib.load(out).get_fdata(dtype=np.float32)
    offset = 0.05 * voxels.max()  # the bias, in the scan's units
    expected = voxels if keeps else voxels + offset
    np.testing.assert_allclose(written, expected, rtol=0,
                               atol=voxels.max() * (1e-5 + tolerance(voxels / voxels.max(), 0.05)))


def test_the_card_records_it_and_refuses_it_without_a_measured_band(tmp_path):
  base = tmp_path / "w"
  cards.write(base, ModelCard("b2u4", acquisition=ZERO_FILLED, keeps_measured_band=True))
  assert cards.read(base).keeps_measured_band
  with open(cards.path_of(base), encoding="utf-8") as card_file:
    fields = json.load(card_file)
  for change, words in (({"keeps_measured_band": "yes"}, "expected true or false"),
                        ({"acquisition": Acquisition(placement="linear").to_dict()},
                         "no measured band to keep")):
    with open(cards.path_of(base), "w", encoding="utf-8") as card_file:
      json.dump({**fields, **change}, card_file)
    with pytest.raises(InputError, match="keeps_measured_band") as refused:
      cards.read(base)
    assert words in str(refused.value)
  fields.pop("keeps_measured_band")  # a card from before the field
  with open(cards.path_of(base), "w", encoding="utf-8") as card_file:
    json.dump(fields, card_file)
  assert not cards.read(base).keeps_measured_band


def test_training_refuses_it_for_an_input_without_the_measured_band(tmp_path):
  config = TrainConfig(dataset=str(tmp_path / "m.json"), workdir=str(tmp_path / "w"),
                       placement="linear", keep_measured_band=True)
  with pytest.raises(InputError, match="--keep_measured_band"):
    config.validate()
  dataclasses.replace(config, placement="zero_filled").validate()


@pytest.mark.parametrize("shape", [(8, 9, 5), (7, 10, 6), (12, 12, 3)])
def test_the_removed_pairs_are_the_removed_band_and_its_mirror(shape):
  removed = ZERO_FILLED.removed_band(shape)
  mirror = np.ix_(*((-np.arange(n)) % n for n in shape))
  np.testing.assert_array_equal(consistency.removed_pairs(ZERO_FILLED, shape),
                                removed | removed[mirror])


def test_the_graph_projection_is_the_numpy_one(head):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  changed = head + np.random.default_rng(1).normal(0, 0.05, head.shape).astype(np.float32)
  in_graph = tf.function(lambda o, i: consistency.keep_measured_band_graph(o, i, ZERO_FILLED),
                         input_signature=[tf.TensorSpec(None, tf.float32)] * 2)
  np.testing.assert_allclose(in_graph(changed, head).numpy(),
                             consistency.keep_measured_band(changed, head, ZERO_FILLED),
                             rtol=0, atol=2 * tolerance(head, changed - head))


def test_the_savedmodel_keeps_the_band_as_the_python_path_does(head):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf.export import saved_model  # pylint: disable=import-outside-toplevel

  model = biased_identity(0.05)
  scale = float(head.max())  # the served volume is mapped onto [0, 1] by it, and back
  for keep_band, expected in ((None, head + np.float32(0.05 * scale)), (ZERO_FILLED, head)):
    serve = tf.function(saved_model.serving_function(model, tile=24, margin=3,
                                                     keep_band=keep_band))
    served = serve(tf.constant(head))["sr"].numpy()
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-5 + tolerance(head, 0.05))
