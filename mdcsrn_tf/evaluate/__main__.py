"""`python -m mdcsrn_tf.evaluate --flagfile=flags/eval.cfg` (mdcsrn-evaluate): the paper's
Tables 1-2 on test subjects (evaluation.py, docs/evaluation.md).

Subjects come from a data set manifest (--manifest, --split) or from NIfTI files
(--volumes), read one at a time; a subject with a mask (the manifest entry's "mask", or
--masks) is also scored inside it, beside the whole volume. Each subject's rows are written to OUT_DIR/per_subject.csv
as soon as they are scored, and a rerun with the same flags skips the subjects already
there; at the end OUT_DIR/summary.json is written, and the command prints each subject's
figures, the table and where it wrote. Subjects given as --volumes are named by the first
part of their paths that differs (HCP: the subject folder), so that no two share a row.
"""
import os

from mdcsrn_tf import cli
from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.evaluate import results, scoring
from mdcsrn_tf.evaluate.evaluation import EvaluateOptions, evaluate


def main(options: EvaluateOptions, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  outcome, table = evaluate(options)
  print(scoring.format_subject_table(outcome["subjects"]))
  print()
  print(table)
  print("\n" + one_line(f"wrote {os.path.join(options.out_dir, results.CSV_NAME)} (one row per "
                        f"subject and method) and "
                        f"{os.path.join(options.out_dir, results.SUMMARY_NAME)}"))


def run():
  cli.run(main, EvaluateOptions, __doc__)


if __name__ == "__main__":
  run()
