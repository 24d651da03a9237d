"""What bfloat16 costs in quality on the held-out heads (docs/performance.md#engines): the
default L1 weights through OpenVINO in float32 and in bfloat16 (`mdcsrn-sr --engine
openvino --precision bfloat16`), each head scored as `release` scores it (metrics.quality
over the whole volume and, where the head has a mask, inside it), with the largest and mean
difference between the two outputs and each run's wall and CPU time.

  python benchmarks/precision.py [--weights heads_b4u4_l1] [--dataset data/heads/manifest.json]

Needs a CPU with bfloat16 dot products (AVX512-BF16 or AMX): elsewhere OpenVINO would
compute float32 for both and the script stops with status 1, saying so. Prints a Markdown
table and writes benchmarks/results/precision.json.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PRECISIONS = ("float32", "bfloat16")


def timed(run):
  """(run(), wall seconds, CPU seconds of this process)."""
  wall, cpu = time.perf_counter(), time.process_time()
  result = run()
  return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--weights", default="heads_b4u4_l1", help="a shipped name or a path")
  parser.add_argument("--dataset", default="data/heads/manifest.json")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "precision.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import metrics, paper, weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import kspace, manifest  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.evaluate import subjects  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer import consistency, engines, inference  # pylint: disable=import-outside-toplevel

  if not engines.has_bfloat16():
    print("error: this CPU has no bfloat16 dot products (AVX512-BF16 or AMX) that oneDNN may "
          "use: OpenVINO would compute float32 for both", file=sys.stderr)
    return 1
  model, card = weights.load_generator(weights.resolve(args.weights))
  runners = {precision: engines.prepare("openvino", model, card.weights_sha256, precision)
             for precision in PRECISIONS}
  print("| head | input PSNR | float32 PSNR | bfloat16 PSNR | float32 SSIM | bfloat16 SSIM "
        "| largest difference | CPU s, float32 / bfloat16 |")
  rows = []
  for entry in manifest.split_entries(args.dataset, "test"):
    subject = subjects.read_subject(entry["path"], mask_path=entry.get("mask"))
    hr, mask = subject.hr, subject.mask
    lr = kspace.degrade(hr, card.acquisition)
    row = {"volume": entry["name"], "input": metrics.quality(hr, lr, card.acquisition, mask)}
    outputs = {}
    for precision, engine in runners.items():
      outputs[precision], wall, cpu = timed(lambda engine=engine: inference.super_resolve(
          model, lr, paper.TILE, paper.MARGIN, progress=False, engine=engine,
          keep_band=consistency.band_kept_by(card)))
      row[precision] = {**metrics.quality(hr, outputs[precision], card.acquisition, mask),
                        "wall_s": wall, "cpu_s": cpu}
    difference = np.abs(outputs["bfloat16"] - outputs["float32"])
    row["max_difference"], row["mean_difference"] = float(difference.max()), float(
        difference.mean(dtype=np.float64))
    rows.append(row)
    cells = [entry["name"], f"{row['input']['psnr']:.2f}",
             *(f"{row[p]['psnr']:.3f}" for p in PRECISIONS),
             *(f"{row[p]['ssim']:.4f}" for p in PRECISIONS), f"{row['max_difference']:.1e}",
             " / ".join(f"{row[p]['cpu_s']:.0f}" for p in PRECISIONS)]
    print("| " + " | ".join(cells) + " |", flush=True)
  machine.write_json(args.out, {"machine": machine.machine(), "weights": args.weights,
                                "weights_sha256": card.weights_sha256, "tile": paper.TILE,
                                "margin": paper.MARGIN, "rows": rows})
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
