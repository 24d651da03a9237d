"""k-space degradation (data/kspace.py) against an independent NumPy/SciPy implementation,
its properties, and the figures docs/data.md states for the real Colin27 volume."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from mdcsrn_tf import metrics
from mdcsrn_tf.acquisition import PLACEMENTS, Acquisition, paper_factors
from mdcsrn_tf.data import kspace, nifti
from mdcsrn_tf.errors import InputError


def paper_acquisition(factor=2, axes=(0, 1), placement="linear"):
  return Acquisition(paper_factors(factor, axes), placement=placement)

def reference_degrade(hr, factor, axes, interpolation):
  """The paper's recipe (docs/paper.md#degradation-lr-generation) written directly: np.fft,
  and scipy's 3D affine_transform with
  matrix n_lr / n_hr, offset 0, periodic borders."""
  hr = np.asarray(hr, np.float64)
  spectrum = np.fft.fftshift(np.fft.fftn(hr))
  window, small_shape = [slice(None)] * 3, list(hr.shape)
  for axis in axes:
    n, m = hr.shape[axis], hr.shape[axis] // factor
    window[axis] = slice(n // 2 - m // 2, n // 2 - m // 2 + m)
    small_shape[axis] = m
  if interpolation == "zero_filled":
    padded = np.zeros_like(spectrum)
    padded[tuple(window)] = spectrum[tuple(window)]
    return np.abs(np.fft.ifftn(np.fft.ifftshift(padded)))
  small = np.abs(np.fft.ifftn(np.fft.ifftshift(spectrum[tuple(window)])))
  small *= np.prod(small_shape) / np.prod(hr.shape)
  return reference_upsample(small, hr.shape, interpolation)


def reference_upsample(small, shape, interpolation):
  return ndimage.affine_transform(
      small, [m / n for m, n in zip(small.shape, shape)], 0.0, output_shape=tuple(shape),
      order={"nearest": 0, "linear": 1, "cubic": 3}[interpolation], mode="grid-wrap")


def assert_relative_close(actual, expected, tolerance=1e-4):
  error = np.max(np.abs(np.asarray(actual, np.float64) - expected))
  assert error <= tolerance * np.max(np.abs(expected)), error


@pytest.mark.parametrize("shape,factor,axes", [
    ((16, 12, 10), 2, (0, 1)), ((17, 13, 9), 2, (0, 1)), ((15, 11, 14), 2, (1, 2)),
    ((18, 10, 12), 3, (0, 2))])
@pytest.mark.parametrize("interpolation", PLACEMENTS)
def test_degrade_matches_numpy_reference(shape, factor, axes, interpolation):
  hr = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
  lr = kspace.degrade(hr, paper_acquisition(factor, axes, interpolation))
  assert isinstance(lr, np.ndarray) and lr.dtype == np.float32 and lr.shape == shape
  assert np.all(lr >= 0)
  assert_relative_close(lr, reference_degrade(hr, factor, axes, interpolation))


def test_tensor_in_tensor_out_and_inside_tf_data_with_unknown_shape():
  hr = np.random.default_rng(1).random((17, 12, 7), dtype=np.float32)
  expected = kspace.degrade(hr)
  lr = kspace.degrade(tf.constant(hr))
  assert tf.is_tensor(lr) and lr.dtype == tf.float32
  np.testing.assert_allclose(lr.numpy(), expected, rtol=1e-6, atol=1e-6)
  dataset = tf.data.Dataset.from_generator(
      lambda: iter([hr]), output_signature=tf.TensorSpec([None, None, None], tf.float32))
  for interpolation in ("linear", "cubic"):
    acquisition = paper_acquisition(placement=interpolation)
    (mapped,) = list(dataset.map(lambda v, a=acquisition: kspace.degrade(v, a)))
    np.testing.assert_allclose(mapped.numpy(), kspace.degrade(hr, acquisition),
                               rtol=1e-6, atol=1e-6)


def test_small_image_spectrum_is_the_central_crop_of_the_hr_spectrum():
  # m = 9 and 7 are odd, so the cropped spectrum is Hermitian: the small image is real and,
  # around a positive offset, positive, so the magnitude keeps it. With n = 2m, LR voxel i
  # sits exactly on HR voxel 2i, where linear interpolation returns the small image itself.
  hr = 2 + 0.2 * np.random.default_rng(2).random((18, 14, 5))
  small = kspace.degrade(hr, paper_acquisition())[::2, ::2, :].astype(np.float64)
  small_spectrum = np.fft.fftshift(np.fft.fftn(small)) * (18 * 14) / (9 * 7)
  hr_spectrum = np.fft.fftshift(np.fft.fftn(hr))
  central = hr_spectrum[9 - 4:9 - 4 + 9, 7 - 3:7 - 3 + 7, :]
  np.testing.assert_allclose(small_spectrum, central, atol=1e-4 * np.abs(central).max())


def band_limited_volume(shape, keep):
  """A positive real volume whose in-plane spectrum lies within |k| <= keep."""
  rng = np.random.default_rng(3)
  spectrum = np.zeros(shape, complex)
  for k0 in range(-keep, keep + 1):
    for k1 in range(-keep, keep + 1):
      spectrum[k0, k1, :] = rng.normal(size=shape[2]) + 1j * rng.normal(size=shape[2])
  volume = np.real(np.fft.ifftn(spectrum))
  return volume - volume.min() + 0.5


def test_band_limited_volume_passes_through_up_to_interpolation():
  hr = band_limited_volume((20, 16, 6), keep=3).astype(np.float32)
  np.testing.assert_allclose(kspace.degrade(hr, paper_acquisition(placement="zero_filled")), hr,
                             rtol=1e-5)
  linear = kspace.degrade(hr, paper_acquisition())
  # on the nodes of the small grid the LR is the HR itself; between them, the mean of its
  # neighbours (periodic)
  np.testing.assert_allclose(linear[::2, ::2], hr[::2, ::2], rtol=1e-5)
  between = 0.5 * (hr[::2, ::2] + np.roll(hr[::2, ::2], -1, axis=0))
  np.testing.assert_allclose(linear[1::2, ::2], between, rtol=1e-5)
  cubic = kspace.degrade(hr, paper_acquisition(placement="cubic"))
  assert np.abs(cubic - hr).mean() < np.abs(linear - hr).mean()


@pytest.mark.parametrize("small_shape,shape", [((8, 6, 5), (16, 12, 5)), ((5, 7, 4), (7, 12, 4))])
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_upsample_alignment_matches_reference(small_shape, shape, interpolation):
  small = np.random.default_rng(4).random(small_shape, dtype=np.float32)
  up = kspace.upsample(small, shape, axes=(0, 1), placement=interpolation)
  assert up.shape == shape and up.dtype == np.float32
  assert_relative_close(up, reference_upsample(small.astype(np.float64), shape, interpolation))
  np.testing.assert_allclose(up[0, 0], small[0, 0], rtol=1e-5)  # voxel 0 stays in place


def test_zero_filled_upsample_is_exact_on_a_band_limited_volume():
  """Fourier interpolation (mdcsrn-sr --scale for zero-filled weights) recovers a volume
  whose spectrum fits the small grid from every other voxel; linear interpolation cannot."""
  hr = band_limited_volume((20, 16, 6), keep=3).astype(np.float32)
  small = hr[::2, ::2]
  up = kspace.upsample(small, hr.shape, axes=(0, 1), placement="zero_filled")
  assert up.shape == hr.shape and up.dtype == np.float32
  np.testing.assert_allclose(up, hr, rtol=1e-5)
  linear = kspace.upsample(small, hr.shape, axes=(0, 1), placement="linear")
  assert np.abs(linear - hr).max() > 100 * np.abs(up - hr).max()
  # an odd target size keeps the centring of degrade's spectrum crop
  odd = band_limited_volume((21, 17, 6), keep=3)
  spectrum = np.fft.fftshift(np.fft.fftn(odd), axes=(0, 1))
  window = tuple(slice(n // 2 - 5, n // 2 + 5) if n == 21 else slice(n // 2 - 4, n // 2 + 4)
                 for n in odd.shape[:2])
  reduced = np.real(np.fft.ifftn(np.fft.ifftshift(spectrum[window], axes=(0, 1)))) * 80 / 357
  up_odd = kspace.upsample(reduced.astype(np.float32), odd.shape, axes=(0, 1),
                           placement="zero_filled")
  np.testing.assert_allclose(up_odd, odd, rtol=1e-4)


def test_bad_arguments_are_refused():
  with pytest.raises(InputError, match="3D"):
    kspace.degrade(np.ones((8, 8), np.float32))
  with pytest.raises(InputError, match="fewer than the factor"):
    kspace.degrade(np.ones((1, 8, 8), np.float32))
  with pytest.raises(ValueError, match="placement"):
    kspace.upsample(np.ones((8, 8, 8), np.float32), (16, 16, 8), placement="bicubic")
  with pytest.raises(ValueError, match="axes"):
    kspace.upsample(np.ones((8, 8, 8), np.float32), (16, 16, 8), axes=(0, 3))


def test_colin27_figures_match_the_reference_recipe_and_the_docs(sample):
  volume, _ = nifti.load_volume(sample("colin27_1mm"))
  hr = volume / volume.max()
  documented = {"linear": 35.46, "cubic": 38.51, "zero_filled": 39.80}  # docs/data.md
  measured = {name: metrics.psnr(hr, kspace.degrade(hr, paper_acquisition(placement=name)))
              for name in documented}
  for name, value in documented.items():
    reference = metrics.psnr(hr, reference_degrade(hr, 2, (0, 1), name))
    assert abs(measured[name] - reference) < 0.01, (name, measured[name], reference)
    assert abs(measured[name] - value) < 0.05, (name, measured[name])
  assert measured["linear"] < measured["cubic"] < measured["zero_filled"]
