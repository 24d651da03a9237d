"""The shipped b4u4 in TensorFlow (the pass mdcsrn-sr runs), ONNX Runtime and OpenVINO (f32
and bf16), timed in one run on the same windows of the real Colin27 head, with each
engine's largest difference from TensorFlow.

The ONNX file is the one `mdcsrn-export --format onnx` writes. Windows: the paper's 64^3
tile with its 3-voxel margins (70^3) and an odd 45x53x37 one. Every engine uses its default
threads on this machine; medians of `--repeats` runs after one warm-up (which also compiles),
of wall time and of the process's CPU time (all threads: on a shared machine the wall time
varies with the neighbours, the CPU time much less).
OpenVINO's bf16 row records the precision the plugin actually chose: a CPU without bf16
instructions runs it in f32.

  python benchmarks/onnx_runtimes.py --out benchmarks/results/onnx_runtimes.json
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

import machine
from mdcsrn_tf import weights
from mdcsrn_tf.data import samples
from mdcsrn_tf.export import onnx_graph
from mdcsrn_tf.infer import inference

WINDOWS = {"70^3 (64^3 tile, margin 3)": (70, 70, 70), "45x53x37": (45, 53, 37)}
START = (55, 70, 50)  # inside the head


def engines(model, onnx_path):
  """{name: (run(window) -> output, details)}."""
  import onnxruntime  # pylint: disable=import-outside-toplevel
  import openvino  # pylint: disable=import-outside-toplevel

  forward = inference.forward_function(model, False)
  found = {"TensorFlow (mdcsrn-sr's pass)": (lambda w: forward(w).numpy(), {})}
  session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
  found["ONNX Runtime"] = (lambda w: session.run(["sr"], {"lr": w})[0],
                           {"version": onnxruntime.__version__})
  core = openvino.Core()
  for precision in ("f32", "bf16"):
    compiled = core.compile_model(core.read_model(onnx_path), "CPU",
                                  {"INFERENCE_PRECISION_HINT": precision})
    chosen = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    output = compiled.output("sr")
    found[f"OpenVINO {precision}"] = (
        lambda w, compiled=compiled, output=output: compiled({"lr": w})[output],
        {"version": openvino.__version__, "precision_used": chosen})
  return found


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/onnx_runtimes.json")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  base = weights.shipped()["l1"]
  model, _ = weights.load_generator(base)
  head = np.asarray(nib.load(samples.sample_path("colin27_1mm")).dataobj, np.float32)
  head /= head.max()
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    onnx_path = onnx_graph.export_onnx(base, os.path.join(folder, "b4u4.onnx"))
    runners = engines(model, onnx_path)
    for window_name, shape in WINDOWS.items():
      box = tuple(slice(s, s + n) for s, n in zip(START, shape))
      window = np.ascontiguousarray(head[box][np.newaxis, ..., np.newaxis])
      reference = None
      for engine, (run, details) in runners.items():
        cpu_times = []

        def timed_run():
          start = time.process_time()
          result = run(window)
          cpu_times.append(time.process_time() - start)
          return result

        seconds, times = machine.median_seconds(timed_run, args.repeats)
        output = timed_run()
        cpu_seconds = statistics.median(cpu_times[1:])  # the warm-up's left out
        reference = output if reference is None else reference
        error = float(np.max(np.abs(output - reference)) / np.max(np.abs(reference)))
        rows.append({"window": window_name, "engine": engine, "median_s": seconds,
                     "median_cpu_s": cpu_seconds, "times_s": times,
                     "max_difference_over_max": error, **details})
        print(f"{window_name:28s} {engine:30s} {seconds:7.3f} s wall {cpu_seconds:7.3f} s CPU"
              f"  difference {error:.2e}", file=sys.stderr)
  machine.write_json(args.out, {"machine": machine.machine(), "load_average": os.getloadavg(),
                                "repeats": args.repeats, "model": "b4u4 (shipped L1)",
                                "rows": rows})


if __name__ == "__main__":
  main()
