"""Flagfiles: `--flagfile=PATH` on a command line, or inside another flagfile, replaced by
the flags the file holds, found as docs/training.md ("Where paths are found") says.
cli.parse expands them before the flags are read."""
import os

from mdcsrn_tf.errors import InputError

# The project's folder: its flags/ holds the recipes that `--flagfile=flags/NAME.cfg` finds
# from any working directory (a source checkout or an editable install).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_flagfile(path, including=None) -> str:
  """Where the flagfile `path` is: relative to the folder of the flagfile `including` it,
  or, named on the command line, relative to the working directory; then relative to the
  project folder (so `--flagfile=flags/gan.cfg` works from anywhere); InputError when none
  has it."""
  if os.path.isabs(path):
    places = [path]
  else:
    first = os.path.dirname(including) if including else os.getcwd()
    places = [os.path.join(first, path), os.path.join(PROJECT_ROOT, path)]
  for place in places:
    if os.path.isfile(place):
      return place
  where = f" (named in {including})" if including else ""
  raise InputError(f"{path}: no such flagfile{where}")


def expand_flagfiles(argv, including=None, seen=()) -> list:
  """`argv` with each `--flagfile=PATH` replaced by the flags the file holds, in place (so
  later flags override it), nested flagfiles found relative to the file naming them
  (find_flagfile). Lines of a flagfile that do not start with "-" (comments, blank lines)
  are skipped. Other paths inside a flagfile stay as written: relative to the working
  directory, as on the command line."""
  expanded, items = [], iter(argv)
  for item in items:
    if item in ("--flagfile", "-flagfile"):
      item = "--flagfile=" + next(items, "")
    if not item.startswith(("--flagfile=", "-flagfile=")):
      expanded.append(item)
      continue
    path = find_flagfile(item.split("=", 1)[1], including)
    if path in seen:
      raise InputError(f"{path}: flagfile includes itself")
    try:
      with open(path, encoding="utf-8") as file:
        lines = [line.strip() for line in file]
    except (OSError, UnicodeDecodeError) as error:
      raise InputError(f"{path}: unreadable flagfile ({error})") from None
    expanded += expand_flagfiles([line for line in lines if line.startswith("-")], path,
                                 (*seen, path))
  return expanded
