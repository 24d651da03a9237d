"""Intensity normalisation: every volume is mapped onto [0, 1] and mapped back afterwards.

A magnitude volume (no negative voxel: what MR scanners and the paper's HCP data give) is
divided by its maximum, so its zero stays zero; the max (not a percentile) keeps the
metrics' `data_range=1` exact and matches the reference figures of docs/data.md. A volume
with negative voxels (mean-centred or z-scored by an earlier step of a pipeline) is mapped
by its range instead, (v - min) / (max - min), as ANTs and FSL's intensity rescaling do:
its background, the most negative intensity of such a volume, lands at 0 where a magnitude
image's background is, and clipping at 0 never cuts a real voxel. `denormalise` applies
the inverse, so the output keeps the input's intensity range either way.
"""
import dataclasses

import numpy as np

from mdcsrn_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class Intensity:
  """How a volume was mapped onto [0, 1]: normalised = (volume - low) / scale."""
  scale: float
  low: float = 0.0


def intensity_of(volume, name="volume") -> Intensity:
  """The mapping of `volume` onto [0, 1]; InputError when it has no range to map (all
  voxels equal, or none positive in a volume without negative voxels)."""
  volume = np.asarray(volume)
  if not volume.size:
    raise InputError(f"{name}: empty volume; nothing to super-resolve")
  low, high = float(np.min(volume)), float(np.max(volume))
  low = min(low, 0.0)
  if not high - low > 0:
    raise InputError(f"{name}: no positive voxel (max {high}); nothing to super-resolve")
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
