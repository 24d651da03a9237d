"""Builds a data set manifest: one T1w volume per subject, validated, split by subject.

  python -m mdcsrn_tf.data.prepare --src DIR --out DATASET
  python -m mdcsrn_tf.data.prepare --samples --out DATASET

`--src` takes HCP's layout (DIR/<subject>/T1w/T1w_acpc_dc_restore.nii.gz) and/or a plain
folder of .nii/.nii.gz files (subject = file name). Every file is read with
`nifti.load_volume`; unusable ones are reported on stderr and skipped. The split follows the
paper's 780/111/111/111 proportions (train/validation/evaluation/test, section 3.1) and is a
function of the set of subject ids only: subjects are ordered by a SHA-256 hash of their id
and the first ones go to validation, test and evaluation. `--samples` builds the bundled demo
data set from the registry (mdcsrn_tf.data.samples): Colin27 is the held-out test subject.
DATASET/manifest.json is written atomically (docs/data.md).
"""
import os
import sys

from absl import app, flags

from mdcsrn_tf.data.dataset import prepare_folder, prepare_samples
from mdcsrn_tf.data.manifest import FILE_NAME
from mdcsrn_tf.errors import InputError, report_input_errors

FLAGS = flags.FLAGS
flags.DEFINE_string("src", None, "folder of subjects (HCP layout or plain NIfTI files)")
flags.DEFINE_bool("samples", False, "build the demo data set from the registry volumes")
flags.DEFINE_string("out", None, "data set folder; manifest.json is written there")


def _stderr(message):
  print(message, file=sys.stderr)


@report_input_errors
def main(argv):
  if len(argv) > 1:
    raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.out:
    raise InputError("--out is required")
  if bool(FLAGS.src) == FLAGS.samples:
    raise InputError("give exactly one of --src DIR or --samples")
  manifest = (prepare_samples(FLAGS.out, _stderr) if FLAGS.samples
              else prepare_folder(FLAGS.src, FLAGS.out, _stderr))
  counts = ", ".join(f"{split} {n}" for split, n in manifest["counts"].items())
  print(f"wrote {os.path.join(FLAGS.out, FILE_NAME)}: {counts}")


def run():
  app.run(main)


if __name__ == "__main__":
  run()
