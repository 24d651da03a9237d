"""A data set's manifest.json: written and read here, nowhere else (docs/data.md).

{"source": ..., "counts": {split: n}, "subjects": [entry, ...]}, one entry per volume:
{"name", "subject", "path", "split", "shape", "zooms"}, and optionally "mask": a NIfTI on
the volume's grid whose non-zero voxels are where the evaluation also reports its figures
(docs/evaluation.md). Beside it, splits.tsv lists which subject went to which split, for
people; nothing reads it back. `prepare` writes absolute paths; a hand-written manifest may give
paths, the volume's and the mask's, relative to its own folder. Reading checks the
structure entry by entry, so a hand-written manifest's mistake is one line naming the
manifest and the entry, not a KeyError deep inside tf.data. A subject found in two splits
(which would be trained on and then scored as held out) is refused the same way, and so is
one file in two splits under two names: the same resolved path, or a byte-identical copy
at another path (identity.py; only files of equal size are read, and only those whose
sampled blocks agree are hashed whole).
"""
import os

from mdcsrn_tf import destinations, identity
from mdcsrn_tf.data import nifti
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import json_text, read_json, write_text_atomically

SPLITS = ("train", "validation", "evaluation", "test")
FILE_NAME = "manifest.json"
SPLITS_FILE = "splits.tsv"  # beside it: subject, split and file per volume, for people
REQUIRED_TEXT = ("name", "path", "split")
FILE_FIELDS = ("path", "mask")  # relative to the manifest's folder when not absolute


def manifest_path(path) -> str:
  """`path` itself, or FOLDER/manifest.json when `path` is a folder."""
  path = os.fspath(path)
  return os.path.join(path, FILE_NAME) if os.path.isdir(path) else path


def splits_text(entries) -> str:
  """A tab-separated table, split by split in SPLITS' order and by subject within one:
  subject, split, path and mask ("" without one) of every entry."""
  rank = {split: index for index, split in enumerate(SPLITS)}
  rows = sorted(entries, key=lambda e: (rank[e["split"]], str(e.get("subject") or e["name"])))
  lines = ["subject\tsplit\tpath\tmask"] + [
      f"{e.get('subject') or e['name']}\t{e['split']}\t{e['path']}\t{e.get('mask', '')}"
      for e in rows]
  return "\n".join(lines) + "\n"


def check_destination(folder, replace=False):
  """InputError when FOLDER (--out) is not a folder, or already holds a manifest or a
  splits.tsv and `replace` was not asked for (destinations' rule): checked before the
  volumes are read."""
  destinations.check_output_folder(folder, "--out")
  destinations.refuse_existing([os.path.join(folder, name) for name in (FILE_NAME, SPLITS_FILE)],
                               replace, flag="--replace", instead="choose another --out")


def write(folder, entries, source, replace=False) -> dict:
  """Writes FOLDER/manifest.json and, beside it, FOLDER/splits.tsv (splits_text), both
  atomically; returns the manifest."""
  check_destination(folder, replace)
  os.makedirs(folder, exist_ok=True)
  counts = {split: sum(entry["split"] == split for entry in entries) for split in SPLITS}
  manifest = {"source": source, "counts": counts, "subjects": list(entries)}
  write_text_atomically(os.path.join(folder, FILE_NAME), json_text(manifest, indent=1))
  write_text_atomically(os.path.join(folder, SPLITS_FILE), splits_text(entries))
  return manifest


def read(path) -> dict:
  """{split: [entry]} for the four splits, every entry checked; relative paths resolved
  against the manifest's folder. InputError names the manifest and the first bad entry."""
  path = manifest_path(path)
  manifest = read_json(path, "data set manifest", "python -m mdcsrn_tf.data makes one")
  subjects = manifest.get("subjects") if isinstance(manifest, dict) else None
  if not isinstance(subjects, list):
    raise InputError(f"{path}: not a data set manifest (\"subjects\" must be a list of entries)")
  folder = os.path.dirname(os.path.abspath(path))
  by_split = {split: [] for split in SPLITS}
  split_of, read_entries = {}, []
  for index, entry in enumerate(subjects):
    entry = _checked_entry(path, index, entry)
    earlier = split_of.setdefault(entry["subject"], entry["split"])
    if earlier != entry["split"]:
      raise InputError(f"{path}: subject {entry['subject']} is in both the {earlier} and the "
                       f"{entry['split']} split (entry {index}); a subject belongs to one split")
    read_entries.append({**entry, **{key: os.path.join(folder, entry[key])
                                     for key in FILE_FIELDS if key in entry}})
    by_split[entry["split"]].append(read_entries[-1])
  _refuse_shared_files(path, read_entries)
  return by_split


def _refuse_shared_files(path, entries):
  """InputError naming both entries when one file (resolved path or content) is in two
  splits: it would be trained on and scored as held out under two names."""
  shared = identity.first_shared_file([e["path"] for e in entries],
                                      [e["split"] for e in entries])
  if shared is not None:
    first, second = entries[shared.first], entries[shared.second]
    raise InputError(f"{path}: entry {shared.first} ({first['name']}, {first['split']} "
                     f"split) and entry {shared.second} ({second['name']}, "
                     f"{second['split']} split) are one file ({shared.how}); a volume "
                     "belongs to one split")


def _checked_entry(path, index, entry) -> dict:
  where = f"{path}: entry {index}"
  if not isinstance(entry, dict):
    raise InputError(f"{where} is not an object")
  for key in REQUIRED_TEXT:
    if not isinstance(entry.get(key), str) or not entry[key]:
      raise InputError(f"{where} has no \"{key}\"")
  if entry["split"] not in SPLITS:
    raise InputError(f"{where}: split {entry['split']!r} is not one of {', '.join(SPLITS)}")
  if "mask" in entry and (not isinstance(entry["mask"], str) or not entry["mask"]):
    raise InputError(f"{where}: \"mask\" must be the path of a NIfTI file")
  return {**entry, "subject": str(entry.get("subject") or entry["name"])}


def split_entries(path, split) -> list:
  """The entries of one split, each of whose files (volume and mask) exists; InputError
  otherwise."""
  if split not in SPLITS:
    raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
  entries = read(path)[split]
  if not entries:
    raise InputError(f"{manifest_path(path)}: split {split!r} has no volume")
  for entry in entries:
    if not os.path.isfile(entry["path"]):
      raise InputError(f"{entry['path']}: volume of {entry['name']} is missing")
    if "mask" in entry and not os.path.isfile(entry["mask"]):
      raise InputError(f"{entry['mask']}: mask of {entry['name']} is missing")
  return entries


def volume_names(path, splits=("train", "validation")) -> dict:
  """{split: sorted entry names}: which volumes a data set holds, whatever their paths (a
  data set copied to another disk keeps them)."""
  entries = read(path)
  return {split: sorted(entry["name"] for entry in entries[split]) for split in splits}


def check_sizes(entries, factor, patch_size=None):
  """InputError naming the first volume of `entries` too small for the k-space truncation
  by `factor` (nifti.check_size), and, with `patch_size`, when no volume holds one whole
  patch (training would cut patches of padding). Returns the shapes, read from the headers."""
  holds_patch, shapes = False, []
  for entry in entries:
    shape = nifti.open_image(entry["path"]).shape[:3]
    nifti.check_size(entry["path"], shape, factor)
    holds_patch = holds_patch or (patch_size is not None and min(shape) >= patch_size)
    shapes.append(shape)
  if patch_size is not None and entries and not holds_patch:
    raise InputError(f"--patch_size {patch_size} is larger than every training volume (the "
                     f"first: {entries[0]['path']}); choose a patch that fits in them")
  return shapes
