"""What made a super-resolved file: the weights (checksum, model card, held-out figures), the
acquisition the network was trained for, the grid change and the command. The QC report
(infer/report.py) and the BIDS derivatives' sidecars (bids/) both read them from here.
"""
import os
import shlex
import sys

import nibabel as nib
import numpy as np

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
  """The weights a run used: their file, SHA-256, model, phase and steps, acquisition,
  held-out figures and warning, from the file and its model card (when it has one)."""
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel

  base = weights.base_path(weights_path)
  card = (weights.read_card(base) if os.path.exists(base + weights.CARD_SUFFIX) else None)
  return {"file": base + weights.WEIGHTS_SUFFIX,
          "sha256": weights.file_sha256(base + weights.WEIGHTS_SUFFIX),
          "model": card.model if card else None,
          "shipped_as": card.shipped_as if card else "",
          "phase": card.phase if card else "", "steps": card.steps if card else 0,
          "acquisition": card_acquisition(card),
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
