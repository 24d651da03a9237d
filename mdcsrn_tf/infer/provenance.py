"""What made a super-resolved file: the weights (checksum, model card, held-out figures), the
acquisition the network was trained for, the input (its path and SHA-256), the grid
change, the settings and the command. The QC report (infer/report.py) reads them from
here, and every output's JSON sidecar, mdcsrn-sr's (OUTPUT.json) as the BIDS derivatives'
(bids/derivatives.py), is made here (`output_sidecar`) and written here (`write_json`).
"""
import json
import os
import shlex
import sys

import nibabel as nib
import numpy as np

import mdcsrn_tf
from mdcsrn_tf import identity
from mdcsrn_tf.files import json_text, write_text_atomically

PIPELINE = "mdcsrn-tf"  # the name sidecars and dataset descriptions give the software
LEFT_OUT = {"tta": 1}  # settings recorded only away from their default

# The held-out rows a report shows, in this order, and their names for people.
HELD_OUT_METHODS = {"model": "this network", "zero_filled": "zero-filled k-space",
                    "cubic": "cubic interpolation", "linear": "linear interpolation"}


def card_acquisition(card) -> dict:
  """The acquisition the weights were trained to undo (per-axis factors, slice profile,
  placement on the HR grid), as the card records it; the paper's for weights without a
  card. Every output's record of it comes through here."""
  from mdcsrn_tf.acquisition import PAPER  # pylint: disable=import-outside-toplevel

  return (card.acquisition if card is not None else PAPER).to_dict()


def weights_record(weights_path) -> dict:
  """The weights a run used: their file, SHA-256, model, the shipped set and name they ship
  under, phase and steps, acquisition, whether outputs keep the input's measured band,
  held-out figures and warning, from the file and its model card (when it has one)."""
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel

  base = weights.base_path(weights_path)
  card = (weights.read_card(base) if os.path.exists(base + weights.CARD_SUFFIX) else None)
  return {"file": base + weights.WEIGHTS_SUFFIX,
          "sha256": weights.file_sha256(base + weights.WEIGHTS_SUFFIX),
          "model": card.model if card else None,
          "shipped_set": card.shipped_set if card else "",
          "shipped_as": card.shipped_as if card else "",
          "phase": card.phase if card else "", "steps": card.steps if card else 0,
          "acquisition": card_acquisition(card),
          "keeps_measured_band": bool(card and card.keeps_measured_band),
          "held_out": card.held_out if card else {},
          "warning": card.warning if card else ""}


def grid(path) -> dict:
  """Shape, voxel size (mm) and orientation codes of a NIfTI file's grid (header only)."""
  image = nib.load(os.fspath(path))
  return {"shape": [int(n) for n in image.shape[:3]],
          "voxel_mm": [round(float(z), 6) for z in image.header.get_zooms()[:3]],
          "orientation": "".join(nib.aff2axcodes(image.affine))}


def grid_change(input_path, output_path) -> dict:
  """The input's and the output's grids and the per-axis factor between them."""
  source, result = grid(input_path), grid(output_path)
  factors = np.divide(result["shape"], source["shape"])
  return {"input": source, "output": result,
          "factors": [round(float(f), 6) for f in factors]}


def output_settings(options) -> dict:
  """The flags of `options` (mdcsrn-sr's) that change an output's voxels: the grid and the
  tiling (the memory limit plans the tiles only with --tile auto), and test-time
  augmentation's passes away from 1. Two mdcsrn-bids runs into one folder must agree on
  them, as on the weights."""
  settings = {name: getattr(options, name) for name in
              ("scale", "target_voxel", "tile", "margin", "memory_limit", "tta")}
  if settings["tile"] != "auto":
    del settings["memory_limit"]
  for name, default in LEFT_OUT.items():  # as folders from before the setting have it
    if settings[name] == default:
      del settings[name]
  return json.loads(json.dumps(settings))


def output_sidecar(input_path, output_path, weights_record, command, domain=(), settings=None,
                   passes=1, uncertainty=None) -> dict:
  """The JSON sidecar of one output, mdcsrn-sr's and mdcsrn-bids' alike: its input (path and
  SHA-256), the software and its version, the weights (file, SHA-256, model, phase, steps)
  and the acquisition they undo, the grid change, the settings (output_settings) and the
  command, how its input lies against the weights' training domain (infer/trust.py: its
  warnings, [] for none, or that it was not checked) and, with test-time augmentation, the
  passes and the uncertainty map's file name."""
  found = {"SourceFile": os.path.abspath(input_path),
           "SourceSHA256": identity.content_sha256(input_path),
           "GeneratedBy": {"Name": PIPELINE, "Version": mdcsrn_tf.__version__},
           "Weights": {key: weights_record[key] for key in
                       ("file", "sha256", "model", "shipped_set", "shipped_as", "phase",
                        "steps", "keeps_measured_band")},
           "Acquisition": weights_record["acquisition"],
           "GridChange": grid_change(input_path, output_path),
           "Settings": dict(settings or {}),
           "TrainingDomain": list(domain),
           "CommandLine": command}
  if passes > 1:
    found["TestTimeAugmentation"] = {"Passes": passes,
                                     "Output": "mean of the passes, each mapped back",
                                     "Uncertainty": os.path.basename(uncertainty)}
  return found


def uncertainty_sidecar(input_path, output_path, passes) -> dict:
  """The JSON sidecar of test-time augmentation's uncertainty map of `output_path`."""
  return {"Description": f"per-voxel standard deviation of the {passes} test-time "
                         f"augmentation passes whose mean is {os.path.basename(output_path)}, "
                         "in its intensity units",
          "SourceFile": os.path.abspath(input_path), "Passes": passes}


def write_json(path, record: dict):
  """Writes a sidecar atomically, as strict JSON."""
  write_text_atomically(path, json_text(record, indent=2) + "\n")


def command_line(argv=None) -> str:
  """The command as typed: the program's name and its arguments, shell-quoted."""
  argv = sys.argv if argv is None else argv
  program = os.path.basename(argv[0]) if argv else ""
  if program == "__main__.py":  # python -m mdcsrn_tf.PACKAGE
    program = "python -m mdcsrn_tf." + os.path.basename(os.path.dirname(argv[0]))
  return " ".join([program, *map(shlex.quote, argv[1:])])


HELD_OUT_FIGURES = ("psnr", "ssim", "nrmse", "psnr_mask", "ssim_mask")


def held_out_rows(held_out) -> list:
  """[(volume, method's name, PSNR, SSIM, NRMSE, PSNR in the mask, SSIM in the mask)] of a
  card's held-out metrics: one row per method and held-out volume, then the mean over them,
  its volume cell "mean (n = N)" with the number of volumes each mean is over ("in the mask
  n = M" when fewer had a mask). A card without figures per volume (from before they were
  kept) gives its one row per method, named by its volume. An empty list without any."""
  held_out = held_out or {}
  whole, per_volume = held_out.get("whole_volume", {}), held_out.get("per_volume", {})
  order = [v for v in held_out.get("volumes", ()) if v in per_volume] or list(per_volume)
  rows = [(volume, label, *(per_volume[volume][method].get(key) for key in HELD_OUT_FIGURES))
          for volume in order
          for method, label in HELD_OUT_METHODS.items() if method in per_volume[volume]]
  for method, label in HELD_OUT_METHODS.items():
    if method not in whole:
      continue
    counts = [sum(key in figures.get(method, {}) for figures in per_volume.values())
              for key in ("psnr", "psnr_mask")]
    name = f"mean (n = {counts[0]}" + (f"; in the mask n = {counts[1]})"
                                       if counts[1] != counts[0] else ")")
    rows.append((name if per_volume else held_out.get("volume", "-"), label,
                 *(whole[method].get(key) for key in HELD_OUT_FIGURES)))
  return rows
