"""The BIDS App: `mdcsrn-bids BIDS_DIR OUTPUT_DIR participant` super-resolves the T1w images
of the participants asked with the library of `mdcsrn-sr` (infer/predict.py) and writes a
BIDS derivatives dataset (bids/derivatives.py) with a QC report per participant
(infer/report.py).

Everything is checked before the model loads: the dataset and the labels, the output
folder, every input image and its grid change. Participants already done (all their
outputs present) are skipped, so a rerun after an interruption resumes, and parallel jobs
over different participants (a scheduler's job array) share one output folder.
"""
import dataclasses
import os
import sys

from mdcsrn_tf import cli, destinations
from mdcsrn_tf.bids import derivatives, layout
from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.infer import consistency, engines, predict, provenance, report, trust, weights_choice

ANALYSIS_LEVELS = ("participant",)


# mdcsrn-sr's settings that the app takes as they are: declared and documented once, in
# predict.PredictOptions
SHARED_SETTINGS = ("weights", "gan", "model", "tile", "margin", "batch", "memory_limit",
                   "jit_compile", "scale", "target_voxel", "tta", "strict", "engine", "precision")
OWN_SETTINGS = """
    participant_label: the participants to process (01 or sub-01; several separated by
      spaces or commas); default: all.
    session_label: the sessions to process (a or ses-a); default: all.
    report: write OUTPUT_DIR/sub-<label>.html, each participant's QC report."""


def _predict_options(self) -> predict.PredictOptions:
  """The settings mdcsrn-sr shares, checked as mdcsrn-sr checks them."""
  return predict.PredictOptions(**{name: getattr(self, name) for name in SHARED_SETTINGS})


def _make_options_class():
  shared_docs = cli.field_docs(predict.PredictOptions)
  fields = [("participant_label", tuple[str, ...] | None, None),
            ("session_label", tuple[str, ...] | None, None), ("report", bool, True)]
  fields += [(field.name, field.type, field.default) for field in
             dataclasses.fields(predict.PredictOptions) if field.name in SHARED_SETTINGS]
  methods = {"predict_options": _predict_options,
             "__post_init__": lambda self: self.predict_options()}
  options_class = dataclasses.make_dataclass("BidsOptions", fields, frozen=True,
                                             namespace=methods)
  options_class.__module__ = __name__
  options_class.__doc__ = ("How `mdcsrn-bids` super-resolves a BIDS dataset.\n\n  Attributes:"
                           + OWN_SETTINGS + "".join(f"\n    {name}: {shared_docs[name]}"
                                                    for name in SHARED_SETTINGS))
  return options_class


BidsOptions = _make_options_class()


def plan(options: BidsOptions, arguments):
  """(dataset folder, output folder, {participant: [Image]} to do, {participant: [Image]}
  done already, {input path: what its sidecar records of the training domain}), every
  input checked (against the weights' training domain too: infer/trust.py)."""
  if len(arguments) != 3:
    raise InputError("give BIDS_DIR OUTPUT_DIR participant")
  bids_dir, output_dir, level = arguments
  destinations.check_output_folder(output_dir, "OUTPUT_DIR")
  if level not in ANALYSIS_LEVELS:
    raise InputError(f"analysis level {level!r}: this app has only "
                     f"{', '.join(ANALYSIS_LEVELS)}")
  images = layout.find_t1w(bids_dir, options.participant_label, options.session_label)
  root = layout.check_dataset(bids_dir)
  weights_path = weights_choice.weights_to_use(options.weights, options.gan)
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel

  weights_file = weights.base_path(weights_path) + weights.WEIGHTS_SUFFIX
  if not os.path.isfile(weights_file):
    raise InputError(f"{weights_file}: no such weights file")
  checksum = weights.file_sha256(weights_file)
  output_dir = derivatives.check_output_dir(output_dir, root, checksum,
                                            provenance.output_settings(options))
  derivatives.check_destinations(output_dir, images, options.report, options.tta)
  done = {p: found for p, found in images.items()
          if derivatives.is_done(output_dir, p, found, options.report, options.tta)}
  todo = {p: found for p, found in images.items() if p not in done}
  acquisition, keep_band = weights_choice.trained_settings(weights_path, options.model)
  trained, found = trust.screen(
      [image.path for images in todo.values() for image in images],
      lambda path: predict.check_input(path, options.scale, options.target_voxel, acquisition,
                                       weights_path, options.tta, keep_band),
      weights_path, options.model, acquisition)
  trust.announce(found, options.strict, weights_path)  # every other check has passed
  return root, output_dir, todo, done, trust.recorded(found, trained)


def run_app(options: BidsOptions, arguments, log=print) -> list:
  """The command: the derivatives written for every participant not done yet; returns the
  participants processed."""
  root, output_dir, todo, done, screened = plan(options, arguments)
  for participant in done:
    log(f"sub-{participant}: done already, skipped", file=sys.stderr)
  if not todo:
    return []
  settings = options.predict_options()
  weights_path = weights_choice.weights_to_use(settings.weights, settings.gan)
  model, card = weights_choice.load_model(weights_path, settings.model)
  engine = engines.prepare(settings.engine, model, card.weights_sha256, settings.precision,
                           settings.jit_compile)
  record = provenance.weights_record(weights_path)
  command = provenance.command_line()
  os.makedirs(output_dir, exist_ok=True)
  derivatives.write_description(output_dir, record, provenance.output_settings(settings))
  # again: a job started beside this one with other weights or flags may have made it first
  derivatives.check_output_dir(output_dir, root, record["sha256"],
                               provenance.output_settings(settings))
  tile = cli.int_or_word(settings, "tile", "auto")
  for participant, images in todo.items():
    for image in images:
      output = derivatives.output_path(output_dir, image)
      if derivatives.image_done(output_dir, image, settings.tta):  # a rerun, interrupted
        continue
      os.makedirs(os.path.dirname(output), exist_ok=True)
      predict.super_resolve_file(
          image.path, output, model, tile, settings.margin, settings.batch, settings.scale,
          settings.target_voxel, progress=sys.stderr.isatty(),
          jit_compile=settings.jit_compile, acquisition=card.acquisition,
          weights_name=weights_path, memory_limit=settings.memory_limit,
          passes=settings.tta, uncertainty_path=derivatives.output_path(
              output_dir, image, derivatives.UNCERTAINTY) if settings.tta > 1 else None,
          engine=engine,
          keep_band=consistency.band_kept_by(card))
      derivatives.write_sidecars(output_dir, image, root, record, command,
                                 screened[image.path], provenance.output_settings(settings),
                                 settings.tta)
      log(one_line(output))
    if options.report:  # every session done so far, this run's or an earlier one's
      every = layout.find_t1w(root, (participant,), warn=None)[participant]  # said above
      done_now = [image for image in every if derivatives.image_done(output_dir, image,
                                                                      settings.tta)]
      pairs = [(image.path, derivatives.output_path(output_dir, image)) for image in done_now]
      maps = {output: derivatives.output_path(output_dir, image, derivatives.UNCERTAINTY)
              for image, (_, output) in zip(done_now, pairs)}
      report.write_report(derivatives.report_path(output_dir, participant), pairs,
                          weights_path, f"mdcsrn-bids report: sub-{participant}", command,
                          findings={image.path: derivatives.recorded_domain(output_dir, image)
                                    for image in done_now}, uncertainty=maps)
  return list(todo)
