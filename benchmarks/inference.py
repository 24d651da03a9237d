"""Whole-volume inference speed of every generator, as the paper's 'time (s)' column.

The paper times one 320x320x256 volume per model on a GTX 1080 Ti. On a GPU this script
times exactly that. On a CPU a whole volume takes minutes per model, so it times a slab of
`--measure_shape` with the same tile, margin and batch and scales by the voxels the network
computes (the sum of the tiles' windows, margins included), which is what a convolution's
cost follows; the JSON says which rows are scaled.

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


def time_one(name, precision, jit_compile, shape, tile, margin, batch, repeats):
  """Runs in a fresh process so that peak memory belongs to this model alone."""
  import keras  # pylint: disable=import-outside-toplevel
  policy = None if precision == "float32" else precision
  model = build_model(name, policy=policy)
  volume = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
  machine.reset_device_memory_peak()
  seconds, runs = machine.median_seconds(
      lambda: inference.super_resolve(model, volume, tile=tile, margin=margin, batch=batch,
                                      jit_compile=jit_compile, progress=False),
      repeats)
  keras.backend.clear_session()
  return {"seconds": seconds, "runs": runs,
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


def variants(on_gpu):
  """(precision, XLA) pairs the device supports; XLA is 3-8x slower on CPU, kept for b4u4."""
  if on_gpu:
    return [("float32", False), ("float32", True), ("mixed_float16", False),
            ("mixed_float16", True), ("mixed_bfloat16", False)]
  return [("float32", False), ("float32", True), ("mixed_bfloat16", False)]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/inference.json")
  parser.add_argument("--models", default=",".join(GENERATOR_NAMES))
  parser.add_argument("--measure_shape", default=None,
                      help="D,H,W actually run (default: the whole volume on GPU, 128,128,64 on CPU)")
  parser.add_argument("--tile", type=int, default=64)
  parser.add_argument("--margin", type=int, default=3)
  parser.add_argument("--batch", type=int, default=None, help="tiles per batch (default: 2 on CPU, 8 on GPU)")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed runs after one warm-up (default: 3 on GPU, 2 on CPU; 1 for "
                           "XLA on CPU, where a run takes minutes)")
  parser.add_argument("--all_variants", action="store_true",
                      help="every precision/XLA variant for every model, not only b4u4")
  args = parser.parse_args(argv)
  on_gpu = bool(machine.tf.config.list_physical_devices("GPU"))
  shape = (tuple(int(s) for s in args.measure_shape.split(",")) if args.measure_shape
           else FULL_SHAPE if on_gpu else (128, 128, 64))
  batch = args.batch or (8 if on_gpu else 2)
  scale = (tiling.computed_voxels(FULL_SHAPE, args.tile, args.margin)
           / tiling.computed_voxels(shape, args.tile, args.margin))
  peak_gflops = machine.matmul_peak_gflops()
  print(f"matmul peak {peak_gflops:.1f} GFLOP/s; timing {shape}, x{scale:g} to {FULL_SHAPE}")
  results = []
  for name in args.models.split(","):
    for precision, jit_compile in variants(on_gpu):
      if (precision, jit_compile) != ("float32", False) and name != "b4u4" and not args.all_variants:
        continue
      repeats = args.repeats or (3 if on_gpu else 1 if jit_compile else 2)
      timing = measure(name, precision, jit_compile, shape, args.tile, args.margin, batch,
                       repeats)
      volume_seconds = timing["seconds"] * scale
      useful_flops = analysis.ops_per_voxel(build_model(name)) * math.prod(FULL_SHAPE)
      row = {"model": name, "precision": precision, "xla": jit_compile,
             "measured_shape": shape, "extrapolated": shape != FULL_SHAPE,
             "volume_seconds": volume_seconds, "paper_seconds": paper.TABLES[name].seconds,
             "voxels_per_second": math.prod(FULL_SHAPE) / volume_seconds,
             "gflops_per_second": useful_flops / volume_seconds / 1e9,
             **{key: timing[key] for key in ("runs", "peak_host_mib", "peak_device_mib")}}
      row["fraction_of_matmul_peak"] = row["gflops_per_second"] / peak_gflops
      results.append(row)
      print(f"{name:9s} {precision:15s} xla={jit_compile!s:5s} {volume_seconds:8.1f} s/volume "
            f"{row['gflops_per_second']:7.1f} GFLOP/s ({row['fraction_of_matmul_peak']:.0%} of peak) "
            f"peak host {row['peak_host_mib']:.0f} MiB", flush=True)
  machine.write_json(args.out, {"machine": machine.machine(), "matmul_peak_gflops": peak_gflops,
                                "tile": args.tile, "margin": args.margin, "batch": batch,
                                "volume_shape": FULL_SHAPE, "results": results})


if __name__ == "__main__":
  sys.exit(main())
