"""`mdcsrn-sr`: super-resolve NIfTI scans with a trained generator (predict_lib.py).

  mdcsrn-sr INPUT.nii.gz OUTPUT.nii.gz [--weights PATH] [--model b4u4] [--tile 64] [--margin 3]
  mdcsrn-sr A.nii.gz B.nii.gz ... --out_dir DIR      (each to DIR/<name>_sr.nii.gz)
  mdcsrn-sr FOLDER --out_dir DIR                     (every .nii / .nii.gz in FOLDER, hidden
                                                      ones skipped)
  mdcsrn-sr LOWRES.nii.gz SR.nii.gz --scale 2,2,1    (or --target_voxel 0.7)

Without --scale or --target_voxel the input is taken to be on the HR grid already (as the
network's training input: the LR scan interpolated back). The output keeps the input's
intensity range and geometry, is written atomically, and never replaces an input.
"""
import sys

from absl import app, flags

from mdcsrn_tf import inference, predict_lib
from mdcsrn_tf.data import nifti
from mdcsrn_tf.errors import InputError, report_input_errors

FLAGS = flags.FLAGS
flags.DEFINE_string("weights", None, "PATH(.weights.h5) of a generator with its PATH.json card; "
                    "default: the shipped b4u4 weights")
flags.DEFINE_bool("gan", False, "use the shipped GAN weights instead of the L1 ones")
flags.DEFINE_string("model", None, "generator name when the weights have no model card")
flags.DEFINE_integer("tile", 64, "output tile size in voxels (the paper's 64)")
flags.DEFINE_integer("margin", 3, "voxels of context on each side of a tile, discarded")
flags.DEFINE_integer("batch", 1, "tiles per forward pass (memory grows with it)")
flags.DEFINE_integer("memory_limit", None, "MiB for the network's activations: the largest tile "
                     "batch that fits replaces --batch")
flags.DEFINE_bool("jit_compile", False, "run the network through XLA (helps on GPUs, not on CPUs)")
flags.DEFINE_list("scale", None, "per-axis factors from the input grid to the HR grid, e.g. 2,2,1")
flags.DEFINE_float("target_voxel", None, "HR voxel size in mm: axes with larger voxels are "
                   "interpolated to it")
flags.DEFINE_string("out_dir", None, "output folder for several inputs or a folder input")


def main(argv):
  if FLAGS.tile < 1 or FLAGS.margin < 0 or FLAGS.batch < 1:
    raise InputError(f"need --tile >= 1, --margin >= 0, --batch >= 1, got {FLAGS.tile}, "
                     f"{FLAGS.margin}, {FLAGS.batch}")
  scale = None if FLAGS.scale is None else _parse_scale(FLAGS.scale)
  predict_lib.check_grid_flags(scale, FLAGS.target_voxel)
  pairs = predict_lib.plan_outputs(argv[1:], FLAGS.out_dir)
  inputs = [input_path for input_path, _ in pairs]
  for input_path, output_path in pairs:  # fail on a bad file before the slow part
    nifti.check_output_path(output_path, inputs=inputs)
    predict_lib.check_input(input_path, scale, FLAGS.target_voxel)
  weights_path = predict_lib.weights_to_use(FLAGS.weights, FLAGS.gan)
  model, lr_mode = predict_lib.load_model(weights_path, FLAGS.model)
  batch = FLAGS.batch
  if FLAGS.memory_limit:
    batch = inference.batch_for_memory(model, FLAGS.memory_limit * 2**20, FLAGS.tile, FLAGS.margin)
  for input_path, output_path in pairs:
    predict_lib.super_resolve_file(input_path, output_path, model, FLAGS.tile, FLAGS.margin,
                                   batch, scale, FLAGS.target_voxel,
                                   # a bar only for a person watching, not in logs
                                   progress=sys.stderr.isatty(),
                                   jit_compile=FLAGS.jit_compile, interpolation=lr_mode,
                                   weights_name=weights_path)
    print(output_path)


def _parse_scale(values):
  try:
    return [float(v) for v in values]
  except ValueError:
    raise InputError(f"--scale needs numbers like 2,2,1, got {','.join(values)}") from None


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
