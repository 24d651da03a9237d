"""`python -m mdcsrn_tf.data` (mdcsrn-prepare): builds a data set manifest, one validated T1w
volume per subject, split by subject (docs/data.md).

  python -m mdcsrn_tf.data --src DIR --out DATASET
  python -m mdcsrn_tf.data --samples --out DATASET [--sample_set heads]
  python -m mdcsrn_tf.data --list_samples

`--src` takes HCP's layout (DIR/<subject>/T1w/T1w_acpc_dc_restore.nii.gz, with HCP's
T1w/brainmask_fs.nii.gz as the subject's brain mask when present) and/or a plain folder of
.nii/.nii.gz files (subject = file name; SUB_desc-brain_mask.nii.gz beside SUB_T1w.nii.gz is
its mask). Every file is read; each folder or file not used is reported on stderr with the
reason (missing, empty, unreadable, ...), and a last line says how many entries were seen
and used. DATASET/splits.tsv lists the subject of each split. The split follows the paper's 780/111/111/111 proportions
(train/validation/evaluation/test) and is a function of the set of subject ids only.
`--samples` installs the missing registry volumes and builds a bundled data set: the
tables' (default) or, with `--sample_set heads`, whole heads at about 1 mm; both hold out
Colin27 and two more real heads as the test subjects. DATASET/manifest.json is written atomically.
"""
import os
import sys

from mdcsrn_tf import cli
from mdcsrn_tf.data import samples
from mdcsrn_tf.data.dataset import PrepareOptions, prepare
from mdcsrn_tf.data.manifest import FILE_NAME, SPLITS_FILE
from mdcsrn_tf.errors import InputError, one_line


def main(options: PrepareOptions, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  if options.list_samples:
    print(samples.table())
    return
  written = prepare(options, lambda message: print(one_line(message), file=sys.stderr))
  counts = ", ".join(f"{split} {n}" for split, n in written["counts"].items())
  print(one_line(f"wrote {os.path.join(options.out, FILE_NAME)}: {counts}; the subject of each "
                 f"split in {os.path.join(options.out, SPLITS_FILE)}"))


def run():
  cli.run(main, PrepareOptions, __doc__)


if __name__ == "__main__":
  run()
