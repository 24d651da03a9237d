"""What the GAN stage changes, told from what more L1 training changes: the L1 weights, the
GAN weights made from them, and the control (the same L1 weights continued with L1 alone
for as many generator updates, flags/cpu_tables/l1_continued.cfg), scored on one held-out
head as the release scores it (the paper's 64^3 tiles and 3-voxel margins, the card's
acquisition), docs/reproducing.md#the-gan-against-l1-and-its-control.

  python benchmarks/gan_against_l1.py --control runs/cpu/b4u4_l1_continued

Per network: PSNR over the whole head, inside its brain mask and outside it; sharpness and
band fidelity over the whole head and inside the brain; and how far its output moved from
the L1 weights' (the mean, 99th percentile and largest absolute difference, in % of the HR
maximum). Prints a Markdown table and writes JSON.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIGURES = ("psnr", "sharpness", "band_fidelity")


def score(hr, brain, sr, acquisition, reference=None) -> dict:
  """The figures of one output; `reference` (the L1 weights' output) adds its change."""
  from mdcsrn_tf import metrics  # pylint: disable=import-outside-toplevel

  figures = metrics.quality(hr, sr, acquisition, brain)  # whole head, and in its brain
  outside = metrics.quality(hr, sr, acquisition, ~brain)
  row = {name: figures[name] for name in FIGURES}
  row.update({f"{name}_brain": figures[f"{name}_mask"] for name in FIGURES})
  row["psnr_outside_brain"] = outside["psnr_mask"]
  if reference is not None:
    change = 100 * np.abs(sr - reference) / hr.max()
    row["change_from_l1_percent"] = {"mean": float(change.mean()),
                                     "p99": float(np.percentile(change, 99)),
                                     "max": float(change.max())}
  return row


def markdown(rows: dict) -> str:
  lines = ["| b4u4 | PSNR (dB) | in brain | outside brain | sharpness | in brain | "
           "band fidelity | in brain | change from L1 |", "|---" * 9 + "|"]
  for label, row in rows.items():
    change = row.get("change_from_l1_percent")
    moved = (f"{change['mean']:.2f} / {change['p99']:.2f} / {change['max']:.1f}"
             if change else "-")
    lines.append(f"| {label} | {row['psnr']:.2f} | {row['psnr_brain']:.2f} | "
                 f"{row['psnr_outside_brain']:.2f} | {row['sharpness']:.3f} | "
                 f"{row['sharpness_brain']:.3f} | {row['band_fidelity']:.3f} | "
                 f"{row['band_fidelity_brain']:.3f} | {moved} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--l1", default="b4u4_l1", help="L1 weights: a shipped name or a path")
  parser.add_argument("--gan", default="b4u4_gan", help="the GAN weights made from them")
  parser.add_argument("--control", required=True,
                      help="the L1 weights continued with L1 alone (a workdir or weights)")
  parser.add_argument("--dataset", default=os.path.join(REPO, "data", "samples",
                                                        "manifest.json"))
  parser.add_argument("--subject", default="colin27_1mm", help="a test volume with a mask")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "gan_against_l1.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import paper, weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import kspace, manifest  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.evaluate import subjects  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer import inference  # pylint: disable=import-outside-toplevel

  chosen = [e for e in manifest.split_entries(args.dataset, "test")
            if args.subject in (e["name"], e["subject"]) and e.get("mask")]
  if len(chosen) != 1:
    sys.exit(f"error: {args.dataset}: no single test volume {args.subject!r} with a brain mask")
  (entry,) = chosen
  hr, _, _, _, brain = subjects.read_subject(entry["path"], mask_path=entry["mask"])
  rows, reference, sources = {}, None, {}
  for label, name in (("L1 weights", args.l1), ("GAN", args.gan), ("control", args.control)):
    source = weights.exported_generator(name) if os.path.isdir(name) else weights.resolve(name)
    model, card = weights.load_generator(source)
    lr = kspace.degrade(hr, card.acquisition)
    sr = inference.super_resolve(model, lr, tile=paper.TILE, margin=paper.MARGIN)
    rows[label] = score(hr, brain, sr, card.acquisition, reference)
    sources[label] = {"weights": os.path.relpath(source, REPO), "steps": card.steps,
                      "phase": card.phase}
    reference = sr if reference is None else reference
    print(f"{label}: {rows[label]}", flush=True)
  table = markdown(rows)
  print(table)
  machine.write_json(args.out, {"machine": machine.machine(), "subject": entry["name"],
                                "tile": paper.TILE, "margin": paper.MARGIN,
                                "weights": sources, "figures": rows, "table": table})


if __name__ == "__main__":
  main()
