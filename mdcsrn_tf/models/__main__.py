"""`python -m mdcsrn_tf.models --summary [NAME ...]`: parameters, ops and receptive fields.

Prints one row per model (all of them when no NAME is given): trainable parameters,
parameters including BatchNorm's moving statistics, the paper's #parm, our FLOPs per output
voxel (a multiply-add counts 2), the paper's #ops and its ratio to ours, and the
receptive-field radius in voxels. The critic's FLOPs are per voxel of its input patch.
"""
import argparse
import math
import sys

from mdcsrn_tf.models import MODEL_NAMES, PAPER_FIGURES, analysis, build_model


def _m(value):
  return f"{value / 1e6:.3f}M"


def summary_rows(names, patch_size=64):
  """One tuple of table cells per model name."""
  rows = []
  for name in names:
    model = build_model(name, **({"patch_size": patch_size} if name == "critic" else {}))
    trainable = analysis.trainable_parameters(model)
    ops = analysis.ops_per_voxel(model)
    radius = analysis.receptive_field_radius(model)
    paper_params, paper_ops = PAPER_FIGURES.get(name, (None, None))
    rows.append((
        name if name != "critic" else f"critic ({patch_size}^3)",
        f"{trainable:,}", f"{model.count_params():,}",
        _m(paper_params) if paper_params else "-",
        f"{ops:,.0f}", _m(paper_ops) if paper_ops else "-",
        f"{paper_ops / ops:.2f}" if paper_ops else "-",
        "whole patch" if math.isinf(radius) else str(radius)))
  return rows


HEADER = ("model", "trainable", "incl. BN stats", "paper #parm", "FLOPs/voxel (ours)",
          "paper #ops", "paper/ours", "RF radius")


def format_table(rows):
  widths = [max(len(r[i]) for r in (HEADER, *rows)) for i in range(len(HEADER))]
  line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths)))
  return "\n".join([line(HEADER), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m mdcsrn_tf.models", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--summary", nargs="*", metavar="NAME", choices=MODEL_NAMES,
                      help=f"models to list (default: all of {', '.join(MODEL_NAMES)})")
  parser.add_argument("--patch-size", type=int, default=64, help="the critic's patch size")
  args = parser.parse_args(argv)
  if args.summary is None:
    parser.print_help()
    return 2
  print(format_table(summary_rows(args.summary or MODEL_NAMES, args.patch_size)))
  print("FLOPs/voxel: floating-point operations per output voxel, a multiply-add counted as 2"
        " (docs/models.md).")
  return 0


if __name__ == "__main__":
  sys.exit(main())
