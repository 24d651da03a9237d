"""An evaluation run, the library of `python -m mdcsrn_tf.evaluate`: the paper's Tables 1-2
on a manifest split or on NIfTI files (docs/evaluation.md).

Subjects are read one at a time; the baselines and every named network are scored on each,
every network on the input its model card's acquisition makes (the baselines on the same
acquisition, each with its own placement), on the whole volume and, for a subject with a mask (a manifest entry's "mask", or --masks beside --volumes), inside the mask too.
Each subject's rows are written to OUT_DIR/per_subject.csv as soon as they are scored, and a
rerun with the same options skips the subjects already there, unless a network's weights
are not the same file any more (their SHA-256 is part of the record): its subjects are
scored again. At the end OUT_DIR/summary.json holds the settings and the mean and std per
method. A subject scored here that is one of the training or validation volumes a network's
model card records (by name, resolved path or content: a copy under another name or at
another path too) is named in a warning: its figures are not held-out figures; so is one
unlike the inputs the network's card says it trained on (infer/trust.py). A network
whose output has NaN or Inf voxels stops the run with one line naming the subject and the
weights: no figure is made of it.
"""
import dataclasses
import os
import sys

from mdcsrn_tf import acquisition as acquisitions
from mdcsrn_tf import cli, destinations, paper
from mdcsrn_tf.data import manifest, naming, nifti
from mdcsrn_tf.errors import InputError, NonFiniteOutput, one_line
from mdcsrn_tf.evaluate import results, scoring, subjects
from mdcsrn_tf.infer import consistency, engines


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
    weights: NAME=PATH of each generator to score (PATH.weights.h5 with its PATH.json card,
      or the name of shipped weights: b4u4=b4u4_l1); NAME, its rows' method, must differ
      from the other entries' and from the baselines'.
    factors: per-axis factors of the acquisition the baselines are scored on without
      --weights (default 2,2,1, the paper's); networks are scored on their card's, and a
      flag that contradicts it is refused.
    slice_profile: none (k-space truncation), boxcar or gaussian, as --factors.
    factor: the older spelling of --factors: this factor along the two --plane_axes.
    plane_axes: with --factor, the two axes it applies to (default 0,1).
    tile: inference tile edge (the paper's 64).
    margin: inference tile margin (the paper's 3).
    batch: tiles per forward pass.
    engine: what runs each network, in float32: auto (the fastest measured for this kind of
      CPU), tensorflow (the reference), openvino or onnxruntime, as mdcsrn-sr's --engine
      (docs/performance.md#engines).
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
  factors: tuple[int, ...] | None = None
  slice_profile: str | None = None
  factor: int | None = None
  plane_axes: tuple[int, ...] | None = None
  tile: int = paper.TILE
  margin: int = paper.MARGIN
  batch: int = 1
  engine: str = "auto"
  out_dir: str = "runs/eval"
  unverified_weights: bool = False

  def __post_init__(self):
    cli.require_at_least(self, tile=1, margin=0, batch=1)
    engines.check_engine(self.engine)
    destinations.check_output_folder(self.out_dir, "--out_dir")  # before hours of scoring
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
    self.flag_acquisition  # noqa: B018  (validates it)

  @property
  def flag_acquisition(self):
    """The acquisition the flags describe (the paper's when none is given)."""
    return acquisitions.from_flags(self.factors, self.slice_profile, factor=self.factor,
                                   plane_axes=self.plane_axes)

  def flags_given(self) -> bool:
    return any(value is not None for value in (self.factors, self.slice_profile, self.factor,
                                                self.plane_axes))

  def weight_paths(self) -> dict:
    """{name: path} from the NAME=PATH entries (shipped weights by name resolved)."""
    from mdcsrn_tf import weights

    parsed = {}
    for entry in self.weights:
      name, separator, path = entry.partition("=")
      if not separator or not name or not path:
        raise InputError(f"--weights expects NAME=PATH, got {entry!r}")
      if name in parsed or name in scoring.BASELINES:  # one row per name: never replaced
        raise InputError(f"--weights {name}: the name of "
                         f"{'another --weights entry' if name in parsed else 'a baseline'}; "
                         "give each network a name of its own")
      parsed[name] = weights.resolve(path)
    return parsed


def acquisitions_of(options: EvaluateOptions, cards: dict) -> tuple:
  """(the baselines' acquisition, {model name: its card's}); InputError when the cards'
  factors or slice profiles differ (the baselines are scored on one), or contradict the
  flags, since scoring a network on another acquisition than it learnt says nothing
  about it."""
  of_model = {name: card.acquisition for name, card in cards.items()}
  if not of_model:
    return options.flag_acquisition, of_model
  name, first = next(iter(of_model.items()))
  for other, acquisition in of_model.items():
    if (acquisition.factors, acquisition.slice_profile) != (first.factors, first.slice_profile):
      raise InputError(f"--weights {name} and {other} were trained for different acquisitions "
                       f"({first.describe()}; {acquisition.describe()}): score them in "
                       "separate evaluations")
  flagged = options.flag_acquisition
  if options.flags_given() and (flagged.factors, flagged.slice_profile) != (
      first.factors, first.slice_profile):
    raise InputError(f"--weights {name}: its model card says it was trained for "
                     f"{first.describe()}, not the {flagged.describe().split(' (')[0]} the "
                     "flags give; leave the flags out to use the card's")
  return dataclasses.replace(first, placement=acquisitions.PAPER.placement), of_model


def seen_in_training(scored, weight_paths) -> list:
  """Warnings, one per (network, subject): a subjects.Subject scored here that is one of the
  training or validation volumes the network's model card records, by name, resolved path
  or content (weights/seen.py)."""
  from mdcsrn_tf import weights
  from mdcsrn_tf.weights import seen

  return [f"warning: {subject.name} is in the {found.split} split of {method}'s model card "
          f"({weights.base_path(path)}{weights.CARD_SUFFIX}; {found.detail(subject.name)}): "
          "its figures are not held-out figures"
          for method, path in weight_paths.items()
          for subject, found in seen.among(weights.read_card(path), scored)]


def outside_domain(scored, cards) -> list:
  """Warnings, one per (network, subject, finding): a subjects.Subject unlike the inputs the
  network's model card says it trained on (infer/trust.py). Its input is the subject
  degraded as training degraded its volumes, so the removed band is not compared."""
  from mdcsrn_tf.infer import trust

  checked = {name: card for name, card in cards.items() if card.training_domain.get("volumes")}
  lines = []
  for subject in scored if checked else ():
    volume, image = nifti.load_volume(subject.path)
    for method, card in checked.items():
      lines += [f"warning: {method}: {found}" for found in trust.findings(
          subject.path, volume, image, (1, 1, 1), card.training_domain, card.acquisition,
          removed_band=False)]
  return lines


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

  weight_paths = options.weight_paths()
  cards = {name: weights.read_card(path) for name, path in weight_paths.items()}
  baseline, of_model = acquisitions_of(options, cards)
  factor = max(max(a.factors) for a in (baseline, *of_model.values()))
  for path in options.volumes:  # every file checked before the slow part (masks: below)
    subjects.check_volume(path, factor)
  if options.manifest:
    manifest.check_sizes(manifest.split_entries(options.manifest, options.split), factor)
  scored = (subjects.manifest_subjects(options.manifest, options.split) if options.manifest
            else subjects.file_subjects(options.volumes, masks=options.masks))
  for warning in seen_in_training(scored, weight_paths) + outside_domain(scored, cards):
    print(one_line(warning), file=sys.stderr)
  settings = {**dataclasses.asdict(options), "weights": sorted(weight_paths),
              "acquisition": {"baselines": baseline.to_dict(),
                              **{name: a.to_dict() for name, a in of_model.items()}}}
  for how in ("batch", "engine", "unverified_weights"):  # how, not what: a rerun may change them
    del settings[how]
  methods = dict.fromkeys(options.baselines)
  methods.update({name: weights.load_generator(
      path, allow_unverified=options.unverified_weights)[0] for name, path in weight_paths.items()})
  runners = {name: engines.prepare(options.engine, methods[name], card.weights_sha256)
             for name, card in cards.items()}
  record = results.ResultsRecord(options.out_dir, settings,
                                 method_identities(options.baselines, weight_paths),
                                 subjects={s.name: s.identity for s in scored},
                                 log=lambda line: print(one_line(line)))
  done = sum(record.scored(s.name, methods, s.masked) for s in scored)
  if done:
    print(one_line(f"{options.out_dir}: {done} of {len(scored)} subjects already scored, kept"))
  note = naming.naming_note(options.volumes, [s.name for s in scored]) if options.volumes else None
  if note:
    print(one_line(f"{note}; they name the rows of {record.csv_path}"), file=sys.stderr)
  try:
    outcome = scoring.evaluate_methods(
        scored, methods, record=record, progress=sys.stderr.isatty(),
        acquisition=of_model or baseline, tile=options.tile, margin=options.margin,
        batch=options.batch, keep_band=consistency.bands_kept_by(cards), engines=runners)
  except NonFiniteOutput as error:
    kept = len(record.per_subject)
    raise InputError(
        f"{error.subject}: {error} with weights {weight_paths[error.method]} (corrupted or "
        f"diverged weights); not scored"
        + (f", the {kept} subjects scored before it stay in {record.csv_path}" if kept else "")
    ) from None
  results.write_results(outcome, record.csv_path,
                        os.path.join(options.out_dir, results.SUMMARY_NAME), settings)
  from mdcsrn_tf.models import analysis  # Keras: once every input has been checked

  parameters = {name: analysis.trainable_parameters(model)
                for name, model in methods.items() if model is not None}
  return outcome, scoring.format_table(outcome["summary"], parameters)
