"""A SavedModel for TF Serving: the library of `python -m mdcsrn_tf.export`.

Its `serving_default` signature takes `volume`, float32 [D, H, W] of any size on the HR
grid (or the same as [1, D, H, W, 1]), and returns {"sr": float32 of the same shape}. It
makes `mdcsrn-sr`'s checks, each failing with a message that says what is wrong before any
other op runs: the layout (rank 3 or 5, no empty axis), finite voxels (a NaN would spread
over its tile's receptive field) and an intensity range to map; and, like mdcsrn-sr, it
fails rather than return an output with NaN or Inf voxels. Everything the Python path
does happens in the graph: the mapping onto [0, 1] and back (data/intensity.py: by the
maximum, by the range for a volume with negative voxels), and the tiling of infer/tiling.py (the
same windows, sliding inside the volume, the same owned output voxels), so the SavedModel
reproduces `mdcsrn-sr` without mdcsrn_tf installed. Tiles run one at a time to keep memory
bounded by one window.

Keras' ExportArchive writes it: it saves the Keras variables so that the session-based
loader of TF Serving and the C++/Java APIs finds them too (`saved_model_cli run`), which a
plain tf.Module holding a Keras 3 model does not. The export carries the weights' model
card, as it is, in DIR/assets.extra/model_card.json (a folder TF Serving leaves alone): the
training domain that the Python front end (export/serving.py) checks volumes against. The
export is written to a temporary folder beside DIR, given the permissions a plainly made
folder would have, and renamed onto it (docs/serving.md).
"""
import dataclasses
import os
import shutil

from mdcsrn_tf import cli, paper
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import write_folder_atomically
from mdcsrn_tf.infer import consistency


@dataclasses.dataclass(frozen=True)
class ExportOptions:
  """What `python -m mdcsrn_tf.export` exports, and where.

  Attributes:
    weights: PATH(.weights.h5) of the generator, with its PATH.json model card, or the
      name of weights shipped with the package (b4u4_l1, b4u4_gan, ...), as mdcsrn-sr's.
    out: the SavedModel folder to create, TF Serving's MODEL/VERSION (e.g. serving/mdcsrn/1);
      with --format onnx, the PATH.onnx file to create.
    format: saved_model (the tiled volume in, for TF Serving) or onnx (the network alone,
      windows of any size in; the flags below are the SavedModel's).
    model: the generator's name, for weights without a model card.
    tile: output tile edge in voxels, 64 for the paper's tiling, or auto: per-axis tiles
      planned in the graph for each volume's shape as `mdcsrn-sr --tile auto` plans them.
    margin: voxels of context on each side of a tile, discarded (the paper's 3).
    memory_limit: MiB for one window's activations with --tile auto (default 4096, as
      mdcsrn-sr's).
    unverified_weights: load weights whose model card records no SHA-256 (cards from
      before checksums); otherwise they are refused.
    overwrite: replace an --out that exists already (refused without): a PATH.onnx file,
      or a folder that holds a SavedModel (no other folder is ever replaced); a symbolic
      link there is replaced itself, never what it points to.
  """
  weights: str
  out: str
  format: str = "saved_model"
  model: str | None = None
  tile: str = "auto"
  margin: int = paper.MARGIN
  memory_limit: int | None = None
  unverified_weights: bool = False
  overwrite: bool = False

  def __post_init__(self):
    cli.require_at_least(self, margin=0, memory_limit=1)
    cli.int_or_word(self, "tile", "auto")
    if self.format not in FORMATS:
      raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
    tiling = [f"--{field.name}" for field in dataclasses.fields(self)
              if field.name in ("tile", "margin", "memory_limit")
              and getattr(self, field.name) != field.default]
    if self.format == "onnx" and tiling:  # the ONNX graph is the network alone
      raise InputError(f"{', '.join(tiling)}: the SavedModel's tiling; an ONNX export is the "
                       "network alone, its caller tiles (docs/serving.md)")


FORMATS = ("saved_model", "onnx")
CARD = os.path.join("assets.extra", "model_card.json")  # the card, inside an export


LAYOUT_ERROR = "volume must be float32 [D, H, W] or [1, D, H, W, 1] with D, H, W >= 1; got shape"
NOT_FINITE_ERROR = "volume has NaN or Inf voxels; count:"
NO_RANGE_ERROR = "volume has no positive voxel (nothing to super-resolve); maximum:"
NOT_FINITE_OUTPUT_ERROR = ("network output has NaN or Inf voxels (corrupted or diverged "
                           "weights); count:")


def serving_function(model, tile=paper.TILE, margin=paper.MARGIN, memory_limit=None,
                     keep_band=None):
  """The exported computation: `volume` -> {"sr": its super-resolution, same shape}.
  `tile` None plans the tiles in the graph from the volume's shape and `memory_limit` MiB,
  as inference.auto_plan does; `keep_band` keeps that acquisition's measured band, as
  inference.super_resolve does for weights whose card asks for it."""
  import tensorflow as tf

  from mdcsrn_tf.infer import consistency, inference
  from mdcsrn_tf.infer.forward import activation_bytes_per_voxel, inference_pass
  from mdcsrn_tf.infer.tiling import auto_tile_edges, tiled_forward

  network = inference_pass(model, xla=False)
  max_window = ((memory_limit or inference.DEFAULT_MEMORY_MIB) * 2**20
                // activation_bytes_per_voxel(model))

  def serve(volume):
    shape = tf.shape(volume)
    batched = tf.equal(tf.rank(volume), 5)
    # [D, H, W] of either layout; padded so that slicing a shape of another rank never fails
    spatial = tf.slice(tf.pad(shape, [[0, 5]]), [tf.where(batched, 1, 0)], [3])
    voxels = tf.reduce_prod(spatial)
    layout_ok = tf.logical_and(
        tf.logical_or(tf.equal(tf.rank(volume), 3),
                      tf.logical_and(batched, tf.equal(tf.reduce_prod(shape), voxels))),
        voxels > 0)
    check = tf.debugging.Assert(layout_ok, [LAYOUT_ERROR, shape], summarize=5)
    with tf.control_dependencies([check]):  # before any op that a wrong shape would break
      volume = tf.reshape(volume, spatial)
      spatial = tf.identity(spatial)
    bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(volume)), tf.int64))
    with tf.control_dependencies([tf.debugging.Assert(tf.equal(bad, 0), [NOT_FINITE_ERROR, bad])]):
      low = tf.minimum(tf.reduce_min(volume), 0.0)
      high = tf.reduce_max(volume)
    with tf.control_dependencies([tf.debugging.Assert(high - low > 0, [NO_RANGE_ERROR, high])]):
      scale = tf.identity(high - low)
      spatial = tf.identity(spatial)
    edges = auto_tile_edges(spatial, margin, max_window) if tile is None else tile
    normalised = (volume - low) / scale
    sr = tiled_forward(network, normalised, edges, margin)
    if keep_band is not None:
      sr = consistency.keep_measured_band_graph(sr, normalised, keep_band)
    bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(sr)), tf.int64))
    with tf.control_dependencies([tf.debugging.Assert(tf.equal(bad, 0),
                                                      [NOT_FINITE_OUTPUT_ERROR, bad])]):
      sr = tf.maximum(sr, 0.0)  # as in inference.super_resolve: on [0, 1] nothing real is below
    return {"sr": tf.reshape(sr * scale + low, shape)}

  return serve


def check_export_folder(out_dir, overwrite=False) -> str:
  """The absolute export folder; InputError if it exists already (without `overwrite`; a
  folder that holds no SavedModel always) or could not be made (TF Serving's MODEL/VERSION
  layout: missing parents are made when the export is written)."""
  out_dir = os.path.abspath(os.fspath(out_dir))
  if os.path.isdir(out_dir) and not os.path.islink(out_dir) and os.listdir(out_dir) and (
      not os.path.isfile(os.path.join(out_dir, "saved_model.pb"))):
    raise InputError(f"{out_dir}: a folder that holds no SavedModel; choose a new folder")
  if os.path.lexists(out_dir) and not overwrite:
    raise InputError(f"{out_dir}: exists already; pass --overwrite to replace, or choose a "
                     "new folder (e.g. the next version)")
  ancestor = os.path.dirname(out_dir)
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not (os.path.isdir(ancestor) and os.access(ancestor, os.W_OK | os.X_OK)):
    raise InputError(f"{out_dir}: cannot be made, {ancestor} is not a writable folder")
  return out_dir


def export_saved_model(model, out_dir, tile=paper.TILE, margin=paper.MARGIN,
                       memory_limit=None, overwrite=False, card_file=None, keep_band=None):
  """Writes the SavedModel (keeping `keep_band`'s measured band: serving_function), with a
  copy of the model card `card_file` (None: weights without one) at CARD, to a temporary
  folder beside `out_dir`, then renames it (over the SavedModel there with `overwrite`)."""
  import keras
  import tensorflow as tf

  out_dir = check_export_folder(out_dir, overwrite)
  os.makedirs(os.path.dirname(out_dir), exist_ok=True)
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("serving_default",
                       serving_function(model, tile, margin, memory_limit, keep_band),
                       input_signature=[tf.TensorSpec(None, tf.float32, name="volume")])

  def write(folder):
    try:
      archive.write_out(folder, verbose=False)
    except tf.errors.OpError as error:  # a full disk, say: TensorFlow's own file error
      first = (error.message.strip().splitlines() or [type(error).__name__])[0]
      raise InputError(f"{out_dir}: cannot write the SavedModel ({first})") from None
    if card_file is not None:
      os.makedirs(os.path.join(folder, os.path.dirname(CARD)))
      shutil.copyfile(card_file, os.path.join(folder, CARD))

  return write_folder_atomically(out_dir, write, replace=overwrite)


def export(options: ExportOptions) -> str:
  """The command: checks the destination before loading anything, then exports."""
  from mdcsrn_tf import weights  # TensorFlow loads only for a destination that can be made

  source = weights.resolve(options.weights)  # a path, or shipped weights by name
  if options.format == "onnx":
    from mdcsrn_tf.export import onnx_graph

    return onnx_graph.export_onnx(source, options.out, options.model,
                                  options.unverified_weights, options.overwrite)
  check_export_folder(options.out, options.overwrite)
  model, card = weights.load_generator(source, options.model, options.unverified_weights)
  card_file = weights.base_path(source) + weights.CARD_SUFFIX
  return export_saved_model(model, options.out, cli.int_or_word(options, "tile", "auto"),
                            options.margin, options.memory_limit, options.overwrite,
                            card_file if os.path.isfile(card_file) else None,
                            consistency.band_kept_by(card))
