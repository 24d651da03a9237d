"""The transforms that keep an acquisition: flips along any axis, and a swap of two axes whose
factors are equal (acquisition.swap_axes), never moving an axis to where the factor differs:
16 with such a pair (the paper's 2,2,1), 8 without. Training augments its patches with one
drawn at random (data/pipeline.augment); test-time augmentation (infer/tta.py) runs the
network on up to all of them and maps each output back with `invert`.
"""
import dataclasses

import numpy as np

MOST = 16  # with two axes of equal factors: 2 swaps x 8 flips


@dataclasses.dataclass(frozen=True)
class Transform:
  """Swap the axes `swap` (None: none), then flip the axes `flips`; axes count from
  `first_axis` of the array (1 for a [C, D, H, W] stack)."""
  swap: tuple | None = None
  flips: tuple = ()

  def apply(self, array, first_axis=0):
    if self.swap is not None:
      array = np.swapaxes(array, first_axis + self.swap[0], first_axis + self.swap[1])
    return np.flip(array, [first_axis + a for a in self.flips]) if self.flips else array

  def invert(self, array, first_axis=0):
    """The array `apply` was given, from what it returned (a view, as apply's)."""
    if self.flips:
      array = np.flip(array, [first_axis + a for a in self.flips])
    if self.swap is not None:
      array = np.swapaxes(array, first_axis + self.swap[0], first_axis + self.swap[1])
    return array

  def describe(self) -> str:
    parts = ([f"swap axes {self.swap[0]},{self.swap[1]}"] if self.swap else []) + [
        f"flip axis {a}" for a in self.flips]
    return ", ".join(parts) or "identity"


def keeping(swap_axes=None) -> list:
  """Every acquisition-keeping transform, the identity first, ordered so that the first 2, 4
  and 8 are groups of their own (closed under composition and inverse): with the swap of
  axes a, b (`swap_axes`) and c the third axis, transform k swaps a, b when bit 0 of k is
  set, then flips a and b (bit 1), c (bit 2) and a (bit 3); without, the same flips."""
  first, second = swap_axes if swap_axes is not None else (0, 1)
  (third,) = {0, 1, 2} - {first, second}
  found = []
  for k in range(MOST if swap_axes is not None else MOST // 2):
    bits = k if swap_axes is not None else 2 * k
    flips = set()
    for bit, axes in ((1, {first, second}), (2, {third}), (3, {first})):
      if bits >> bit & 1:
        flips ^= axes
    found.append(Transform((first, second) if bits & 1 else None, tuple(sorted(flips))))
  return found


def drawn(draws, swap_axes=None) -> Transform:
  """The transform 4 uniform draws in [0, 1) pick: the swap (when `swap_axes` is given) and
  each axis' flip with probability 1/2."""
  swap = tuple(swap_axes) if swap_axes is not None and draws[0] < 0.5 else None
  return Transform(swap, tuple(a for a in range(3) if draws[1 + a] < 0.5))
