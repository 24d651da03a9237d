"""Whole-volume super-resolution by tiles, as the paper merges patches (NOTES.md, Data).

Shaped like MONAI's sliding-window inference: a splitter plans the tiles, a tf.data
pipeline cuts and batches their input windows (the next batch is cut while the current one
computes), one traced function runs the network, and a merger writes each tile's output
into the volume.

- The output is split into non-overlapping tiles of `tile` voxels per axis. Each is
  computed from a window of tile + 2 * margin voxels, and the margin is discarded.
- Windows never leave the volume: at a border the window slides inward, so the network
  sees the volume's real edge (its own 'same' zero padding) exactly as whole-volume
  inference does, and the tile gets extra context on its inner side instead. Hence no
  reflect or edge padding is needed, and with margin >= the receptive-field radius
  (models.analysis) tiled output equals whole-volume output to float round-off; with the
  paper's margin of 3 the seams between tiles differ slightly (docs/evaluation.md).
- Along an axis shorter than tile + 2 * margin the window is the whole axis. All tiles
  then have the same shape: the last tile along an axis is shifted back to end at the
  border, and the voxels it shares with its neighbour are written by that neighbour.
- Memory: one batch of windows plus the input and output volumes.
"""
import dataclasses
import itertools
import math
import weakref

import numpy as np

import mdcsrn_tf  # noqa: F401  (TensorFlow's environment before TF loads)
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

_FORWARD_FUNCTIONS = weakref.WeakKeyDictionary()
WINDOW_SIGNATURE = tf.TensorSpec([None, None, None, None, 1], tf.float32, name="windows")


@dataclasses.dataclass(frozen=True)
class AxisPlan:
  """Tiles along one axis of length n: tile k owns output voxels [owned_starts[k],
  owned_starts[k] + tile) clipped to n, computes tile_starts[k] .. + tile (the last one
  shifted back inside the volume) from the window window_starts[k] .. + window."""
  tile: int
  window: int
  owned_starts: tuple
  tile_starts: tuple
  window_starts: tuple


def plan_axis(n: int, tile: int, margin: int) -> AxisPlan:
  if tile < 1 or margin < 0:
    raise ValueError(f"tile must be >= 1 and margin >= 0, got {tile}, {margin}")
  tile = min(tile, n)
  window = min(tile + 2 * margin, n)
  owned = tuple(range(0, n, tile))
  tile_starts = tuple(min(s, n - tile) for s in owned)
  window_starts = tuple(int(np.clip(s - margin, 0, n - window)) for s in tile_starts)
  return AxisPlan(tile, window, owned, tile_starts, window_starts)


def plan_tiles(shape, tile: int, margin: int) -> tuple:
  """One AxisPlan per axis of a 3D volume."""
  return tuple(plan_axis(int(n), tile, margin) for n in shape)


def computed_voxels(shape, tile: int, margin: int) -> int:
  """Voxels the network computes for a volume: the sum of its tiles' windows, margins
  included (the work tiling costs, against math.prod(shape) output voxels)."""
  return math.prod(len(p.window_starts) * p.window for p in plan_tiles(shape, tile, margin))


def forward_function(model, jit_compile=False):
  """The model's inference pass traced once for windows of any size and batch; cached per
  model (and XLA setting), so neither a new tile nor a new volume retraces it."""
  functions = _FORWARD_FUNCTIONS.setdefault(model, {})
  if jit_compile not in functions:

    def forward(windows):
      return model(windows, training=False)

    functions[jit_compile] = tf.function(forward, input_signature=[WINDOW_SIGNATURE],
                                         jit_compile=jit_compile)
  return functions[jit_compile]


def _window_dataset(volume, plans, batch):
  shape = tuple(p.window for p in plans)

  def windows():
    for starts in itertools.product(*(p.window_starts for p in plans)):
      index = tuple(slice(s, s + w) for s, w in zip(starts, shape))
      yield volume[index][..., np.newaxis]

  return tf.data.Dataset.from_generator(
      windows, output_signature=tf.TensorSpec(shape + (1,), tf.float32)).batch(batch).prefetch(1)


def _merge_tile(output, tile_output, plans, tile_index):
  """Writes the part of one computed tile that its tile owns into `output`."""
  target, source = [], []
  for plan, k, n in zip(plans, tile_index, output.shape):
    owned = plan.owned_starts[k]
    end = min(owned + plan.tile, n)
    offset = owned - plan.window_starts[k]
    target.append(slice(owned, end))
    source.append(slice(offset, offset + end - owned))
  output[tuple(target)] = tile_output[tuple(source)]


def super_resolve(model, volume_normalised, tile=64, margin=3, batch=1, progress=True,
                  jit_compile=False):
  """Super-resolves a normalised 3D volume (on the HR grid) tile by tile.

  Returns a float32 array of the input's shape, negative values set to 0: MR magnitude
  images are non-negative, so this never moves a voxel away from a true image. `batch`
  windows run at once (memory grows with it); `progress` shows a tqdm bar over tiles;
  `jit_compile` runs the network through XLA (faster on GPUs, 3-8x slower on a 2-core CPU:
  docs/performance.md).
  """
  volume = np.ascontiguousarray(volume_normalised, np.float32)
  if volume.ndim != 3:
    raise ValueError(f"expected a 3D volume, got shape {volume.shape}")
  if batch < 1:
    raise ValueError(f"batch must be >= 1, got {batch}")
  plans = plan_tiles(volume.shape, tile, margin)
  tile_indices = list(itertools.product(*(range(len(p.owned_starts)) for p in plans)))
  forward = forward_function(model, jit_compile)
  output = np.empty_like(volume)
  pending = iter(tile_indices)
  with tqdm(total=len(tile_indices), unit="tile", desc="super-resolve", disable=not progress,
            leave=False) as bar:
    for windows in _window_dataset(volume, plans, batch):
      for tile_output in forward(windows).numpy()[..., 0]:
        _merge_tile(output, tile_output, plans, next(pending))
      bar.update(int(windows.shape[0]))
  return np.maximum(output, 0.0, out=output)


def batch_for_memory(model, memory_bytes: int, tile=64, margin=3) -> int:
  """The largest tile batch whose activations fit in `memory_bytes` (at least 1).

  A deliberately high estimate: every layer's float32 output for a full window is counted
  as alive at once, although TensorFlow frees most of them during the pass.
  """
  window_voxels = (tile + 2 * margin) ** 3
  channels = sum(int(layer.output.shape[-1]) for layer in model.layers)
  per_window = 4 * window_voxels * channels
  return max(1, math.floor(memory_bytes / per_window))
