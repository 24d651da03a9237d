"""The weights shipped in mdcsrn_tf/weights/: they load into the registered model (their
checksum verified), were never trained on the held-out subject, and, measured now on a crop
of the held-out Colin27 volume, over the whole crop and inside the brain, clear the project's
bar against the paper's bicubic baseline; and the release's bar names each miss and the
figure it is about."""
import json
import os

import numpy as np
import pytest

from mdcsrn_tf import models, paper, release, weights
from mdcsrn_tf.data import samples
from mdcsrn_tf.evaluate import scoring, subjects

SHIPPED = weights.shipped()
CROP = 64


@pytest.fixture(scope="module")
def held_out_crop(sample):
  """(the central 64^3 of Colin27, divided by the whole volume's maximum, its brain mask), as
  the release checks it."""
  volume = subjects.read_subject(sample("colin27_1mm"), mask_path=sample("colin27_1mm_bet"))
  return subjects.central_crop(volume.hr, CROP)[0], subjects.central_crop(volume.mask, CROP)[0]


@pytest.fixture(scope="module")
def measured(held_out_crop):
  """{kind: metrics of the shipped model and the baselines on the held-out crop}."""
  results = {}
  for kind, base in SHIPPED.items():
    model, card = weights.load_generator(base)
    hr, brain = held_out_crop
    results[kind] = scoring.evaluate_volume(
        hr, {"cubic": None, "model": model},
        acquisition=card.acquisition, tile=paper.TILE, margin=paper.MARGIN, mask=brain)
  return results


def test_both_kinds_are_shipped_and_load_into_b4u4():
  assert set(SHIPPED) == {"l1", "gan"}
  for kind, base in SHIPPED.items():
    card = weights.read_card(base)
    assert card.model == "b4u4" and card.shipped_as == kind
    assert weights.load_generator(base)[0].count_params() == models.build_model("b4u4").count_params()


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
  for psnr in ("psnr", "psnr_mask"):  # the bar looks at both figures
    assert scores["model"][psnr] >= scores["cubic"][psnr] + release.REQUIRED_GAIN_DB


def test_gan_weights_stay_within_the_tolerance_of_the_l1_weights(measured):
  assert release.quality_shortfalls(measured["gan"], l1=measured["l1"]["model"]) == []
  for figure in ("psnr", "psnr_mask"):
    psnr = {kind: measured[kind]["model"][figure] for kind in ("l1", "gan")}
    assert np.isfinite(psnr["gan"]) and psnr["gan"] >= psnr["l1"] - release.GAN_TOLERANCE_DB


def test_shipped_cards_hold_whole_volume_and_in_brain_figures(sample):
  for base in SHIPPED.values():
    held_out = weights.read_card(base).held_out
    assert held_out["mask"] == sample("colin27_1mm_bet")
    for figures in (held_out["whole_volume"], held_out["check_crop"]["metrics"]):
      assert set(figures) == {"linear", "cubic", "zero_filled", "model"}
      assert all(set(scoring.METRICS) == set(values) for values in figures.values())


def test_quality_shortfalls_name_each_miss_and_its_figure():
  cubic = {"psnr": 38.5, "ssim": 0.97}
  assert release.quality_shortfalls({"cubic": cubic, "model": {"psnr": 39.6, "ssim": 0.98}},
                                    l1={"psnr": 40.5}) == []
  misses = release.quality_shortfalls({"cubic": cubic, "model": {"psnr": 39.4, "ssim": 0.97}},
                                      l1={"psnr": 40.5})
  assert misses == [
      "held-out whole-volume PSNR 39.40 dB, less than 1.0 dB above bicubic 38.50 dB",
      "held-out whole-volume SSIM 0.9700, not above bicubic 0.9700",
      "held-out whole-volume PSNR 39.40 dB, more than 1.0 dB below the L1 weights' 40.50 dB"]
  # each figure judged on its own: the whole volume misses the bicubic bar, the in-mask
  # figure clears it but falls more than the tolerance below the L1 weights'
  cubic.update(psnr_mask=40.7, ssim_mask=0.98)
  model = {"psnr": 38.9, "ssim": 0.98, "psnr_mask": 42.0, "ssim_mask": 0.99}
  assert release.quality_shortfalls({"cubic": cubic, "model": model},
                                    l1={"psnr": 39.0, "psnr_mask": 43.5}) == [
      "held-out whole-volume PSNR 38.90 dB, less than 1.0 dB above bicubic 38.50 dB",
      "held-out in-mask PSNR 42.00 dB, more than 1.0 dB below the L1 weights' 43.50 dB"]


def strings_in(value):
  """Every string inside a JSON value."""
  if isinstance(value, str):
    yield value
  elif isinstance(value, dict):
    for item in value.values():
      yield from strings_in(item)
  elif isinstance(value, list):
    for item in value:
      yield from strings_in(item)


def test_shipped_cards_name_no_path_of_the_machine_they_were_made_on():
  # paths relative to the repository, or where a Debian package puts a file on every machine
  cards = [name for name in os.listdir(weights.SHIPPED_DIR) if name.endswith(".json")]
  assert cards
  for name in cards:
    with open(os.path.join(weights.SHIPPED_DIR, name), encoding="utf-8") as file:
      card = json.load(file)
    absolute = [text for text in strings_in(card)
                if os.path.isabs(text) and not text.startswith("/usr/share/")]
    assert absolute == [], name
