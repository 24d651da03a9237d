"""Whole-volume super-resolution by tiles, as the paper merges patches (docs/paper.md#metrics).

Shaped like MONAI's sliding-window inference: a splitter plans the tiles (tiling.py), a
tf.data pipeline cuts and batches their input windows (the next batch is cut while the
current one computes), one traced function runs the network, and a merger writes each
tile's owned voxels into the volume. Memory: one batch of windows plus the input and output
volumes.
"""
import itertools
import math
import weakref

import numpy as np

import tensorflow as tf
from tqdm import tqdm

from mdcsrn_tf import paper
from mdcsrn_tf.errors import NonFiniteOutput
from mdcsrn_tf.infer import consistency
from mdcsrn_tf.infer.forward import activation_bytes_per_voxel, inference_pass
from mdcsrn_tf.infer.tiling import auto_tile_edges, plan_tiles, planned_voxels, tile_edges

_FORWARD_FUNCTIONS = weakref.WeakKeyDictionary()
# Activation memory `--tile auto` plans for when none is given: a b4u4 process peaks at about
# 3.5 GB with it (docs/performance.md), as the paper's tiling with 2 tiles per batch did.
DEFAULT_MEMORY_MIB = 4096
WINDOW_SIGNATURE = tf.TensorSpec([None, None, None, None, 1], tf.float32, name="windows")
# The fused BN-ELU kernels of forward.py compile once per window shape and process: 5-6 s
# for b1u8 or b4u4 on 2 cores, where they save at most a few percent of the pass's time
# (docs/performance.md). Below this many computed voxels (about one 1 mm brain) a call
# would spend more compiling them than they save, so it runs the same pass unfused.
FUSED_MIN_VOXELS = 16 * 2**20


def forward_function(model, jit_compile=False, fused=True):
  """The model's inference pass traced once for windows of any size and batch; cached per
  model (and XLA and fusion setting), so neither a new tile nor a new volume retraces it."""
  functions = _FORWARD_FUNCTIONS.setdefault(model, {})
  key = (jit_compile, fused)
  if key not in functions:

    # XLA compiles the whole network, which suits GPUs; otherwise the rewritten pass of
    # forward.py, whose few small XLA kernels (when fused) leave the convolutions to oneDNN.
    # Traced without AutoGraph, as the training steps are (steps.py says why).
    forward = ((lambda windows: model(windows, training=False)) if jit_compile
               else inference_pass(model, xla=fused))

    functions[key] = tf.function(forward, input_signature=[WINDOW_SIGNATURE],
                                 jit_compile=jit_compile, autograph=False)
  return functions[key]


def _window_dataset(volume, plans, batch):
  """The windows of `volume`, batched, read once. tf.data keeps a generator's function, and
  what it refers to, for as long as the process lives (tensorflow#37653): the generator lets
  the volume go once it has given every window, else each call kept a volume."""
  shape, held = tuple(p.window for p in plans), [volume]

  def windows():
    source = held.pop()
    for starts in itertools.product(*(p.window_starts for p in plans)):
      index = tuple(slice(s, s + w) for s, w in zip(starts, shape))
      yield source[index][..., np.newaxis]

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


def super_resolve(model, volume_normalised, tile=paper.TILE, margin=paper.MARGIN, batch=1,
                  progress=True, jit_compile=False, desc="super-resolve", engine=None,
                  keep_band=None):
  """Super-resolves a normalised 3D volume (on the HR grid) tile by tile.

  Returns a float32 array of the input's shape, negative values set to 0: MR magnitude
  images are non-negative, so this never moves a voxel away from a true image. An output
  with NaN or Inf voxels raises errors.NonFiniteOutput: every caller, whether it writes a
  file or a figure, stops there. `tile` is
  one edge or one per axis (auto_plan chooses them from a memory budget). `batch`
  windows run at once (memory grows with it); `progress` shows a tqdm bar over tiles,
  labelled `desc`;
  `jit_compile` runs the network through XLA (faster on GPUs, 3-8x slower on a 2-core CPU:
  docs/performance.md). A call that computes fewer than FUSED_MIN_VOXELS runs the pass
  without its fused kernels: the same arithmetic to float round-off. `engine`, from
  engines.prepare, runs the network on each batch of windows instead of the TensorFlow pass
  (None, the reference); the tiles are the same. `keep_band` (an Acquisition, for weights
  whose card keeps the measured band: consistency.band_kept_by) gives the stitched output
  its input's kept band, before the clip.
  """
  volume = np.ascontiguousarray(volume_normalised, np.float32)
  if volume.ndim != 3:
    raise ValueError(f"expected a 3D volume, got shape {volume.shape}")
  if batch < 1:
    raise ValueError(f"batch must be >= 1, got {batch}")
  plans = plan_tiles(volume.shape, tile, margin)
  tile_indices = list(itertools.product(*(range(len(p.owned_starts)) for p in plans)))
  traced = None if engine is not None else forward_function(
      model, jit_compile, fused=planned_voxels(plans) >= FUSED_MIN_VOXELS)

  def forward(windows):
    return traced(windows).numpy() if engine is None else engine(windows.numpy())

  output = np.empty_like(volume)
  pending = iter(tile_indices)
  with tqdm(total=len(tile_indices), unit="tile", desc=desc, disable=not progress,
            leave=False) as bar:
    for windows in _window_dataset(volume, plans, batch):
      for tile_output in forward(windows)[..., 0]:
        _merge_tile(output, tile_output, plans, next(pending))
      bar.update(int(windows.shape[0]))
  if keep_band is not None:
    output = consistency.keep_measured_band(output, volume, keep_band)
  bad = int(np.count_nonzero(~np.isfinite(output)))
  if bad:
    raise NonFiniteOutput(bad, output.size)
  return np.maximum(output, 0.0, out=output)


def batch_for_memory(model, memory_bytes: int, tile=paper.TILE, margin=paper.MARGIN) -> int:
  """The largest batch of (tile + 2 * margin)^3 windows whose activations fit in
  `memory_bytes` (at least 1), by forward.activation_bytes_per_voxel."""
  window = math.prod(t + 2 * margin for t in tile_edges(tile))
  return max(1, memory_bytes // (window * activation_bytes_per_voxel(model)))


def auto_plan(model, shape, margin=paper.MARGIN, memory_bytes=DEFAULT_MEMORY_MIB * 2**20):
  """(tile edges per axis, tile batch) for `--tile auto`: the tiles that compute the fewest
  voxels with one window's activations within `memory_bytes` (tiling.auto_tile_edges),
  then as many windows per batch as still fit. The plan depends on the volume's shape, the
  margin, the model and the budget alone, never on the machine, so one command gives the
  same output everywhere."""
  per_voxel = activation_bytes_per_voxel(model)
  max_window = max(1, memory_bytes // per_voxel)
  edges = tuple(int(e) for e in auto_tile_edges(shape, margin, max_window).numpy())
  plans = plan_tiles(shape, edges, margin)
  windows = math.prod(len(p.owned_starts) for p in plans)
  return edges, int(min(windows, max(1, max_window // math.prod(p.window for p in plans))))
