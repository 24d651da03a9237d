"""An evaluation run, the library of `python -m mdcsrn_tf.evaluate`: the paper's Tables 1-2
on a manifest split or on NIfTI files (docs/evaluation.md).

Subjects are read one at a time; the baselines and every named network are scored on each,
every network on the input its model card names, on the whole volume and, for a subject
with a mask (a manifest entry's "mask", or --masks beside --volumes), inside the mask too.
Each subject's rows are written to OUT_DIR/per_subject.csv as soon as they are scored, and a
rerun with the same options skips the subjects already there; at the end
OUT_DIR/summary.json holds the settings and the mean and std per method.
"""
import dataclasses
import os
import sys

from mdcsrn_tf import cli
from mdcsrn_tf.data import naming, nifti
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

  def __post_init__(self):
    cli.require_at_least(self, tile=1, margin=0, batch=1)
    if bool(self.manifest) == bool(self.volumes):
      raise InputError("give either --manifest or --volumes")
    if self.masks and len(self.masks) != len(self.volumes):
      raise InputError(f"--masks needs one mask per --volumes file, got {len(self.masks)} "
                       f"for {len(self.volumes)}")
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


def evaluate(options: EvaluateOptions) -> tuple:
  """Runs the evaluation into options.out_dir; returns (results, the table as text)."""
  from mdcsrn_tf import weights
  from mdcsrn_tf.models import analysis

  weight_paths = options.weight_paths()
  for path in options.volumes:  # every file checked before the slow part (masks: below)
    nifti.load_volume(path)
  scored = (subjects.manifest_subjects(options.manifest, options.split) if options.manifest
            else subjects.file_subjects(options.volumes, masks=options.masks))
  inputs = lr_modes(weight_paths, options.lr_mode)
  settings = {**dataclasses.asdict(options), "weights": weight_paths, "lr_mode": inputs}
  del settings["batch"]  # how fast, not what: a rerun may change it
  record = results.ResultsRecord(options.out_dir, settings)
  methods = dict.fromkeys(options.baselines)
  methods.update({name: weights.load_generator(path) for name, path in weight_paths.items()})
  done = sum(record.scored(name, methods, masked) for name, _, masked in scored)
  if done:
    print(f"{options.out_dir}: {done} of {len(scored)} subjects already scored, kept")
  note = naming.naming_note(options.volumes, [s.name for s in scored]) if options.volumes else None
  if note:
    print(f"{note}; they name the rows of {record.csv_path}", file=sys.stderr)
  outcome = scoring.evaluate_methods(
      scored, methods, record=record, progress=sys.stderr.isatty(), factor=options.factor,
      plane_axes=options.plane_axes, lr_mode=inputs, tile=options.tile, margin=options.margin,
      batch=options.batch)
  results.write_results(outcome, record.csv_path,
                        os.path.join(options.out_dir, results.SUMMARY_NAME), settings)
  parameters = {name: analysis.trainable_parameters(model)
                for name, model in methods.items() if model is not None}
  return outcome, scoring.format_table(outcome["summary"], parameters)
