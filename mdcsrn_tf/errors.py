"""User-facing errors: one clear line on stderr and a non-zero exit, no traceback."""
import functools
import sys

from absl import flags, logging


class InputError(Exception):
  """Bad input from the user (a file, a flag, a folder); the message names it."""


EXIT_INPUT_ERROR = 2


def report_input_errors(main):
  """Wraps an absl `main(argv)` so that an InputError or OSError ends the program with
  one line on stderr and exit status 2, instead of a traceback.

  It also quiets absl's INFO log unless --verbosity was given: TensorFlow logs every
  checkpoint save and SavedModel fingerprint there, which is not the user's business.
  """

  @functools.wraps(main)
  def wrapped(argv):
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except InputError as error:
      message = str(error)
    except OSError as error:  # unwritable output, full disk, vanished file
      where = f" ({error.filename})" if error.filename else ""
      message = f"{error.strerror or error}{where}"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_INPUT_ERROR)

  return wrapped
