"""Side-by-side slices in the degraded plane, as the paper's Figure 2, written to PNG.

The slices come from Acquisition.plane_slice; matplotlib loads only when a figure is drawn.
"""
import numpy as np

from mdcsrn_tf.files import write_atomically


def central_square(shape, fraction=0.25):
  """(row, col, size): a square of `fraction` of the smaller edge at the slice's centre."""
  size = max(8, int(min(shape) * fraction))
  return shape[0] // 2 - size // 2, shape[1] // 2 - size // 2, size


def comparison_figure(slices: dict, path, zoom="centre", title=None, errors=None, outline=None):
  """One panel per named 2D slice, same grey scale; `zoom` = (row, col, size) or "centre"
  adds a row of insets of that square (None: no insets). `errors` ({name: 2D map of
  |output - HR|}) adds a row of error maps under the panels of those names, on one colour
  scale with its colour bar, and the contour of `outline` (a 2D boolean slice, e.g. the
  brain mask; required with `errors`) drawn on them. Written atomically to `path`."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")  # headless: CI and servers have no display
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  names = list(slices)
  if zoom == "centre":
    zoom = central_square(next(iter(slices.values())).shape)
  rows = 1 + bool(zoom) + bool(errors)
  # constrained layout makes room for the colour bar, which tight_layout cannot
  figure, axes = plt.subplots(rows, len(names), figsize=(2.6 * len(names), 2.8 * rows),
                              squeeze=False, layout="constrained")
  high = max(float(np.percentile(s, 99.5)) for s in slices.values()) or 1.0
  for column, name in enumerate(names):
    image = np.rot90(slices[name])
    axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=high)
    axes[0, column].set_title(name, fontsize=9)
    if zoom:
      row, col, size = zoom
      inset = np.rot90(slices[name][row:row + size, col:col + size])
      axes[1, column].imshow(inset, cmap="gray", vmin=0, vmax=high, interpolation="nearest")
      height = image.shape[0]
      axes[0, column].add_patch(plt.Rectangle((row - 0.5, height - col - size - 0.5), size, size,
                                              fill=False, edgecolor="yellow", linewidth=0.8))
  if errors:
    _error_row(figure, axes[-1], names, errors, outline)
  for axis in axes.flat:
    axis.set_axis_off()
  if title:
    figure.suptitle(title, fontsize=10)
  write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
  plt.close(figure)
  return path


def _error_row(figure, axes, names, errors, outline):
  """|output - HR| under the panels named in `errors`, one colour scale up to the 99.5th
  percentile of all of them (a few seams or edges would otherwise wash the rest out)."""
  high = max(float(np.percentile(np.concatenate([e.ravel() for e in errors.values()]), 99.5)),
             np.finfo(np.float32).tiny)
  shown = None
  for column, name in enumerate(names):
    if name not in errors:
      continue
    shown = axes[column].imshow(np.rot90(errors[name]), cmap="magma", vmin=0, vmax=high)
    axes[column].set_title(f"|{name} - HR|", fontsize=9)
    axes[column].contour(np.rot90(outline).astype(np.float32), levels=[0.5], colors="cyan",
                         linewidths=0.6)
  figure.colorbar(shown, ax=list(axes), shrink=0.85, extend="max",
                  label="|output - HR| (HR max = 1)")
