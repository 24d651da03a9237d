"""Ships a trained generator with the package, its held-out metrics in its model card: the
library of `python -m mdcsrn_tf.release` (docs/reproducing.md).

The generator (a training workdir's export/generator, or any exported PATH, the shipped
weights themselves included) is scored on its data set's test subject (Colin27 for the
bundled data set, never trained or tuned on) against the baselines, on the whole volume
and on a fixed central crop (the crop is what the test suite re-measures), each over all its
voxels and, when the test entry has a mask (Colin27: its brain), inside the mask, and
written to mdcsrn_tf/weights/b4u4_{kind} with its card. Weights below the project's bar get
a `warning` in the card, which `mdcsrn-sr` prints whenever it uses them. The bar, on the
whole volume's figures and on its in-mask ones alike: PSNR at least REQUIRED_GAIN_DB above
the bicubic baseline and SSIM above it; GAN weights within GAN_TOLERANCE_DB PSNR of the
shipped L1 weights.
"""
import dataclasses
import os

from mdcsrn_tf import metrics, paper, weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.data import manifest
from mdcsrn_tf.evaluate import scoring, subjects

REQUIRED_GAIN_DB = 1.0  # PSNR above the bicubic baseline
GAN_TOLERANCE_DB = 1.0  # PSNR of GAN weights below the L1 weights'


@dataclasses.dataclass(frozen=True)
class ReleaseOptions:
  """What `python -m mdcsrn_tf.release` ships.

  Attributes:
    weights: the generator to ship: a training workdir (its export/generator) or an
      exported PATH(.weights.h5) with its card.
    kind: which shipped weights these become: l1 or gan.
    dataset: the data set manifest whose one test subject scores the weights (default: the
      one their model card names); its test subject must be one they never trained or
      validated on. The card records which manifest was used.
    check_crop: edge of the central crop whose metrics the test suite re-measures.
    batch: tiles per forward pass.
  """
  weights: str
  kind: str = "l1"
  dataset: str | None = None
  check_crop: int = 64
  batch: int = 1

  def __post_init__(self):
    if self.kind not in weights.SHIPPED:
      raise InputError(f"--kind must be one of {', '.join(weights.SHIPPED)}, got {self.kind!r}")


def held_out_metrics(model, hr, acquisition, batch=1, mask=None):
  """{method: metrics} (every figure of the metric registry) of the model and the
  baselines on one normalised HR volume acquired as `acquisition` (the model card's),
  inside `mask` too when given."""
  return scoring.evaluate_volume(
      hr, {"linear": None, "cubic": None, "zero_filled": None, "model": model},
      acquisition=acquisition, tile=paper.TILE, margin=paper.MARGIN, batch=batch, mask=mask)


def quality_shortfalls(whole: dict, l1=None) -> list:
  """How held-out whole-volume metrics ({method: metrics}) miss the bar, one phrase each,
  naming the figure it is about: the whole volume's, or the one inside the mask when the
  metrics have it; `l1` is the shipped L1 weights' metrics when these are GAN weights."""
  model, cubic = whole["model"], whole["cubic"]
  shortfalls = []
  for figure, (ssim, psnr) in (("whole-volume", ("ssim", "psnr")),
                               ("in-mask", (metrics.BY_NAME["ssim"].masked_name,
                                            metrics.BY_NAME["psnr"].masked_name))):
    if psnr not in model:  # a test subject without a mask
      continue
    if model[psnr] < cubic[psnr] + REQUIRED_GAIN_DB:
      shortfalls.append(f"held-out {figure} PSNR {model[psnr]:.2f} dB, less than "
                        f"{REQUIRED_GAIN_DB} dB above bicubic {cubic[psnr]:.2f} dB")
    if model[ssim] <= cubic[ssim]:
      shortfalls.append(f"held-out {figure} SSIM {model[ssim]:.4f}, not above bicubic "
                        f"{cubic[ssim]:.4f}")
    if l1 is not None and psnr in l1 and model[psnr] < l1[psnr] - GAN_TOLERANCE_DB:
      shortfalls.append(f"held-out {figure} PSNR {model[psnr]:.2f} dB, more than "
                        f"{GAN_TOLERANCE_DB} dB below the L1 weights' {l1[psnr]:.2f} dB")
  return shortfalls


def _source(path) -> str:
  """The exported generator a workdir or a PATH names."""
  exported = weights.exported_generator(path)
  return exported if os.path.isfile(exported + weights.WEIGHTS_SUFFIX) else weights.base_path(path)


def release(options: ReleaseOptions) -> str:
  """Scores and ships the generator; returns the shipped base path."""
  source = _source(options.weights)
  model, card = weights.load_generator(source)
  dataset = options.dataset or card.dataset
  if not dataset:
    raise InputError(f"{source}: the model card names no data set; give --dataset")
  entries = manifest.split_entries(dataset, "test")
  if len(entries) != 1:
    raise InputError(f"{dataset}: expected one held-out test subject, found {len(entries)}")
  (entry,) = entries
  hr, _, _, _, mask = subjects.read_subject(entry["path"], mask_path=entry.get("mask"))
  whole = held_out_metrics(model, hr, card.acquisition, options.batch, mask)
  crop, starts = subjects.central_crop(hr, options.check_crop)
  crop_mask = None if mask is None else subjects.central_crop(mask, options.check_crop)[0]
  held_out = {"volume": entry["name"], "dataset": dataset, "mask": entry.get("mask", ""),
              "normalisation": "divided by the whole volume's maximum",
              "tile": paper.TILE, "margin": paper.MARGIN, "whole_volume": whole,
              "check_crop": {"start": starts, "edge": options.check_crop,
                             "metrics": held_out_metrics(model, crop, card.acquisition,
                                                         options.batch, crop_mask)}}
  on_gpu = bool(card.machine.get("gpus"))
  note = "" if on_gpu else (
      f"trained on CPU only: {card.training.get('patch_size', '?')}^3 patches, batch "
      f"{card.training.get('batch_size', '?')}, {card.steps} steps, where the paper trains 64^3 "
      "patches, batch 2, for 500k (L1) and 550k (GAN) steps on a GPU; train with the full "
      "flagfiles on a GPU for real use (docs/reproducing.md)")
  shipped_l1 = weights.shipped().get("l1")
  l1 = None
  if options.kind != "l1" and shipped_l1:
    l1 = weights.read_card(shipped_l1).held_out["whole_volume"]["model"]
  shortfalls = quality_shortfalls(whole, l1)
  warning = (f"preliminary {card.model} weights ({card.steps} steps, "
             f"{'GPU' if on_gpu else 'CPU only'}): {'; '.join(shortfalls)}; see the model card "
             "and docs/reproducing.md") if shortfalls else ""
  card = dataclasses.replace(card, held_out=held_out, shipped_as=options.kind, note=note,
                             warning=warning)
  return weights.save_generator(model, os.path.join(weights.SHIPPED_DIR,
                                                    weights.SHIPPED[options.kind]), card)
