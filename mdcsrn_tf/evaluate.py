"""`python -m mdcsrn_tf.evaluate --flagfile=flags/eval.cfg`: the paper's Tables 1-2 on test subjects.

Subjects come from a dataset manifest (--manifest, --split) or from NIfTI files
(--volumes). Methods: the --baselines and every --weights NAME=PATH. Writes
OUT_DIR/per_subject.csv and OUT_DIR/summary.json and prints the table
(evaluate_lib, docs/evaluation.md).
"""
import os

from absl import app, flags

from mdcsrn_tf import evaluate_lib
from mdcsrn_tf.data import intensity, nifti
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
flags.DEFINE_enum("network_input", "linear", ["linear", "zero_filled"],
                  "LR the models were trained on (the data pipeline's lr_mode)")
flags.DEFINE_integer("factor", 2, "k-space reduction factor along each plane axis")
flags.DEFINE_list("plane_axes", ["0", "1"], "the two degraded axes")
flags.DEFINE_integer("tile", 64, "inference tile size")
flags.DEFINE_integer("margin", 3, "inference tile margin")
flags.DEFINE_integer("batch", 1, "tiles per forward pass")
flags.DEFINE_string("out_dir", "runs/eval", "where per_subject.csv and summary.json go")


def manifest_subjects(manifest, split, factor, plane_axes):
  """(name, normalised HR) of every subject of a manifest split, via the data pipeline."""
  from mdcsrn_tf.data import pipeline

  config = pipeline.PipelineConfig(factor=factor, plane_axes=plane_axes, augment=False,
                                   cache=False)
  for item in pipeline.volume_dataset(manifest, split, config).as_numpy_iterator():
    yield item["name"].decode(), item["hr"]


def file_subjects(paths):
  for path in paths:
    volume, _ = nifti.load_volume(path)
    yield os.path.basename(path), intensity.normalise(volume, name=path)[0]


def parse_weights(entries):
  """{name: path} from NAME=PATH entries."""
  parsed = {}
  for entry in entries:
    name, separator, path = entry.partition("=")
    if not separator or not name or not path:
      raise InputError(f"--weights expects NAME=PATH, got {entry!r}")
    parsed[name] = path
  return parsed


def main(argv):
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {' '.join(argv[1:])}")
  if bool(FLAGS.manifest) == bool(FLAGS.volumes):
    raise InputError("give either --manifest or --volumes")
  os.makedirs(FLAGS.out_dir, exist_ok=True)
  plane_axes = tuple(int(a) for a in FLAGS.plane_axes)
  unknown = set(FLAGS.baselines) - set(evaluate_lib.BASELINES)
  if unknown:
    raise InputError(f"unknown baselines {sorted(unknown)}; choose from {evaluate_lib.BASELINES}")
  weight_paths = parse_weights(FLAGS.weights)
  for path in FLAGS.volumes:  # every file checked before the slow part
    nifti.load_volume(path)
  methods = dict.fromkeys(FLAGS.baselines)
  if weight_paths:
    from mdcsrn_tf import weights

    methods.update({name: weights.load_generator(path) for name, path in weight_paths.items()})
  subjects = (manifest_subjects(FLAGS.manifest, FLAGS.split, FLAGS.factor, plane_axes)
              if FLAGS.manifest else file_subjects(FLAGS.volumes))
  results = evaluate_lib.evaluate_methods(
      subjects, methods, factor=FLAGS.factor, plane_axes=plane_axes,
      network_input=FLAGS.network_input, tile=FLAGS.tile, margin=FLAGS.margin, batch=FLAGS.batch)
  if not results["subjects"]:
    raise InputError(f"no subject in split {FLAGS.split!r} of {FLAGS.manifest}")
  card = {"manifest": FLAGS.manifest, "split": FLAGS.split, "volumes": FLAGS.volumes,
          "weights": weight_paths, "factor": FLAGS.factor, "plane_axes": list(plane_axes),
          "network_input": FLAGS.network_input, "tile": FLAGS.tile, "margin": FLAGS.margin}
  evaluate_lib.write_results(results, os.path.join(FLAGS.out_dir, "per_subject.csv"),
                             os.path.join(FLAGS.out_dir, "summary.json"), card)
  parameters = {name: analysis.trainable_parameters(model)
                for name, model in methods.items() if model is not None}
  print(evaluate_lib.format_table(results["summary"], parameters))


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
