"""How a low-resolution scan is acquired from an HR volume and put back on the HR grid: the
one record of the physics that every stage reads (docs/data.md#the-acquisition).

An `Acquisition` holds
- `factors`: per axis, how many HR voxels one LR voxel spans (the paper: 2,2,1; a clinical
  thick-slice T1: 1,1,4). The LR grid has n // factor voxels along each axis.
- `slice_profile`: how the LR samples are made along the axis with a factor above 1.
  "none" is the paper's k-space truncation: the centred n // factor frequencies along every
  such axis are kept, the rest (the removed band) dropped. A profile ("boxcar", "gaussian")
  averages thick slices instead: LR slice i is the HR volume weighted by the profile,
  centred on HR coordinate i * n / n_lr, one LR spacing wide (boxcar: the slice's width;
  gaussian: its full width at half maximum), periodic as the FFT sees the volume.
- `placement`: how the LR volume returns to the HR grid, one of PLACEMENTS (data/kspace.py
  implements them): LR voxel i lands on HR voxel i * n / n_lr.

It is validated once here, and serialised once (`to_dict`): into model cards, the disk
cache's key, evaluate's settings and training's run record. Records written before the
record existed (`lr_mode`, `factor`, `plane_axes`) map onto it with `from_record`.

A new kind of slice profile is one function `profile(low, high, width)` (the share of a
unit-area profile of full width `width`, centred on 0, that falls in [low, high]) added to
SLICE_PROFILES; tests/test_acquisition.py checks each kind against NumPy in one table row.
"""
import dataclasses
import math

import numpy as np

from mdcsrn_tf.errors import InputError

PLACEMENTS = ("nearest", "linear", "cubic", "zero_filled")
PAPER_FACTOR = 2
PAPER_PLANE_AXES = (0, 1)
# The largest factor any file could be acquired with: a NIfTI-1 header holds each edge as an
# int16 (at most 32767 voxels), and the k-space truncation by a factor f needs 2 f voxels
# along its axis (nifti.check_size), so no readable volume fits a factor above 32767 // 2.
MAX_FACTOR = 32767 // 2


def _boxcar(low, high, width):
  return np.clip(np.minimum(high, width / 2) - np.maximum(low, -width / 2), 0, None) / width


def _gaussian(low, high, width):
  from scipy import special  # pylint: disable=import-outside-toplevel

  scale = width / (2 * math.sqrt(2 * math.log(2))) * math.sqrt(2)  # sigma * sqrt(2)
  return 0.5 * (special.erf(high / scale) - special.erf(low / scale))


SLICE_PROFILES = {"boxcar": _boxcar, "gaussian": _gaussian}
PROFILE_NAMES = ("none", *SLICE_PROFILES)
PROFILE_REACH = 4  # LR spacings on each side of a slice's centre that its weights cover


@dataclasses.dataclass(frozen=True)
class Acquisition:
  """Per-axis factors, the slice profile ("none": k-space truncation) and the placement
  back on the HR grid; see the module docstring."""
  factors: tuple = (PAPER_FACTOR, PAPER_FACTOR, 1)
  slice_profile: str = "none"
  placement: str = "linear"

  def __post_init__(self):
    factors = tuple(self.factors) if isinstance(self.factors, (tuple, list)) else ()
    if (len(factors) != 3 or not all(isinstance(f, (int, np.integer)) and not isinstance(f, bool)
                                     and 1 <= f <= MAX_FACTOR for f in factors)
        or max(factors) == 1):
      raise InputError(f"--factors {_text(self.factors)}: expected three integers from 1 to "
                       f"{MAX_FACTOR} (one per axis), at least one of them > 1")
    object.__setattr__(self, "factors", tuple(int(f) for f in factors))
    if self.slice_profile not in PROFILE_NAMES:
      raise InputError(f"--slice_profile {self.slice_profile!r}: expected one of "
                       f"{', '.join(PROFILE_NAMES)}")
    if self.slice_profile != "none" and len(self.degraded_axes) != 1:
      raise InputError(f"--slice_profile={self.slice_profile} averages thick slices along one "
                       f"axis: --factors needs exactly one factor > 1, got {_text(factors)}")
    if self.placement not in PLACEMENTS:
      raise InputError(f"--placement {self.placement!r}: expected one of "
                       f"{', '.join(PLACEMENTS)}")

  @property
  def degraded_axes(self) -> tuple:
    """The axes whose resolution the acquisition reduces (factor > 1)."""
    return tuple(axis for axis, f in enumerate(self.factors) if f > 1)

  @property
  def truncated_axes(self) -> tuple:
    """The axes truncated in k-space (none with a slice profile)."""
    return self.degraded_axes if self.slice_profile == "none" else ()

  @property
  def band_is_measured(self) -> bool:
    """Whether the network input holds the kept band of k-space as measured: truncation read
    zero-filled (an interpolated input's kept band is the interpolator's, a thick slice's
    is no band at all; infer/consistency.py)."""
    return bool(self.truncated_axes) and self.placement == "zero_filled"

  @property
  def plane_axes(self) -> tuple:
    """The two axes of the 2D slices that metrics (SSIM) and figures use: all but the
    least degraded axis (the first of equals), so a slice shows the loss: the paper's
    (0, 1) for factors 2,2,1; (1, 2) for thick slices 1,1,4."""
    through = self.factors.index(min(self.factors))
    return tuple(axis for axis in range(3) if axis != through)

  @property
  def swap_axes(self) -> tuple | None:
    """Two axes with equal factors, which augmentation may swap, or None."""
    for first in range(3):
      for second in range(first + 1, 3):
        if self.factors[first] == self.factors[second]:
          return first, second
    return None

  def plane_slice(self, volume, index=None) -> np.ndarray:
    """The 2D slice of `volume` in `plane_axes` at `index` (default: the middle) along the
    remaining axis: what the figures show."""
    (through,) = {0, 1, 2} - set(self.plane_axes)
    index = volume.shape[through] // 2 if index is None else index
    return np.take(volume, index, axis=through)

  def lr_shape(self, shape) -> tuple:
    """The LR grid of an HR volume of `shape`."""
    return tuple(int(n) // f for n, f in zip(shape, self.factors))

  def check_shape(self, shape, name="the volume"):
    """InputError when an axis is shorter than its factor."""
    for axis, (n, f) in enumerate(zip(shape, self.factors)):
      if n is not None and n < f:
        raise InputError(f"{name}: axis {axis} has {n} voxels, fewer than the factor {f}")

  def removed_band(self, shape) -> np.ndarray:
    """Boolean mask, in np.fft.fftn's (unshifted) order, of the k-space coefficients of an
    HR volume of `shape` that the LR grid cannot hold: outside the centred n // factor
    frequencies of any degraded axis (kept: indices n // 2 - m // 2 ... + m after
    fftshift, the crop data/kspace.py makes)."""
    kept = np.ones(tuple(shape), bool)
    for axis in self.degraded_axes:
      n, m = shape[axis], shape[axis] // self.factors[axis]
      inside = np.zeros(n, bool)
      inside[n // 2 - m // 2:n // 2 - m // 2 + m] = True
      kept &= np.fft.ifftshift(inside).reshape([-1 if a == axis else 1 for a in range(3)])
    return ~kept

  def slice_weights(self, n) -> np.ndarray:
    """[n // factor, n] float64: LR slice i as weights of the HR voxels along the profile's
    axis (each row sums to 1; periodic)."""
    (axis,) = self.degraded_axes
    n_lr = n // self.factors[axis]
    spacing = n / n_lr
    profile = SLICE_PROFILES[self.slice_profile]
    reach = int(math.ceil(PROFILE_REACH * spacing))
    weights = np.zeros((n_lr, n))
    for i in range(n_lr):
      centre = i * spacing
      voxels = np.arange(math.floor(centre) - reach, math.ceil(centre) + reach + 1)
      share = profile(voxels - 0.5 - centre, voxels + 0.5 - centre, spacing)
      np.add.at(weights[i], voxels % n, share)
    return weights / weights.sum(axis=1, keepdims=True)

  def to_dict(self) -> dict:
    return {"factors": list(self.factors), "slice_profile": self.slice_profile,
            "placement": self.placement}

  def describe(self) -> str:
    """One phrase for messages: "factors 2,2,1 (k-space), linear placement"."""
    how = "k-space" if self.slice_profile == "none" else f"{self.slice_profile} slices"
    return f"factors {_text(self.factors)} ({how}), {self.placement} placement"


PAPER = Acquisition()


def paper_factors(factor=PAPER_FACTOR, plane_axes=PAPER_PLANE_AXES) -> tuple:
  """Per-axis factors of the paper's spelling: `factor` along the two `plane_axes`."""
  plane_axes = tuple(plane_axes)
  if len(plane_axes) != 2 or len(set(plane_axes)) != 2 or not set(plane_axes) <= {0, 1, 2}:
    raise InputError(f"--plane_axes {_text(plane_axes)}: expected two distinct axes of 0, 1, 2")
  return tuple(factor if axis in plane_axes else 1 for axis in range(3))


def from_flags(factors=None, slice_profile=None, placement=None, lr_mode=None, factor=None,
               plane_axes=None) -> Acquisition:
  """The Acquisition of a command's flags. --lr_mode is the paper-era name of --placement,
  --factor and --plane_axes the paper-era spelling of --factors (factor along the two plane
  axes); both spellings may be given when they agree."""
  if placement and lr_mode and placement != lr_mode:
    raise InputError(f"--placement={placement} and --lr_mode={lr_mode} contradict each other "
                     "(--lr_mode is the older name of --placement): give one")
  if factor is not None or plane_axes is not None:
    legacy = paper_factors(PAPER_FACTOR if factor is None else factor,
                           PAPER_PLANE_AXES if plane_axes is None else plane_axes)
    if factors and tuple(factors) != legacy:
      raise InputError(f"--factors={_text(factors)} and --factor/--plane_axes (factors "
                       f"{_text(legacy)}) contradict each other: give one")
    factors = legacy
  return Acquisition(tuple(factors) if factors else PAPER.factors, slice_profile or "none",
                     placement or lr_mode or PAPER.placement)


def from_record(record: dict, where="the record") -> Acquisition:
  """The Acquisition a card, run record or settings mapping holds: its "acquisition", or
  the paper-era fields "lr_mode", "factor" and "plane_axes" of records written before it;
  InputError naming `where` for one it cannot use."""
  try:
    stored = record.get("acquisition")
    if stored is not None:
      if not isinstance(stored, dict) or set(stored) - {field.name for field in
                                                          dataclasses.fields(Acquisition)}:
        raise InputError(f"unreadable acquisition {stored!r}")
      return Acquisition(**stored)
    return from_flags(lr_mode=record.get("lr_mode"), factor=record.get("factor"),
                      plane_axes=record.get("plane_axes"))
  except InputError as error:
    raise InputError(f"{where}: {error}") from None


def _text(values) -> str:
  try:
    return ",".join(str(v) for v in values)
  except TypeError:
    return repr(values)
