"""Image-quality figures and the one registry of them (docs/evaluation.md).

Every figure is a `Metric` in REGISTRY: its name (the key of results, CSV columns and
summaries), the name of its in-mask variant (`<name>_mask`), the label tables print, the
digits they print and which way is better. Scoring, tables, validation, the demo and the
release read the registry; a new figure is one entry.

Conventions: both volumes are on the HR grid with intensities normalised so that HR's
maximum is 1 (`data_range=1`). The whole volume counts, as in the reference figures of
docs/data.md; a mask (a boolean array on the same grid) gives every figure over its voxels
too, reported beside them. PSNR and NRMSE are the same whether the volume is read slice by
slice or whole. SSIM is computed "in the degraded plane": the 2D SSIM map (scikit-image,
7x7 window) of every slice in the acquisition's `plane_axes`, averaged over the slices'
voxels; inside a mask, averaged over the mask's voxels of those maps, never over a cropped
array, so every voxel's SSIM still sees its whole window. In both, the map's 3-voxel edge of
each slice, where the window leaves the slice, does not count, as in scikit-image's own mean
SSIM: a mask of every voxel gives the whole-volume figure. NRMSE is scikit-image's default
(Euclidean) normalisation, ||HR - SR|| / ||HR||.

Sharpness is the share of HR's spectral energy in the band the acquisition removed
(`Acquisition.removed_band`, B) that an output has: sum_B |F(SR)|^2 / sum_B |F(HR)|^2, F the
3D DFT. The input without that band restores 0, an output with HR's energy there 1; above 1
it has more energy there than HR (noise, ringing). Its companion `band_fidelity`,
1 - sum_B |F(SR) - F(HR)|^2 / sum_B |F(HR)|^2, counts only what is restored correctly (1
perfect, 0 for the band left empty). Tables print both: linear interpolation's aliasing
makes it "sharper" than a network, and only the fidelity says its energy is wrong. In the
mask, both volumes are multiplied by the mask before the transform. All sums run in float64.
An HR volume with no energy in the band beyond round-off (EMPTY_BAND) has nothing there to
restore: both figures are NaN, never a ratio of round-off.

`psnr_head` is PSNR over the head alone: HR's voxels above HEAD_LEVEL of its maximum, the
tissue of the head without the air and noise around it (in the mask: the head's voxels in
the mask). The background of a zero-filled input is easy to improve (its ringing), so a
gain over the whole volume can hide a loss on the head; this figure shows one.
"""
import dataclasses
import functools
import typing

import numpy as np
from skimage import metrics as skmetrics  # lazy: loads SSIM's module on first use

from mdcsrn_tf.acquisition import PAPER, Acquisition

DATA_RANGE = 1.0
# The head: voxels above a tenth of the volume's maximum, above a head scan's background and
# its noise (a T1 head's darkest tissue, CSF, lies above it at 1 mm once the maximum is 1).
# Training patches (data/volume_store), the domain profile and psnr_head count the same voxels.
HEAD_LEVEL = 0.1
SSIM_WINDOW = 7  # scikit-image's default edge for 2D SSIM without Gaussian weights


# PSNR and NRMSE are written out rather than taken from scikit-image, whose module of them
# imports scipy.stats: 2 s on the first score of every process, for two lines of arithmetic.
def _mean_squared_error(hr, sr) -> float:
  return float(np.mean(np.square(np.asarray(hr, np.float64) - np.asarray(sr, np.float64))))


def psnr(hr, sr, data_range=DATA_RANGE) -> float:
  with np.errstate(divide="ignore"):  # identical volumes: infinite PSNR
    return float(10 * np.log10(data_range**2 / np.float64(_mean_squared_error(hr, sr))))


def nrmse(hr, sr) -> float:
  reference = float(np.mean(np.square(np.asarray(hr, np.float64))))
  with np.errstate(divide="ignore", invalid="ignore"):
    return float(np.sqrt(_mean_squared_error(hr, sr)) / np.sqrt(np.float64(reference)))


def ssim_map(hr, sr, plane_axes=PAPER.plane_axes, data_range=DATA_RANGE) -> np.ndarray:
  """Each voxel's 2D SSIM in its slice of the degraded plane (spanned by `plane_axes`), on
  the volume's grid, in float64."""
  hr, sr = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
  (through_axis,) = {0, 1, 2} - set(plane_axes)
  maps = [skmetrics.structural_similarity(h, s, data_range=data_range, full=True)[1]
          for h, s in zip(np.moveaxis(hr, through_axis, 0), np.moveaxis(sr, through_axis, 0))]
  return np.moveaxis(np.stack(maps), 0, through_axis)


def ssim_counted(shape, plane_axes=PAPER.plane_axes) -> np.ndarray:
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


# HR's band is empty when its energy there is at most EMPTY_BAND * N * E, E HR's energy over
# the whole spectrum (N * sum HR^2 by Parseval, N voxels): below that, round-off alone can
# put it there, and a ratio to it says nothing ("perfect" 1.000, or 1e9). The floor, with
# eps = float64's machine epsilon (2.2e-16), bounds from above
# - the FFT's own round-off in the band: at most (log2(N) eps)^2 E (Higham, Accuracy and
#   Stability of Numerical Algorithms, 24.1), 1e-28 E for a billion voxels;
# - a volume rounded to float32, as every NIfTI volume here is read: at most
#   (eps32 / 2)^2 E = 3.6e-15 E of error energy, below eps N E once N >= 16, which every
#   volume is (an edge is at least 7 voxels);
# and stays far below the band of any real head: 1.6e-9 of E for Colin27's 7.1 million
# voxels, whose removed band holds about 1e-3 of it.
EMPTY_BAND = float(np.finfo(np.float64).eps)


def band_energies(hr, sr, acquisition: Acquisition = PAPER) -> tuple:
  """(sum_B |F(HR)|^2, sum_B |F(SR)|^2, sum_B |F(SR) - F(HR)|^2) over the removed band B,
  and HR's energy over the whole spectrum (N * sum HR^2), one spectrum in memory at a time
  (F(SR) - F(HR) is F(SR - HR))."""
  hr, sr = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
  band = acquisition.removed_band(hr.shape)
  return (*(float(np.sum(np.abs(np.fft.fftn(volume)[band])**2)) for volume in (hr, sr, sr - hr)),
          hr.size * float(np.sum(np.square(hr))))


def band_is_empty(hr_band_energy, hr_energy, voxels) -> bool:
  """Whether HR's energy in the removed band is round-off at most (EMPTY_BAND)."""
  return not hr_band_energy > EMPTY_BAND * voxels * hr_energy


class Pair:
  """An HR volume and an output of it, with what several figures share computed once: the
  SSIM map and the removed band's energies, over the whole volume and in `mask`."""

  def __init__(self, hr, sr, acquisition: Acquisition = PAPER, mask=None):
    self.hr, self.sr = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
    self.acquisition = acquisition
    self.mask = None if mask is None else np.asarray(mask, bool)
    self._energies = {}

  @functools.cached_property
  def ssim_map(self):
    return ssim_map(self.hr, self.sr, self.acquisition.plane_axes)

  @functools.cached_property
  def ssim_counted(self):
    return ssim_counted(self.hr.shape, self.acquisition.plane_axes)

  def voxels(self, masked):
    """(HR, SR) over the voxels that count: all, or the mask's."""
    return (self.hr[self.mask], self.sr[self.mask]) if masked else (self.hr, self.sr)

  def band_energies(self, masked):
    if masked not in self._energies:
      hr, sr = (self.hr * self.mask, self.sr * self.mask) if masked else (self.hr, self.sr)
      self._energies[masked] = band_energies(hr, sr, self.acquisition)
    return self._energies[masked]


def _ssim(pair: Pair, masked) -> float:
  counted = pair.ssim_counted & pair.mask if masked else pair.ssim_counted
  return float(np.mean(pair.ssim_map[counted]))


def _head_psnr(pair: Pair, masked) -> float:
  head = pair.hr > HEAD_LEVEL
  if masked:
    head &= pair.mask
  return psnr(pair.hr[head], pair.sr[head]) if head.any() else float("nan")


def _band_ratio(pair: Pair, masked, of_error) -> float:
  hr_energy, sr_energy, error_energy, hr_total = pair.band_energies(masked)
  if band_is_empty(hr_energy, hr_total, pair.hr.size):  # no share to restore
    return float("nan")
  return 1 - error_energy / hr_energy if of_error else sr_energy / hr_energy


@dataclasses.dataclass(frozen=True)
class Metric:
  """One figure: `score(pair, masked)` over the whole volume (masked False) or its mask.

  Attributes:
    name: the key in results, CSV columns and summaries.
    label: what tables print.
    digits: decimals tables print.
    better: "higher", "lower" or "nearer 1".
    in_tables: whether tables print it (every figure is in the CSV and JSON files).
    score: the function of (Pair, masked).
  """
  name: str
  label: str
  digits: int
  better: str
  in_tables: bool
  score: typing.Callable

  @property
  def masked_name(self) -> str:
    return f"{self.name}_mask"


REGISTRY = (
    Metric("ssim", "SSIM", 4, "higher", True, _ssim),
    Metric("psnr", "PSNR", 2, "higher", True, lambda pair, masked: psnr(*pair.voxels(masked))),
    Metric("nrmse", "NRMSE", 4, "lower", True, lambda pair, masked: nrmse(*pair.voxels(masked))),
    Metric("sharpness", "sharpness", 3, "nearer 1", True,
           lambda pair, masked: _band_ratio(pair, masked, of_error=False)),
    Metric("band_fidelity", "band fidelity", 3, "higher", True,
           lambda pair, masked: _band_ratio(pair, masked, of_error=True)),
    Metric("psnr_head", "PSNR over the head", 2, "higher", False, _head_psnr),
)
BY_NAME = {metric.name: metric for metric in REGISTRY}
NAMES = tuple(BY_NAME)
MASKED_NAMES = tuple(metric.masked_name for metric in REGISTRY)
IN_TABLES = tuple(metric for metric in REGISTRY if metric.in_tables)


def quality(hr, sr, acquisition: Acquisition = PAPER, mask=None) -> dict:
  """Every registered figure of one output, {name: value}, and with a boolean `mask` on the
  same grid every figure over its voxels too, {masked_name: value}."""
  pair = Pair(hr, sr, acquisition, mask)
  figures = {metric.name: metric.score(pair, False) for metric in REGISTRY}
  if mask is not None:
    figures.update({metric.masked_name: metric.score(pair, True) for metric in REGISTRY})
  return figures


def sharpness(hr, sr, acquisition: Acquisition = PAPER) -> float:
  """sum_B |F(SR)|^2 / sum_B |F(HR)|^2 over the removed band B (NaN when HR has none)."""
  return BY_NAME["sharpness"].score(Pair(hr, sr, acquisition), False)
