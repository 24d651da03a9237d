"""Where b4u4's inference time goes, by kind of operation, before and after the rewritten pass.

Traces one batch of two 70^3 windows (the paper's tiles with their 3-voxel margins) with
TensorFlow's profiler, through the Keras model as it is and through infer/forward.py's
rewritten pass, and sums the time of each operation by kind: convolutions, concatenations,
BatchNorm's multiply, adds (BatchNorm's in the Keras pass, the split 1x1x1 convolutions' sums
in the rewritten one), ELU, the XLA kernels of the fused BN-ELU, and the rest. The median of
`--repeats` traced runs of each.

  python benchmarks/profile_inference.py --out benchmarks/results/profile.json
"""
import argparse
import collections
import glob
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

import machine
from mdcsrn_tf.infer import forward, inference
from mdcsrn_tf.models import analysis, build_model

KINDS = {"_MklNativeFusedConv3D": "convolution", "_MklNativeConv3D": "convolution",
         "Conv3D": "convolution", "_FusedConv3D": "convolution", "ConcatV2": "concatenation",
         "Mul": "BatchNorm multiply", "AddV2": "add (BN's; split sums)", "Elu": "ELU",
         "XLA": "fused BN-ELU (XLA)"}


def op_seconds(run) -> dict:
  """{kind: seconds} of the operations one traced call of `run` executes."""
  folder = tempfile.mkdtemp(prefix="mdcsrn-profile-")
  tf.profiler.experimental.start(folder)
  run()
  tf.profiler.experimental.stop()
  space = xplane_pb2.XSpace()
  with open(glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)[0], "rb") as trace:
    space.ParseFromString(trace.read())
  seconds = collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      if not line.name.startswith("tf_Compute"):  # the executors' threads run the ops
        continue
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if name == "CpuExecutable::ExecuteAsyncOnStream":
          kind = "XLA"
        elif ":" in name and "::" not in name:  # "layer/op:OpType"
          kind = name.rsplit(":", 1)[1]
        else:
          continue  # the executor's events around the ops, and events nested in them
        seconds[KINDS.get(kind, "other")] += event.duration_ps / 1e12
  return dict(seconds)


def profile(name, run, repeats) -> dict:
  run()  # traces and compiles
  walls, traces = [], []
  for _ in range(repeats):
    started = time.perf_counter()
    run()
    walls.append(time.perf_counter() - started)
    traces.append(op_seconds(run))
  kinds = sorted({k for t in traces for k in t})
  by_kind = {k: statistics.median(t.get(k, 0.0) for t in traces) for k in kinds}
  total = sum(by_kind.values())
  print(f"{name}: {statistics.median(walls):.2f} s per batch; "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in by_kind.items()), flush=True)
  return {"pass": name, "wall_seconds": statistics.median(walls), "walls": walls,
          "op_seconds": by_kind, "op_share": {k: v / total for k, v in by_kind.items()}}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/profile.json")
  parser.add_argument("--model", default="b4u4")
  parser.add_argument("--window", type=int, default=70)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  model = build_model(args.model)
  shape = (args.batch,) + (args.window,) * 3 + (1,)
  windows = tf.constant(np.random.default_rng(0).uniform(size=shape).astype(np.float32))
  passes = {"keras": tf.function(lambda w: model(w, training=False),
                                 input_signature=[inference.WINDOW_SIGNATURE]),
            "rewritten": inference.forward_function(model)}
  results = [profile(name, lambda f=f: f(windows).numpy(), args.repeats)
             for name, f in passes.items()]
  flops = analysis.ops_per_voxel(model) * np.prod(shape)
  for row in results:
    row["computed_gflops"] = flops / row["wall_seconds"] / 1e9
  machine.write_json(args.out, {
      "machine": machine.machine(), "matmul_peak_gflops": machine.matmul_peak_gflops(),
      "model": args.model, "windows": list(shape[:4]), "activation_bytes_per_voxel":
      forward.activation_bytes_per_voxel(model), "results": results})


if __name__ == "__main__":
  sys.exit(main())
