"""Side-by-side slices in the degraded plane, as the paper's Figure 2, written to PNG.

matplotlib loads only when a figure is drawn: training takes its validation slices from
here too and has no use for it.
"""
import numpy as np

from mdcsrn_tf.files import write_atomically


def degraded_plane_slice(volume, index=None, plane_axes=(0, 1)):
  """The 2D slice at `index` (default: the middle) along the axis the degradation left
  untouched, so the slice lies in the degraded plane."""
  (through_axis,) = {0, 1, 2} - set(plane_axes)
  index = volume.shape[through_axis] // 2 if index is None else index
  return np.take(volume, index, axis=through_axis)


def central_square(shape, fraction=0.25):
  """(row, col, size): a square of `fraction` of the smaller edge at the slice's centre."""
  size = max(8, int(min(shape) * fraction))
  return shape[0] // 2 - size // 2, shape[1] // 2 - size // 2, size


def comparison_figure(slices: dict, path, zoom="centre", title=None):
  """One panel per named 2D slice, same grey scale; `zoom` = (row, col, size) or "centre"
  adds a row of insets of that square (None: no insets). Written atomically to `path`."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")  # headless: CI and servers have no display
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  names = list(slices)
  if zoom == "centre":
    zoom = central_square(next(iter(slices.values())).shape)
  rows = 2 if zoom else 1
  figure, axes = plt.subplots(rows, len(names), figsize=(2.6 * len(names), 2.8 * rows),
                              squeeze=False)
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
  for axis in axes.flat:
    axis.set_axis_off()
  if title:
    figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
  plt.close(figure)
  return path
