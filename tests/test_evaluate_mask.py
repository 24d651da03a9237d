"""Figures inside a mask (docs/evaluation.md) on the real Colin27 head and its brain mask
(ch2bet > 0): PSNR and NRMSE over the mask's voxels and the SSIM map averaged over them,
against NumPy computations written here; the evaluate command with a manifest's masks end to
end, resumed; a mask with no voxel inside the crop."""
import csv
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from skimage import metrics as skimage_metrics

from mdcsrn_tf import metrics
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import kspace
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.evaluate import scoring, subjects

# ch2's top: 96 x 96 x 64 voxels, 63% brain, the rest skull, scalp and air
CH2_TOP = (slice(40, 136), slice(50, 146), slice(100, 164))


def numpy_ssim_map(x, y, window=7, data_range=1.0):
  """The 2D SSIM map of Wang et al. with scikit-image's defaults (a uniform 7 x 7 window,
  sample variances, K1 0.01, K2 0.03), each window's statistics taken from NumPy views of
  the slice padded by mirroring (edge voxel repeated)."""
  half, n = window // 2, window * window

  def windows(image):
    return np.lib.stride_tricks.sliding_window_view(np.pad(image, half, mode="symmetric"),
                                                    (window, window))

  wx, wy = windows(x), windows(y)
  mx, my = wx.mean(axis=(-2, -1)), wy.mean(axis=(-2, -1))
  dx, dy = wx - mx[..., None, None], wy - my[..., None, None]
  vx, vy = (dx * dx).sum(axis=(-2, -1)) / (n - 1), (dy * dy).sum(axis=(-2, -1)) / (n - 1)
  cxy = (dx * dy).sum(axis=(-2, -1)) / (n - 1)
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  return (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def normalised(path, box=()):
  volume = nib.load(path).get_fdata(dtype=np.float32)[box]
  return volume / volume.max()


@pytest.fixture(scope="module")
def top_of_head(sample):
  """(ch2's top divided by its maximum, its brain mask)."""
  brain = nib.load(sample("colin27_1mm_bet")).get_fdata()[CH2_TOP] > 0
  return normalised(sample("colin27_1mm"), CH2_TOP), brain


def test_masked_figures_agree_with_numpy_on_colin27(top_of_head):
  hr, brain = top_of_head
  scores = scoring.evaluate_volume(hr, ["cubic", "zero_filled"], mask=brain)
  # SSIM counts away from each slice's 3-voxel edge, where the window leaves the slice
  counted = np.zeros(hr.shape, bool)
  counted[3:-3, 3:-3, :] = True
  for method, figures in scores.items():
    h = hr.astype(np.float64)
    sr = np.asarray(kspace.degrade(hr, Acquisition(placement=method)), np.float32)
    sr = sr.astype(np.float64)
    error = (h - sr)[brain]
    assert figures["psnr_mask"] == pytest.approx(10 * np.log10(1 / np.mean(error ** 2)), abs=1e-9)
    head = h > 0.1  # a tenth of the maximum, 1 after normalisation
    for name, counted_head in (("psnr_head", head), ("psnr_head_mask", head & brain)):
      assert figures[name] == pytest.approx(
          10 * np.log10(1 / np.mean((h - sr)[counted_head] ** 2)), abs=1e-9)
    assert figures["nrmse_mask"] == pytest.approx(
        np.sqrt(np.sum(error ** 2) / np.sum(h[brain] ** 2)), rel=1e-9)
    ssim = np.stack([numpy_ssim_map(h[:, :, k], sr[:, :, k]) for k in range(h.shape[2])],
                    axis=2)
    assert figures["ssim"] == pytest.approx(ssim[counted].mean(), abs=1e-9)
    assert figures["ssim_mask"] == pytest.approx(ssim[counted & brain].mean(), abs=1e-9)
    # the brain and the head around it score differently, so the mask matters here
    assert abs(figures["psnr_mask"] - figures["psnr"]) > 0.2
    # over the whole volume, as scikit-image computes them
    assert figures["psnr"] == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(h, sr, data_range=1.0), abs=1e-9)
    assert figures["nrmse"] == pytest.approx(skimage_metrics.normalized_root_mse(h, sr), rel=1e-9)
    print(method, {key: round(value, 4) for key, value in figures.items()})


def test_a_mask_of_every_voxel_gives_the_whole_volume_figures(top_of_head):
  hr, _ = top_of_head
  everywhere = scoring.evaluate_volume(hr, ["cubic"], mask=np.ones(hr.shape, bool))["cubic"]
  for metric in metrics.REGISTRY:  # every registered figure, sharpness included
    assert everywhere[metric.masked_name] == pytest.approx(everywhere[metric.name], rel=1e-12)


def test_a_mask_with_no_voxel_inside_the_crop_is_refused(write_nifti):
  volume = write_nifti(np.random.default_rng(2).random((20, 20, 20), dtype=np.float32))
  corner = np.zeros((20, 20, 20), np.uint8)
  corner[0, 0, 0] = 1
  mask = write_nifti(corner, "corner.nii.gz")
  assert subjects.read_mask(mask, volume).sum() == 1
  with pytest.raises(InputError, match=f"^{mask}: mask has no non-zero voxel inside the "
                                       "central 8\\^3 crop$"):
    subjects.read_mask(mask, volume, crop=8)


def write_crop(image, path, box):
  to_image = np.eye(4)
  to_image[:3, 3] = [s.start for s in box]
  nib.Nifti1Image(np.asarray(image.dataobj)[box], image.affine @ to_image).to_filename(path)


def run_evaluate(manifest, out):
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.evaluate", f"--manifest={manifest}",
                           "--baselines=cubic,zero_filled", f"--out_dir={out}"],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  with open(out / "per_subject.csv", newline="") as file:
    rows = {(row["subject"], row["method"]): row for row in csv.DictReader(file)}
  # stdout: [what a rerun kept,] a row per subject and method, the table, where it wrote
  _, table, _ = result.stdout.rsplit("\n\n", 2)
  return table.splitlines(), rows, result.stdout


def test_evaluate_reports_figures_inside_a_manifest_mask_and_resumes(tmp_path, sample):
  """Two Colin27 crops: "top" (55% brain) with its brain mask, "centre" at first without;
  paths relative to the manifest's folder. Then "centre" gets a mask and only it is scored
  again."""
  head, bet = nib.load(sample("colin27_1mm")), nib.load(sample("colin27_1mm_bet"))
  boxes = {"top": (slice(40, 104), slice(50, 114), slice(120, 160)),
           "centre": (slice(60, 108), slice(80, 128), slice(60, 92))}
  for name, box in boxes.items():
    write_crop(head, tmp_path / f"{name}.nii.gz", box)
    write_crop(bet, tmp_path / f"{name}_brain.nii.gz", box)
  entries = [{"name": "top", "path": "top.nii.gz", "split": "test", "mask": "top_brain.nii.gz"},
             {"name": "centre", "path": "centre.nii.gz", "split": "test"}]
  manifest = tmp_path / "manifest.json"
  manifest.write_text(json.dumps({"subjects": entries}))
  out = tmp_path / "eval"
  table, rows, _ = run_evaluate(manifest, out)

  brain = nib.load(tmp_path / "top_brain.nii.gz").get_fdata() > 0
  hr = normalised(tmp_path / "top.nii.gz")
  expected = {}
  for method in ("cubic", "zero_filled"):
    sr = np.asarray(kspace.degrade(hr, Acquisition(placement=method)), np.float32)
    error = (hr.astype(np.float64) - sr)[brain]
    expected[method] = 10 * np.log10(1 / np.mean(error ** 2))
    assert float(rows[("top", method)]["psnr_mask"]) == pytest.approx(expected[method], abs=1e-6)
    assert float(rows[("top", method)]["nrmse_mask"]) == pytest.approx(
        np.sqrt(np.sum(error ** 2) / np.sum(hr.astype(np.float64)[brain] ** 2)), rel=1e-6)
    assert rows[("centre", method)]["psnr_mask"] == "" and rows[("centre", method)]["psnr"]
  assert table[0].split() == ["whole", "volume", "inside", "the", "mask", "(1", "of", "2",
                              "subjects)"]
  figures = ["SSIM", "PSNR", "NRMSE", "sharpness", "band", "fidelity"]
  assert table[1].split()[:13] == ["method", *figures, *figures]
  printed = {line.split()[0]: line.split() for line in table[3:]}
  for method, psnr in expected.items():  # a mean over the one subject with a mask
    # method, five whole-volume "mean (std)" cells, then the in-mask SSIM and PSNR, each
    # "mean (n = 1)": one subject has no spread to print
    assert printed[method][11:15][1:] == printed[method][15:19][1:] == ["(n", "=", "1)"]
    assert printed[method][15] == f"{psnr:.2f}"

  entries[1]["mask"] = "centre_brain.nii.gz"
  manifest.write_text(json.dumps({"subjects": entries}))
  table, rows, printed_all = run_evaluate(manifest, out)
  assert f"{out}: 1 of 2 subjects already scored, kept" in printed_all.splitlines()
  assert all(rows[("centre", method)]["psnr_mask"] for method in expected)
  assert any(line.split() == ["whole", "volume", "inside", "the", "mask"] for line in table)


def test_psnr_over_the_head_counts_the_head_alone_and_is_nan_without_one(top_of_head):
  hr = top_of_head[0].astype(np.float64)  # float64: the error below stays 0.25 to 1e-16
  background = hr <= 0.1
  error = np.where(background, 0.25, 0.0)  # the background only
  figures = metrics.quality(hr, hr + error, mask=background)
  assert figures["psnr_head"] == np.inf  # the head untouched
  assert figures["psnr"] == pytest.approx(10 * np.log10(1 / (0.0625 * background.mean())),
                                          abs=1e-9)
  assert figures["psnr_mask"] == pytest.approx(10 * np.log10(1 / 0.0625), abs=1e-9)
  assert np.isnan(figures["psnr_head_mask"])  # a mask with no head voxel
