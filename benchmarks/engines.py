"""Every inference engine side by side in one run (infer/engines.py): TensorFlow (mdcsrn-sr's
pass, the reference), OpenVINO and ONNX Runtime on the project's ONNX graph, and OpenVINO in
bfloat16, on the same b4u4 window and the same volume, with the shipped L1 weights.

- window: a 70^3 window of the real Colin27 head (the paper's 64^3 tile with its 3-voxel
  margins), one network call;
- volume: the whole 181x217x181 Colin27 head through inference.super_resolve with the
  tiles `mdcsrn-sr --tile auto` plans (the default), cutting and merging included.

Runs are interleaved (round r runs every engine once, in turn) so that a neighbour's load
on a shared machine falls on all of them alike; medians of wall and process CPU time after
one warm-up each (which compiles, and fills the engine cache). Each row has the largest
difference from TensorFlow over the output's maximum, and the window's useful GFLOP/s
against the matmul peak measured in the same run. Run it once natively and once with
ONEDNN_MAX_CPU_ISA=AVX2, which caps TensorFlow's and OpenVINO's oneDNN kernels (and
OpenVINO's own) at AVX2 on an AVX-512 CPU:

  python benchmarks/engines.py --out benchmarks/results/engines.json
  ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/engines.py --out benchmarks/results/engines.json
"""
import argparse
import json
import os
import statistics
import sys
import time

import nibabel as nib
import numpy as np

import machine
from mdcsrn_tf import paper, weights
from mdcsrn_tf.data import samples
from mdcsrn_tf.infer import engines, inference, tiling
from mdcsrn_tf.models import analysis

WINDOW = (70, 70, 70)
START = (55, 70, 50)  # inside the head
ROWS = (("tensorflow", "float32"), ("openvino", "float32"), ("onnxruntime", "float32"),
        ("openvino", "bfloat16"))


def runners(model, card, volume):
  """{row name: (run(input) -> output, details)} of every engine installed."""
  found = {}
  for name, precision in ROWS:
    if not engines.installed(name) or precision == "bfloat16" and not engines.has_bfloat16():
      print(f"{name} {precision}: not installed or not on this CPU, left out", file=sys.stderr)
      continue
    engine = engines.prepare(name, model, card.weights_sha256, precision)
    details = {"engine": name, "precision": precision}
    if engine is not None:
      details["precision_used"] = engine.precision_used((1, *WINDOW, 1))
    found[f"{name} {precision}"] = (engine, details)
  edges, batch = inference.auto_plan(model, volume.shape)

  def run(engine, source, tile, batch):
    return inference.super_resolve(model, source, tile=tile, margin=paper.MARGIN, batch=batch,
                                   progress=False, engine=engine)

  # the window as one tile: the whole of it is computed in one network call
  return found, {"window": lambda engine, window: run(engine, window, window.shape, 1),
                 "volume": lambda engine, whole: run(engine, whole, edges, batch)}, (edges, batch)


def timed(function, argument):
  wall, cpu = time.perf_counter(), time.process_time()
  output = function(argument)
  return output, time.perf_counter() - wall, time.process_time() - cpu


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/engines.json")
  parser.add_argument("--window_repeats", type=int, default=5)
  parser.add_argument("--volume_repeats", type=int, default=1)
  parser.add_argument("--cases", default="window,volume",
                      help="window, volume or both: each case's rows replace that case's rows "
                           "of this ISA kind in --out, so the two can run separately")
  parser.add_argument("--volume_engines", default="tensorflow float32,openvino float32,"
                      "openvino bfloat16", help="the rows the volume case runs: ONNX Runtime's "
                      "window time is 4x TensorFlow's here, so a volume would take minutes")
  args = parser.parse_args()
  model, card = weights.load_generator(weights.shipped()["l1"])
  head = np.asarray(nib.load(samples.sample_path("colin27_1mm")).dataobj, np.float32)
  head /= head.max()
  window = np.ascontiguousarray(head[tuple(slice(s, s + n) for s, n in zip(START, WINDOW))])
  found, cases, (edges, batch) = runners(model, card, head)
  peak = machine.matmul_peak_gflops()
  computed = analysis.ops_per_voxel(model) * np.prod(WINDOW)  # every voxel of the window
  kind = engines.isa_kind()
  print(f"{machine.machine()['cpu_vectors']}: engines' ISA kind {kind}; matmul peak "
        f"{peak:.0f} GFLOP/s; volume tiles {edges} x{batch}", file=sys.stderr)
  rows = []
  cases_asked = args.cases.split(",")
  for case, source, repeats in (("window", window, args.window_repeats),
                                ("volume", head, args.volume_repeats)):
    if case not in cases_asked:
      continue
    run = cases[case]
    chosen = {name: value for name, value in found.items()
              if case == "window" or name in args.volume_engines.split(",")}
    # warm-up on one window of the case's shape: traces, compiles and fills the engine cache
    shape = WINDOW if case == "window" else tuple(
        p.window for p in tiling.plan_tiles(head.shape, edges, paper.MARGIN))
    warm = np.ascontiguousarray(source[tuple(slice(0, n) for n in shape)])
    first = {name: timed(lambda x, e=engine: cases["window"](e, x), warm)[1]
             for name, (engine, _) in chosen.items()}
    outputs, times = {}, {name: [] for name in chosen}
    for _ in range(repeats):
      for name, (engine, _) in chosen.items():
        outputs[name], *seconds = timed(lambda x, e=engine: run(e, x), source)
        times[name].append(seconds)
    reference = outputs["tensorflow float32"]
    for name, (_, details) in chosen.items():
      wall = statistics.median(t[0] for t in times[name])
      row = {"case": case, "name": name, **details, "median_s": wall,
             "median_cpu_s": statistics.median(t[1] for t in times[name]),
             "times_s": [t[0] for t in times[name]], "first_window_s": first[name],
             "max_difference_over_max": float(np.max(np.abs(outputs[name] - reference))
                                              / np.max(reference))}
      if case == "window":
        row["gflops_per_s"] = computed / wall / 1e9
        row["fraction_of_matmul_peak"] = row["gflops_per_s"] / peak
      rows.append(row)
      print(f"{case:6s} {name:22s} {wall:7.2f} s wall {row['median_cpu_s']:7.2f} s CPU "
            f"difference {row['max_difference_over_max']:.1e}", file=sys.stderr)
  # one file, one record per ISA kind: the native run and the AVX2-capped one side by side
  records = {}
  if os.path.exists(args.out):
    with open(args.out, encoding="utf-8") as file:
      records = json.load(file).get("runs", {})
  kept = [row for row in records.get(kind, {}).get("rows", []) if row["case"] not in cases_asked]
  records[kind] = {"machine": machine.machine(), "isa_kind": kind,
                   "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
                   "load_average": os.getloadavg(), "matmul_peak_gflops": peak,
                   "model": "b4u4 (shipped L1)", "window": list(WINDOW),
                   "window_gflop": computed / 1e9, "volume": "colin27_1mm 181x217x181",
                   "volume_tiles": [list(edges), batch], "rows": kept + rows}
  machine.write_json(args.out, {"runs": records})


if __name__ == "__main__":
  main()
