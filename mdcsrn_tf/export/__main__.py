"""`python -m mdcsrn_tf.export --weights PATH --out DIR` (mdcsrn-export): a SavedModel of a
trained generator for TF Serving, written atomically with the user's permissions
(docs/serving.md)."""
from mdcsrn_tf import cli
from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.export.saved_model import ExportOptions, export


def main(options: ExportOptions, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  print(one_line(export(options)))


def run():
  cli.run(main, ExportOptions, __doc__)


if __name__ == "__main__":
  run()
