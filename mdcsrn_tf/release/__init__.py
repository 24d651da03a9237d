"""Ships a trained generator, its held-out metrics in its model card: the library of
`python -m mdcsrn_tf.release` (docs/reproducing.md).

The generator (a training workdir's export/generator, or any exported PATH, the shipped
weights themselves included) is scored on its data set's test split (every test volume, or
the one `--subject` names; Colin27 for the bundled data set) against the baselines, on the
whole volume and, for the first of them, on a fixed central crop (the crop is what the test
suite re-measures), each over all its voxels and, when the test entry has a mask (Colin27:
its brain), inside the mask. A test volume that is one of the weights' training or
validation volumes the card records, by name, by resolved path or by content (a copy
under another name or at another path: weights/seen.py), is refused: its figures would not
be held out. So are weights below the project's bar, on the mean whole-volume figures and
the in-mask ones alike: PSNR
REQUIRED_GAIN_DB above the bicubic baseline and SSIM above it; GAN weights within
GAN_TOLERANCE_DB PSNR of the shipped L1 weights of the same network; unless `below_bar`
asks to ship them with the misses as the card's warning. Weights whose output has NaN or
Inf voxels are refused whatever `below_bar` says: no figure is made of them. The card
written names no path of the machine (`portable`); it keeps the training domain training
recorded, and a card from before that gets it from its training volumes
(data/domain.of_training) when its data set manifest can be read here.

The weights and their card go to the folder `--out` names, as MODEL_KIND (`b1u8_l1`,
`b4u4_gan`: the names of weights/, one per row of the paper's tables); the package's shipped
weights are replaced only with `--replace_shipped`, after a copy of the current ones
is kept in mdcsrn_tf/weights/backups/ (the package data does not include that folder).
"""
import dataclasses
import itertools
import os
import shutil
import time

from mdcsrn_tf import cli, destinations, files, metrics, paper, weights
from mdcsrn_tf.errors import InputError, NonFiniteOutput
from mdcsrn_tf.data import domain, manifest, nifti
from mdcsrn_tf.evaluate import scoring, subjects
from mdcsrn_tf.infer import consistency
from mdcsrn_tf.weights import seen

# PSNR above the bicubic baseline. Over the whole volume it is only "above": the heads'
# background noise, which no network restores, dominates that figure, and on the held-out
# heads the zero-filled input itself is less than 1 dB above bicubic (docs/reproducing.md).
REQUIRED_GAIN_DB = {"whole-volume": 0.0, "in-mask": 1.0}
GAN_TOLERANCE_DB = 1.0  # PSNR of GAN weights below the L1 weights'


@dataclasses.dataclass(frozen=True)
class ReleaseOptions:
  """What `python -m mdcsrn_tf.release` ships, and where.

  Attributes:
    weights: the generator to ship: a training workdir (its export/generator), an
      exported PATH(.weights.h5) with its card, or the name of shipped weights (b4u4_l1).
    kind: the training that made them, l1 (pre-training) or gan: the weights are written
      as MODEL_KIND, MODEL the network their card names.
    weight_set: the shipped set they join: tables (a row of the paper's tables, one budget
      for all, named MODEL_KIND) or heads (the defaults trained on whole heads, named
      heads_MODEL_KIND, which commands run when no weights are named).
    dataset: the data set manifest whose test split scores the weights (default: the one
      their model card names); no test volume may be one they trained or validated on. The
      card records which manifest was used.
    subject: the test volume (its name or subject id) to score; default: every test volume.
    out: the folder to write MODEL_KIND.weights.h5 and its card into.
    replace_shipped: write over the package's shipped MODEL_KIND weights instead of --out,
      keeping a copy of them in the package's weights/backups/ folder.
    check_crop: edge of the central crop whose metrics the test suite re-measures (48: one
      window of every network, at 42% of a 64^3 crop's cost, for seven networks per run).
    batch: tiles per forward pass.
    unverified_weights: load weights whose model card records no SHA-256 (cards from
      before checksums); otherwise they are refused.
    below_bar: ship weights that miss the bar anyway, with the misses as the card's warning
      (which mdcsrn-sr prints whenever it uses them): a row of the paper's tables is shipped
      whatever it scores, so that the tables show it.
    overwrite: replace MODEL_KIND weights and card already in --out (refused without).
  """
  weights: str
  kind: str = "l1"
  weight_set: str = "tables"
  dataset: str | None = None
  subject: str | None = None
  out: str | None = None
  replace_shipped: bool = False
  check_crop: int = 48
  batch: int = 1
  unverified_weights: bool = False
  below_bar: bool = False
  overwrite: bool = False

  def __post_init__(self):
    if self.kind not in weights.SHIPPED:
      raise InputError(f"--kind must be one of {', '.join(weights.SHIPPED)}, got {self.kind!r}")
    if self.weight_set not in weights.SETS:
      raise InputError(f"--weight_set must be one of {', '.join(weights.SETS)}, got "
                       f"{self.weight_set!r}")
    if bool(self.out) == self.replace_shipped:
      raise InputError("give --out DIR (a folder for the released weights) or "
                       "--replace_shipped (over the package's own), one of them")
    # the crop is scored like a volume: at least the metrics' smallest edge
    cli.require_at_least(self, batch=1, check_crop=nifti.MIN_EDGE)
    destinations.check_output_folder(self.out, "--out")

  def destination(self, model) -> str:
    """The base path `model`'s weights are written to; InputError when --out is not a
    folder or, without --overwrite, already holds weights of that name."""
    name = weights.shipped_name(self.weight_set, model, self.kind)
    if self.replace_shipped:
      return os.path.join(weights.SHIPPED_DIR, name)
    destinations.check_output_folder(self.out, "--out")
    base = os.path.join(self.out, name)
    destinations.refuse_existing([base + suffix for suffix in (weights.WEIGHTS_SUFFIX,
                                                               weights.CARD_SUFFIX)],
                                 self.overwrite, instead="choose another --out")
    return base


def held_out_metrics(model, hr, card, batch=1, mask=None):
  """{method: metrics} (every figure of the metric registry) of the model and the
  baselines on one normalised HR volume acquired as the model `card` says, the model's
  output as every command makes it (consistency.bands_kept_by), inside `mask` too when
  given."""
  return scoring.evaluate_volume(
      hr, {"linear": None, "cubic": None, "zero_filled": None, "model": model},
      acquisition=card.acquisition, tile=paper.TILE, margin=paper.MARGIN, batch=batch,
      mask=mask, keep_band=consistency.bands_kept_by({"model": card}))


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
    gain = REQUIRED_GAIN_DB[figure]
    if model[psnr] <= cubic[psnr] + gain:
      above = f"not more than {gain} dB above" if gain else "not above"
      shortfalls.append(f"held-out {figure} PSNR {model[psnr]:.2f} dB, {above} bicubic "
                        f"{cubic[psnr]:.2f} dB")
    if model[ssim] <= cubic[ssim]:
      shortfalls.append(f"held-out {figure} SSIM {model[ssim]:.4f}, not above bicubic "
                        f"{cubic[ssim]:.4f}")
    if l1 is not None and psnr in l1 and model[psnr] < l1[psnr] - GAN_TOLERANCE_DB:
      shortfalls.append(f"held-out {figure} PSNR {model[psnr]:.2f} dB, more than "
                        f"{GAN_TOLERANCE_DB} dB below the L1 weights' {l1[psnr]:.2f} dB")
  return shortfalls


def portable(card, root=None):
  """The card with every absolute path in it made relative to `root` (the working
  directory: the repository the release runs in) when under it, and cut to its file name
  otherwise, so that a shipped card names no path of the machine it was made on (a sample
  a package installed, such as a /usr/share template, keeps its name: a user's machine
  may not have that package)."""
  root = os.path.abspath(root or os.getcwd())

  def portable_value(value):
    if isinstance(value, dict):
      return {key: portable_value(item) for key, item in value.items()}
    if isinstance(value, list):
      return [portable_value(item) for item in value]
    if not isinstance(value, str) or not os.path.isabs(value):
      return value
    inside = os.path.commonpath([root, os.path.abspath(value)]) == root
    return os.path.relpath(value, root) if inside else os.path.basename(value)

  fields = {field.name: portable_value(getattr(card, field.name))
            for field in dataclasses.fields(card) if field.name != "acquisition"}
  return dataclasses.replace(card, **fields)


def _source(path) -> str:
  """The exported generator a workdir, a PATH or the name of shipped weights names."""
  exported = weights.exported_generator(path)
  if os.path.isfile(exported + weights.WEIGHTS_SUFFIX):
    return exported
  return weights.base_path(weights.resolve(path))


def test_entries(dataset, subject, card, source) -> list:
  """The test volumes to score: all, or the one `subject` names; InputError for an unknown
  subject, or for a volume that is one of the card's training or validation volumes by
  name, resolved path or content (weights/seen.py)."""
  entries = manifest.split_entries(dataset, "test")
  if subject:
    chosen = [e for e in entries if subject in (e["name"], e["subject"])]
    if not chosen:
      names = ", ".join(e["name"] for e in entries[:5]) + (", ..." if len(entries) > 5 else "")
      raise InputError(f"{manifest.manifest_path(dataset)}: no test volume {subject!r} "
                       f"(test volumes: {names})")
    entries = chosen
  volumes = seen.TrainingVolumes(card)
  for entry in entries:
    found = volumes.find(entry["path"], (entry["name"], entry["subject"]))
    if found:
      raise InputError(f"{entry['path']}: test volume {entry['name']} is in the {found.split} "
                       f"split of {source}{weights.CARD_SUFFIX} ({found.detail(entry['name'])}); "
                       "its figures would not be held out: score on a data set whose test "
                       "subjects these weights never saw")
  return entries


def _means(per_volume) -> dict:
  """{method: {metric: mean over the volumes}} of {volume: {method: metrics}}."""
  return {method: {metric: figure["mean"] for metric, figure in figures.items()}
          for method, figures in scoring.summarise(per_volume).items()}


def keep_backup(base):
  """Copies the shipped BASE.weights.h5 and BASE.json into weights/backups/ under a
  time-stamped name that no earlier backup holds (a suffix -2, -3... within one second);
  returns the backup's base, None when there was nothing to keep."""
  if not os.path.isfile(base + weights.WEIGHTS_SUFFIX):
    return None
  folder = os.path.join(weights.SHIPPED_DIR, "backups")
  os.makedirs(folder, exist_ok=True)
  stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
  for attempt in itertools.count(1):
    backup = os.path.join(folder, f"{os.path.basename(base)}-{stamp}"
                                  + (f"-{attempt}" if attempt > 1 else ""))
    if os.path.lexists(backup + weights.CARD_SUFFIX):  # a stray card keeps its name too
      continue
    try:  # the weights claim the name: created only where no file is
      files.write_atomically(backup + weights.WEIGHTS_SUFFIX,
                             lambda path: shutil.copy2(base + weights.WEIGHTS_SUFFIX, path),
                             exclusive=True)
      break
    except FileExistsError:
      continue
  if os.path.isfile(base + weights.CARD_SUFFIX):
    files.write_atomically(backup + weights.CARD_SUFFIX,
                           lambda path: shutil.copy2(base + weights.CARD_SUFFIX, path),
                           exclusive=True)
  return backup


def release(options: ReleaseOptions, log=print) -> str:
  """Scores the generator and, if it clears the bar, writes it with its card; returns the
  written base path. InputError for weights below the bar (nothing is written)."""
  source = _source(options.weights)
  card = weights.read_card(source)  # the checks it allows come before TensorFlow loads
  destination = options.destination(card.model)
  dataset = options.dataset or card.dataset
  if not dataset:
    raise InputError(f"{source}: the model card names no data set; give --dataset")
  entries = test_entries(dataset, options.subject, card, source)
  model, card = weights.load_generator(source, allow_unverified=options.unverified_weights)
  per_volume, first = {}, None
  try:
    for entry in entries:
      scored_on = entry["path"]
      hr, _, _, _, mask = subjects.read_subject(entry["path"], mask_path=entry.get("mask"))
      per_volume[entry["name"]] = held_out_metrics(model, hr, card, options.batch,
                                                   mask)
      first = first or (hr, mask)
    hr, mask = first
    crop, starts = subjects.central_crop(hr, options.check_crop)
    crop_mask = None if mask is None else subjects.central_crop(mask, options.check_crop)[0]
    scored_on = f"the check crop of {entries[0]['path']}"
    check_metrics = held_out_metrics(model, crop, card, options.batch, crop_mask)
  except NonFiniteOutput as error:
    raise InputError(f"{source}: {error} on {scored_on} (corrupted or diverged weights); "
                     "nothing written") from None
  whole = _means(per_volume)
  held_out = {"volume": entries[0]["name"], "volumes": list(per_volume), "dataset": dataset,
              "mask": entries[0].get("mask", ""),
              "normalisation": "mapped onto [0, 1] by the volume's maximum (its range when it "
                               "has negative voxels)",
              "tile": paper.TILE, "margin": paper.MARGIN, "whole_volume": whole,
              "per_volume": per_volume,
              "check_crop": {"start": starts, "edge": options.check_crop,
                             "metrics": check_metrics}}
  on_gpu = bool(card.machine.get("gpus"))
  note = "" if on_gpu else (
      f"trained on CPU only: {card.training.get('patch_size', '?')}^3 patches, batch "
      f"{card.training.get('batch_size', '?')}, {card.steps} steps, where the paper trains 64^3 "
      "patches, batch 2, for 500k (L1) and 550k (GAN) steps on a GPU; train with the full "
      "flagfiles on a GPU for real use (docs/reproducing.md)")
  shipped_l1 = weights.shipped_network(card.model, options.weight_set)
  l1 = None
  if options.kind != "l1" and shipped_l1:
    l1 = weights.read_card(shipped_l1).held_out["whole_volume"]["model"]
  shortfalls = quality_shortfalls(whole, l1)
  if shortfalls and not options.below_bar:
    raise InputError(f"{source}: below the release bar on {len(per_volume)} test volume(s) of "
                     f"{dataset}: {'; '.join(shortfalls)}; nothing written (--below_bar "
                     "ships them with these misses as the card's warning)")
  warning = f"below the project's bar: {'; '.join(shortfalls)}" if shortfalls else ""
  if not card.training_domain:  # a card from before it: its training volumes', when here
    card = dataclasses.replace(card, training_domain=domain.of_training(
        card.dataset, card.subjects.get("train"), card.acquisition, log=log))
  card = portable(dataclasses.replace(card, held_out=held_out, shipped_as=options.kind,
                                      shipped_set=options.weight_set, note=note,
                                      warning=warning))
  if options.replace_shipped:
    backup = keep_backup(destination)
    if backup:
      log(f"kept the weights it replaces as {backup}{weights.WEIGHTS_SUFFIX}")
  else:
    os.makedirs(options.out, exist_ok=True)
  return weights.save_generator(model, destination, card)
