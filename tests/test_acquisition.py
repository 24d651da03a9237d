"""The Acquisition record (mdcsrn_tf/acquisition.py): every kind against an independent
NumPy computation on a real volume (one table row per kind), its validation and the
mapping of records written before it; and the sharpness figure (mdcsrn_tf/metrics.py)
against its closed form and an independent NumPy computation."""
import math

import numpy as np
import pytest
from scipy import ndimage

from mdcsrn_tf import acquisition as acquisitions
from mdcsrn_tf import metrics
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import kspace, nifti
from mdcsrn_tf.errors import InputError


@pytest.fixture(scope="module")
def real_crop(sample):
  """A 24x20x16 crop of the real Colin27 head, divided by the crop's maximum."""
  volume, _ = nifti.load_volume(sample("colin27_1mm"))
  crop = volume[70:94, 90:110, 70:86].astype(np.float64)
  return crop / crop.max()


def place(small, shape, placement):
  """scipy's periodic spline placement: HR voxel j reads LR coordinate j * n_lr / n."""
  order = {"nearest": 0, "linear": 1, "cubic": 3}[placement]
  return ndimage.affine_transform(small, [m / n for m, n in zip(small.shape, shape)], 0.0,
                                  output_shape=tuple(shape), order=order, mode="grid-wrap")


def kspace_reference(hr, factors, placement):
  """Per-axis k-space truncation written directly with np.fft."""
  spectrum = np.fft.fftshift(np.fft.fftn(hr))
  window = tuple(slice(n // 2 - (n // f) // 2, n // 2 - (n // f) // 2 + n // f)
                 for n, f in zip(hr.shape, factors))
  small = np.abs(np.fft.ifftn(np.fft.ifftshift(spectrum[window])))
  return place(small * small.size / hr.size, hr.shape, placement)


def boxcar_4_reference(hr, placement):
  """Slices 4 voxels thick along axis 2, centred on voxel 4i: voxels 4i-1, 4i, 4i+1 whole,
  4i-2 and 4i+2 half (the closed form of a boxcar one LR spacing wide)."""
  thick = sum(weight * np.roll(hr, -offset, axis=2)
              for offset, weight in ((-2, 0.5), (-1, 1), (0, 1), (1, 1), (2, 0.5))) / 4
  return place(thick[:, :, ::4], hr.shape, placement)


def gaussian_4_reference(hr, placement):
  """Slices along axis 2 weighted by a Gaussian of FWHM 4 voxels centred on voxel 4i: each
  voxel's weight integrated numerically (midpoint rule, 1000 points per voxel)."""
  sigma = 4 / (2 * math.sqrt(2 * math.log(2)))
  offsets = np.arange(-16, 17)
  points = offsets[:, None] - 0.5 + (np.arange(1000) + 0.5)[None, :] / 1000
  weights = np.exp(-points**2 / (2 * sigma**2)).mean(axis=1)
  weights /= weights.sum()
  thick = sum(w * np.roll(hr, -o, axis=2) for o, w in zip(offsets, weights))
  return place(thick[:, :, ::4], hr.shape, placement)


KINDS = [  # one row per kind of acquisition: (the record, its independent computation)
    (Acquisition((2, 2, 1), "none", "linear"), lambda hr: kspace_reference(hr, (2, 2, 1), "linear")),
    (Acquisition((2, 1, 3), "none", "cubic"), lambda hr: kspace_reference(hr, (2, 1, 3), "cubic")),
    (Acquisition((1, 1, 4), "none", "nearest"),
     lambda hr: kspace_reference(hr, (1, 1, 4), "nearest")),
    (Acquisition((1, 1, 4), "boxcar", "linear"), lambda hr: boxcar_4_reference(hr, "linear")),
    (Acquisition((1, 1, 4), "gaussian", "cubic"), lambda hr: gaussian_4_reference(hr, "cubic")),
]


@pytest.mark.parametrize("acquisition,reference", KINDS,
                         ids=[a.describe() for a, _ in KINDS])
def test_every_kind_matches_its_numpy_computation_on_a_real_volume(real_crop, acquisition,
                                                                   reference):
  lr = kspace.degrade(real_crop.astype(np.float32), acquisition)
  assert lr.shape == real_crop.shape and lr.dtype == np.float32
  expected = reference(real_crop)
  # float32 FFTs and sums of ~10^3 terms of values <= 1: errors of a few 1e-7 each
  assert np.abs(lr - expected).max() < 1e-4, np.abs(lr - expected).max()
  assert np.abs(lr - real_crop).mean() > 1e-3  # and it really degrades


def test_slice_weights_when_the_factor_does_not_divide_the_axis():
  # 10 voxels, factor 4: 2 slices 5 voxels apart, each a boxcar 5 voxels wide
  weights = Acquisition((1, 1, 4), "boxcar").slice_weights(10)
  expected = np.zeros((2, 10))
  expected[0, [8, 9, 0, 1, 2]] = 0.2
  expected[1, 3:8] = 0.2
  np.testing.assert_allclose(weights, expected, atol=1e-12)


def test_removed_band_is_what_the_lr_grid_cannot_hold():
  acquisition = Acquisition((2, 1, 3))
  band = acquisition.removed_band((8, 5, 9))
  frequencies = [np.rint(np.fft.fftfreq(n) * n).astype(int) for n in (8, 5, 9)]
  k0, _, k2 = np.meshgrid(*frequencies, indexing="ij")
  # the LR grid of 4 and 3 voxels holds frequencies -2..1 and -1..1
  np.testing.assert_array_equal(band, ~((k0 >= -2) & (k0 <= 1) & (np.abs(k2) <= 1)))


def test_derived_axes():
  assert Acquisition().plane_axes == (0, 1) and Acquisition().swap_axes == (0, 1)
  thick = Acquisition((1, 1, 4), "gaussian")
  assert thick.plane_axes == (1, 2) and thick.swap_axes == (0, 1)
  assert thick.truncated_axes == () and thick.degraded_axes == (2,)
  assert Acquisition((2, 3, 4)).swap_axes is None
  assert Acquisition((1, 1, 4)).lr_shape((260, 311, 260)) == (260, 311, 65)


@pytest.mark.parametrize("arguments,message", [
    (dict(factors=(1, 1, 1)), "at least one of them > 1"),
    (dict(factors=(2, 2)), "three integers"),
    (dict(factors=(2, 0, 1)), "three integers"),
    (dict(factors=(2, 2, 4), slice_profile="gaussian"), "exactly one factor > 1"),
    (dict(slice_profile="triangle"), "slice_profile"),
    (dict(placement="bicubic"), "placement"),
])
def test_unusable_acquisitions_are_refused(arguments, message):
  with pytest.raises(InputError, match=message):
    Acquisition(**arguments)


def test_the_paper_era_spelling_maps_onto_the_record():
  assert acquisitions.from_flags(lr_mode="zero_filled", factor=2, plane_axes=(0, 1)) == (
      Acquisition((2, 2, 1), "none", "zero_filled"))
  assert acquisitions.from_flags(factor=3, plane_axes=(1, 2)).factors == (1, 3, 3)
  assert acquisitions.from_flags(factors=(2, 2, 1), factor=2) == acquisitions.PAPER
  with pytest.raises(InputError, match="plane_axes 0,0"):
    acquisitions.from_flags(plane_axes=(0, 0))
  with pytest.raises(InputError, match="contradict"):
    acquisitions.from_flags(placement="linear", lr_mode="zero_filled")
  with pytest.raises(InputError, match="contradict"):
    acquisitions.from_flags(factors=(1, 1, 4), factor=2)
  # today's run records and cards, and the new ones
  record = {"lr_mode": "zero_filled", "factor": 2, "plane_axes": [0, 1]}
  assert acquisitions.from_record(record) == Acquisition(placement="zero_filled")
  thick = Acquisition((1, 1, 4), "boxcar", "cubic")
  assert acquisitions.from_record({"acquisition": thick.to_dict(), **record}) == thick
  with pytest.raises(InputError, match="card.json: --placement 'bicubic'"):
    acquisitions.from_record({"lr_mode": "bicubic"}, where="card.json")


def cosine(shape, frequency, amplitude, phase=0.0):
  grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
  argument = sum(2 * np.pi * k * g / n for k, g, n in zip(frequency, grids, shape))
  return amplitude * np.cos(argument + phase)


@pytest.mark.parametrize("acquisition,kept,removed,other", [
    # 16x12x10; the paper's LR grid 8x6 holds k0 in -4..3, k1 in -3..2
    (Acquisition(), (1, 2, 5), (5, 1, 0), (-5, -1, 1)),
    # thick slices: the LR grid of 10 // 4 = 2 slices holds k2 in -1..0
    (Acquisition((1, 1, 4), "boxcar"), (6, 5, 0), (0, 0, 3), (1, 0, 4)),
])
def test_sharpness_closed_form_on_fourier_modes(acquisition, kept, removed, other):
  """HR = 1 + a cosine inside the kept band + one of amplitude A in the removed band; an
  output with amplitude b at phase phi in the removed band and c in another removed mode
  has sharpness (b^2 + c^2) / A^2 and band fidelity 1 - (A^2 + b^2 - 2 A b cos(phi) +
  c^2) / A^2 (a cosine's two DFT coefficients carry N^2 a^2 / 4 each)."""
  shape = (16, 12, 10)
  assert acquisition.removed_band(shape)[removed] and acquisition.removed_band(shape)[other]
  assert not acquisition.removed_band(shape)[kept]
  a, b, c, phi = 0.3, 0.2, 0.05, 0.7
  hr = 1 + cosine(shape, kept, 0.4) + cosine(shape, removed, a)
  out = 1 + cosine(shape, kept, 0.35) + cosine(shape, removed, b, phi) + cosine(shape, other, c)
  figures = metrics.quality(hr, out, acquisition)
  assert figures["sharpness"] == pytest.approx((b**2 + c**2) / a**2, rel=1e-9)
  assert figures["band_fidelity"] == pytest.approx(
      1 - (a**2 + b**2 - 2 * a * b * math.cos(phi) + c**2) / a**2, rel=1e-9)
  without_band = 1 + cosine(shape, kept, 0.4)
  assert abs(metrics.sharpness(hr, without_band, acquisition)) < 1e-12
  assert metrics.sharpness(hr, hr, acquisition) == pytest.approx(1, rel=1e-12)


def test_sharpness_matches_numpy_on_a_real_volume_whole_and_in_a_mask(real_crop):
  acquisition = Acquisition((2, 2, 1))
  out = kspace.degrade(real_crop.astype(np.float32),
                       Acquisition(placement="cubic")).astype(np.float64)
  mask = real_crop > 0.3
  frequencies = [np.rint(np.fft.fftfreq(n) * n).astype(int) for n in real_crop.shape]
  k0, k1, _ = np.meshgrid(*frequencies, indexing="ij")
  band = ~((k0 >= -6) & (k0 <= 5) & (k1 >= -5) & (k1 <= 4))  # LR grid 12x10

  def ratio(hr, sr):
    return (np.abs(np.fft.fftn(sr))[band]**2).sum() / (np.abs(np.fft.fftn(hr))[band]**2).sum()

  figures = metrics.quality(real_crop, out, acquisition, mask)
  assert figures["sharpness"] == pytest.approx(ratio(real_crop, out), rel=1e-9)
  assert figures["sharpness_mask"] == pytest.approx(ratio(real_crop * mask, out * mask),
                                                    rel=1e-9)
  assert 0 < figures["sharpness"] < 0.5  # interpolation restores little of the band (0.037)
