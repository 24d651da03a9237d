"""The LR volume of an Acquisition, on the HR grid (docs/paper.md#degradation-lr-generation,
docs/data.md#the-acquisition).

`degrade(hr, acquisition)` with the paper's k-space truncation (slice_profile "none"):
1. centred 3D FFT of the HR volume;
2. centred crop of the spectrum to n // factor along each axis whose factor is above 1
   (the paper: the "2x2 plane", factors 2,2,1);
3. inverse FFT on that small grid, scaled by (small size / HR size) so intensities keep
   their level, and magnitude;
4. back onto the HR grid with `upsample` and the acquisition's placement: LR voxel i sits
   at HR voxel i * n_hr / n_lr and the volume is periodic, as the FFT sees it. This
   alignment is what the reference figures need; `tf.image.resize` (half-pixel centres) or
   corner alignment shift the grid by a fraction of a voxel and cost 3-10 dB.

With a slice profile, step 1-3 are replaced by the weighted average of thick slices along
the profile's axis (Acquisition.slice_weights), then placed back alike.

Placements (acquisition.PLACEMENTS): "linear" (linear along each degraded axis), "nearest"
(the first panel of the paper's Figure 2), "cubic" (the paper's bicubic baseline, as scipy's
cubic B-spline, order 3, periodic) or "zero_filled" (for k-space truncation no step 3/4: the
cropped spectrum padded back with zeros and inverted on the HR grid, the reading of public
re-implementations; for thick slices, Fourier interpolation of the slices).

Nearest, linear and zero-filled k-space run in TensorFlow (inside tf.data, on GPU); cubic
and Fourier interpolation go through NumPy/scipy (`tf.numpy_function` for tensors). NumPy
in gives NumPy out, a tensor gives a tensor.
"""
import functools

import numpy as np

import tensorflow as tf

from mdcsrn_tf.acquisition import PAPER, PLACEMENTS, Acquisition
from mdcsrn_tf.errors import InputError


def degrade(hr, acquisition: Acquisition = PAPER):
  """The LR volume of `hr` (3D) as `acquisition` makes it, on the HR grid: float32 and of
  `hr`'s shape."""
  is_tensor = tf.is_tensor(hr)
  hr = tf.convert_to_tensor(hr if is_tensor else np.asarray(hr, np.float32), tf.float32)
  if hr.shape.rank != 3:
    raise InputError(f"expected a 3D volume, got shape {tuple(hr.shape)}")
  acquisition.check_shape(hr.shape.as_list())
  axes = acquisition.degraded_axes
  if acquisition.slice_profile != "none":
    (axis,) = axes
    n = hr.shape[axis]
    if n is None:
      raise ValueError("a slice profile needs the volume's size along its axis")
    weights = tf.constant(acquisition.slice_weights(n), tf.float32)
    small = tf.experimental.numpy.moveaxis(
        tf.tensordot(weights, tf.experimental.numpy.moveaxis(hr, axis, 0), axes=1), 0, axis)
    lr = upsample(small, tf.shape(hr), axes, acquisition.placement)
  elif acquisition.placement == "zero_filled":
    spectrum, begin, small_size = _cropped_spectrum(hr, acquisition.factors)
    padding = tf.stack([begin, tf.shape(hr) - begin - small_size], axis=1)
    lr = tf.abs(tf.signal.ifft3d(tf.signal.ifftshift(tf.pad(spectrum, padding))))
  else:
    spectrum, _, small_size = _cropped_spectrum(hr, acquisition.factors)
    size_ratio = (tf.cast(tf.reduce_prod(small_size), tf.float32)
                  / tf.cast(tf.reduce_prod(tf.shape(hr)), tf.float32))
    small = tf.abs(tf.signal.ifft3d(tf.signal.ifftshift(spectrum))) * size_ratio
    lr = upsample(small, tf.shape(hr), axes, acquisition.placement)
  lr = tf.ensure_shape(lr, hr.shape)
  return lr if is_tensor else lr.numpy()


def upsample(small, shape, axes=(0, 1), placement="linear"):
  """Puts a volume sampled on a coarse grid back onto a grid of `shape`.

  Along each axis in `axes`, output voxel j reads input coordinate j * n_small / n,
  periodically (LR voxel i lands on HR voxel i * n / n_small); other axes are kept.
  `placement` is "nearest", "linear", "cubic" (B-spline, order 3) or "zero_filled"
  (Fourier interpolation: the centred spectrum zero-padded, as `degrade` makes it; the
  magnitude is kept, so the result is >= 0).
  """
  if placement not in PLACEMENTS:
    raise ValueError(f"placement {placement!r} is not one of {', '.join(PLACEMENTS)}")
  if len(set(axes)) != len(axes) or not set(axes) <= {0, 1, 2}:
    raise ValueError(f"axes must be distinct axes of a 3D volume, got {axes!r}")
  is_tensor = tf.is_tensor(small)
  small = tf.convert_to_tensor(small if is_tensor else np.asarray(small, np.float32), tf.float32)
  if small.shape.rank != 3:
    raise InputError(f"expected a 3D volume, got shape {tuple(small.shape)}")
  shape = tf.cast(tf.convert_to_tensor(shape), tf.int32)
  if placement in ("nearest", "linear"):
    along = _nearest_along if placement == "nearest" else _linear_along
    volume = small
    for axis in axes:
      volume = along(volume, axis, shape[axis])
  else:
    resample = _cubic_numpy if placement == "cubic" else _zero_filled_numpy
    volume = tf.numpy_function(
        lambda array, size: resample(array, size, axes), [small, shape], tf.float32,
        stateful=False)
  out_shape = [small.shape[axis] if axis not in axes else None for axis in range(3)]
  static = tf.get_static_value(shape)
  if static is not None:
    out_shape = [int(n) for n in static]
  volume = tf.ensure_shape(volume, out_shape)
  return volume if is_tensor else volume.numpy()


def _cropped_spectrum(hr, factors):
  """(centred spectrum cropped to n // factor along each axis, crop start, crop size).

  The crop keeps the zero frequency of the HR spectrum (index n // 2 after the shift) at the
  small grid's zero-frequency index (m // 2), so odd and even sizes both stay centred.
  """
  spectrum = tf.signal.fftshift(tf.signal.fft3d(tf.complex(hr, tf.zeros_like(hr))))
  shape = tf.shape(hr)
  small_size = shape // tf.constant(factors, tf.int32)
  begin = shape // 2 - small_size // 2
  return tf.slice(spectrum, begin, small_size), begin, small_size


def _linear_along(volume, axis, size):
  """Periodic linear interpolation of `volume` along `axis` onto `size` samples; exact
  integer arithmetic for the source coordinate j * n_small / size."""
  n_small = tf.cast(tf.shape(volume)[axis], tf.int64)
  size = tf.cast(size, tf.int64)
  numerator = tf.range(size, dtype=tf.int64) * n_small
  lower = numerator // size
  weight = tf.cast(numerator - lower * size, tf.float32) / tf.cast(size, tf.float32)
  upper = (lower + 1) % n_small
  weight = tf.reshape(weight, [-1 if a == axis else 1 for a in range(3)])
  return ((1 - weight) * tf.gather(volume, lower, axis=axis)
          + weight * tf.gather(volume, upper, axis=axis))


def _nearest_along(volume, axis, size):
  """Periodic nearest-neighbour resampling along `axis`: output j reads the input voxel
  nearest to j * n_small / size (halves round up, as scipy's order 0)."""
  n_small = tf.cast(tf.shape(volume)[axis], tf.int64)
  size = tf.cast(size, tf.int64)
  nearest = (2 * tf.range(size, dtype=tf.int64) * n_small + size) // (2 * size)
  return tf.gather(volume, nearest % n_small, axis=axis)


def _cubic_numpy(small, shape, axes):
  """Separable periodic cubic B-spline interpolation with the alignment of `upsample`."""
  volume = np.asarray(small, np.float64)
  for axis in axes:
    matrix = _cubic_matrix(volume.shape[axis], int(shape[axis]))
    volume = np.moveaxis(np.tensordot(matrix, volume, axes=([1], [axis])), 0, axis)
  return volume.astype(np.float32)


def _zero_filled_numpy(small, shape, axes):
  """|inverse FFT| of the small grid's spectrum zero-padded to `shape` along `axes`, with
  the centring of `_cropped_spectrum` and the intensity level kept."""
  volume = np.asarray(small, np.complex128)
  for axis in axes:
    n_small, size = volume.shape[axis], int(shape[axis])
    spectrum = np.fft.fftshift(np.fft.fft(volume, axis=axis), axes=axis)
    begin = size // 2 - n_small // 2
    padding = [(0, 0)] * 3
    padding[axis] = (begin, size - n_small - begin)
    spectrum = np.pad(spectrum, padding)
    volume = np.fft.ifft(np.fft.ifftshift(spectrum, axes=axis), axis=axis) * (size / n_small)
  return np.abs(volume).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _cubic_matrix(n_small, size):
  """The [size, n_small] matrix of 1D periodic cubic B-spline interpolation: column k is
  the interpolant of the k-th unit vector sampled at j * n_small / size."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel

  columns = [ndimage.affine_transform(unit, [n_small / size], 0.0, output_shape=(size,), order=3,
                                      mode="grid-wrap")
             for unit in np.eye(n_small)]
  return np.stack(columns, axis=1)
