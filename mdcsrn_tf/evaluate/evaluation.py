"""An evaluation run, the library of `python -m mdcsrn_tf.evaluate`: the paper's Tables 1-2
on a manifest split or on NIfTI files (docs/evaluation.md).

Subjects are read one at a time; the baselines and every named network are scored on each,
every network on the input its model card names, on the whole volume and, for a subject
with a mask (a manifest entry's "mask", or --masks beside --volumes), inside the mask too.
Each subject's rows are written to OUT_DIR/per_subject.csv as soon as they are scored, and a
rerun with the same options skips the subjects already there, unless a network's weights
are not the same file any more (their SHA-256 is part of the record): its subjects are
scored again. At the end OUT_DIR/summary.json holds the settings and the mean and std per
method. A subject scored here that a network's model card lists among its training or
validation volumes is named in a warning: its figures are not held-out figures.
"""
import dataclasses
import os
import sys

from mdcsrn_tf import cli
from mdcsrn_tf.data import manifest, nifti
from mdcsrn_tf.data.degradation import LR_MODES, Degradation
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.evaluate import results, scoring, subjects


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
  """What `python -m mdcsrn_tf.evaluate` scores, and where the results go.

  Attributes:
    manifest: a data set's manifest.json (python -m mdcsrn_tf.data); or give --volumes.
    split: the manifest split to score (the paper's tables: test).
    volumes: HR NIfTI files to score instead of a manifest split.
    masks: with --volumes, one mask per volume, in the same order: a NIfTI on the volume's
      grid whose non-zero voxels are the mask; every figure is then also reported inside it
      (a manifest gives masks in its entries' "mask" field instead).
    baselines: baselines to score, of nearest, linear, cubic and zero_filled.
    weights: NAME=PATH of each generator to score (PATH.weights.h5 with its PATH.json card).
    lr_mode: the input of networks whose card does not name one (default linear); a card's
      lr_mode always wins, and a flag that contradicts it is refused.
    factor: k-space truncation factor along each plane axis.
    plane_axes: the two degraded axes.
    tile: inference tile edge (the paper's 64).
    margin: inference tile margin (the paper's 3).
    batch: tiles per forward pass.
    out_dir: where per_subject.csv, settings.json and summary.json go; a rerun with the
      same options skips the subjects already scored there.
    unverified_weights: load weights whose model card records no SHA-256 (cards from
      before checksums); otherwise they are refused.
  """
  manifest: str | None = None
  split: str = "test"
  volumes: tuple[str, ...] = ()
  masks: tuple[str, ...] = ()
  baselines: tuple[str, ...] = ("linear", "cubic", "zero_filled")
  weights: tuple[str, ...] = ()
  lr_mode: str | None = None
  factor: int = 2
  plane_axes: tuple[int, ...] = (0, 1)
  tile: int = 64
  margin: int = 3
  batch: int = 1
  out_dir: str = "runs/eval"
  unverified_weights: bool = False

  def __post_init__(self):
    cli.require_at_least(self, tile=1, margin=0, batch=1)
    if bool(self.manifest) == bool(self.volumes):
      raise InputError("give either --manifest or --volumes")
    if self.masks and len(self.masks) != len(self.volumes):
      raise InputError(f"--masks needs one mask per --volumes file, got {len(self.masks)} "
                       f"for {len(self.volumes)}")
    if not self.baselines and not self.weights:
      raise InputError("nothing to score: give --baselines (of "
                       f"{', '.join(scoring.BASELINES)}) or --weights NAME=PATH")
    unknown = set(self.baselines) - set(scoring.BASELINES)
    if unknown:
      raise InputError(f"unknown baselines {sorted(unknown)}; choose from "
                       f"{', '.join(scoring.BASELINES)}")
    if self.lr_mode is not None and self.lr_mode not in LR_MODES:
      raise InputError(f"--lr_mode must be one of {', '.join(LR_MODES)}, got {self.lr_mode!r}")
    Degradation("linear", self.factor, self.plane_axes)  # its checks

  def weight_paths(self) -> dict:
    """{name: path} from the NAME=PATH entries."""
    parsed = {}
    for entry in self.weights:
      name, separator, path = entry.partition("=")
      if not separator or not name or not path:
        raise InputError(f"--weights expects NAME=PATH, got {entry!r}")
      parsed[name] = path
    return parsed


def lr_modes(weight_paths, flag_value) -> dict:
  """{model name: the input its card names}; InputError when --lr_mode contradicts a card,
  since scoring a network on another input than it learnt says nothing about it."""
  from mdcsrn_tf import weights

  modes = {}
  for name, path in weight_paths.items():
    card = weights.read_card(path)
    if flag_value and card.lr_mode != flag_value:
      raise InputError(f"{path}: its model card says the network was trained on "
                       f"{card.lr_mode} input, not --lr_mode={flag_value}")
    modes[name] = card.lr_mode
  return modes


def seen_in_training(scored_names, weight_paths) -> list:
  """Warnings, one per (network, subject): a subject scored here that the network's model
  card lists in its training or validation split."""
  from mdcsrn_tf import weights

  warnings = []
  for method, path in weight_paths.items():
    card = weights.read_card(path)
    for split in ("train", "validation"):
      for name in sorted(set(scored_names) & set(card.subjects.get(split, ()))):
        warnings.append(f"warning: {name} is in the {split} split of {method}'s model card "
                        f"({weights.base_path(path)}{weights.CARD_SUFFIX}): its figures are "
                        "not held-out figures")
  return warnings


def method_identities(baselines, weight_paths) -> dict:
  """{method: what identifies it}: a network by its weights' SHA-256, never by their path."""
  from mdcsrn_tf import weights

  identities = dict.fromkeys(baselines, "baseline")
  for name, path in weight_paths.items():
    identities[name] = {"sha256": weights.file_sha256(weights.base_path(path)
                                                      + weights.WEIGHTS_SUFFIX)}
  return identities


def evaluate(options: EvaluateOptions) -> tuple:
  """Runs the evaluation into options.out_dir; returns (results, the table as text)."""
  from mdcsrn_tf import weights
  from mdcsrn_tf.models import analysis

  weight_paths = options.weight_paths()
  for path in options.volumes:  # every file checked before the slow part (masks: below)
    nifti.check_size(path, nifti.load_volume(path)[0].shape, options.factor)
  if options.manifest:
    manifest.check_sizes(manifest.split_entries(options.manifest, options.split), options.factor)
  scored = (subjects.manifest_subjects(options.manifest, options.split) if options.manifest
            else subjects.file_subjects(options.volumes, masks=options.masks))
  inputs = lr_modes(weight_paths, options.lr_mode)
  for warning in seen_in_training([name for name, _, _ in scored], weight_paths):
    print(warning, file=sys.stderr)
  settings = {**dataclasses.asdict(options), "weights": sorted(weight_paths), "lr_mode": inputs}
  for how in ("batch", "unverified_weights"):  # how, not what: a rerun may change them
    del settings[how]
  methods = dict.fromkeys(options.baselines)
  methods.update({name: weights.load_generator(path, allow_unverified=options.unverified_weights)
                  for name, path in weight_paths.items()})
  record = results.ResultsRecord(options.out_dir, settings,
                                 method_identities(options.baselines, weight_paths))
  done = sum(record.scored(name, methods, masked) for name, _, masked in scored)
  if done:
    print(f"{options.out_dir}: {done} of {len(scored)} subjects already scored, kept")
  outcome = scoring.evaluate_methods(
      scored, methods, record=record, factor=options.factor, plane_axes=options.plane_axes,
      lr_mode=inputs, tile=options.tile, margin=options.margin, batch=options.batch)
  results.write_results(outcome, record.csv_path, os.path.join(options.out_dir, "summary.json"),
                        settings)
  parameters = {name: analysis.trainable_parameters(model)
                for name, model in methods.items() if model is not None}
  return outcome, scoring.format_table(outcome["summary"], parameters)
