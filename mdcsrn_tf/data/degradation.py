"""How the network input is made from an HR volume: the names and values every stage
shares (docs/paper.md#degradation-lr-generation; the k-space work itself is kspace.py).

The network-input mode is called `lr_mode` everywhere (flags, model cards, code): "linear",
the paper's (the truncated spectrum's image interpolated linearly onto the HR grid), or
"zero_filled" (the truncated spectrum zero-padded back to the HR grid). The baselines add
the other ways back to the HR grid, `INTERPOLATIONS`.
"""
import dataclasses

from mdcsrn_tf.errors import InputError

LR_MODES = ("linear", "zero_filled")
INTERPOLATIONS = ("nearest", "linear", "cubic", "zero_filled")


@dataclasses.dataclass(frozen=True)
class Degradation:
  """The k-space truncation of `plane_axes` by `factor`, and the network input `lr_mode`."""
  lr_mode: str = "linear"
  factor: int = 2
  plane_axes: tuple = (0, 1)

  def __post_init__(self):
    if self.lr_mode not in LR_MODES:
      raise InputError(f"lr_mode {self.lr_mode!r}: expected {' or '.join(LR_MODES)}")
    if len(self.plane_axes) != 2 or not set(self.plane_axes) < {0, 1, 2}:
      raise InputError(f"plane_axes {self.plane_axes!r}: expected two distinct axes of 0, 1, 2")
    if self.factor < 1:
      raise InputError(f"factor must be >= 1, got {self.factor}")
