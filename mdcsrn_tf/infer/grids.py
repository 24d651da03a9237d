"""The HR grid an input goes onto (infer/predict.py): the flags that ask for it (--scale,
--target_voxel), the factors the weights were trained for, where its voxels lie on the
input's grid, and the memory a run on it needs, checked before anything is read further.
"""
import math

import numpy as np

from mdcsrn_tf import hardware
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import consistency

# Peak bytes a run holds per voxel of the HR grid (benchmarks/run_memory.py: on 19.7 M
# voxels, the process's peak resident memory above what it held before the volume was read):
# - a grid change: the interpolation's intermediates, Fourier interpolation's complex128
#   spectra (60 B per voxel; linear interpolation 34 B), gone before the network runs;
# - then 4 float32 volumes: the input on the HR grid, normalised, the network's output and
#   it de-normalised (17.4 B measured); with test-time augmentation (infer/tta.py) 6: the
#   input, normalised, the running mean and sum of squares, the current pass's transformed
#   input and its output (25.4 B measured, for 2, 4 and 8 passes alike). The rest, 1.4 B
#   per voxel there, is the tiles' windows and TensorFlow's, bounded by --memory_limit.
HR_BYTES_PER_VOXEL = 64
FLOAT32_VOLUMES = 4
TTA_VOLUMES = 6


def check_grid_flags(scale=None, target_voxel=None):
  """InputError unless at most one of `scale` (three finite factors >= 1) and
  `target_voxel` (a finite size > 0) is given."""
  if scale is not None and target_voxel is not None:
    raise InputError("give --scale or --target_voxel, not both")
  if target_voxel is not None and not (math.isfinite(target_voxel) and target_voxel > 0):
    raise InputError(f"--target_voxel must be a positive number of mm, got {target_voxel}")
  if scale is not None and (len(scale) != 3 or not all(math.isfinite(s) and s >= 1
                                                       for s in scale)):
    raise InputError(f"--scale needs three finite factors >= 1 (one per axis), got "
                     f"{','.join(str(s) for s in scale)}")


def requested_scale(zooms, scale=None, target_voxel=None):
  """The per-axis factors `--scale` or `--target_voxel` ask for (None: neither)."""
  check_grid_flags(scale, target_voxel)
  if target_voxel is not None:
    return tuple(max(z / target_voxel, 1.0) for z in zooms)
  return None if scale is None else tuple(scale)


def check_trained_grid(path, scale, acquisition: Acquisition, weights_name="the weights"):
  """InputError unless a grid change by `scale` is the one the weights were trained for:
  each axis' factor their acquisition's (within 0.1%, the rounding of voxel sizes)."""
  if scale is None or all(s == 1 for s in scale):
    return
  if not all(abs(s - f) <= 1e-3 * f for s, f in zip(scale, acquisition.factors)):
    raise InputError(
        f"{path}: --scale/--target_voxel ask for factors {','.join(f'{s:g}' for s in scale)}, "
        f"but {weights_name} were trained for {acquisition.describe()}; give a scan whose "
        "grid they fit, or weights trained for this one (mdcsrn-train --factors)")


def hr_grid(shape, zooms, scale=None, target_voxel=None, name="the input"):
  """(HR shape, per-axis factors n_hr / n_lr) for `--scale` or `--target_voxel`."""
  scale = requested_scale(zooms, scale, target_voxel)
  if scale is None:
    return tuple(shape), (1.0, 1.0, 1.0)
  sizes = [n * s for n, s in zip(shape, scale)]
  if not all(math.isfinite(size) for size in sizes):  # finite factors can still overflow
    raise InputError(f"{name}: the HR grid these --scale/--target_voxel values ask for is too "
                     "large to represent")
  hr_shape = tuple(int(round(size)) for size in sizes)
  return hr_shape, tuple(m / n for m, n in zip(hr_shape, shape))


def bytes_per_voxel(grid_change=True, passes=1, keep_band=False) -> int:
  """Peak bytes a run holds per voxel of the HR grid: the grid change's interpolation or,
  when more, the float32 volumes of one pass or of test-time augmentation's `passes`, with
  the measured-band projection's own when `keep_band` (infer/consistency.py)."""
  volumes = 4 * (TTA_VOLUMES if passes > 1 else FLOAT32_VOLUMES)
  volumes += consistency.BYTES_PER_VOXEL if keep_band else 0
  return max(HR_BYTES_PER_VOXEL, volumes) if grid_change else volumes


def check_memory(path, hr_shape, grid_change=True, passes=1, keep_band=False,
                 **memory_sources):
  """InputError when a run on the HR grid (after a grid change when `grid_change`; with
  test-time augmentation's `passes`; projected onto the measured band when `keep_band`)
  would need more memory than is available (hardware.available_memory, which
  `memory_sources` go to)."""
  available = hardware.available_memory(**memory_sources)
  needed = math.prod(hr_shape) * bytes_per_voxel(grid_change, passes, keep_band)
  if available is not None and needed > available:
    fewer = ["a smaller --scale or a larger --target_voxel"] if grid_change else []
    fewer += ["fewer --tta passes"] if passes > 1 else []
    raise InputError(f"{path}: the HR grid of {' x '.join(map(str, hr_shape))} voxels needs "
                     f"about {needed / 2**30:.3g} GiB"
                     + (f" with --tta {passes}" if passes > 1 else "")
                     + f", more than the {available / 2**30:.3g} GiB of memory available"
                     + (f"; ask for {' or '.join(fewer)}" if fewer else ""))


def grid_map(factors):
  """The 4x4 map from HR voxel indices to input voxel indices: HR voxel j sits at input
  coordinate j / factor (the alignment of kspace.upsample), so voxel 0 keeps its position
  and n_hr HR voxels span the n_lr input ones."""
  return np.diag([1 / f for f in factors] + [1.0])
