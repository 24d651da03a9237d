"""The weights shipped in mdcsrn_tf/weights/: they load into the registered model (their
checksum verified), were never trained on the held-out subject, and, measured now on a crop
of the held-out Colin27 volume, clear the project's bar against the paper's bicubic
baseline; and the release's bar names each miss."""
import numpy as np
import pytest

from mdcsrn_tf import models, release, weights
from mdcsrn_tf.data import samples
from mdcsrn_tf.evaluate import scoring, subjects

SHIPPED = weights.shipped()
CROP = 64


@pytest.fixture(scope="module")
def held_out_crop(sample):
  """The central 64^3 of Colin27, divided by the whole volume's maximum, as the release
  checks it."""
  hr = subjects.read_subject(sample("colin27_1mm"))[0]
  return subjects.central_crop(hr, CROP)[0]


@pytest.fixture(scope="module")
def measured(held_out_crop):
  """{kind: metrics of the shipped model and the baselines on the held-out crop}."""
  results = {}
  for kind, base in SHIPPED.items():
    card = weights.read_card(base)
    results[kind] = scoring.evaluate_volume(
        held_out_crop, {"cubic": None, "model": weights.load_generator(base)},
        lr_mode=card.lr_mode, tile=64, margin=3)
  return results


def test_both_kinds_are_shipped_and_load_into_b4u4():
  assert set(SHIPPED) == {"l1", "gan"}
  for kind, base in SHIPPED.items():
    card = weights.read_card(base)
    assert card.model == "b4u4" and card.shipped_as == kind
    assert weights.load_generator(base).count_params() == models.build_model("b4u4").count_params()


def test_the_held_out_subject_never_trained_or_validated_the_weights():
  for base in SHIPPED.values():
    card = weights.read_card(base)
    held_out = samples.get(card.held_out["volume"]).subject
    seen = {samples.get(name).subject for names in card.subjects.values() for name in names}
    assert held_out == samples.TEST_SUBJECT and held_out not in seen


@pytest.mark.parametrize("kind", ["l1", "gan"])
def test_shipped_weights_clear_the_bar_on_the_held_out_crop(kind, measured):
  scores = measured[kind]
  assert release.quality_shortfalls(scores) == []
  assert scores["model"]["psnr"] >= scores["cubic"]["psnr"] + release.REQUIRED_GAIN_DB


def test_gan_weights_stay_within_the_tolerance_of_the_l1_weights(measured):
  psnr = {kind: measured[kind]["model"]["psnr"] for kind in ("l1", "gan")}
  assert np.isfinite(psnr["gan"]) and psnr["gan"] >= psnr["l1"] - release.GAN_TOLERANCE_DB


def test_quality_shortfalls_name_each_miss():
  cubic = {"psnr": 38.5, "ssim": 0.97}
  assert release.quality_shortfalls({"cubic": cubic, "model": {"psnr": 39.6, "ssim": 0.98}},
                                    l1_psnr=40.5) == []
  misses = release.quality_shortfalls({"cubic": cubic, "model": {"psnr": 39.4, "ssim": 0.97}},
                                      l1_psnr=40.5)
  assert misses == ["held-out PSNR 39.40 dB, less than 1.0 dB above bicubic 38.50 dB",
                    "held-out SSIM 0.9700, not above bicubic 0.9700",
                    "held-out PSNR 39.40 dB, more than 1.0 dB below the L1 weights' 40.50 dB"]
