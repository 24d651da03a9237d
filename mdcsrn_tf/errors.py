"""User-facing errors: one clear line on stderr and a non-zero exit, no traceback
(mdcsrn_tf.cli turns them into that)."""
import signal


class InputError(Exception):
  """Bad input from the user (a file, a flag, a folder); the message names it."""


class NonFiniteOutput(InputError):
  """A network's output holds NaN or Inf voxels (corrupted or diverged weights, or an
  activation beyond its float range): nothing may be made of it, neither a file nor a
  figure. The layers above the network add what they know (`method`, `subject`) so that the
  command's one line can name the user's weights and input."""

  def __init__(self, bad: int, total: int):
    super().__init__(f"{bad} of {total} output voxels are NaN or Inf")
    self.bad, self.total = bad, total
    self.method = self.subject = None


class Terminated(BaseException):
  """SIGTERM or SIGINT (Ctrl-C) arrived. Raised wherever the program is, so that cleanups
  run: `finally` blocks, and the removal of temporary files that mdcsrn_tf.files does on
  any exception. `signal_number` says which."""

  def __init__(self, signal_number=signal.SIGTERM):
    super().__init__(signal.Signals(signal_number).name)
    self.signal_number = int(signal_number)


EXIT_INPUT_ERROR = 2


def exit_status(signal_number) -> int:
  """What a shell reports for a process killed by the signal: 128 + its number."""
  return 128 + int(signal_number)
