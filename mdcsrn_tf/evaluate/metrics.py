"""Image-quality metrics as the paper reports them: SSIM, PSNR and NRMSE of SR vs HR.

Conventions (docs/evaluation.md): both volumes are on the HR grid with intensities
normalised so that HR's maximum is 1 (`data_range=1`); the whole volume counts, with no
brain mask, as in the reference figures of docs/data.md. PSNR and NRMSE are the same whether the
volume is read slice by slice or whole. SSIM is computed "in the degraded plane": 2D SSIM
(scikit-image, 7x7 window) on every slice that lies in the two truncated axes, averaged
over the slices. NRMSE is scikit-image's default (Euclidean) normalisation,
||HR - SR|| / ||HR||. All sums run in float64.
"""
import numpy as np
from skimage import metrics as skmetrics

DATA_RANGE = 1.0


def psnr(hr, sr, data_range=DATA_RANGE) -> float:
  return float(skmetrics.peak_signal_noise_ratio(
      np.asarray(hr, np.float64), np.asarray(sr, np.float64), data_range=data_range))


def nrmse(hr, sr) -> float:
  return float(skmetrics.normalized_root_mse(
      np.asarray(hr, np.float64), np.asarray(sr, np.float64), normalization="euclidean"))


def ssim_in_plane(hr, sr, plane_axes=(0, 1), data_range=DATA_RANGE) -> float:
  """Mean 2D SSIM over the slices spanned by `plane_axes` (the degraded plane)."""
  hr, sr = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
  (through_axis,) = {0, 1, 2} - set(plane_axes)
  hr_slices, sr_slices = np.moveaxis(hr, through_axis, 0), np.moveaxis(sr, through_axis, 0)
  return float(np.mean([
      skmetrics.structural_similarity(h, s, data_range=data_range)
      for h, s in zip(hr_slices, sr_slices)]))


def ssim_volume(hr, sr, data_range=DATA_RANGE) -> float:
  """3D SSIM over the whole volume (7x7x7 window), the SSIM of docs/data.md's reference table."""
  return float(skmetrics.structural_similarity(
      np.asarray(hr, np.float64), np.asarray(sr, np.float64), data_range=data_range))


def quality(hr, sr, plane_axes=(0, 1)) -> dict:
  """The paper's three figures for one subject."""
  return {"ssim": ssim_in_plane(hr, sr, plane_axes), "psnr": psnr(hr, sr), "nrmse": nrmse(hr, sr)}
