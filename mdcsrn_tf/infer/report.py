"""The QC report of a super-resolution run: one self-contained HTML page (images embedded as
PNG data, no script, no external file) that any browser shows.

For every (input, output) pair: three orthogonal slices through the brightness-weighted
centre of the output, each as input | output | zoomed input | zoomed output | difference,
all on the output's grid at the same physical scale (PIXELS_PER_MM; the input shown with
its own voxels, nearest neighbour, so a coarser input looks coarse); the difference is the
output less the input interpolated linearly onto the output's grid. Each panel shows voxel
axes (p, q) of its plane with p to the right and q upward, labelled with their world
directions. With test-time augmentation the uncertainty map's slice (the passes' standard
deviation) stands beside the output's. Each input's place against the weights' training
domain (infer/trust.py) is stated above its slices, its warnings in red. Then the grids,
the weights with their held-out figures, and the command.
"""
import base64
import dataclasses
import html
import io
import os

import nibabel as nib
import numpy as np

from mdcsrn_tf import destinations
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import write_text_atomically
from mdcsrn_tf.infer import provenance

PIXELS_PER_MM = 4  # the panels' scale in a browser at 100%
ZOOM = 2  # the insets' magnification over the panels
WINDOW_PERCENTILE = 99.5  # the grey scale's top: above it, a few bright vessels saturate
PLANE_NAMES = ("sagittal-like", "coronal-like", "axial-like")  # by voxel axis 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Panel:
  """One picture: an array [rows, columns] on the output grid and how to show it."""
  title: str
  pixels: np.ndarray
  width_mm: float
  height_mm: float
  colormap: str
  limits: tuple


def check_report_path(path, others=(), overwrite=False):
  """InputError unless `path` is a PATH.html in a writable folder that is none of `others`
  (the run's inputs and outputs, by resolved path) and, unless `overwrite`, holds no file
  or link yet (destinations.refuse_existing: --overwrite replaces the link, not its
  target)."""
  path = os.fspath(path)
  if not path.endswith(".html"):
    raise InputError(f"{path}: a report is a PATH.html file")
  folder = os.path.dirname(os.path.abspath(path))
  if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
    raise InputError(f"{path}: report folder {folder} is not a writable folder")
  if os.path.isdir(path):
    raise InputError(f"{path}: is a folder; give the report file's name")
  if any(os.path.realpath(path) == os.path.realpath(other) for other in others):
    raise InputError(f"{path}: the report would overwrite an input or output")
  destinations.refuse_existing([path], overwrite, instead="choose another --report")


def _resample(volume, to_volume, shape2d, plane, index, order):
  """`volume` sampled on one plane of the output grid (`to_volume` maps output voxel
  indices to the volume's)."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel

  axes = [a for a in range(3) if a != plane]
  grid = np.zeros((4, *shape2d))
  grid[plane] = index
  grid[axes[0]], grid[axes[1]] = np.meshgrid(np.arange(shape2d[0]), np.arange(shape2d[1]),
                                             indexing="ij")
  grid[3] = 1
  points = np.tensordot(to_volume, grid, axes=1)[:3]
  if order == 0:
    points = np.round(points)
  return ndimage.map_coordinates(volume, points, order=order, mode="nearest")


def _upward(plane_pixels):
  """A plane [p, q] as an image: p to the right, q upward."""
  return np.flipud(plane_pixels.T)


def _zoom_box(centre, shape2d):
  """(p slice, q slice) of a box of a third of the plane's size around `centre`."""
  sizes = [max(n // 3, 1) for n in shape2d]
  starts = [int(min(max(c - s // 2, 0), n - s)) for c, s, n in zip(centre, sizes, shape2d)]
  return tuple(slice(b, b + s) for b, s in zip(starts, sizes))


def plane_panels(source, output, source_affine, output_affine, voxel_mm, uncertainty=None):
  """{plane: (voxel index, box, [Panel])}: the five panels of each of the three planes, six
  with test-time augmentation's `uncertainty` map (on the output's grid) beside the output."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel

  to_source = np.linalg.solve(source_affine, output_affine)
  centre = np.array(ndimage.center_of_mass(np.maximum(output, 0)))
  if not np.all(np.isfinite(centre)):
    centre = (np.array(output.shape) - 1) / 2
  centre = np.round(centre).astype(int)
  top = float(np.percentile(source, WINDOW_PERCENTILE)) or 1.0
  if uncertainty is not None:
    spread_top = float(np.percentile(uncertainty, WINDOW_PERCENTILE)) or 1.0
  planes = {}
  for plane in range(3):
    axes = [a for a in range(3) if a != plane]
    shape2d = tuple(output.shape[a] for a in axes)
    index = int(centre[plane])
    shown = np.take(output, index, axis=plane)
    coarse = _resample(source, to_source, shape2d, plane, index, order=0)
    smooth = _resample(source, to_source, shape2d, plane, index, order=1)
    difference = shown - smooth
    box = _zoom_box(centre[axes], shape2d)
    width, height = (shape2d[0] * voxel_mm[axes[0]], shape2d[1] * voxel_mm[axes[1]])
    box_mm = (width * (box[0].stop - box[0].start) / shape2d[0] * ZOOM,
              height * (box[1].stop - box[1].start) / shape2d[1] * ZOOM)
    spread = float(np.percentile(np.abs(difference), WINDOW_PERCENTILE)) or 1.0
    planes[plane] = (index, box, [
        Panel("input", _upward(coarse), width, height, "gray", (0, top)),
        Panel("output", _upward(shown), width, height, "gray", (0, top)),
        Panel("input, zoomed", _upward(coarse[box]), *box_mm, "gray", (0, top)),
        Panel("output, zoomed", _upward(shown[box]), *box_mm, "gray", (0, top)),
        Panel("output - input", _upward(difference), width, height, "RdBu_r",
              (-spread, spread))])
    if uncertainty is not None:
      planes[plane][2].insert(2, Panel(
          "uncertainty (std of the passes)", _upward(np.take(uncertainty, index, axis=plane)),
          width, height, "magma", (0, spread_top)))
  return planes


def png_data(panel: Panel) -> str:
  """The panel as a data: URL of a PNG, one pixel per voxel."""
  from matplotlib import image  # pylint: disable=import-outside-toplevel

  buffer = io.BytesIO()
  image.imsave(buffer, panel.pixels, cmap=panel.colormap, vmin=panel.limits[0],
               vmax=panel.limits[1], format="png")
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222;background:#fff}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;
text-align:left}.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start;margin:.6em 0}
figure{margin:0}.frame{position:relative;display:inline-block;line-height:0}
img{image-rendering:pixelated;display:block}.box{position:absolute;border:1px solid #fd0}
figcaption{font-size:.8em;margin-top:.2em}.warning{background:#fee;border:1px solid #c00;
padding:.5em}pre{white-space:pre-wrap;background:#f4f4f4;padding:.5em}"""


def _table(header, rows) -> str:
  """A table; `header` None for one whose first column names its rows."""
  cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header or ())
  body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
                 for row in rows)
  return f"<table>{f'<tr>{cells}</tr>' if cells else ''}{body}</table>"


def _text(value) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  if isinstance(value, (list, tuple)):
    return " x ".join(_text(v) for v in value)
  return "-" if value is None else str(value)


def _figure(panel: Panel, box=None, shape2d=None) -> str:
  width, height = (round(panel.width_mm * PIXELS_PER_MM), round(panel.height_mm * PIXELS_PER_MM))
  outline = ""
  if box is not None:  # where the zoomed panels come from; q runs upward
    left, right = box[0].start / shape2d[0], box[0].stop / shape2d[0]
    top, bottom = 1 - box[1].stop / shape2d[1], 1 - box[1].start / shape2d[1]
    outline = (f'<div class="box" style="left:{left:.2%};top:{top:.2%};'
               f'width:{right - left:.2%};height:{bottom - top:.2%}"></div>')
  return (f'<figure><div class="frame"><img alt="{html.escape(panel.title)}" '
          f'src="{png_data(panel)}" width="{width}" height="{height}">{outline}</div>'
          f"<figcaption>{html.escape(panel.title)}</figcaption></figure>")


def _domain_paragraphs(findings) -> list:
  """What the run found of the input against the weights' training domain (infer/trust.py;
  None: not recorded)."""
  if findings is None:
    return []
  if not findings:
    return ["<p>training domain: inside it (voxel size, head size, intensities, spectrum)</p>"]
  return [f'<p class="warning">training domain: {html.escape(line)}</p>' for line in findings]


def _pair_section(input_path, output_path, findings=None, uncertainty_path=None) -> str:
  from mdcsrn_tf.data import nifti  # pylint: disable=import-outside-toplevel

  source, source_image = nifti.load_volume(input_path)
  output, output_image = nifti.load_volume(output_path)
  uncertainty = (nifti.load_volume(uncertainty_path)[0]
                 if uncertainty_path and os.path.isfile(uncertainty_path) else None)
  change = provenance.grid_change(input_path, output_path)
  voxel_mm = change["output"]["voxel_mm"]
  directions = nib.aff2axcodes(output_image.affine)
  parts = [f"<h2>{html.escape(os.path.basename(os.fspath(input_path)))} &rarr; "
           f"{html.escape(os.path.basename(os.fspath(output_path)))}</h2>",
           _table(["grid", "file", "voxels", "voxel size (mm)", "orientation"],
                  [(name, os.fspath(path), change[name]["shape"], change[name]["voxel_mm"],
                    change[name]["orientation"])
                   for name, path in (("input", input_path), ("output", output_path))]),
           f"<p>grid change per axis: {html.escape(_text(change['factors']))}</p>",
           *_domain_paragraphs(findings)]
  planes = plane_panels(source, output, source_image.affine, output_image.affine, voxel_mm,
                        uncertainty)
  for plane, (index, box, panels) in planes.items():
    axes = [a for a in range(3) if a != plane]
    shape2d = tuple(output.shape[a] for a in axes)
    parts.append(f"<h3>{PLANE_NAMES[plane]}: voxel {index} of axis {plane}; right "
                 f"&rarr; {directions[axes[0]]}, up &uarr; {directions[axes[1]]}</h3>")
    figures = [_figure(panel, box if panel.title in ("input", "output") else None, shape2d)
               for panel in panels]
    parts.append(f'<div class="row" data-plane="{plane}" data-slice="{index}">'
                 + "".join(figures) + "</div>")
  return "\n".join(parts)


def _weights_section(record) -> str:
  acquisition = record["acquisition"]
  rows = [("file", record["file"]), ("SHA-256", record["sha256"]),
          ("model", record["model"]), ("shipped set", record["shipped_set"] or None),
          ("shipped as", record["shipped_as"] or None),
          ("training", f"{record['phase'] or '-'}, {record['steps']} steps"),
          ("acquisition: factors per axis", acquisition["factors"]),
          ("acquisition: slice profile", acquisition["slice_profile"]),
          ("acquisition: placement on the HR grid", acquisition["placement"]),
          ("output keeps the input's measured k-space band",
           "yes" if record["keeps_measured_band"] else "no")]
  parts = ["<h2>Weights</h2>", _table(None, rows)]
  if record["warning"]:
    parts.insert(1, f'<p class="warning">{html.escape(record["warning"])}</p>')
  held_out = provenance.held_out_rows(record["held_out"])
  if held_out:
    volumes = list(dict.fromkeys(row[0] for row in held_out if not row[0].startswith("mean")))
    parts += [f"<h3>Held-out figures of {len(volumes)} held-out volume(s), "
              f"{html.escape(', '.join(volumes))}: each, and their mean with its n (whole "
              "volume, and inside the volume's mask where it has one)</h3>",
              _table(["volume", "method", "PSNR (dB)", "SSIM", "NRMSE", "PSNR in mask",
                      "SSIM in mask"], held_out)]
  else:
    parts.append("<p>The model card holds no held-out figures.</p>")
  return "\n".join(parts)


def write_report(path, pairs, weights_path, title, command=None, findings=None,
                 uncertainty=None) -> str:
  """Writes the report of `pairs` [(input, output)] super-resolved with `weights_path` to
  PATH.html, atomically; returns PATH. `findings` {input: lines} says how each input lies
  against the weights' training domain, `uncertainty` {output: its uncertainty map}."""
  record = provenance.weights_record(weights_path)
  findings, uncertainty = findings or {}, uncertainty or {}
  body = [f"<h1>{html.escape(title)}</h1>", _weights_section(record)]
  body += [_pair_section(source, output, findings.get(source), uncertainty.get(output))
           for source, output in pairs]
  body += ["<h2>Command</h2>",
           f"<pre>{html.escape(command or provenance.command_line())}</pre>"]
  page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
          + "\n".join(body) + "\n</body></html>\n")
  write_text_atomically(path, page)
  return os.fspath(path)
