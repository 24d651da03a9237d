"""The README's demo (python -m mdcsrn_tf.demo) end to end on a crop of the held-out real
volume: its volumes, its figure with the row of error maps, and its table, whole volume and
in the brain; the error row on the whole Colin27 slice, where the brain's outline shows."""
import json
import os
import subprocess
import sys

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf import metrics, weights
from mdcsrn_tf.data import kspace
from mdcsrn_tf.evaluate import figures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROP = 48


def test_demo_writes_volumes_png_and_metrics(tmp_path, sample):
  colin27 = sample("colin27_1mm")
  out = tmp_path / "demo"
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.demo", f"--out={out}",
                           f"--crop={CROP}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "zero_filled" in result.stdout and "PSNR" in result.stdout

  shipped = {"l1": "mdcsrn", "gan": "mdcsrn_gan"}
  methods = {"nearest", "linear", "cubic", "zero_filled", "hr", "lr",
             *(shipped[kind] for kind in weights.shipped())}
  hr = nib.load(out / "colin27_hr.nii.gz")
  assert hr.shape == (CROP,) * 3
  original = nib.load(colin27)
  assert np.allclose(hr.header.get_zooms(), original.header.get_zooms())
  for method in methods:
    image = nib.load(out / f"colin27_{method}.nii.gz")
    assert image.shape == hr.shape and np.allclose(image.affine, hr.affine)
  # The HR volume is the original's central crop, in the original's intensities.
  starts = [(n - CROP) // 2 for n in original.shape]
  crop_to_original = np.eye(4)
  crop_to_original[:3, 3] = starts
  np.testing.assert_allclose(hr.affine, original.affine @ crop_to_original)
  for form in ("qform_code", "sform_code"):
    assert hr.header[form] == original.header[form], form
  expected = original.get_fdata()[tuple(slice(s, s + CROP) for s in starts)]
  np.testing.assert_allclose(hr.get_fdata(), expected, rtol=1e-4, atol=1e-3 * expected.max())

  figure = matplotlib.image.imread(out / "comparison.png")[..., :3]
  grey = figure.mean(axis=-1)
  assert grey.shape[0] > 100 and grey.std() > 0.1  # a picture of brains, not a blank page
  slices, error_row = colour_fraction(figure)
  assert slices < 0.02 < 0.05 < error_row  # grey slices (yellow zoom boxes), coloured errors

  results = json.loads((out / "metrics.json").read_text())
  # colin27_lr, the volume for mdcsrn-sr, is the shipped weights' network input
  placement = results["acquisition"]["placement"]
  np.testing.assert_array_equal(nib.load(out / "colin27_lr.nii.gz").get_fdata(),
                                nib.load(out / f"colin27_{placement}.nii.gz").get_fdata())
  scores = results["summary"]
  assert set(scores) == methods - {"hr", "lr"}
  psnr = {method: scores[method]["psnr"]["mean"] for method in scores}
  assert psnr["nearest"] < psnr["linear"] < psnr["cubic"] < psnr["zero_filled"]

  # the printed table: whole volume, then in the brain, each PSNR as NumPy finds it in the
  # written volumes (over the crop, and over ch2bet's voxels > 0 in the same crop)
  lines = result.stdout.splitlines()
  assert lines[0].split() == ["whole", "volume", "in", "the", "brain", "(ch2bet", ">", "0)"]
  columns = [metric.name for metric in metrics.IN_TABLES]  # each group's, in order
  group = " ".join(metric.label for metric in metrics.IN_TABLES).split()
  assert lines[1].split()[:1 + 2 * len(group)] == ["method", *group, *group]
  printed = {line.split()[0]: line.split() for line in lines[3:3 + len(scores)]}
  brain = nib.load(sample("colin27_1mm_bet")).get_fdata()[
      tuple(slice(s, s + CROP) for s in starts)] > 0
  truth = hr.get_fdata() / hr.get_fdata().max()
  for method in scores:
    error = nib.load(out / f"colin27_{method}.nii.gz").get_fdata() / hr.get_fdata().max() - truth
    psnr_column = 1 + columns.index("psnr")
    for column, voxels in ((psnr_column, np.ones(brain.shape, bool)),
                           (psnr_column + len(columns), brain)):
      expected = 10 * np.log10(1 / np.mean(error[voxels] ** 2))
      assert abs(float(printed[method][column]) - expected) < 0.005 + 1e-4, (method, column)
  # which shipped weights each network row is, by the name a user passes to --weights
  named = [line for line in lines if line.startswith("weights: ")]
  assert named == ["weights: " + "; ".join(
      f"{shipped[kind]} {os.path.basename(base)} (the "
      f"{weights.read_card(base).shipped_set} set)" for kind, base in weights.shipped().items())]


def colour_fraction(picture):
  """(share of coloured pixels in the top two thirds, the same in the bottom third)."""
  coloured = picture.max(axis=-1) - picture.min(axis=-1) > 0.15
  third = picture.shape[0] // 3
  return coloured[:2 * third].mean(), coloured[2 * third:].mean()


def test_error_row_outlines_the_brain_on_one_colour_scale(tmp_path, sample):
  hr = nib.load(sample("colin27_1mm")).get_fdata(dtype=np.float32)
  hr /= hr.max()
  brain = nib.load(sample("colin27_1mm_bet")).get_fdata() > 0
  slices = {name: PAPER.plane_slice(kspace.degrade(hr, Acquisition(placement=method)))
            for name, method in (("LR", "zero_filled"), ("bicubic", "cubic"))}
  slices["HR"] = PAPER.plane_slice(hr)
  figures.comparison_figure(
      slices, tmp_path / "errors.png",
      errors={name: np.abs(slices[name] - slices["HR"]) for name in ("LR", "bicubic")},
      outline=PAPER.plane_slice(brain))
  picture = matplotlib.image.imread(tmp_path / "errors.png")[..., :3]
  cyan = (picture[..., 0] < 0.4) & (picture[..., 1] > 0.6) & (picture[..., 2] > 0.6)
  third = picture.shape[0] // 3
  assert not cyan[:2 * third].any() and cyan[2 * third:].sum() > 500  # the brain's outline
  slices_share, errors_share = colour_fraction(picture)
  assert slices_share < 0.02 < 0.05 < errors_share
  # the colour bar stands right of the error maps, where the HR column has none
  bar = picture[2 * third:, int(picture.shape[1] * 0.85):]
  assert (bar.max(axis=-1) - bar.min(axis=-1) > 0.15).sum() > 500
