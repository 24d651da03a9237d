"""Subject names from file paths: the one rule by which mdcsrn-sr's --out_dir, the
evaluation's rows and validation's subjects tell volumes apart.

HCP keeps every subject's scan under the same file name
(`<subject>/T1w/T1w_acpc_dc_restore.nii.gz`), so a base name says nothing about whose scan
it is. A volume's name is the first component of its path that differs among the paths
named together (after the folders they all share): the subject folder in HCP's layout
(`100206`), the file name without its .nii/.nii.gz suffix for files in one folder. When that
still leaves two volumes with one name (two sessions in one BIDS subject folder), every
volume is named by its whole path below the shared folders, components joined by "_"
(`sub-01_ses-1_anat_sub-01_T1w`).
"""
import os

from mdcsrn_tf.data.nifti import NIFTI_SUFFIXES
from mdcsrn_tf.errors import InputError


def nifti_suffix(name) -> str:
  """".nii.gz" or ".nii" when `name` ends in it, else ""."""
  return next((s for s in sorted(NIFTI_SUFFIXES, key=len, reverse=True) if name.endswith(s)),
              "")


def strip_nifti_suffix(name) -> str:
  """`name` without a trailing .nii.gz or .nii."""
  return name[:len(name) - len(nifti_suffix(name))]


def relative_parts(paths) -> list:
  """Each path's components below the folders all of `paths` share."""
  parts = [os.path.abspath(os.fspath(path)).split(os.sep) for path in paths]
  shared = 0
  while (all(len(p) > shared + 1 for p in parts)
         and len({p[shared] for p in parts}) == 1):
    shared += 1
  return [p[shared:] for p in parts]


def subject_names(paths) -> list:
  """One name per path, unique among `paths` (the module docstring gives the rule);
  InputError when two paths name the same file or differ only in their .nii/.nii.gz
  suffix."""
  paths = [os.fspath(path) for path in paths]
  seen = {}
  for path in paths:
    key = os.path.abspath(path)
    if key in seen:
      raise InputError(f"{path}: named twice")
    seen[key] = path
  relative = relative_parts(paths)
  names = [strip_nifti_suffix(parts[0]) for parts in relative]
  if len(set(names)) == len(names):
    return names
  names = ["_".join(parts[:-1] + [strip_nifti_suffix(parts[-1])]) for parts in relative]
  first_of = {}
  for path, name in zip(paths, names):
    if name in first_of:
      raise InputError(f"{first_of[name]} and {path} differ only in their suffix; rename one")
    first_of[name] = path
  return names


def unique_names(names, paths) -> list:
  """`names` when no two are alike, else subject_names(paths): a hand-written manifest may
  give two volumes one name."""
  names = list(names)
  return names if len(set(names)) == len(names) else subject_names(paths)


def naming_note(paths, names) -> str | None:
  """A line saying how `names` were made from `paths`, or None when each is its file's
  own name (nothing to explain)."""
  if all(name == strip_nifti_suffix(os.path.basename(os.fspath(path)))
         for path, name in zip(paths, names)):
    return None
  path, name = os.fspath(paths[0]), names[0]
  return (f"{len(names)} volumes named by the first part of their paths that differs "
          f"(e.g. {name} for {path})")
