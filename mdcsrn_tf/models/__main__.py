"""`python -m mdcsrn_tf.models [NAME ...]`: parameters, ops and receptive fields.

Prints one row per model (all of them when no NAME is given): trainable parameters,
parameters including BatchNorm's moving statistics, the paper's #parm, our FLOPs per output
voxel (a multiply-add counts 2), the paper's #ops and its ratio to ours, and the
receptive-field radius in voxels. The critic's FLOPs are per voxel of its input patch.
"""
import dataclasses
import math

from mdcsrn_tf import cli, paper
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.models import MODEL_NAMES, build_model


def _m(value):
  return f"{value / 1e6:.3f}M"


def summary_rows(names, patch_size=64):
  """One tuple of table cells per model name."""
  from mdcsrn_tf.models import analysis  # Keras: only once the names are good

  rows = []
  for name in names:
    model = build_model(name, **({"patch_size": patch_size} if name == "critic" else {}))
    trainable = analysis.trainable_parameters(model)
    ops = analysis.ops_per_voxel(model)
    radius = analysis.receptive_field_radius(model)
    row = paper.TABLES.get(name)
    paper_params, paper_ops = (row.parameters, row.ops) if row else (None, None)
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


@dataclasses.dataclass(frozen=True)
class SummaryOptions:
  """What `python -m mdcsrn_tf.models [NAME ...]` lists (all models when no NAME is given).

  Attributes:
    patch_size: the critic's patch edge in voxels.
  """
  patch_size: int = 64


def main(options: SummaryOptions, names):
  unknown = sorted(set(names) - set(MODEL_NAMES))
  if unknown:
    raise InputError(f"unknown models {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}")
  try:
    rows = summary_rows(names or MODEL_NAMES, options.patch_size)
  except ValueError as error:  # the critic's patch: a positive multiple of 16
    raise InputError(f"--patch_size {options.patch_size}: {error}") from None
  print(format_table(rows))
  print("FLOPs/voxel: floating-point operations per output voxel, a multiply-add counted as 2"
        " (docs/models.md).")


def run():
  cli.run(main, SummaryOptions, __doc__)


if __name__ == "__main__":
  run()
