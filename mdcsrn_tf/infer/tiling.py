"""Tiling a volume for inference, written once (docs/evaluation.md#tiling): the plan of
tiles and windows along each axis, used by the Python path (`inference.super_resolve`) and,
traced into a graph, by the SavedModel (`tiled_forward`), so both compute the same windows
and keep the same voxels.

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
- The tile edge may differ per axis. `auto_tile_edges` picks the edges that compute the
  fewest voxels for a volume with windows of at most a given size (a memory budget): the
  paper's 64^3 tiles with a 3-voxel margin compute 1.31x the voxels of a 320x320x256
  volume and 1.74x those of Colin27's 181x217x181, where tiles that split each axis
  evenly, as large as memory allows, compute 1.05x to 1.2x. With a margin below the
  receptive field the seams move with the tiles, so the voxels near them change
  (docs/performance.md#choosing-the-tiles); with margin >= the receptive field every plan
  gives the whole-volume output.
"""
import dataclasses
import math

import numpy as np
import tensorflow as tf


MIN_AUTO_TILE = 16  # auto_tile_edges' smallest edge: below it the margins dominate


def axis_plan(n, tile, margin):
  """(tile, window, tile starts, window starts) along an axis of `n` voxels, in TensorFlow
  ops: eager for the Python path, in the graph for the SavedModel. Tile k owns output voxels
  [k * tile, (k + 1) * tile) clipped to n and computes tile_starts[k] .. + tile (the last
  one shifted back inside the volume) from the window window_starts[k] .. + window."""
  tile = tf.minimum(tile, n)
  window = tf.minimum(tile + 2 * margin, n)
  count = (n + tile - 1) // tile
  tile_starts = tf.minimum(tf.range(count) * tile, n - tile)
  window_starts = tf.clip_by_value(tile_starts - margin, 0, n - window)
  return tile, window, tile_starts, window_starts


@dataclasses.dataclass(frozen=True)
class AxisPlan:
  """`axis_plan` of one axis as Python integers; owned_starts[k] = k * tile."""
  tile: int
  window: int
  owned_starts: tuple
  tile_starts: tuple
  window_starts: tuple


def plan_axis(n: int, tile: int, margin: int) -> AxisPlan:
  if tile < 1 or margin < 0:
    raise ValueError(f"tile must be >= 1 and margin >= 0, got {tile}, {margin}")
  tile, window, tile_starts, window_starts = (
      tf.get_static_value(t) for t in axis_plan(tf.constant(n), tile, margin))
  return AxisPlan(int(tile), int(window), tuple(range(0, n, int(tile))),
                  tuple(int(s) for s in tile_starts), tuple(int(s) for s in window_starts))


def tile_edges(tile) -> tuple:
  """(D, H, W) tile edges from one edge for every axis or one per axis."""
  edges = (tile,) * 3 if isinstance(tile, (int, np.integer)) else tuple(tile)
  if len(edges) != 3:
    raise ValueError(f"tile needs one edge or three, got {tile}")
  return tuple(int(e) for e in edges)


def plan_tiles(shape, tile, margin: int) -> tuple:
  """One AxisPlan per axis of a 3D volume; `tile` is one edge or one per axis."""
  return tuple(plan_axis(int(n), t, margin) for n, t in zip(shape, tile_edges(tile)))


def window_voxels(shape, tile, margin: int) -> int:
  """Voxels of one window of the plan (every window has the same shape)."""
  return math.prod(p.window for p in plan_tiles(shape, tile, margin))


def auto_tile_edges(shape, margin, max_window_voxels):
  """Per-axis tile edges (int64 [3]) that compute the fewest voxels for a 3D `shape` with
  windows of at most `max_window_voxels`, in TensorFlow ops (eager for the Python path, in
  the graph for the SavedModel).

  Along each axis of n voxels the candidates split it into k = 1 .. ceil(n / MIN_AUTO_TILE)
  even tiles of ceil(n / k) voxels (for k tiles no edge has a smaller window); every
  combination of the three axes is scored by its computed voxels (tiles times window, per
  axis, multiplied). Ties go to the fewest tiles along the first axes. When no window fits
  the budget, the smallest one.
  """
  shape = tf.cast(tf.reshape(shape, [3]), tf.int64)
  margin = tf.cast(margin, tf.int64)
  edges, windows, costs = [], [], []
  for axis in range(3):
    n = shape[axis]
    counts = tf.range(1, (n + MIN_AUTO_TILE - 1) // MIN_AUTO_TILE + 1, dtype=tf.int64)
    edge = (n + counts - 1) // counts
    window = tf.minimum(edge + 2 * margin, n)
    edges.append(edge)
    windows.append(window)
    costs.append((n + edge - 1) // edge * window)

  def outer(values):
    return (values[0][:, None, None] * values[1][None, :, None] * values[2][None, None, :])

  window_size, cost = tf.reshape(outer(windows), [-1]), tf.reshape(outer(costs), [-1])
  fits = window_size <= tf.cast(max_window_voxels, tf.int64)
  best = tf.where(tf.reduce_any(fits), tf.argmin(tf.where(fits, cost, cost.dtype.max)),
                  tf.argmin(window_size))
  sizes = [tf.size(e, out_type=tf.int64) for e in edges]
  index = [best // (sizes[1] * sizes[2]), best // sizes[2] % sizes[1], best % sizes[2]]
  return tf.stack([tf.gather(e, i) for e, i in zip(edges, index)])


def computed_voxels(shape, tile, margin: int) -> int:
  """Voxels the network computes for a volume: the sum of its tiles' windows, margins
  included (the work tiling costs, against math.prod(shape) output voxels)."""
  return planned_voxels(plan_tiles(shape, tile, margin))


def planned_voxels(plans) -> int:
  """computed_voxels of the per-axis plans plan_tiles made."""
  return math.prod(len(p.window_starts) * p.window for p in plans)


def tiled_forward(model, volume, tile, margin):
  """SR of a normalised [D, H, W] tensor by tiles, in TensorFlow ops only (the SavedModel's
  graph): the windows and owned voxels of `axis_plan`, one tile at a time (a map_fn with no
  parallel iterations, so memory holds one window), merged by gathering each voxel from the
  tile that owns it. `model` maps [1, d, h, w, 1] windows; `tile` is one edge, or a
  [3] tensor of edges per axis (auto_tile_edges, computed in the graph)."""
  shape = tf.shape(volume)
  edges = tf.cast(tf.broadcast_to(tile, [3]), tf.int32)
  plans = [axis_plan(shape[a], edges[a], margin) for a in range(3)]
  tiles = tf.stack([p[0] for p in plans])
  windows = tf.stack([p[1] for p in plans])
  grids = tf.meshgrid(*(p[2] for p in plans), indexing="ij")
  window_grids = tf.meshgrid(*(p[3] for p in plans), indexing="ij")
  tile_starts = tf.stack([tf.reshape(g, [-1]) for g in grids], axis=1)
  window_starts = tf.stack([tf.reshape(g, [-1]) for g in window_grids], axis=1)

  def one_tile(starts):
    tile_start, window_start = starts
    window = tf.slice(volume, window_start, windows)[tf.newaxis, ..., tf.newaxis]
    output = model(window)[0, ..., 0]
    return tf.slice(output, tile_start - window_start, tiles)

  outputs = tf.map_fn(one_tile, (tile_starts, window_starts), parallel_iterations=1,
                      fn_output_signature=tf.TensorSpec([None, None, None], tf.float32))
  counts = tf.stack([tf.size(p[2]) for p in plans])
  stacked = tf.reshape(outputs, tf.concat([counts, tiles], 0))
  merged = tf.reshape(tf.transpose(stacked, [0, 3, 1, 4, 2, 5]), counts * tiles)
  # voxel i is owned by tile i // tile and sits at i - tile_start inside it
  for axis, (tile_size, _, starts, _) in enumerate(plans):
    voxels = tf.range(shape[axis])
    owner = voxels // tile_size
    merged = tf.gather(merged, owner * tile_size + voxels - tf.gather(starts, owner), axis=axis)
  return merged
