"""Whole-volume inference speed of every generator, as the paper's 'time (s)' column.

The paper times one 320x320x256 volume per model on a GTX 1080 Ti. On a GPU this script
times exactly that, through inference.super_resolve. On a CPU a whole volume takes minutes
per model, so it times one batch of the plan's windows (every window of a plan has the same
shape) and multiplies by the number of batches the volume needs; cutting and merging
windows add under 1% there. The JSON says which rows are scaled.

Plans: "paper" (64^3 tiles, 3-voxel margin, `--batch` tiles per batch) and "auto" (tiles and
batch from `--memory_limit`, inference.auto_plan). Passes: "rewritten" (infer/forward.py,
what mdcsrn-sr runs) and, for b4u4's "before" row, "keras" (the model called as it is).

  python benchmarks/inference.py --out benchmarks/results/inference.json
"""
import argparse
import math
import multiprocessing
import sys

import numpy as np

import machine
from mdcsrn_tf import paper
from mdcsrn_tf.infer import inference, tiling
from mdcsrn_tf.models import GENERATOR_NAMES, analysis, build_model

FULL_SHAPE = paper.VOLUME_SHAPE
MARGIN = paper.MARGIN


def plan(model, name, memory_mib, batch):
  """(tile edges, batch) of the "paper" or "auto" plan for the whole volume."""
  if name == "auto":
    return inference.auto_plan(model, FULL_SHAPE, MARGIN, memory_mib * 2**20)
  return (paper.TILE,) * 3, batch


def time_one(name, precision, jit_compile, plan_name, keras_pass, memory_mib, batch, repeats,
             whole):
  """Runs in a fresh process so that peak memory belongs to this model alone."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  model = build_model(name, policy=None if precision == "float32" else precision)
  tile, batch = plan(model, plan_name, memory_mib, batch)
  plans = tiling.plan_tiles(FULL_SHAPE, tile, MARGIN)
  windows = math.prod(len(p.window_starts) for p in plans)
  rng = np.random.default_rng(0)
  machine.reset_device_memory_peak()
  if whole:
    volume = rng.uniform(size=FULL_SHAPE).astype(np.float32)
    run = lambda: inference.super_resolve(model, volume, tile=tile, margin=MARGIN, batch=batch,
                                          jit_compile=jit_compile, progress=False)
    per_volume = 1.0
  else:
    forward = (tf.function(lambda w: model(w, training=False),
                           input_signature=[inference.WINDOW_SIGNATURE]) if keras_pass
               else inference.forward_function(model, jit_compile))
    shape = (batch,) + tuple(p.window for p in plans) + (1,)
    batch_windows = tf.constant(rng.uniform(size=shape).astype(np.float32))
    run = lambda: forward(batch_windows).numpy()
    per_volume = windows / batch
  seconds, runs = machine.median_seconds(run, repeats)
  return {"seconds": seconds * per_volume, "runs": [r * per_volume for r in runs],
          "tile": tiling.tile_edges(tile), "batch": batch, "windows": windows,
          "computed_voxel_ratio": tiling.computed_voxels(FULL_SHAPE, tile, MARGIN)
          / math.prod(FULL_SHAPE),
          "peak_host_mib": machine.peak_host_memory_mib(),
          "peak_device_mib": machine.device_memory_peak_mib()}


def _child(queue, *args):
  queue.put(time_one(*args))


def measure(*args):
  context = multiprocessing.get_context("spawn")
  queue = context.Queue()
  process = context.Process(target=_child, args=(queue, *args))
  process.start()
  result = queue.get()
  process.join()
  return result


def variants(name, on_gpu, all_variants):
  """(precision, XLA, plan, Keras pass) rows; b4u4 gets the before/after comparison and the
  precisions, the others the default path unless `all_variants`."""
  rows = [("float32", False, "auto", False)]
  if name == "b4u4" or all_variants:
    # the Keras pass is timed by batches of windows only, so on the CPU
    rows += [("float32", False, "paper", True)] * (not on_gpu)
    rows += [("float32", False, "paper", False),
             ("mixed_bfloat16", False, "auto", False), ("float32", True, "auto", False)]
    if on_gpu:
      rows += [("mixed_float16", False, "auto", False), ("mixed_float16", True, "auto", False),
               ("mixed_bfloat16", True, "auto", False)]
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/inference.json")
  parser.add_argument("--models", default=",".join(GENERATOR_NAMES))
  parser.add_argument("--memory_limit", type=int, default=inference.DEFAULT_MEMORY_MIB,
                      help="MiB of activations for the auto plan (mdcsrn-sr's default)")
  parser.add_argument("--batch", type=int, default=None,
                      help="tiles per batch of the paper plan (default: 2 on CPU, 8 on GPU)")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed runs after one warm-up (default: 3 on GPU, 2 on CPU)")
  parser.add_argument("--all_variants", action="store_true",
                      help="every precision, XLA, plan and pass for every model, not only b4u4")
  args = parser.parse_args(argv)
  on_gpu = bool(machine.tf.config.list_physical_devices("GPU"))
  batch = args.batch or (8 if on_gpu else 2)
  peak_gflops = machine.matmul_peak_gflops()
  print(f"matmul peak {peak_gflops:.1f} GFLOP/s; "
        f"{'whole volumes' if on_gpu else 'one batch of windows, scaled'} of {FULL_SHAPE}")
  results = []
  for name in args.models.split(","):
    useful_flops = analysis.ops_per_voxel(build_model(name)) * math.prod(FULL_SHAPE)
    for precision, jit_compile, plan_name, keras_pass in variants(name, on_gpu,
                                                                  args.all_variants):
      repeats = args.repeats or (3 if on_gpu else 2)
      timing = measure(name, precision, jit_compile, plan_name, keras_pass, args.memory_limit,
                       batch, repeats, on_gpu)
      seconds = timing["seconds"]
      row = {"model": name, "precision": precision, "xla": jit_compile, "plan": plan_name,
             "pass": "keras" if keras_pass else "rewritten", "extrapolated": not on_gpu,
             "volume_seconds": seconds, "paper_seconds": paper.TABLES[name].seconds,
             "voxels_per_second": math.prod(FULL_SHAPE) / seconds,
             "gflops_per_second": useful_flops / seconds / 1e9, **timing}
      del row["seconds"]
      row["fraction_of_matmul_peak"] = row["gflops_per_second"] / peak_gflops
      results.append(row)
      print(f"{name:9s} {precision:15s} xla={jit_compile!s:5s} {plan_name:5s} {row['pass']:9s} "
            f"{seconds:8.1f} s/volume {row['gflops_per_second']:7.1f} GFLOP/s "
            f"({row['fraction_of_matmul_peak']:.0%} of peak; computes "
            f"{row['computed_voxel_ratio']:.2f}x) peak host {row['peak_host_mib']:.0f} MiB",
            flush=True)
  machine.write_json(args.out, {"machine": machine.machine(), "matmul_peak_gflops": peak_gflops,
                                "margin": MARGIN, "memory_limit_mib": args.memory_limit,
                                "paper_batch": batch, "volume_shape": FULL_SHAPE,
                                "results": results})


if __name__ == "__main__":
  sys.exit(main())
