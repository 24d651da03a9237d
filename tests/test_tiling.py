"""Tile plans (infer/tiling.py): the paper's tiling stays as it was, `--tile auto` computes
the fewest voxels within its budget, and any plan is exact with a margin that covers the
receptive field."""
import itertools
import math

import keras
import numpy as np
import pytest

from mdcsrn_tf.infer import forward, inference, tiling
from mdcsrn_tf.models import mdcsrn


def brute_force_cost(shape, margin, max_window):
  """The fewest computed voxels of any per-axis tile edges, even splits or not, with at most
  ceil(n / MIN_AUTO_TILE) tiles along an axis of n and a window that fits, by trying them
  all with the plan's arithmetic restated: ceil(n / t) windows of min(t + 2 * margin, n)."""
  per_axis = []
  for n in shape:
    most = math.ceil(n / tiling.MIN_AUTO_TILE)
    per_axis.append([(math.ceil(n / t), min(t + 2 * margin, n)) for t in range(1, n + 1)
                     if math.ceil(n / t) <= most])
  costs = [math.prod(c * w for c, w in combo) for combo in itertools.product(*per_axis)
           if math.prod(w for _, w in combo) <= max_window]
  return min(costs) if costs else None


def test_the_paper_tiling_is_unchanged():
  # 64^3 tiles and 70^3 windows: 5 x 5 x 4 of them on 320x320x256 (1.31x the voxels), and
  # on Colin27's 181x217x181 3 x 4 x 3, the last ones shifted back inside the volume
  assert tiling.computed_voxels((320, 320, 256), 64, 3) == 350 * 350 * 280
  assert tiling.computed_voxels((181, 217, 181), 64, 3) == 210 * 280 * 210
  plan = tiling.plan_axis(217, 64, 3)
  assert plan.tile_starts == (0, 64, 128, 153) and plan.window_starts == (0, 61, 125, 147)
  assert tiling.plan_tiles((181, 217, 181), 64, 3) == tiling.plan_tiles((181, 217, 181),
                                                                         (64, 64, 64), 3)


@pytest.mark.parametrize("shape, margin, max_window", [
    ((45, 53, 39), 3, 20_000), ((45, 53, 39), 3, 60_000), ((70, 33, 20), 2, 15_000),
    ((64, 64, 64), 3, 10**6), ((37, 45, 29), 9, 40_000)])
def test_auto_tiles_compute_the_fewest_voxels_within_the_budget(shape, margin, max_window):
  edges = tuple(int(e) for e in tiling.auto_tile_edges(shape, margin, max_window).numpy())
  assert tiling.window_voxels(shape, edges, margin) <= max_window
  assert tiling.computed_voxels(shape, edges, margin) == brute_force_cost(shape, margin,
                                                                          max_window)


def test_auto_tiles_fall_back_to_the_smallest_window_when_none_fits():
  edges = tiling.auto_tile_edges((45, 53, 39), 3, 100).numpy()
  # the smallest windows of the candidates: ceil(n / ceil(n / 16)) + 6 voxels per axis
  assert tuple(edges) == (15, 14, 13)
  assert tiling.window_voxels((45, 53, 39), edges, 3) == 21 * 20 * 19


def test_auto_tiles_grow_with_the_budget_down_to_whole_volume():
  shape = (181, 217, 181)
  costs = [tiling.computed_voxels(shape, tiling.auto_tile_edges(shape, 3, 2**k).numpy(), 3)
           for k in range(18, 24)]
  assert costs == sorted(costs, reverse=True)
  assert costs[-1] < tiling.computed_voxels(shape, 64, 3) / 1.4
  whole = tiling.auto_tile_edges(shape, 3, math.prod(shape)).numpy()
  assert tuple(whole) == shape


@pytest.fixture(scope="module")
def tiny_generator():
  """A real mDCSRN (1 block of 2 units, growth 4): receptive-field radius 3."""
  keras.utils.set_random_seed(1)
  return mdcsrn.mdcsrn(blocks=1, units=2, growth_rate=4, name="tiny", identity_init=False)


def test_auto_plan_sizes_tiles_and_batch_from_the_memory_budget(tiny_generator):
  shape = (45, 53, 39)
  per_voxel = forward.activation_bytes_per_voxel(tiny_generator)
  budget = 30_000 * per_voxel
  edges, batch = inference.auto_plan(tiny_generator, shape, 3, budget)
  assert edges == tuple(tiling.auto_tile_edges(shape, 3, 30_000).numpy())
  window = tiling.window_voxels(shape, edges, 3)
  assert window <= 30_000 and batch == 30_000 // window and batch >= 1
  # the whole volume in one window once the budget allows it
  assert inference.auto_plan(tiny_generator, shape, 3, math.prod(shape) * per_voxel) == (
      shape, 1)


def test_any_plan_is_exact_when_the_margin_covers_the_receptive_field(tiny_generator):
  volume = np.random.default_rng(3).random((45, 53, 39), dtype=np.float32)
  whole = np.maximum(tiny_generator(volume[None, ..., None], training=False).numpy()[0, ..., 0],
                     0)
  per_voxel = forward.activation_bytes_per_voxel(tiny_generator)
  edges, batch = inference.auto_plan(tiny_generator, volume.shape, 3, 9_000 * per_voxel)
  assert math.prod(len(p.owned_starts) for p in tiling.plan_tiles(volume.shape, edges, 3)) > 4
  for tile in (edges, (16, 24, 13)):
    tiled = inference.super_resolve(tiny_generator, volume, tile=tile, margin=3, batch=batch,
                                    progress=False)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
