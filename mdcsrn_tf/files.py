"""Writing files so that nothing is ever half-written: a temporary file (or folder) beside
the destination, renamed into place once complete, with the permissions a plainly created
file (or folder) would get from the user's umask. Outputs, caches, model cards, manifests,
results and SavedModels all go through here.
"""
import json
import os
import shutil
import tempfile

from mdcsrn_tf.errors import InputError


def current_umask() -> int:
  """The process' umask (reading it means setting it, so it is set back at once)."""
  current = os.umask(0)
  os.umask(current)
  return current


def write_atomically(path, write):
  """Calls `write(temporary_path)`, then renames the result onto `path`.

  The temporary file lives in the destination folder (a rename across file systems
  is not atomic) and keeps the destination's suffix, since writers such as nibabel
  choose the format from it. The result gets the permissions of a plainly created file
  (0666 less the umask), not mkstemp's private 0600.
  """
  path = os.fspath(path)
  folder, name = os.path.split(os.path.abspath(path))
  suffix = ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]
  handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=folder)
  os.close(handle)
  try:
    write(temporary)
    os.chmod(temporary, 0o666 & ~current_umask())
    os.replace(temporary, path)
  except BaseException as error:
    if os.path.exists(temporary):
      os.remove(temporary)
    if isinstance(error, OSError):  # the user knows their path, not the hidden temporary
      raise OSError(error.errno, error.strerror or str(error), path) from None
    raise


def write_text_atomically(path, text: str):
  """Writes `text` (UTF-8, newlines as given) to `path` through write_atomically."""

  def write(temporary):
    with open(temporary, "w", encoding="utf-8", newline="") as file:
      file.write(text)

  write_atomically(path, write)


def plain_permissions(root):
  """Gives a folder tree the permissions plainly made files and folders get (0666 and 0777
  less the umask): mkdtemp makes its folder 0700, which hides a SavedModel from a server
  running as another user, and TensorFlow makes its subfolders 0755 whatever the umask."""
  umask = current_umask()
  for folder, _, names in os.walk(root):
    os.chmod(folder, 0o777 & ~umask)
    for name in names:
      os.chmod(os.path.join(folder, name), 0o666 & ~umask)


def write_folder_atomically(path, write):
  """Calls `write(temporary_folder)`, then renames the folder onto `path` (which must not
  exist), with plain permissions; the temporary folder is removed on any failure."""
  path = os.path.abspath(os.fspath(path))
  temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=os.path.dirname(path))
  try:
    write(temporary)
    plain_permissions(temporary)
    os.rename(temporary, path)
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise
  return path


def read_json(path, description, hint="", missing_ok=False):
  """The JSON document at `path`: InputError `PATH: no such DESCRIPTION (HINT)` when it is
  missing (None with `missing_ok`), `PATH: unreadable DESCRIPTION (why)` when it is not
  JSON."""
  try:
    with open(path, encoding="utf-8") as file:
      return json.load(file)
  except FileNotFoundError:
    if missing_ok:
      return None
    raise InputError(f"{path}: no such {description}" + (f" ({hint})" if hint else "")) from None
  except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError included
    raise InputError(f"{path}: unreadable {description} ({error})") from None
