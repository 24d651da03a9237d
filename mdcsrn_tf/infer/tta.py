"""Test-time augmentation: the network run on up to the 16 transforms that keep the
acquisition (data/transforms.py, the flips and the plane swap training augments with), each
output mapped back, and their per-voxel mean and standard deviation
(docs/evaluation.md#test-time-augmentation-and-the-uncertainty-map).

The passes run one after another through infer/inference.super_resolve, each with the tiles
planned for its (possibly swapped) shape, and are folded into a running mean and sum of
squared deviations per voxel (Welford's update), so memory holds the input, one pass's
transformed input and output, the mean and the squares: five float32 volumes whatever the
number of passes (infer/grids.py counts them), besides the tiles' activations, which the
plan bounds as for one pass.
"""
import numpy as np

from mdcsrn_tf import paper
from mdcsrn_tf.data import transforms
from mdcsrn_tf.infer import inference


def tile_plan(model, shape, tile, margin, batch, memory_limit) -> tuple:
  """(tile, batch) of one pass over a volume of `shape`: `tile` None plans both from
  `memory_limit` MiB (inference.auto_plan); with a tile edge, `memory_limit` (if given) sets
  the batch."""
  if tile is None:
    return inference.auto_plan(model, shape, margin,
                               (memory_limit or inference.DEFAULT_MEMORY_MIB) * 2**20)
  if memory_limit:
    return tile, inference.batch_for_memory(model, memory_limit * 2**20, tile, margin)
  return tile, batch


def passes_for(passes, swap_axes=None) -> list:
  """The first `passes` acquisition-keeping transforms (all of them when there are fewer)."""
  return transforms.keeping(swap_axes)[:max(1, passes)]


def super_resolve(model, normalised, tile=paper.TILE, margin=paper.MARGIN, batch=1,
                  memory_limit=None, passes=1, swap_axes=None, progress=True,
                  jit_compile=False, engine=None, keep_band=None) -> tuple:
  """(mean output, per-voxel standard deviation over the passes, or None for one pass) of
  a normalised volume on the HR grid: the network on each of `passes_for(passes,
  swap_axes)` transforms of it, mapped back, each by `engine` (engines.prepare; None: the
  TensorFlow pass), keeping `keep_band`'s measured band in each (inference.super_resolve).
  Raises errors.NonFiniteOutput as inference.super_resolve does."""
  chosen = passes_for(passes, swap_axes)
  mean = squares = None
  for count, transform in enumerate(chosen, start=1):
    moved = transform.apply(normalised)
    pass_tile, pass_batch = tile_plan(model, moved.shape, tile, margin, batch, memory_limit)
    output = transform.invert(inference.super_resolve(
        model, moved, tile=pass_tile, margin=margin, batch=pass_batch, progress=progress,
        jit_compile=jit_compile, desc=f"pass {count}/{len(chosen)}", engine=engine,
        keep_band=keep_band))
    if mean is None:
      # the first pass (the identity) is the mean itself, not a copy of it
      mean, squares = np.ascontiguousarray(output, np.float32), np.zeros_like(output)
      continue
    delta = np.subtract(output, mean, out=output)  # in place: the pass's output is ours
    mean += delta / np.float32(count)
    # Welford: (x - old mean) (x - new mean) = delta^2 (count - 1) / count
    squares += np.square(delta, out=delta) * np.float32((count - 1) / count)
    del output, delta  # not held while the next pass runs
  if len(chosen) == 1:
    return mean, None
  return mean, np.sqrt(np.maximum(squares, 0) / np.float32(len(chosen)))
