"""User-facing errors: one clear line on stderr and a non-zero exit, no traceback."""
import functools
import signal
import sys

from absl import flags, logging


class InputError(Exception):
  """Bad input from the user (a file, a flag, a folder); the message names it."""


class Terminated(BaseException):
  """SIGTERM arrived. Raised wherever the program is, as Ctrl-C raises KeyboardInterrupt,
  so that cleanups run: `finally` blocks, and the removal of temporary files that
  write_atomically and the SavedModel export do on any exception."""


EXIT_INPUT_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process killed by it


def _raise_terminated(signal_number, frame):
  del signal_number, frame
  raise Terminated()


def report_input_errors(main):
  """Wraps an absl `main(argv)` so that an InputError or OSError ends the program with
  one line on stderr and exit status 2, instead of a traceback.

  SIGTERM becomes a `Terminated` exception while `main` runs, and exit status 143: the
  default action would end the process on the spot, leaving temporary files behind.

  It also quiets absl's INFO log unless --verbosity was given: TensorFlow logs every
  checkpoint save and SavedModel fingerprint there, which is not the user's business.
  """

  @functools.wraps(main)
  def wrapped(argv):
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
      return main(argv)
    except Terminated:
      sys.exit(EXIT_TERMINATED)
    except InputError as error:
      message = str(error)
    except OSError as error:  # unwritable output, full disk, vanished file
      where = f" ({error.filename})" if error.filename else ""
      message = f"{error.strerror or error}{where}"
    finally:
      signal.signal(signal.SIGTERM, previous)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_INPUT_ERROR)

  return wrapped
