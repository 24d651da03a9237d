"""Running a command on a table of cases and checking what it left: the commands' modules,
a fresh process that says whether TensorFlow loaded (for rows where that is what is under
test), an in-process run of a console script's `run()` (the rest: fast), and the state of
files and folders before and after."""
import fnmatch
import hashlib
import importlib
import json
import os
import shlex
import signal
import subprocess
import sys

from mdcsrn_tf import cli

MODULES = {"predict": "mdcsrn_tf.infer", "bids": "mdcsrn_tf.bids", "export": "mdcsrn_tf.export",
           "train": "mdcsrn_tf.train", "evaluate": "mdcsrn_tf.evaluate",
           "prepare": "mdcsrn_tf.data", "release": "mdcsrn_tf.release",
           "models": "mdcsrn_tf.models", "demo": "mdcsrn_tf.demo"}

# what `python -m MODULE ARGS` does, then a last stdout line saying whether TensorFlow was
# imported on the way to the error
RUN_MODULE = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps({"tensorflow_loaded": "tensorflow" in sys.modules})))
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


def state(path):
  """What must not change: a file's SHA-256, a folder's listing, a link's target, or None
  when absent."""
  if os.path.islink(path):
    return "link to " + os.readlink(path)
  if os.path.isdir(path):
    return sorted(os.listdir(path))
  if os.path.exists(path):
    with open(path, "rb") as file:
      return hashlib.sha256(file.read()).hexdigest()
  return None


def tree_state(root):
  return {os.path.join(folder, name): state(os.path.join(folder, name))
          for folder, folders, files in os.walk(root) for name in folders + files}


def words(command, paths) -> list:
  """The command line of a case with the `{name}` paths filled in."""
  return shlex.split(command.format(**paths))


def run_in_subprocess(tool, args) -> tuple:
  """(exit status, stderr lines, stdout, whether TensorFlow loaded) of `python -m MODULE`."""
  result = subprocess.run([sys.executable, "-c", RUN_MODULE, MODULES[tool], *args],
                          capture_output=True, text=True, timeout=300)
  loaded = json.loads(result.stdout.splitlines()[-1])["tensorflow_loaded"]
  return result.returncode, result.stderr.splitlines(), result.stdout, loaded


def run_in_process(tool, args, monkeypatch, capsys) -> tuple:
  """(exit status, stderr lines, stdout) of the command's console script, run in this
  process (no signal watcher thread: nothing here sends signals)."""
  capsys.readouterr()
  monkeypatch.setattr(sys, "argv", [tool, *args])
  monkeypatch.setattr(cli, "_watch_signals", lambda exit_within: None)
  handlers = {number: signal.getsignal(number) for number in cli.STOP_SIGNALS}
  try:
    importlib.import_module(MODULES[tool] + ".__main__").run()
    status = 0
  except SystemExit as stop:
    status = stop.code
  finally:
    for number, handler in handlers.items():
      signal.signal(number, handler)
  out, err = capsys.readouterr()
  return status, err.splitlines(), out


def assert_refused(status, lines, message, paths):
  """One `error:` line matching `message` (`*` for any text), exit status 2."""
  assert status == 2 and len(lines) == 1, lines
  assert fnmatch.fnmatchcase(lines[0], "error: " + message.format(**paths)), lines[0]


def check_refused_in_process(root, paths, out, command, message, monkeypatch, capsys):
  """Runs a case's command in this process with `{out}` its own empty folder: one `error:`
  line matching `message`, exit status 2, and nothing under ROOT or OUT changed."""
  paths = {**paths, "out": str(out)}
  before = tree_state(root), tree_state(out)
  tool, *args = words(command, paths)
  status, lines, _ = run_in_process(tool, args, monkeypatch, capsys)
  assert_refused(status, lines, message, paths)
  assert (tree_state(root), tree_state(out)) == before
