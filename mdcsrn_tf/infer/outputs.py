"""Which files `mdcsrn-sr` reads and where it writes each one (infer/predict.py).

Inputs are files, folders (their .nii/.nii.gz files, the subfolders' too with --recursive;
hidden names skipped, among them the temporary files of a killed write) and quoted glob
patterns (`'/data/HCP/*/T1w/T1w_acpc_dc_restore.nii.gz'`, `**` crossing folders). With
--out_dir each output is named by its input's subject name (naming.subject_names: the first
part of the input paths that differs, HCP's subject folder) or, with --out_layout mirror,
placed at the input's path below the folders all inputs share. Beside each output (and
each uncertainty map) goes its JSON sidecar, BIDS-style: the image's name with .json
(sr.nii.gz -> sr.json). The output folders are made when missing; an output or sidecar an
earlier run left is replaced only with --overwrite, and never a file another output of the
run, or an input's own sidecar, is.
"""
import contextlib
import glob
import os

from mdcsrn_tf import destinations
from mdcsrn_tf.data import naming, nifti
from mdcsrn_tf.errors import InputError

OUT_LAYOUTS = ("names", "mirror")
GLOB_CHARACTERS = frozenset("*?[")


def _tagged(name, tag) -> str:
  """NAME.nii.gz -> NAME<tag>.nii.gz (.nii alike)."""
  name = os.fspath(name)
  return f"{naming.strip_nifti_suffix(name)}{tag}{naming.nifti_suffix(name)}"


def _sr_name(name) -> str:
  return _tagged(name, "_sr")


def _nifti_files(folder, recursive):
  """The .nii/.nii.gz files in `folder` (and its subfolders when `recursive`), sorted;
  hidden files and folders are skipped, among them the temporary files of a killed write."""
  found = []
  for root, folders, names in os.walk(folder):
    folders[:] = sorted(f for f in folders if not f.startswith(".")) if recursive else []
    found += [os.path.join(root, n) for n in names
              if nifti.is_nifti_path(n) and not n.startswith(".")]
  return sorted(found)


def uncertainty_path(output) -> str:
  """Where test-time augmentation's uncertainty map of `output` goes: beside it, _uncertainty
  before the suffix (sr.nii.gz -> sr_uncertainty.nii.gz)."""
  return _tagged(output, "_uncertainty")


def with_uncertainty(pairs, passes=1) -> tuple:
  """(`pairs` and, with test-time augmentation (`passes` > 1), each input with its output's
  uncertainty map: every path to check and write; {output: its uncertainty map})."""
  maps = {output: uncertainty_path(output) for _, output in pairs} if passes > 1 else {}
  return list(pairs) + [(source, maps[output]) for source, output in pairs if maps], maps


def sidecar_path(output) -> str:
  """The JSON sidecar of an output image: its name with .json for .nii[.gz]."""
  return naming.strip_nifti_suffix(os.fspath(output)) + ".json"


def plan_sidecars(pairs, others=()) -> dict:
  """{output: its sidecar} of every (input, output) of `pairs` (the images and their
  uncertainty maps); InputError, before anything is written, when a sidecar would be a
  file the run writes already (an output, the report in `others`, another sidecar:
  compared by resolved paths) or an input's own sidecar, a scan's BIDS record beside it,
  which no flag replaces."""
  sidecars = {output: sidecar_path(output) for _, output in pairs}
  taken = {os.path.realpath(path): path for path in [*sidecars, *others]}
  records = {os.path.realpath(sidecar_path(source)): source for source, _ in pairs}
  inputs = {os.path.realpath(source) for source, _ in pairs}
  for output, sidecar in sidecars.items():
    key = os.path.realpath(sidecar)
    if os.path.realpath(output) in inputs:  # refused as such by nifti.check_output_path
      continue
    if key in records:
      raise InputError(f"{sidecar}: the sidecar of {output} would replace the sidecar of the "
                       f"input {records[key]}; name the output apart from its input")
    if key in taken:
      raise InputError(f"{sidecar}: the sidecar of {output} would also be {taken[key]}, "
                       "written by this run; name the outputs apart")
    taken[key] = sidecar
  return sidecars


def expand_inputs(paths, recursive=False) -> list:
  """The input files of the command line's paths: a file as it is, a folder's NIfTI files
  (with its subfolders' when `recursive`), a quoted glob pattern's matches (`**` crosses
  folders); InputError for a folder or pattern that finds nothing."""
  inputs = []
  for path in paths:
    if os.path.isdir(path):
      found = _nifti_files(path, recursive)
      where = "folder and its subfolders hold" if recursive else "folder holds"
      if not found:
        raise InputError(f"{path}: {where} no .nii or .nii.gz file (hidden ones skipped)")
      inputs += found
    elif not os.path.exists(path) and GLOB_CHARACTERS & set(path):
      found = sorted(p for p in glob.glob(path, recursive=True)
                     if nifti.is_nifti_path(p) and not os.path.basename(p).startswith("."))
      if not found:
        raise InputError(f"{path}: the pattern matches no .nii or .nii.gz file")
      inputs += found
    else:
      inputs.append(path)
  if not inputs:
    raise InputError("no input given")
  return inputs


def plan_outputs(paths, out_dir=None, recursive=False, layout="names") -> list:
  """[(input, output)] from the command line's paths: INPUT OUTPUT, or inputs (files,
  folders, glob patterns) with --out_dir. Layout "names": OUT_DIR/<name>_sr.nii.gz with
  each input's subject name (naming.subject_names: HCP's subject folder); "mirror": the
  inputs' paths below the folders they share, recreated under OUT_DIR."""
  if out_dir is None:
    if len(paths) != 2:
      raise InputError("give INPUT OUTPUT, or inputs (files, folders or a quoted glob "
                       "pattern) with --out_dir DIR")
    return [tuple(paths)]
  destinations.check_output_folder(out_dir, "--out_dir")
  inputs = expand_inputs(paths, recursive)
  names = naming.subject_names(inputs)
  if layout == "names":
    return [(path, os.path.join(out_dir, f"{name}_sr{naming.nifti_suffix(path)}"))
            for path, name in zip(inputs, names)]
  relative = naming.relative_parts(inputs)
  return [(path, os.path.join(out_dir, *parts[:-1], _sr_name(parts[-1])))
          for path, parts in zip(inputs, relative)]


def refuse_existing(pairs, overwrite=False, out_dir=None):
  """InputError, before anything is made, when an output of `pairs` exists already and
  `overwrite` is off: no file is replaced unasked, neither an earlier run's result nor a
  scan named as OUTPUT by mistake (`mdcsrn-sr A B` where --out_dir was meant). An output
  that is an input (by its resolved path) is left to nifti.check_output_path, which refuses
  it whatever `overwrite` says; the rule is destinations.refuse_existing's."""
  inputs = {os.path.realpath(source) for source, _ in pairs}
  instead = "choose another --out_dir" if out_dir is not None else "name another OUTPUT"
  if out_dir is not None and len(inputs) == 1:  # a job per subject, all into one folder?
    instead += (" (a single input is named by its file name alone: give each job's "
                "INPUT OUTPUT instead)")
  destinations.refuse_existing([output for _, output in pairs
                                if os.path.realpath(output) not in inputs], overwrite,
                               instead=instead)


@contextlib.contextmanager
def output_folders(pairs):
  """Makes the missing output folders of `pairs` (--out_dir's) for the block; if the block
  fails (a refused input, a stopped run), the ones it made that are still empty go again,
  so that a run that wrote nothing leaves nothing."""
  made = []
  for folder in sorted({os.path.dirname(os.path.abspath(output)) for _, output in pairs}):
    missing, parent = [], folder
    while not os.path.isdir(parent):
      missing.append(parent)
      parent = os.path.dirname(parent)
    os.makedirs(folder, exist_ok=True)
    made.extend(reversed(missing))
  try:
    yield
  except BaseException:
    for folder in reversed(made):  # the deepest first
      try:
        os.rmdir(folder)
      except OSError:  # not empty: it holds what the run wrote
        pass
    raise
