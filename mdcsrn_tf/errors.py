"""User-facing errors: one clear line on stderr and a non-zero exit, no traceback
(mdcsrn_tf.cli turns them into that)."""
import signal


class InputError(Exception):
  """Bad input from the user (a file, a flag, a folder); the message names it."""


class Terminated(BaseException):
  """SIGTERM arrived. Raised wherever the program is, as Ctrl-C raises KeyboardInterrupt,
  so that cleanups run: `finally` blocks, and the removal of temporary files that
  mdcsrn_tf.files does on any exception."""


EXIT_INPUT_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process killed by it
