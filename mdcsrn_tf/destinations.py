"""Where a command may write: the one rule every path a command writes follows (outputs,
reports, sidecars, ONNX files, SavedModels, derivatives, released weights, backups), and
the temporary files of files.py's atomic writers.

- A file (or a symbolic link, even a broken one) already at an output's path is replaced
  only when the user asked for it (`--overwrite`; `refuse_existing`), and then the link
  itself is replaced, never the file it points to.
- An output folder (`--out_dir`, OUTPUT_DIR, `--out`) that exists as anything but a folder
  is refused before any work, in the same words by every command (`check_output_folder`).
- Folders are compared by their resolved paths (`inside`): a folder a command must not
  write into is not written into through a symbolic link either.
- A temporary file is named .NAME.PID-HOST.RANDOM.tmp[SUFFIX] beside NAME, so that the
  writer is known: a run that writes NAME first removes the temporary files of NAME that a
  killed run left (`remove_stale`): those whose process on this host is gone (or whose pid
  now belongs to a process started after the file), and those of another host, or of a
  version that did not name its process, untouched for STALE_SECONDS. A temporary file of
  a live writer is never removed, so jobs writing into one folder never break each other.
"""
import os
import re
import shutil
import socket
import time

from mdcsrn_tf.errors import InputError

STALE_SECONDS = 24 * 3600  # a write untouched this long, by a writer we cannot ask, is dead
_RANDOM = "[a-z0-9_]{8}"  # tempfile's names: 8 of these characters


def check_output_folder(path, label):
  """InputError `LABEL PATH: exists and is not a folder` when something other than a folder
  (a file, a link to one, a broken link) is at PATH."""
  if path is not None and os.path.lexists(path) and not os.path.isdir(path):
    raise InputError(f"{label} {path}: exists and is not a folder")


def existing(path) -> bool:
  """Whether a file or a symbolic link (to anything, or broken) is at `path`; a folder is
  not a file to replace, and each command names it its own way."""
  return os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path))


def refuse_existing(paths, overwrite=False, flag="--overwrite", instead="choose another path"):
  """InputError naming the first of `paths` at which a file or link exists already, unless
  `overwrite`: `PATH: exists already[ (and N more)]; pass FLAG to replace, or INSTEAD`."""
  found = [path for path in paths if existing(path)]
  if found and not overwrite:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    raise InputError(f"{found[0]}: exists already{more}; pass {flag} to replace, or {instead}")


def inside(path, folder) -> bool:
  """Whether `path` is `folder` or below it, both with every symbolic link resolved (of a
  path that does not exist yet, its existing part)."""
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return os.path.commonpath([path, folder]) == folder


def _host() -> str:
  return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temporary_prefix(name) -> str:
  """The start of the name of a temporary file or folder this process writes for NAME."""
  return f".{name}.{os.getpid()}-{_host()}."


def _temporaries(name):
  return re.compile(r"^\." + re.escape(name) + r"\.(?:(\d+)-([A-Za-z0-9-]+)\.)?" + _RANDOM
                    + r"\.tmp(?:\..*)?$")


def _newest_change(path) -> float:
  """The latest modification time of a file, or of a folder and everything in it."""
  newest = os.lstat(path).st_mtime
  if os.path.isdir(path) and not os.path.islink(path):
    for folder, folders, names in os.walk(path):
      for name in folders + names:
        newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
  return newest


def _started(pid):
  """When process `pid` started (seconds since the epoch), None where /proc cannot say."""
  try:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
      ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat", encoding="ascii") as system:
      booted = next(int(line.split()[1]) for line in system if line.startswith("btime "))
  except (OSError, ValueError, IndexError, StopIteration):
    return None
  return booted + ticks / os.sysconf("SC_CLK_TCK")


def _writer_alive(pid, changed) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process: alive
    pass
  started = _started(pid)
  return started is None or started <= changed + 1  # not a later process with the same pid


def is_stale(path, pid=None, host=None, in_progress=()) -> bool:
  """Whether the temporary file or folder at `path`, written by process `pid` on `host`
  (None: a name that does not say), is abandoned (the module docstring)."""
  try:
    changed = _newest_change(path)
  except OSError:  # gone already: its writer renamed it, or another run removed it
    return False
  if pid is None or host != _host():
    return time.time() - changed > STALE_SECONDS
  if pid == os.getpid():
    return path not in in_progress
  return not _writer_alive(pid, changed)


def remove_stale(path, in_progress=()) -> list:
  """Removes the stale temporary files and folders of the output `path` (its own naming
  pattern, in its own folder, nothing else); returns what it removed. `in_progress`: this
  process' own temporaries being written (files.IN_PROGRESS)."""
  folder, name = os.path.split(os.path.abspath(os.fspath(path)))
  pattern, removed = _temporaries(name), []
  try:
    names = os.listdir(folder)
  except OSError:
    return removed
  for entry in names:
    match = pattern.match(entry)
    if match is None:
      continue
    candidate = os.path.join(folder, entry)
    pid = int(match.group(1)) if match.group(1) else None
    if is_stale(candidate, pid, match.group(2), in_progress):
      try:
        if os.path.isdir(candidate) and not os.path.islink(candidate):
          shutil.rmtree(candidate)
        else:
          os.remove(candidate)
      except FileNotFoundError:  # another run removed it first
        continue
      removed.append(candidate)
  return removed
