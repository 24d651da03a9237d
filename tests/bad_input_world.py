"""The files test_bad_input.py's cases refer to: Colin27 crops, weights corrupted,
diverged or without a checksum, manifests good and bad, runs already started, masks that
do not fit, headers nibabel refuses, and folders of other pipelines."""
import dataclasses
import gzip
import json
import os
import shutil

import keras
import nibabel as nib
import numpy as np

from mdcsrn_tf import weights
from mdcsrn_tf.models import build_model
from mdcsrn_tf.train.config import TrainConfig
from mdcsrn_tf.weights.card import ModelCard


def save_crop(colin27_crop, path, start=(70, 90, 70)):
  path.parent.mkdir(exist_ok=True)
  return str(colin27_crop(path, start=start))


def build_world(root, colin27_crop, bids_tree):
  """{name: path} of everything the cases refer to, made under ROOT."""
  paths = {"scan": save_crop(colin27_crop, root / "a" / "scan.nii.gz"),
           # another head's crop: a manifest refuses one file in two splits
           "other": save_crop(colin27_crop, root / "b" / "scan.nii.gz", start=(72, 92, 70)),
           "pair": str(root / "pair"), "taken": str(root / "taken.nii.gz"),
           "hidden_only": str(root / "hidden_only"), "absent": str(root / "absent.nii.gz")}
  for name in ("x", "x_sr"):
    save_crop(colin27_crop, root / "pair" / f"{name}.nii.gz")
  paths["earlier_job"] = str(root / "earlier_job")  # its output of another subject's scan
  save_crop(colin27_crop, root / "earlier_job" / "scan_sr.nii.gz")
  os.mkdir(paths["taken"])
  os.mkdir(paths["hidden_only"])
  # what a killed write could leave behind
  open(os.path.join(paths["hidden_only"], ".scan_sr.nii.gz.x1y2.tmp.nii.gz"), "wb").close()
  keras.utils.set_random_seed(12)
  model = build_model("b2u4", identity_init=False)
  paths["weights"] = weights.save_generator(model, root / "gen", ModelCard("b2u4"))
  paths["corrupted"] = str(root / "corrupted")
  data = bytearray(open(paths["weights"] + weights.WEIGHTS_SUFFIX, "rb").read())
  data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
  with open(paths["corrupted"] + weights.WEIGHTS_SUFFIX, "wb") as file:
    file.write(data)
  with open(paths["corrupted"] + weights.CARD_SUFFIX, "w", encoding="utf-8") as file:
    file.write(open(paths["weights"] + weights.CARD_SUFFIX, encoding="utf-8").read())
  # diverged training: NaN weights whose card, checksum included, is in order
  kernel = model.get_layer("first_conv").kernel
  kernel.assign(np.full(kernel.shape, np.nan, np.float32))
  paths["nan_weights"] = weights.save_generator(model, root / "nan", ModelCard("b2u4"))
  # a card written before the acquisition was recorded, naming an input that never existed
  paths["bad_lr_mode"] = str(root / "bad_lr_mode")
  shutil.copy(paths["weights"] + weights.WEIGHTS_SUFFIX, paths["bad_lr_mode"] + weights.WEIGHTS_SUFFIX)
  card = json.load(open(paths["weights"] + weights.CARD_SUFFIX, encoding="utf-8"))
  del card["acquisition"]
  with open(paths["bad_lr_mode"] + weights.CARD_SUFFIX, "w", encoding="utf-8") as file:
    json.dump({**card, "lr_mode": "bicubic"}, file)
  for name, voxels in {"flat": np.ones((8, 9)), "series": np.ones((4, 5, 6, 3)),
                       "nan_volume": np.full((16, 17, 18), np.nan)}.items():
    paths[name] = str(root / f"{name}.nii.gz")
    nib.Nifti1Image(voxels.astype(np.float32), np.eye(4)).to_filename(paths[name])
  write_manifests(root, paths)
  write_masks(root, paths)
  write_reliability_cases(root, paths)
  paths["shipped"] = weights.shipped()["l1"]
  paths["bids"] = bids_tree(root / "bids")
  paths["truncated"] = str(root / "truncated.nii.gz")
  with open(paths["truncated"], "wb") as file:
    file.write(gzip.compress(open(paths["scan"], "rb").read())[:200])
  return paths


def write_manifests(root, paths):
  """Hand-written manifests, good and bad, and a workdir whose run trained b1u8."""
  entries = {"scan": {"name": "scan", "path": paths["scan"], "split": "validation"},
             "nan": {"name": "nan", "path": paths["nan_volume"], "split": "train"},
             "other": {"name": "other", "path": paths["other"], "split": "train"}}
  manifests = {"no_path": [entries["scan"], {"name": "lost", "split": "train"}],
               "subjects_5": 5, "nan_train": [entries["scan"], entries["nan"]],
               "good": [entries["scan"], entries["other"]],
               "other_train": [entries["scan"], {**entries["other"], "name": "other_head"}]}
  for name, subjects in manifests.items():
    paths[name] = str(root / f"{name}.json")
    with open(paths[name], "w", encoding="utf-8") as file:
      json.dump({"subjects": subjects}, file)
  paths["run_b1u8"] = str(root / "run_b1u8")
  os.mkdir(paths["run_b1u8"])
  record = dataclasses.asdict(TrainConfig(dataset=paths["good"], workdir=paths["run_b1u8"],
                                          model="b1u8"))
  record.update(volumes={"train": ["other"], "validation": ["scan"]}, validation_subjects=1)
  with open(os.path.join(paths["run_b1u8"], "config.json"), "w", encoding="utf-8") as file:
    json.dump(record, file)
  paths["run_ahead"] = str(root / "run_ahead")  # the same run, killed at step 300
  os.makedirs(os.path.join(paths["run_ahead"], "checkpoints"))
  shutil.copy(os.path.join(paths["run_b1u8"], "config.json"), paths["run_ahead"])
  for name in ("checkpoint", "ckpt-200.index", "ckpt-300.index"):
    open(os.path.join(paths["run_ahead"], "checkpoints", name), "wb").close()


def write_reliability_cases(root, paths):
  """A prepared data set, manifests that mix or cannot train, weights whose card has no
  checksum, a scan whose header's unit code names no unit, headers nibabel refuses, output
  folders that hold another pipeline's derivatives."""
  paths["root"] = str(root)
  paths["prepared"] = str(root / "prepared")
  os.mkdir(paths["prepared"])
  with open(os.path.join(paths["prepared"], "manifest.json"), "w", encoding="utf-8") as file:
    json.dump({"subjects": []}, file)
  paths["tiny"] = str(root / "tiny.nii.gz")
  nib.Nifti1Image(np.ones((3, 3, 3), np.float32), np.eye(4)).to_filename(paths["tiny"])
  scan = {"name": "scan", "path": paths["scan"], "split": "validation"}
  for name, subjects in {
      "two_splits": [scan, {**scan, "name": "scan_again", "subject": "scan", "split": "train"}],
      "tiny_train": [scan, {"name": "tiny", "path": paths["tiny"], "split": "train"}],
      "seen_test": [{**scan, "name": "pydeface_mean_head", "split": "test"}]}.items():
    paths[name] = str(root / f"{name}.json")
    with open(paths[name], "w", encoding="utf-8") as file:
      json.dump({"subjects": subjects}, file)
  paths["unchecked"] = str(root / "unchecked")
  shutil.copy(paths["weights"] + weights.WEIGHTS_SUFFIX, paths["unchecked"] + weights.WEIGHTS_SUFFIX)
  card = json.load(open(paths["weights"] + weights.CARD_SUFFIX, encoding="utf-8"))
  del card["weights_sha256"]
  with open(paths["unchecked"] + weights.CARD_SUFFIX, "w", encoding="utf-8") as file:
    json.dump(card, file)
  for name, generated_by in {"fmriprep_out": [{"Name": "fMRIPrep", "Version": "24.1.1"}],
                             "odd_out": {"Name": "a dict where BIDS asks for a list"}}.items():
    paths[name] = str(root / name)
    os.mkdir(paths[name])
    with open(os.path.join(paths[name], "dataset_description.json"), "w",
              encoding="utf-8") as file:
      json.dump({"Name": name, "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                 "GeneratedBy": generated_by}, file)
  image = nib.load(paths["scan"])
  image.header["xyzt_units"] = 5
  paths["bad_units"] = str(root / "bad_units.nii.gz")
  nib.Nifti1Image(np.asarray(image.dataobj), image.affine, image.header).to_filename(
      paths["bad_units"])
  # the NIfTI-1 header's datatype (int16 at byte 70) and scl_slope, scl_inter (float32 at
  # bytes 112 and 116), written over a valid uncompressed file
  voxels = np.asarray(image.dataobj).astype(np.float32)
  for name, patch in {"no_datatype": {70: np.int16(0)},
                      "bad_intercept": {112: np.float32(2.0), 116: np.float32(np.inf)}}.items():
    paths[name] = str(root / f"{name}.nii")
    nib.Nifti1Image(voxels, image.affine).to_filename(paths[name])
    with open(paths[name], "r+b") as file:
      for offset, value in patch.items():
        file.seek(offset)
        file.write(value.astype(value.dtype.newbyteorder("<")).tobytes())


def write_masks(root, paths):
  """Masks that do not fit the scan (another shape, shifted by a voxel, empty), and test
  splits whose entry names such a mask, a number, or a file that is not there."""
  scan = nib.load(paths["scan"])
  shifted = scan.affine.copy()
  shifted[:3, 3] += shifted[:3, 0]
  for name, (voxels, affine) in {"mask_small": (np.ones((4, 5, 6)), np.eye(4)),
                                 "mask_shifted": (np.ones(scan.shape), shifted),
                                 "mask_empty": (np.zeros(scan.shape), scan.affine)}.items():
    paths[name] = str(root / f"{name}.nii.gz")
    nib.Nifti1Image(voxels.astype(np.uint8), affine).to_filename(paths[name])
  for name, mask in {"mask_wrong": paths["mask_small"], "mask_5": 5,
                     "mask_gone": paths["absent"]}.items():
    paths[name] = str(root / f"{name}.json")
    with open(paths[name], "w", encoding="utf-8") as file:
      json.dump({"subjects": [{"name": "scan", "path": paths["scan"], "split": "test",
                               "mask": mask}]}, file)
