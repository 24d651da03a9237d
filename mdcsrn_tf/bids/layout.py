"""The T1w images of a BIDS dataset, read from its folder layout (BIDS 1.9, "Folder
structure" and "Filename template": sub-<label>[/ses-<label>]/anat/
sub-<label>[_ses-<label>][_<key>-<value>...]_T1w.nii[.gz]).

A small reader of the layout instead of pybids: finding one suffix in anat/ needs the
file-name rules only, and pybids would index the whole dataset (every modality, every
sidecar) into a database before answering, and pull pandas, SQLAlchemy and formulaic into
the project's lock. Hidden files are skipped, as BIDS validators skip them.
"""
import dataclasses
import os
import re
import sys

from mdcsrn_tf.data import nifti
from mdcsrn_tf.errors import InputError, one_line

LABEL = re.compile(r"^[A-Za-z0-9]+$")  # BIDS labels are alphanumeric
SUFFIX = "T1w"


@dataclasses.dataclass(frozen=True)
class Image:
  """One T1w image: its participant and session labels ("" without sessions), the path,
  and its name without the suffix and extension (sub-01_ses-a_run-1)."""
  participant: str
  session: str
  path: str
  stem: str

  @property
  def folder(self) -> str:
    """Its anat/ folder relative to the dataset: sub-01[/ses-a]/anat."""
    parts = [f"sub-{self.participant}"] + ([f"ses-{self.session}"] if self.session else [])
    return os.path.join(*parts, "anat")


def check_dataset(bids_dir) -> str:
  """The absolute dataset folder; InputError unless it is a folder with a
  dataset_description.json, as every BIDS dataset has."""
  path = os.path.abspath(os.fspath(bids_dir))
  if not os.path.isdir(path):
    raise InputError(f"{bids_dir}: no such folder")
  if not os.path.isfile(os.path.join(path, "dataset_description.json")):
    raise InputError(f"{bids_dir}: not a BIDS dataset (no dataset_description.json)")
  return path


def _labels(folder, prefix, warn=None) -> list:
  """The sorted labels of the visible `prefix`-<label> folders in `folder`; a folder whose
  label is not a BIDS label (sub-01_old, a backup, say) is passed over, and `warn` (when
  given) is called with a line naming it."""
  labels = sorted(name[len(prefix):] for name in os.listdir(folder)
                  if name.startswith(prefix) and not name.startswith(".")
                  and os.path.isdir(os.path.join(folder, name)))
  for label in labels:
    if not LABEL.match(label) and warn is not None:
      warn(one_line(f"warning: {folder}: folder {prefix + label} skipped: {label} is not a "
                    "BIDS label (letters and digits only); the other folders go on"))
  return [label for label in labels if LABEL.match(label)]


def strip_label(label, prefix) -> str:
  """`label` without its `prefix` (fMRIPrep takes 01 and sub-01 alike); InputError when
  what remains is not an alphanumeric BIDS label."""
  bare = label[len(prefix):] if label.startswith(prefix) else label
  if not LABEL.match(bare):
    raise InputError(f"{label!r} is not a BIDS label (letters and digits only)")
  return bare


def _t1w_images(root, participant, session) -> list:
  image = Image(participant, session, "", "")
  folder = os.path.join(root, image.folder)
  if not os.path.isdir(folder):
    return []
  start = f"sub-{participant}_" + (f"ses-{session}_" if session else "")
  found = {}
  for name in sorted(os.listdir(folder)):
    stem = name.split(".", 1)[0]
    if (name.startswith(start) and stem.endswith(f"_{SUFFIX}") and nifti.is_nifti_path(name)
        and os.path.isfile(os.path.join(folder, name))):
      path = os.path.join(folder, name)
      if stem in found:  # x.nii and x.nii.gz: one image's entities, one output name
        raise InputError(f"{found[stem].path}: the same image as {path} (one name, two "
                         "files); keep one of them")
      found[stem] = Image(participant, session, path, stem[:-len(SUFFIX) - 1])
  return list(found.values())


def _warn(line):
  print(line, file=sys.stderr)


def find_t1w(bids_dir, participant_labels=None, session_labels=None, warn=_warn) -> dict:
  """{participant: [Image]} of the participants asked (all without labels), in the
  sessions asked (all without labels). InputError for a folder that is not BIDS, a label
  asked that is not a BIDS label or names no participant or session, or an asked
  participant without a T1w image. A sub-/ses- folder whose label is not a BIDS label is
  passed over, with a line to `warn` naming it (None: silently), so that one misnamed
  folder does not stop a whole dataset."""
  for flag, labels in (("participant", participant_labels), ("session", session_labels)):
    if labels is not None and not labels:
      raise InputError(f"--{flag}_label needs at least one label")
  root = check_dataset(bids_dir)
  participants = _labels(root, "sub-", None if participant_labels else warn)
  if not participants:
    raise InputError(f"{bids_dir}: not a BIDS dataset (no sub-<label> folder)")
  asked = [strip_label(label, "sub-") for label in participant_labels or participants]
  unknown = [label for label in asked if label not in participants]
  if unknown:
    raise InputError(f"{bids_dir}: no participant {', '.join(unknown)} (participants: "
                     f"{', '.join(participants)})")
  sessions_asked = [strip_label(label, "ses-") for label in session_labels or ()]
  images, sessions_seen = {}, set()
  for participant in dict.fromkeys(asked):
    sessions = _labels(os.path.join(root, f"sub-{participant}"), "ses-", warn) or [""]
    sessions_seen.update(sessions)
    chosen = [s for s in sessions if not sessions_asked or s in sessions_asked]
    images[participant] = [image for session in chosen
                           for image in _t1w_images(root, participant, session)]
  unknown = [label for label in sessions_asked if label not in sessions_seen]
  if unknown:
    raise InputError(f"{bids_dir}: no session {', '.join(unknown)} in the participants asked "
                     f"(sessions: {', '.join(sorted(sessions_seen - {''})) or 'none'})")
  for participant, found in images.items():
    if not found and (participant_labels or not sessions_asked):
      raise InputError(f"{os.path.join(root, f'sub-{participant}')}: no T1w image "
                       f"(anat/*_{SUFFIX}.nii[.gz]"
                       + (f" in sessions {', '.join(sessions_asked)})" if sessions_asked
                          else ")"))
  return {participant: found for participant, found in images.items() if found}
