"""Measured-band consistency measured per head (docs/evaluation.md#measured-band-consistency):
each network's output as it is and with its input's kept band (infer/consistency.py),
against the zero-filled input itself, over the whole volume, over the head (HR above the
metrics.HEAD_LEVEL of its maximum, as psnr_head counts it) and inside the brain where a mask exists.

  python benchmarks/consistency.py [--weights NAME=PATH_OR_CHECKPOINT ...]
                                   [--dataset data/heads/manifest.json] [--splits validation]

A weight is a shipped name, an exported PATH(.weights.h5) or a training checkpoint prefix
(WORKDIR/checkpoints/ckpt-N, read into the b4u4 generator). Every volume is the manifest
entry divided by its maximum and degraded zero-filled (the paper's 2 x 2 x 1 truncation),
inferred with the paper's tiling (64^3, margin 3). Prints a Markdown table and writes JSON to
benchmarks/results/consistency.json.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def psnr(hr, sr, where=None) -> float:
  """PSNR (data range 1) of `sr` against `hr` over the voxels `where` (all: None)."""
  difference = (sr - hr) if where is None else (sr - hr)[where]
  return float(10 * np.log10(1.0 / np.mean(np.square(difference, dtype=np.float64))))


def load(spec):
  """(name, Keras generator) of a NAME=PATH or a shipped name."""
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.models import build_model  # pylint: disable=import-outside-toplevel

  name, _, path = spec.partition("=")
  path = path or name
  if os.path.exists(path + ".index"):  # a training checkpoint
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    model = build_model("b4u4")
    tf.train.Checkpoint(generator=model).restore(path).expect_partial()
    return name, model
  return name, weights.load_generator(weights.resolve(path))[0]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--weights", action="append", default=None,
                      help="NAME=PATH, a shipped name or a checkpoint prefix (repeatable)")
  parser.add_argument("--dataset", default="data/heads/manifest.json")
  parser.add_argument("--splits", default="validation,test")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "consistency.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import paper  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.acquisition import Acquisition  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import kspace, manifest  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.metrics import HEAD_LEVEL  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.evaluate import subjects  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer import inference  # pylint: disable=import-outside-toplevel

  acquisition = Acquisition(placement="zero_filled")
  networks = dict(map(load, args.weights or ["b4u4_l1"]))
  rows = []
  for split in args.splits.split(","):
    for entry in manifest.split_entries(args.dataset, split):
      hr, _, _, _, brain = subjects.read_subject(entry["path"], mask_path=entry.get("mask"))
      lr = kspace.degrade(hr, acquisition)
      regions = {"volume": None, "head": hr > HEAD_LEVEL}
      if brain is not None:
        regions["brain"] = brain
      for name, model in networks.items():
        plain = inference.super_resolve(model, lr, paper.TILE, paper.MARGIN, progress=False)
        kept = inference.super_resolve(model, lr, paper.TILE, paper.MARGIN, progress=False,
                                       keep_band=acquisition)
        row = {"split": split, "volume": entry["name"], "weights": name}
        for region, where in regions.items():
          row[region] = {"input": psnr(hr, lr, where), "network": psnr(hr, plain, where),
                         "kept_band": psnr(hr, kept, where)}
        row["mean_change_in_head"] = float(np.mean((plain - lr)[regions["head"]]))
        rows.append(row)
        print(f"| {split} | {entry['name']} | {name} | " + " | ".join(
            f"{row[r]['input']:.2f} / {row[r]['network']:.2f} / {row[r]['kept_band']:.2f}"
            for r in regions) + " |", flush=True)
  record = {"machine": machine.machine(), "acquisition": acquisition.to_dict(),
            "tile": paper.TILE, "margin": paper.MARGIN, "head_level": HEAD_LEVEL,
            "rows": rows}
  machine.write_json(args.out, record)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
