"""Intensity normalisation: every volume is mapped onto [0, 1] and mapped back afterwards.

A magnitude volume (no negative voxel: what MR scanners and the paper's HCP data give) is
divided by its maximum, so its zero stays zero; the max (not a percentile) keeps the
metrics' `data_range=1` exact and matches the reference figures of docs/data.md. A volume
with negative voxels (mean-centred or z-scored by an earlier step of a pipeline) is mapped
by its range instead, (v - min) / (max - min), as ANTs and FSL's intensity rescaling do:
its background, the most negative intensity of such a volume, lands at 0 where a magnitude
image's background is, and clipping at 0 never cuts a real voxel. `denormalise` applies
the inverse, so the output keeps the input's intensity range either way. A volume without
a positive voxel or without contrast (check_contrast) is refused: there is nothing to map.
"""
import dataclasses

import numpy as np

from mdcsrn_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class Intensity:
  """How a volume was mapped onto [0, 1]: normalised = (volume - low) / scale."""
  scale: float
  low: float = 0.0


# A volume holds contrast when its voxels spread over more than CONTRAST of its largest
# magnitude. MR magnitude images are digitised at 12 bits (DICOM's BitsStored of scanners'
# T1 images), so 1/4096 of the largest value is the smallest step a scanner could have
# recorded: a volume whose whole spread is below it holds no structure that was measured,
# only round-off or a constant, which the network, seeing it stretched onto [0, 1] by its
# maximum as a flat image, would "super-resolve" into texture of its own. Real volumes are
# far above it: an interpolated template's tiny negative values (about -0.5% of its maximum)
# widen the spread, and a head's tissues span most of its range.
CONTRAST = 2.0**-12


def check_contrast(volume, name="volume"):
  """InputError naming `name` for a volume that cannot be super-resolved: empty, without a
  positive voxel, or without contrast (its voxels spread over no more than CONTRAST of its
  largest magnitude: constant, or nearly so)."""
  volume = np.asarray(volume)
  if not volume.size:
    raise InputError(f"{name}: empty volume; nothing to super-resolve")
  low, high = float(np.min(volume)), float(np.max(volume))
  if not high > 0:
    raise InputError(f"{name}: no positive voxel (max {high:g}); nothing to super-resolve")
  if high == low:
    raise InputError(f"{name}: constant volume (every voxel is {high:g}); nothing to "
                     "super-resolve")
  if high - low <= CONTRAST * max(high, -low):
    raise InputError(f"{name}: no contrast: every voxel lies within {high - low:.3g} of "
                     f"{high:.6g}, not more than 1/4096 of its magnitude (a 12-bit scanner's "
                     "smallest step); nothing to super-resolve")


def intensity_of(volume, name="volume") -> Intensity:
  """The mapping of `volume` onto [0, 1]; InputError when it has nothing to map
  (check_contrast)."""
  check_contrast(volume, name)
  low, high = min(float(np.min(volume)), 0.0), float(np.max(volume))
  return Intensity(high - low, low)


def normalise(volume, name="volume") -> tuple[np.ndarray, Intensity]:
  """(volume mapped onto [0, 1], the mapping), by intensity_of."""
  volume = np.asarray(volume, np.float32)
  mapping = intensity_of(volume, name)
  if mapping.low == 0:
    return volume / np.float32(mapping.scale), mapping
  return (volume - np.float32(mapping.low)) / np.float32(mapping.scale), mapping


def denormalise(volume, mapping: Intensity) -> np.ndarray:
  """The inverse of normalise."""
  restored = np.asarray(volume, np.float32) * np.float32(mapping.scale)
  return restored + np.float32(mapping.low) if mapping.low else restored
