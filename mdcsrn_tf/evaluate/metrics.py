"""Image-quality metrics as the paper reports them: SSIM, PSNR and NRMSE of SR vs HR, on the
whole volume and, for a subject with a mask, inside the mask too.

Conventions (docs/evaluation.md): both volumes are on the HR grid with intensities
normalised so that HR's maximum is 1 (`data_range=1`). The whole volume counts, as in the
reference figures of docs/data.md; a mask (a boolean array on the same grid) gives the same
three figures over its voxels, reported beside them. PSNR and NRMSE are the same whether
the volume is read slice by slice or whole. SSIM is computed "in the degraded plane": the
2D SSIM map (scikit-image, 7x7 window) of every slice that lies in the two truncated axes,
averaged over the slices' voxels; inside a mask, averaged over the mask's voxels of those
maps, never over a cropped array, so every voxel's SSIM still sees its whole window. In
both, the map's 3-voxel edge of each slice, where the window leaves the slice, does not
count, as in scikit-image's own mean SSIM: a mask of every voxel gives the whole-volume
figure. NRMSE is scikit-image's default (Euclidean) normalisation, ||HR - SR|| / ||HR||.
All sums run in float64.
"""
import numpy as np
from skimage import metrics as skmetrics

DATA_RANGE = 1.0
SSIM_WINDOW = 7  # scikit-image's default edge for 2D SSIM without Gaussian weights
MASKED = {"ssim": "ssim_mask", "psnr": "psnr_mask", "nrmse": "nrmse_mask"}  # in-mask names


def psnr(hr, sr, data_range=DATA_RANGE) -> float:
  return float(skmetrics.peak_signal_noise_ratio(
      np.asarray(hr, np.float64), np.asarray(sr, np.float64), data_range=data_range))


def nrmse(hr, sr) -> float:
  return float(skmetrics.normalized_root_mse(
      np.asarray(hr, np.float64), np.asarray(sr, np.float64), normalization="euclidean"))


def ssim_map(hr, sr, plane_axes=(0, 1), data_range=DATA_RANGE) -> np.ndarray:
  """Each voxel's 2D SSIM in its slice of the degraded plane (spanned by `plane_axes`), on
  the volume's grid, in float64."""
  hr, sr = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
  (through_axis,) = {0, 1, 2} - set(plane_axes)
  maps = [skmetrics.structural_similarity(h, s, data_range=data_range, full=True)[1]
          for h, s in zip(np.moveaxis(hr, through_axis, 0), np.moveaxis(sr, through_axis, 0))]
  return np.moveaxis(np.stack(maps), 0, through_axis)


def ssim_counted(shape, plane_axes=(0, 1)) -> np.ndarray:
  """The voxels whose SSIM counts: all but each slice's edge of half a window, where
  scikit-image's mean SSIM leaves them out too (its window reaches past the slice there)."""
  edge = (SSIM_WINDOW - 1) // 2
  counted = np.zeros(shape, bool)
  counted[tuple(slice(edge, n - edge) if axis in plane_axes else slice(None)
                for axis, n in enumerate(shape))] = True
  return counted


def ssim_volume(hr, sr, data_range=DATA_RANGE) -> float:
  """3D SSIM over the whole volume (7x7x7 window), the SSIM of docs/data.md's reference table."""
  return float(skmetrics.structural_similarity(
      np.asarray(hr, np.float64), np.asarray(sr, np.float64), data_range=data_range))


def quality(hr, sr, plane_axes=(0, 1), mask=None) -> dict:
  """The paper's three figures for one subject, and with a boolean `mask` on the same grid
  the same three over its voxels (MASKED names them: ssim_mask, psnr_mask, nrmse_mask)."""
  hr, sr = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
  ssim = ssim_map(hr, sr, plane_axes)
  counted = ssim_counted(ssim.shape, plane_axes)
  figures = {"ssim": float(np.mean(ssim[counted])), "psnr": psnr(hr, sr), "nrmse": nrmse(hr, sr)}
  if mask is not None:
    mask = np.asarray(mask, bool)
    figures.update({MASKED["ssim"]: float(np.mean(ssim[counted & mask])),
                    MASKED["psnr"]: psnr(hr[mask], sr[mask]),
                    MASKED["nrmse"]: nrmse(hr[mask], sr[mask])})
  return figures
