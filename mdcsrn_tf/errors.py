"""User-facing errors: one clear line on stderr and a non-zero exit, no traceback
(mdcsrn_tf.cli turns them into that), and `one_line`, which every text from a file name or a
model card goes through before it reaches the terminal."""
import signal
import unicodedata

# What a terminal would act on instead of showing: C0 and C1 controls (newline, carriage
# return, the ESC of ANSI sequences, ...) and DEL (Unicode category Cc), line and paragraph
# separators (Zl, Zp: str.splitlines breaks there too), lone surrogates (Cs: the bytes of a
# file name that are not UTF-8, which a strict stdout cannot encode), and the bidirectional
# overrides and isolates that reorder what follows them on screen.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(character) -> str:
  if character in _SHORT_ESCAPES:
    return _SHORT_ESCAPES[character]
  code = ord(character)
  return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text) -> str:
  """`text` (any object, as str() gives it) as one line a terminal shows as it is: every
  character of the set above written as its Python escape (a newline as \\n, ESC as \\x1b),
  the rest untouched."""
  text = str(text)
  if text.isprintable() and text.isascii():  # the common case, at C speed
    return text
  return "".join(_escaped(c) if c in _BIDI_CONTROLS
                 or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in text)


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
