"""The BIDS derivatives dataset `mdcsrn-bids` writes (BIDS 1.9, "BIDS Derivatives"):

  OUTPUT_DIR/dataset_description.json       DatasetType "derivative", GeneratedBy with the
                                            weights' SHA-256
  OUTPUT_DIR/sub-01.html                    the participant's QC report
  OUTPUT_DIR/sub-01[/ses-a]/anat/sub-01[_ses-a]..._desc-mdcsrn_T1w.nii.gz
  OUTPUT_DIR/sub-01[/ses-a]/anat/sub-01[_ses-a]..._desc-mdcsrn_T1w.json   its sidecar
  OUTPUT_DIR/sub-01[/ses-a]/anat/sub-01[_ses-a]..._desc-uncertainty_T1w.nii.gz   with --tta
                                            N > 1: the passes' per-voxel standard deviation
  OUTPUT_DIR/sub-01[/ses-a]/anat/sub-01[_ses-a]..._desc-uncertainty_T1w.json     its sidecar

Every file is written atomically, so a file that exists is complete: a participant whose
images, sidecars and report all exist is done. One folder holds the outputs of one set of
weights and one set of the flags that change the voxels (the grid, the tiling): a folder
whose dataset_description.json names others is refused, so that outputs never mix.
"""
import json
import os

import mdcsrn_tf
from mdcsrn_tf.bids.layout import Image
from mdcsrn_tf import destinations
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import read_json, write_text_atomically
from mdcsrn_tf.infer import provenance
from mdcsrn_tf.infer.provenance import LEFT_OUT, PIPELINE

DESCRIPTION = "mdcsrn"  # the desc-<label> entity of every output
UNCERTAINTY = "uncertainty"  # the desc-<label> of test-time augmentation's uncertainty map
BIDS_VERSION = "1.9.0"


def output_stem(image: Image, description=DESCRIPTION) -> str:
  """sub-01[_ses-a]..._desc-mdcsrn_T1w: desc is the last entity before the suffix."""
  return f"{image.stem}_desc-{description}_T1w"


def output_path(output_dir, image: Image, description=DESCRIPTION) -> str:
  return os.path.join(output_dir, image.folder, output_stem(image, description) + ".nii.gz")


def sidecar_path(output_dir, image: Image, description=DESCRIPTION) -> str:
  return os.path.join(output_dir, image.folder, output_stem(image, description) + ".json")


def report_path(output_dir, participant) -> str:
  return os.path.join(output_dir, f"sub-{participant}.html")


def descriptions(passes=1) -> tuple:
  """The desc labels of an image's outputs: the uncertainty map too with test-time
  augmentation (`passes` > 1)."""
  return (DESCRIPTION, UNCERTAINTY) if passes > 1 else (DESCRIPTION,)


def image_done(output_dir, image: Image, passes=1) -> bool:
  """Whether the image's outputs and their sidecars (written after them) all exist."""
  return all(os.path.isfile(sidecar_path(output_dir, image, label))
             and os.path.isfile(output_path(output_dir, image, label))
             for label in descriptions(passes))


def is_done(output_dir, participant, images, with_report=True, passes=1) -> bool:
  """Whether every output of a participant exists (its report, written last, too)."""
  return (all(image_done(output_dir, image, passes) for image in images)
          and (not with_report or os.path.isfile(report_path(output_dir, participant))))


def description(weights_record, settings: dict) -> dict:
  """The dataset's description; GeneratedBy records the weights' SHA-256 and `settings`,
  the flags that change the output's voxels (provenance.output_settings)."""
  return {"Name": "mDCSRN super-resolution of T1w images", "BIDSVersion": BIDS_VERSION,
          "DatasetType": "derivative",
          "GeneratedBy": [{"Name": PIPELINE, "Version": mdcsrn_tf.__version__,
                           "Description": f"{weights_record['model']} weights "
                                          f"{os.path.basename(weights_record['file'])}",
                           "WeightsSHA256": weights_record["sha256"],
                           "Settings": settings}]}


def check_output_dir(output_dir, bids_root, weights_sha256, settings: dict) -> str:
  """The absolute output folder; InputError when it is the dataset itself or inside a
  participant's folder (compared by resolved paths: a symbolic link into the raw dataset
  is refused as the folder named directly is), when its parent does not exist (except
  BIDS_DIR/derivatives, the place BIDS gives derivatives, which is made when missing;
  elsewhere a missing parent is more likely a mistyped path), or when it holds the outputs
  of another pipeline, of other weights or of other `settings` (provenance.output_settings)."""
  destinations.check_output_folder(output_dir, "OUTPUT_DIR")
  path = os.path.abspath(os.fspath(output_dir))
  resolved, root = os.path.realpath(path), os.path.realpath(bids_root)
  if resolved == root or (destinations.inside(resolved, root)
                          and os.path.relpath(resolved, root).startswith("sub-")):
    raise InputError(f"{output_dir}: the derivatives must not be written into the raw "
                     "dataset's own folders (use e.g. BIDS_DIR/derivatives/mdcsrn)")
  parent = os.path.dirname(resolved)
  if not os.path.isdir(parent) and parent != os.path.join(root, "derivatives"):
    raise InputError(f"{output_dir}: its parent folder does not exist")
  existing = read_json(os.path.join(path, "dataset_description.json"),
                       "dataset description", missing_ok=True)
  if existing is not None:
    generated = existing.get("GeneratedBy") if isinstance(existing, dict) else None
    generated = generated[0] if isinstance(generated, list) and generated else {}
    generated = generated if isinstance(generated, dict) else {}
    if generated.get("Name") != PIPELINE:
      raise InputError(f"{output_dir}: holds the derivatives of another pipeline "
                       f"({generated.get('Name') or 'unnamed'}); choose a new folder")
    if generated.get("WeightsSHA256") != weights_sha256:
      raise InputError(f"{output_dir}: holds derivatives of other weights (SHA-256 "
                       f"{str(generated.get('WeightsSHA256'))[:12]}...); choose a new folder")
    earlier = generated.get("Settings", settings)  # folders from before settings were kept
    if earlier != settings:
      earlier, now = {**LEFT_OUT, **earlier}, {**LEFT_OUT, **settings}
      differ = ", ".join(f"--{name} {earlier.get(name)} there, {value} now"
                         for name, value in now.items() if earlier.get(name) != value)
      raise InputError(f"{output_dir}: holds derivatives made with other settings ({differ}); "
                       "give the same flags, or choose a new folder")
  return path


def check_destinations(output_dir, images: dict, with_report=True, passes=1):
  """InputError for an output of `images` ({participant: [Image]}) that a symbolic link
  inside OUTPUT_DIR leads out of it (into the raw dataset, say: every file is written
  inside OUTPUT_DIR's resolved folder), or, while OUTPUT_DIR holds no
  dataset_description.json yet (it is not this pipeline's: nothing in it is a derivative
  to resume), that is a file there already: no file is replaced unasked."""
  paths = [path for of_participant in images.values() for image in of_participant
           for label in descriptions(passes)
           for path in (output_path(output_dir, image, label),
                        sidecar_path(output_dir, image, label))]
  paths += [report_path(output_dir, p) for p in images] if with_report else []
  for path in paths:
    if not destinations.inside(path, output_dir):
      raise InputError(f"{path}: a symbolic link leads it out of {output_dir} (to "
                       f"{os.path.realpath(path)}); the derivatives are written inside "
                       "OUTPUT_DIR only")
  found = [path for path in paths if destinations.existing(path)]
  if found and not os.path.isfile(os.path.join(output_dir, "dataset_description.json")):
    raise InputError(f"{found[0]}: exists already, and {output_dir} holds no "
                     "dataset_description.json: not a derivatives folder of this pipeline "
                     "to resume; choose a new folder")


def write_description(output_dir, weights_record, settings: dict):
  """dataset_description.json, created once: of parallel jobs sharing a new folder the
  first one's stays, and the others' check_output_dir then holds them to it."""
  path = os.path.join(output_dir, "dataset_description.json")
  try:
    write_text_atomically(path, json.dumps(description(weights_record, settings), indent=2)
                          + "\n", exclusive=True)
  except FileExistsError:
    pass


def sidecar(image: Image, output, bids_root, weights_record, command, domain=(), settings=None,
            passes=1) -> dict:
  """The sidecar of one output: its BIDS source, then what every output's sidecar records
  (provenance.output_sidecar: the input and its SHA-256, the weights, their acquisition and
  checksum, the grid change, the settings, the command, the input against the training
  domain and, with test-time augmentation, the passes and the uncertainty map)."""
  return {"Description": "T1w image super-resolved by mDCSRN",
          "Sources": [f"bids:raw:{os.path.relpath(image.path, bids_root)}"],
          **provenance.output_sidecar(image.path, output, weights_record, command, domain,
                                      settings, passes,
                                      output_path("", image, UNCERTAINTY))}


def recorded_domain(output_dir, image: Image):
  """What the image's sidecar records of its input against the training domain (None for
  a sidecar from before it)."""
  found = read_json(sidecar_path(output_dir, image), "sidecar", missing_ok=True)
  return found.get("TrainingDomain") if isinstance(found, dict) else None


def write_sidecars(output_dir, image, bids_root, weights_record, command, domain=(),
                   settings=None, passes=1):
  """The sidecars of an image's outputs, the uncertainty map's first."""
  output = output_path(output_dir, image)
  if passes > 1:
    found = provenance.uncertainty_sidecar(image.path, output, passes)
    provenance.write_json(sidecar_path(output_dir, image, UNCERTAINTY), {
        "Description": found["Description"],
        "Sources": [f"bids:raw:{os.path.relpath(image.path, bids_root)}"], **found})
  provenance.write_json(sidecar_path(output_dir, image), sidecar(
      image, output, bids_root, weights_record, command, domain, settings, passes))
