"""Intensity normalisation: every volume is divided by its maximum, so HR lies in [0, 1].

The max (not a percentile) keeps the metrics' `data_range=1` exact and matches
the reference figures of docs/data.md; MRI magnitude volumes here are non-negative and the
registry volumes have no isolated hot voxels. Inference de-normalises with the same
scale, so the output keeps the input's intensity range.
"""
import numpy as np

from mdcsrn_tf.errors import InputError


def normalise(volume, name="volume") -> tuple[np.ndarray, float]:
  """Returns (volume / scale, scale) with scale = max(volume) > 0."""
  volume = np.asarray(volume, np.float32)
  scale = float(np.max(volume)) if volume.size else 0.0
  if not scale > 0:
    raise InputError(f"{name}: no positive voxel (max {scale}); nothing to super-resolve")
  return volume / np.float32(scale), scale


def denormalise(volume, scale: float) -> np.ndarray:
  return np.asarray(volume, np.float32) * np.float32(scale)
