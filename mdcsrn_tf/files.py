"""Writing files so that nothing is ever half-written: a temporary file (or folder) beside
the destination, renamed into place once complete, with the permissions a plainly created
file (or folder) would get from the user's umask. Outputs, caches, model cards, manifests,
results and SavedModels all go through here.
"""
import errno
import json
import math
import os
import shutil
import tempfile

from mdcsrn_tf import destinations
from mdcsrn_tf.errors import InputError

# Temporary files and folders being written now: what cli removes when a signal ends the
# process before the code writing them can (remove_in_progress).
IN_PROGRESS = set()


def remove_in_progress():
  """Removes every temporary file or folder still being written."""
  for temporary in list(IN_PROGRESS):
    if os.path.isdir(temporary):
      shutil.rmtree(temporary, ignore_errors=True)
    elif os.path.exists(temporary):
      try:
        os.remove(temporary)
      except OSError:
        pass


def current_umask() -> int:
  """The process' umask (reading it means setting it, so it is set back at once)."""
  current = os.umask(0)
  os.umask(current)
  return current


def write_atomically(path, write, exclusive=False):
  """Calls `write(temporary_path)`, then renames the result onto `path`; `exclusive`: only
  if nothing is there yet (FileExistsError otherwise, `path` untouched), for a file that
  parallel jobs may each try to create.

  The temporary file lives in the destination folder (a rename across file systems
  is not atomic), is named after its writer (destinations.temporary_prefix: what a killed
  run leaves is removed by the next write of `path`, destinations.remove_stale) and keeps
  the destination's suffix, since writers such as nibabel choose the format from it. The result gets the permissions of a plainly created file
  (0666 less the umask), not mkstemp's private 0600.
  """
  path = os.fspath(path)
  folder, name = os.path.split(os.path.abspath(path))
  suffix = ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]
  destinations.remove_stale(path, IN_PROGRESS)  # what a killed run left of this output
  handle, temporary = tempfile.mkstemp(prefix=destinations.temporary_prefix(name),
                                       suffix=f".tmp{suffix}", dir=folder)
  os.close(handle)
  IN_PROGRESS.add(temporary)
  try:
    write(temporary)
    os.chmod(temporary, 0o666 & ~current_umask())
    if exclusive:
      _link_or_replace(temporary, path)
    else:
      os.replace(temporary, path)
  except BaseException as error:
    if os.path.exists(temporary):
      os.remove(temporary)
    if isinstance(error, OSError):  # the user knows their path, not the hidden temporary
      raise OSError(error.errno, error.strerror or str(error), path) from None
    raise
  finally:
    IN_PROGRESS.discard(temporary)


def _link_or_replace(temporary, path):
  """A hard link is created only where no file is (EEXIST otherwise), atomically; a file
  system without hard links gets the plain rename."""
  try:
    os.link(temporary, path)
  except OSError as error:
    if error.errno == errno.EEXIST:
      raise
    os.replace(temporary, path)
  else:
    os.remove(temporary)


def write_text_atomically(path, text: str, exclusive=False):
  """Writes `text` (UTF-8, newlines as given) to `path` through write_atomically."""

  def write(temporary):
    with open(temporary, "w", encoding="utf-8", newline="") as file:
      file.write(text)

  write_atomically(path, write, exclusive)


def plain_permissions(root):
  """Gives a folder tree the permissions plainly made files and folders get (0666 and 0777
  less the umask): mkdtemp makes its folder 0700, which hides a SavedModel from a server
  running as another user, and TensorFlow makes its subfolders 0755 whatever the umask."""
  umask = current_umask()
  for folder, _, names in os.walk(root):
    os.chmod(folder, 0o777 & ~umask)
    for name in names:
      os.chmod(os.path.join(folder, name), 0o666 & ~umask)


def write_folder_atomically(path, write, replace=False):
  """Calls `write(temporary_folder)`, then renames the folder onto `path`, with plain
  permissions; the temporary folder is removed on any failure. `path` must not exist,
  unless `replace`: then a link or file there is removed (never followed), and a folder
  there is set aside under a temporary name, removed once the new one is in place."""
  path = os.path.abspath(os.fspath(path))
  destinations.remove_stale(path, IN_PROGRESS)
  temporary = tempfile.mkdtemp(prefix=destinations.temporary_prefix(os.path.basename(path)),
                               suffix=".tmp", dir=os.path.dirname(path))
  IN_PROGRESS.add(temporary)
  try:
    write(temporary)
    plain_permissions(temporary)
    if replace and os.path.lexists(path):
      _swap_folder(temporary, path)
    else:
      os.rename(temporary, path)
  except BaseException as error:
    shutil.rmtree(temporary, ignore_errors=True)
    if isinstance(error, OSError):  # a full disk, say: the user knows their path
      raise OSError(error.errno, error.strerror or str(error), path) from None
    raise
  finally:
    IN_PROGRESS.discard(temporary)
  return path


def _swap_folder(temporary, path):
  """Puts the folder `temporary` where `path` is: a link or file there removed, a folder
  there renamed aside (a temporary of this process: a kill in between leaves it for the
  next write to remove) and removed once the new one is in place."""
  if os.path.islink(path) or not os.path.isdir(path):
    os.remove(path)
    os.rename(temporary, path)
    return
  aside = tempfile.mkdtemp(prefix=destinations.temporary_prefix(os.path.basename(path)),
                           suffix=".tmp", dir=os.path.dirname(path))
  IN_PROGRESS.add(aside)
  try:
    os.rename(path, aside)  # onto the empty folder mkdtemp made
    os.rename(temporary, path)
    shutil.rmtree(aside, ignore_errors=True)
  finally:
    IN_PROGRESS.discard(aside)


def file_identity(path) -> str:
  """SIZE:MTIME_NS of a file: what tells a file rewritten since from the one seen then,
  without reading it (make's rule)."""
  status = os.stat(path)
  return f"{status.st_size}:{status.st_mtime_ns}"


def strict_json(value):
  """`value` with every NaN or infinite float replaced by None (JSON's null): JSON has no
  such numbers, and Python's `Infinity` in a file breaks every other reader."""
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, dict):
    return {key: strict_json(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [strict_json(item) for item in value]
  return value


def json_text(value, **options) -> str:
  """`value` as strict JSON (strict_json), with json.dumps' `options`."""
  return json.dumps(strict_json(value), allow_nan=False, **options)


def read_json(path, description, hint="", missing_ok=False, max_bytes=None, max_depth=None):
  """The JSON document at `path`: InputError `PATH: no such DESCRIPTION (HINT)` when it is
  missing (None with `missing_ok`), `PATH: unreadable DESCRIPTION (why)` when it is not
  JSON. A file a user may hand in from anywhere is read with bounds: more than `max_bytes`
  bytes is refused before it is parsed, and lists and objects nested deeper than
  `max_depth` (nesting_depth) once it is, as is any nesting deep enough to exhaust Python's
  recursion while parsing."""
  try:
    with open(path, "rb") as file:
      data = file.read() if max_bytes is None else file.read(max_bytes + 1)
  except FileNotFoundError:
    if missing_ok:
      return None
    raise InputError(f"{path}: no such {description}" + (f" ({hint})" if hint else "")) from None
  except OSError as error:
    raise InputError(f"{path}: unreadable {description} ({error})") from None
  if max_bytes is not None and len(data) > max_bytes:
    raise InputError(f"{path}: {description} larger than {max_bytes} bytes, more than any "
                     f"{description} holds")
  try:
    value = json.loads(data.decode("utf-8"))
  except RecursionError:
    raise InputError(f"{path}: unreadable {description} (nested too deeply)") from None
  except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
    raise InputError(f"{path}: unreadable {description} ({error})") from None
  if max_depth is not None and nesting_depth(value, max_depth) > max_depth:
    raise InputError(f"{path}: {description} nests lists and objects deeper than "
                     f"{max_depth} levels")
  return value


def nesting_depth(value, limit=None) -> int:
  """How deep lists and objects nest in a parsed JSON `value` (a scalar: 0, [] and [1]: 1,
  {"a": [1]}: 2), counted level by level without recursion, and only up to `limit` + 1."""
  depth, level = 0, [value]
  while limit is None or depth <= limit:
    containers = [item for item in level if isinstance(item, (dict, list))]
    if not containers:
      break
    depth += 1
    level = [item for container in containers
             for item in (container.values() if isinstance(container, dict) else container)]
  return depth


LOCK_NAME = ".lock"


class FolderLock:
  """An exclusive lock on a folder, held while one process works in it (a training run's
  WORKDIR): FOLDER/.lock, locked with flock(2). The kernel drops the lock of a process that
  dies, however it dies, so a lock left by a killed run is free at once; the file records
  the holder's pid and host for the refusal's message. A folder without the file is free.

  `acquire` makes the folder if it is missing; `release` removes the file, and the folder
  again when it made it and nothing else was written there. After locking, the file is
  checked to still be the one at FOLDER/.lock: a releasing holder may have removed it
  between our open and our lock, and then we lock the new one instead.
  """

  def __init__(self, folder, what="folder"):
    self.folder = os.path.abspath(os.fspath(folder))
    self.path = os.path.join(self.folder, LOCK_NAME)
    self._what = what
    self._handle = None
    self._made = []  # the folders acquire made, innermost first

  def acquire(self):
    import fcntl
    import socket

    if os.path.exists(self.folder) and not os.path.isdir(self.folder):
      raise InputError(f"{self.folder}: exists and is not a folder")
    missing = self.folder
    while not os.path.exists(missing):
      self._made.append(missing)
      missing = os.path.dirname(missing)
    os.makedirs(self.folder, exist_ok=True)
    while True:
      handle = open(self.path, "a+", encoding="utf-8")
      try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InputError(f"{self.folder}: {self._what} in use by {holder}; wait for it to "
                         "end or choose another folder") from None
      try:
        current = os.stat(self.path)
      except FileNotFoundError:
        current = None
      if current is not None and os.path.samestat(current, os.fstat(handle.fileno())):
        break
      handle.close()  # the holder removed the file as we opened it: lock the new one
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    self._handle = handle
    return self

  def release(self):
    if self._handle is None:
      return
    os.remove(self.path)  # while locked, so no one else holds the file removed
    self._handle.close()
    self._handle = None
    for folder in self._made:
      if os.listdir(folder):
        break
      os.rmdir(folder)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
