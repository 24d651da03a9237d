"""`python -m mdcsrn_tf.evaluate --flagfile=flags/eval.cfg`: the paper's Tables 1-2 on test subjects.

Subjects come from a dataset manifest (--manifest, --split) or from NIfTI files
(--volumes), read one at a time. Methods: the --baselines and every --weights NAME=PATH,
each network on the input its model card names. Each subject's rows are written to
OUT_DIR/per_subject.csv as soon as they are scored, and a rerun with the same flags skips the
subjects already there; at the end OUT_DIR/summary.json is written and the table printed
(evaluate_lib, docs/evaluation.md).
"""
import os

from absl import app, flags

from mdcsrn_tf import evaluate_lib
from mdcsrn_tf.data import nifti
from mdcsrn_tf.errors import InputError, report_input_errors
from mdcsrn_tf.models import analysis

FLAGS = flags.FLAGS
flags.DEFINE_string("manifest", None, "dataset manifest.json (mdcsrn_tf.data.prepare)")
flags.DEFINE_string("split", "test", "manifest split to evaluate")
flags.DEFINE_list("volumes", [], "HR NIfTI files to evaluate instead of a manifest")
flags.DEFINE_list("baselines", ["linear", "cubic", "zero_filled"],
                  f"baselines to score, of {', '.join(evaluate_lib.BASELINES)}")
flags.DEFINE_multi_string("weights", [], "NAME=PATH of a generator (PATH.weights.h5 + card); "
                          "repeat for several")
flags.DEFINE_enum("network_input", None, ["linear", "zero_filled"],
                  "input of models whose card does not say (default linear); a model card's "
                  "lr_mode always wins, and a contradicting flag is refused")
flags.DEFINE_integer("factor", 2, "k-space reduction factor along each plane axis")
flags.DEFINE_list("plane_axes", ["0", "1"], "the two degraded axes")
flags.DEFINE_integer("tile", 64, "inference tile size")
flags.DEFINE_integer("margin", 3, "inference tile margin")
flags.DEFINE_integer("batch", 1, "tiles per forward pass")
flags.DEFINE_string("out_dir", "runs/eval", "where per_subject.csv and summary.json go; a rerun "
                    "with the same flags skips the subjects already scored there")


def parse_weights(entries):
  """{name: path} from NAME=PATH entries."""
  parsed = {}
  for entry in entries:
    name, separator, path = entry.partition("=")
    if not separator or not name or not path:
      raise InputError(f"--weights expects NAME=PATH, got {entry!r}")
    parsed[name] = path
  return parsed


def network_inputs(weight_paths, flag_value) -> dict:
  """{model name: the input its card names}; InputError when --network_input contradicts a
  card, since scoring a network on another input than it learnt says nothing about it."""
  from mdcsrn_tf import weights

  modes = {}
  for name, path in weight_paths.items():
    card = weights.read_card(path)
    mode = card.get("lr_mode", flag_value or "linear")
    if flag_value and mode != flag_value:
      raise InputError(f"{path}: its model card says the network was trained on {mode} input, "
                       f"not --network_input={flag_value}")
    modes[name] = mode
  return modes


def main(argv):
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {' '.join(argv[1:])}")
  if bool(FLAGS.manifest) == bool(FLAGS.volumes):
    raise InputError("give either --manifest or --volumes")
  plane_axes = tuple(int(a) for a in FLAGS.plane_axes)
  unknown = set(FLAGS.baselines) - set(evaluate_lib.BASELINES)
  if unknown:
    raise InputError(f"unknown baselines {sorted(unknown)}; choose from {evaluate_lib.BASELINES}")
  weight_paths = parse_weights(FLAGS.weights)
  for path in FLAGS.volumes:  # every file checked before the slow part
    nifti.load_volume(path)
  subjects = (evaluate_lib.manifest_subjects(FLAGS.manifest, FLAGS.split) if FLAGS.manifest
              else evaluate_lib.file_subjects(FLAGS.volumes))
  inputs = network_inputs(weight_paths, FLAGS.network_input)
  settings = {"manifest": FLAGS.manifest, "split": FLAGS.split, "volumes": FLAGS.volumes,
              "baselines": FLAGS.baselines, "weights": weight_paths, "network_input": inputs,
              "factor": FLAGS.factor, "plane_axes": list(plane_axes), "tile": FLAGS.tile,
              "margin": FLAGS.margin}
  record = evaluate_lib.ResultsRecord(FLAGS.out_dir, settings)
  methods = dict.fromkeys(FLAGS.baselines)
  if weight_paths:
    from mdcsrn_tf import weights

    methods.update({name: weights.load_generator(path) for name, path in weight_paths.items()})
  done = sum(record.scored(name, methods) for name, _ in subjects)
  if done:
    print(f"{FLAGS.out_dir}: {done} of {len(subjects)} subjects already scored, kept")
  results = evaluate_lib.evaluate_methods(
      subjects, methods, record=record, factor=FLAGS.factor, plane_axes=plane_axes,
      network_input=inputs, tile=FLAGS.tile, margin=FLAGS.margin, batch=FLAGS.batch)
  evaluate_lib.write_results(results, record.csv_path,
                             os.path.join(FLAGS.out_dir, "summary.json"), settings)
  parameters = {name: analysis.trainable_parameters(model)
                for name, model in methods.items() if model is not None}
  print(evaluate_lib.format_table(results["summary"], parameters))


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
