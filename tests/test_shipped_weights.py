"""The weights shipped in mdcsrn_tf/weights/: the tables' set, one per trained row of the
paper's tables, and the heads set (the defaults trained on whole heads). Each loads into its
network (checksum verified), was never trained or validated on the
held-out heads its card reports, and its card's figures are measured again here, on the
card's crop of the held-out Colin27 (whole crop and inside the brain), not read back. A row
ships whatever it scores; its card warns exactly when its figures miss the project's bar,
and the bar names each miss and the figure it is about."""
import json
import os

import numpy as np
import pytest

from mdcsrn_tf import metrics, models, paper, release, weights
from mdcsrn_tf.data import samples
from mdcsrn_tf.evaluate import scoring, subjects
from mdcsrn_tf.infer import consistency

# {row: base path} of the tables' set (a row of Tables 1-2: b1u8, ..., b4u4_gan)
TABLES = {row: base for row in paper.NETWORKS if (base := weights.shipped_network(row))}
# {shipped name: base path} of every shipped file, both sets
SHIPPED = {name: weights.shipped_path(name) for name in weights.shipped_names()}
HELD_OUT_HEADS = 2  # at least: real heads no shipped network trained or validated on

# Re-measuring on another x86-64 CPU changes the float32 sums of the convolutions (their
# order, FMA or not): about sqrt(terms) * 2^-24 ~ 1e-5 relative per output voxel, against
# residuals of about 2% of the maximum, so below 1e-3 relative in the squared error, 0.005
# dB of PSNR, 1e-4 of SSIM, NRMSE or the band figures. The tolerances give twice that.
TOLERANCE = {"psnr": 0.01, "ssim": 2e-4, "nrmse": 2e-4, "sharpness": 2e-4,
             "band_fidelity": 2e-4, "psnr_head": 0.01}


@pytest.fixture(scope="module")
def held_out_crop(sample):
  """{start: (the crop of Colin27 there, divided by the whole volume's maximum, and its
  brain mask)} for the crop each card names."""
  volume = subjects.read_subject(sample("colin27_1mm"), mask_path=sample("colin27_1mm_bet"))
  crops = {}
  for base in SHIPPED.values():
    check = weights.read_card(base).held_out["check_crop"]
    box = tuple(slice(s, s + check["edge"]) for s in check["start"])
    crops[tuple(check["start"])] = (volume.hr[box], volume.mask[box])
  return crops


@pytest.fixture(scope="module")
def measured(held_out_crop):
  """{row: figures of the shipped network and the bicubic baseline on its card's crop}."""
  results = {}
  for row, base in SHIPPED.items():
    model, card = weights.load_generator(base)
    hr, brain = held_out_crop[tuple(card.held_out["check_crop"]["start"])]
    results[row] = scoring.evaluate_volume(
        hr, {"cubic": None, "model": model}, acquisition=card.acquisition,
        tile=card.held_out["tile"], margin=card.held_out["margin"], mask=brain,
        keep_band={"model": consistency.band_kept_by(card)} if card.keeps_measured_band else None)
  return results


def test_every_shipped_file_is_a_row_of_its_set_and_loads_into_its_network():
  assert set(TABLES) == set(paper.NETWORKS)  # every row of Tables 1 and 2
  rows = {f"{network}_{'gan' if row.endswith('_gan') else 'l1'}": row
          for row in paper.NETWORKS for network in [row.removesuffix("_gan")]}
  for name, base in SHIPPED.items():
    card = weights.read_card(base)
    assert name == weights.shipped_name(card.shipped_set, card.model, card.shipped_as)
    assert f"{card.model}_{card.shipped_as}" in rows
    if card.shipped_set == "tables":
      assert TABLES[rows[f"{card.model}_{card.shipped_as}"]] == base
    else:  # the defaults: trained on the whole heads, keeping the measured band
      assert card.dataset == "data/heads/manifest.json" and card.keeps_measured_band
    loaded = weights.load_generator(base)[0]
    assert loaded.count_params() == models.build_model(card.model).count_params()


def test_no_shipped_network_trained_or_validated_on_its_held_out_heads():
  for base in SHIPPED.values():
    card = weights.read_card(base)
    held_out = {samples.get(name).subject for name in card.held_out["volumes"]}
    seen = {samples.get(name).subject for split in ("train", "validation")
            for name in card.subjects.get(split, ())}
    assert len(held_out) >= HELD_OUT_HEADS and held_out <= set(samples.TEST_SUBJECTS)
    assert not held_out & seen


@pytest.mark.parametrize("row", sorted(SHIPPED))
def test_card_figures_agree_with_the_crop_measured_now(row, measured):
  card = weights.read_card(SHIPPED[row])
  card_figures = card.held_out["check_crop"]["metrics"]
  for method in ("model", "cubic"):
    for metric in metrics.REGISTRY:
      for name in (metric.name, metric.masked_name):
        if name not in card_figures[method]:  # registered after the tables' set shipped
          assert card.shipped_set == "tables", (method, name)
          continue
        assert measured[row][method][name] == pytest.approx(
            card_figures[method][name], abs=TOLERANCE[metric.name]), (method, name)


@pytest.mark.parametrize("row", sorted(SHIPPED))
def test_a_card_warns_exactly_when_its_figures_miss_the_bar(row):
  # rows of the tables ship whatever they score; a miss is printed whenever they are used
  card = weights.read_card(SHIPPED[row])
  l1 = None
  if card.shipped_as == "gan":
    l1_base = weights.shipped_network(card.model, card.shipped_set)
    l1 = weights.read_card(l1_base).held_out["whole_volume"]["model"]
  misses = release.quality_shortfalls(card.held_out["whole_volume"], l1=l1)
  assert bool(card.warning) == bool(misses)
  assert all(miss in card.warning for miss in misses)


def test_the_gan_stays_within_the_tolerance_of_its_l1_network_on_the_crop(measured):
  for row in (row for row in TABLES if row.endswith("_gan")):
    l1 = measured[f"{row.removesuffix('_gan')}_l1"]["model"]
    for figure in ("psnr", "psnr_mask"):
      gan = measured[row]["model"][figure]
      assert np.isfinite(gan) and gan >= l1[figure] - release.GAN_TOLERANCE_DB


def test_shipped_cards_hold_whole_volume_in_brain_and_band_figures():
  for base in SHIPPED.values():
    held_out = weights.read_card(base).held_out
    figures = [held_out["whole_volume"], held_out["check_crop"]["metrics"],
               *held_out["per_volume"].values()]
    for methods in figures:
      assert set(methods) == {"linear", "cubic", "zero_filled", "model"}
      for values in methods.values():
        assert {"sharpness", "band_fidelity", "psnr", "ssim", "nrmse"} <= set(values)
    # the brain of the heads that have one (Colin27's) gives the in-mask figures
    assert "sharpness_mask" in held_out["per_volume"]["colin27_1mm"]["model"]


def test_quality_shortfalls_name_each_miss_and_its_figure():
  cubic = {"psnr": 38.5, "ssim": 0.97}
  assert release.quality_shortfalls({"cubic": cubic, "model": {"psnr": 38.6, "ssim": 0.98}},
                                    l1={"psnr": 39.5}) == []
  misses = release.quality_shortfalls({"cubic": cubic, "model": {"psnr": 38.5, "ssim": 0.97}},
                                      l1={"psnr": 39.6})
  assert misses == [
      "held-out whole-volume PSNR 38.50 dB, not above bicubic 38.50 dB",
      "held-out whole-volume SSIM 0.9700, not above bicubic 0.9700",
      "held-out whole-volume PSNR 38.50 dB, more than 1.0 dB below the L1 weights' 39.60 dB"]
  # each figure judged on its own: the whole volume clears the bicubic bar, the in-mask
  # figure is less than the gain above bicubic and more than the tolerance below L1's
  cubic.update(psnr_mask=40.7, ssim_mask=0.98)
  model = {"psnr": 38.9, "ssim": 0.98, "psnr_mask": 41.6, "ssim_mask": 0.99}
  assert release.quality_shortfalls({"cubic": cubic, "model": model},
                                    l1={"psnr": 39.0, "psnr_mask": 43.5}) == [
      "held-out in-mask PSNR 41.60 dB, not more than 1.0 dB above bicubic 40.70 dB",
      "held-out in-mask PSNR 41.60 dB, more than 1.0 dB below the L1 weights' 43.50 dB"]


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
  # paths relative to the repository, or names
  cards = [name for name in os.listdir(weights.SHIPPED_DIR) if name.endswith(".json")]
  assert cards
  for name in cards:
    with open(os.path.join(weights.SHIPPED_DIR, name), encoding="utf-8") as file:
      card = json.load(file)
    absolute = [text for text in strings_in(card) if os.path.isabs(text)]
    assert absolute == [], name
