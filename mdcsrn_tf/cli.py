"""What every command shares: flags made from an options dataclass, help without loading
TensorFlow, TensorFlow loaded quietly, and one `error:` line instead of a traceback.

A command is a package's `__main__.py` (`python -m mdcsrn_tf.train`, ...) that calls
`cli.run(main, Options, __doc__)`. `run` defines one flag per field of the frozen options
dataclass, with the field's line of the class docstring's `Attributes:` section as its help,
so the help and the documentation cannot drift apart; flags live in a FlagValues of their
own, so two commands never clash in one process (the test suite runs several). It then
calls `main(options, arguments)` with the options dataclass and the positional arguments.

Exit status: what `main` returns (0 when it returns None); 2 for bad input (InputError, an
unreadable or unwritable file: one `error:` line naming it) and for memory running out (a
GPU's above all, which nothing can check beforehand: one line naming the flags that size
the work); 128 + N after SIGTERM (15) or
SIGINT (2, Ctrl-C): both unwind as errors.Terminated, one line and no traceback, so that
temporary files are removed on the way out. A signal is answered within `exit_within`
seconds even while the main thread sits in one long TensorFlow call, where Python cannot
run a handler: a watcher thread, woken by the signal itself (signal.set_wakeup_fd), removes
the temporary files being written (files.IN_PROGRESS) and ends the process.
"""
import dataclasses
import importlib.abc
import importlib.util
import os
import re
import signal
import socket
import sys
import threading
import time
import types
import typing

from absl import flags, logging

from mdcsrn_tf import files
from mdcsrn_tf.errors import EXIT_INPUT_ERROR, InputError, Terminated, exit_status, one_line
from mdcsrn_tf.flagfiles import expand_flagfiles


def field_docs(options_class) -> dict:
  """{field: help} from the `Attributes:` section of a dataclass' docstring (one entry per
  field, continuation lines indented deeper); KeyError names a field without one."""
  docs, current = {}, None
  in_attributes = False
  for line in (options_class.__doc__ or "").splitlines():
    if line.strip() == "Attributes:":
      in_attributes = True
      continue
    if not in_attributes:
      continue
    entry = re.match(r"^\s{2,4}(\w+): (.*)$", line)
    if entry and entry.group(1) in {f.name for f in dataclasses.fields(options_class)}:
      current = entry.group(1)
      docs[current] = entry.group(2).strip()
    elif line.strip() and current:
      docs[current] += " " + line.strip()
    elif not line.strip() and docs:
      current = None
  missing = [f.name for f in dataclasses.fields(options_class) if f.name not in docs]
  if missing:
    raise KeyError(f"{options_class.__name__} documents no {', '.join(missing)}")
  return docs


def _kind(options_class, name):
  """(type, element type) of a field: (int, None), (tuple, float), ... from its annotation;
  `X | None` is X."""
  hint = typing.get_type_hints(options_class)[name]
  if typing.get_origin(hint) in (typing.Union, types.UnionType):
    hint = next(a for a in typing.get_args(hint) if a is not type(None))
  if typing.get_origin(hint) is tuple:
    return tuple, typing.get_args(hint)[0]
  return hint, None


def define_flags(flag_values, options_class):
  """One flag per field of `options_class`; a field without a default must be given."""
  docs = field_docs(options_class)
  definers = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
              str: flags.DEFINE_string, tuple: flags.DEFINE_list}
  for field in dataclasses.fields(options_class):
    default = None if field.default is dataclasses.MISSING else field.default
    kind, _ = _kind(options_class, field.name)
    if kind is tuple and default is not None:
      default = [str(v) for v in default]
    definers[kind](field.name, default, docs[field.name], flag_values=flag_values)


def options_from_flags(flag_values, options_class):
  """The options dataclass of the parsed flags; InputError for a missing required flag or
  a list item of the wrong type."""
  values = {}
  for field in dataclasses.fields(options_class):
    value = flag_values[field.name].value
    if field.default is dataclasses.MISSING and value in (None, ""):
      raise InputError(f"--{field.name} is required")
    kind, element = _kind(options_class, field.name)
    if kind is tuple and value is not None:
      try:
        value = tuple(element(v) for v in value)
      except ValueError:
        raise InputError(f"--{field.name} needs {element.__name__} values, got "
                         f"{','.join(value)}") from None
    values[field.name] = value
  return options_class(**values)


def parse(options_class, argv):
  """(options, positional arguments) from a command line (argv[0] is the program)."""
  flag_values = flags.FlagValues()
  define_flags(flag_values, options_class)
  try:
    arguments = flag_values(expand_flagfiles(list(argv)))
  except flags.Error as error:
    raise InputError(str(error)) from None
  return options_from_flags(flag_values, options_class), arguments[1:]


def flagfile_text(options) -> str:
  """An options dataclass as a flagfile, one flag per line (`--flagfile=` reads it back)."""
  lines = []
  for name, value in dataclasses.asdict(options).items():
    if isinstance(value, bool):
      lines.append(f"--{name}" if value else f"--no{name}")
    elif isinstance(value, tuple):
      lines.append(f"--{name}={','.join(str(v) for v in value)}")
    elif value is not None:
      lines.append(f"--{name}={value}")
  return "\n".join(lines) + "\n"


def usage(options_class, description) -> str:
  flag_values = flags.FlagValues()
  define_flags(flag_values, options_class)
  lines = [description.strip(), "", "flags:"]
  for name in sorted(flag_values):
    flag = flag_values[name]
    default = "" if flag.default in (None, "") else f" (default: {flag.default_as_str})"
    lines.append(f"  --{name}: {flag.help}{default}")
  lines.append("  --flagfile: read flags from a file, one per line (found from the working "
               "directory, then the project folder: --flagfile=flags/NAME.cfg works anywhere; "
               "a flagfile's own --flagfile lines are relative to it; every other path is "
               "relative to the working directory)")
  return "\n".join(lines)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
  """Imports TensorFlow with file descriptor 2 silenced: TF 2.21 writes absl's "All log
  messages before absl::InitializeLog()" banner and a oneDNN notice straight to it while it
  loads, whatever TF_CPP_MIN_LOG_LEVEL says, and a command promises one line on stderr for
  bad input. Errors raised by the import itself still surface as exceptions."""

  def find_spec(self, name, path=None, target=None):
    if name != "tensorflow":
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
      return spec
    load = spec.loader.exec_module

    def exec_module(module):
      sys.stderr.flush()
      saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
      os.dup2(null, 2)
      try:
        load(module)
      finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)

    spec.loader.exec_module = exec_module
    return spec


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_announced = threading.Lock()
_WAKEUP = []


def _raise_terminated(number, frame):
  del frame
  raise Terminated(number)


def _stopped(number):
  """Says once, whichever thread gets there first, which signal stopped the command."""
  if _announced.acquire(blocking=False):
    print(f"stopped by {signal.Signals(number).name}", file=sys.stderr, flush=True)


def _watch_signals(exit_within):
  """Starts the watcher thread of the module docstring."""
  reader, writer = socket.socketpair()
  writer.setblocking(False)
  _WAKEUP.extend((reader, writer))  # alive as long as the process: the fd must stay open
  signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

  def watch():
    received = reader.recv(1)
    if not received:  # closed as the interpreter exits
      return
    number = received[0]
    time.sleep(exit_within)  # the main thread's own unwinding usually ends the process first
    files.remove_in_progress()
    _stopped(number)
    os._exit(exit_status(number))

  threading.Thread(target=watch, name="signal-watcher", daemon=True).start()


def run(main, options_class, description, argv=None, exit_within=1.0):
  """Runs a command, `main(options, arguments)` returning its exit status (None: 0); see the
  module docstring. `exit_within` None: no watcher, for a command that answers signals
  itself (training saves a checkpoint first). Never returns."""
  argv = sys.argv if argv is None else argv
  if any(arg in ("-h", "--help", "--helpfull", "-help") for arg in argv[1:]):
    print(usage(options_class, description))
    sys.exit(0)
  flags.FLAGS.mark_as_parsed()  # absl logging reads these; the command has its own flags
  logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint chatter is not the user's
  if "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowImport())
  for number in STOP_SIGNALS:
    signal.signal(number, _raise_terminated)
  if exit_within is not None:
    _watch_signals(exit_within)
  try:
    options, arguments = parse(options_class, argv)
    status = main(options, arguments)
  except InputError as error:
    message = str(error)
  except OSError as error:  # unwritable output, full disk, vanished file
    where = f" ({error.filename})" if error.filename else ""
    message = f"{error.strerror or error}{where}"
  except Terminated as stop:
    _stopped(stop.signal_number)
    sys.exit(exit_status(stop.signal_number))
  except Exception as error:  # pylint: disable=broad-except
    if not out_of_memory(error):
      raise
    said = str(getattr(error, "message", "") or error).strip().splitlines()
    message = (f"out of memory{f' ({said[0]})' if said else ''}; lower --batch_size, "
               "--patch_size or --validation_tile (training), --tile, --batch or "
               "--memory_limit (inference)")
  else:
    sys.exit(status or 0)
  print(f"error: {one_line(message)}", file=sys.stderr)  # names of files: one line still
  sys.exit(EXIT_INPUT_ERROR)


def out_of_memory(error) -> bool:
  """Whether `error` says memory ran out: Python's MemoryError, or TensorFlow's
  ResourceExhaustedError (a GPU's memory above all, which nothing can check beforehand)."""
  tensorflow = sys.modules.get("tensorflow")
  return isinstance(error, MemoryError) or (
      tensorflow is not None and isinstance(error, tensorflow.errors.ResourceExhaustedError))



def require_at_least(options, **lowest):
  """InputError naming the first field of `options` below its lowest allowed value (None,
  an optional setting left out, passes)."""
  for name, low in lowest.items():
    value = getattr(options, name)
    if value is not None and value < low:
      raise InputError(f"--{name} must be >= {low}, got {value}")


def int_or_word(options, name, word, low=1):
  """The integer a text field of `options` holds, or None when it holds `word` (as in
  `--tile auto`); InputError naming the flag for anything else or an integer below `low`."""
  value = str(getattr(options, name)).strip()
  if value == word:
    return None
  try:
    number = int(value)
  except ValueError:
    number = None
  if number is None or number < low:
    raise InputError(f"--{name} must be {word} or an integer >= {low}, got {value!r}")
  return number
