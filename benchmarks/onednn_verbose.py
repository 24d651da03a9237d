"""Where the TensorFlow pass's time goes on one 70^3 b4u4 window, from oneDNN's own log
(ONEDNN_VERBOSE=1): each primitive oneDNN ran (convolutions, reorders, element-wise), the
implementation it chose for each, its milliseconds and, for convolutions, GFLOP/s and the
fraction of the matmul peak measured in the same process; the rest of the window's wall
time is what TensorFlow ran outside oneDNN (its own element-wise kernels, XLA's fused BN-ELU
kernels, concatenations, copies). Natively and with ONEDNN_MAX_CPU_ISA=AVX2, each in a
fresh process (oneDNN reads the cap once), the second call of each timed (the first creates
the primitives).

  python benchmarks/onednn_verbose.py --out benchmarks/results/onednn_verbose.json
"""
import argparse
import os
import re
import subprocess
import sys

import machine

CHILD = r"""
import time, numpy as np, nibabel as nib
import machine
from mdcsrn_tf import weights
from mdcsrn_tf.data import samples
from mdcsrn_tf.infer import inference
model, _ = weights.load_generator(weights.shipped()["l1"])
head = np.asarray(nib.load(samples.sample_path("colin27_1mm")).dataobj, np.float32)
window = np.ascontiguousarray(head[55:125, 70:140, 50:120] / head.max())
peak = machine.matmul_peak_gflops()
run = lambda: inference.super_resolve(model, window, tile=70, progress=False)
run()
print("MARKER_START", flush=True)
start = time.perf_counter(); run(); seconds = time.perf_counter() - start
print(f"MARKER_END {seconds} {peak}", flush=True)
"""
SHAPE = re.compile(r"mb(\d+)_ic(\d+)oc(\d+)_id(\d+)od(\d+)kd(\d+).*?_ih(\d+)oh(\d+)kh(\d+)"
                   r".*?_iw(\d+)ow(\d+)kw(\d+)")


def convolution_flops(problem) -> int:
  match = SHAPE.search(problem)
  if not match:
    return 0
  mb, ic, oc, _, od, kd, _, oh, kh, _, ow, kw = (int(g) for g in match.groups())
  return 2 * mb * ic * oc * kd * kh * kw * od * oh * ow


def measure(cap) -> dict:
  env = {**os.environ, "ONEDNN_VERBOSE": "1", "PYTHONPATH": os.path.dirname(__file__)}
  env.pop("ONEDNN_MAX_CPU_ISA", None)
  if cap:
    env["ONEDNN_MAX_CPU_ISA"] = cap
  lines = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
  start = lines.index("MARKER_START")
  end = next(i for i, line in enumerate(lines) if line.startswith("MARKER_END"))
  _, seconds, peak = lines[end].split()
  isa = next((line.split("isa:", 1)[1] for line in lines if ",isa:" in line), "?")
  primitives = {}
  convolutions = []
  for line in lines[start + 1:end]:
    fields = line.split(",")
    if len(fields) < 11 or fields[2] != "primitive" or fields[3] != "exec":
      continue
    kind, implementation, problem = fields[5], fields[6], fields[-2]
    milliseconds = float(fields[-1])
    entry = primitives.setdefault(f"{kind} {implementation}", {"calls": 0, "ms": 0.0})
    entry["calls"] += 1
    entry["ms"] += milliseconds
    if kind == "convolution":
      flops = convolution_flops(problem)
      convolutions.append({"implementation": implementation, "problem": problem,
                           "ms": milliseconds, "gflops_per_s": flops / milliseconds / 1e6,
                           "fraction_of_peak": flops / milliseconds / 1e6 / float(peak)})
  onednn_ms = sum(p["ms"] for p in primitives.values())
  return {"cap": cap or "native", "isa": isa, "window_s": float(seconds),
          "matmul_peak_gflops": float(peak), "onednn_ms": onednn_ms,
          "outside_onednn_ms": float(seconds) * 1000 - onednn_ms,
          "primitives": primitives, "convolutions": convolutions}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/onednn_verbose.json")
  args = parser.parse_args()
  runs = [measure(cap) for cap in ("", "AVX2")]
  for run in runs:
    print(f"{run['cap']} ({run['isa']}): window {run['window_s']:.2f} s, oneDNN "
          f"{run['onednn_ms'] / 1000:.2f} s, outside {run['outside_onednn_ms'] / 1000:.2f} s; "
          f"matmul peak {run['matmul_peak_gflops']:.0f} GFLOP/s", file=sys.stderr)
    for name, entry in sorted(run["primitives"].items(), key=lambda item: -item[1]["ms"]):
      print(f"  {name:60s} {entry['calls']:4d} calls {entry['ms']:9.1f} ms", file=sys.stderr)
  machine.write_json(args.out, {"machine": machine.machine(), "load_average": os.getloadavg(),
                                "model": "b4u4 (shipped L1)", "window": [70, 70, 70],
                                "runs": runs})


if __name__ == "__main__":
  main()
