"""`python -m mdcsrn_tf.export --weights PATH --out DIR`: a SavedModel for TF Serving.

Its `serving_default` signature takes `volume`, float32 [D, H, W] of any size on the HR
grid (or the same as [1, D, H, W, 1]), and returns {"sr": float32 of the same shape}; any
other shape fails with a message that says so. Everything the Python path does happens in
the graph: division by the volume's maximum and back, and inference.py's tiling (the same
windows, sliding inside the volume, the same owned output voxels), so the SavedModel
reproduces `mdcsrn-sr` without mdcsrn_tf installed. Tiles run one at a time (a
`tf.map_fn` with no parallel iterations) to keep memory bounded by one window.

Keras' ExportArchive writes it: it saves the Keras variables so that the session-based
loader of TF Serving and the C++/Java APIs finds them too (`saved_model_cli run`), which a
plain tf.Module holding a Keras 3 model does not. The export is written to a temporary
folder beside DIR, given the permissions a plainly made folder would have, and renamed onto
it (docs/serving.md).
"""
import os
import shutil
import tempfile

from absl import app, flags

from mdcsrn_tf.data.nifti import current_umask
from mdcsrn_tf.errors import InputError, report_input_errors

FLAGS = flags.FLAGS
flags.DEFINE_string("weights", None, "PATH(.weights.h5) of the generator, with its PATH.json card")
flags.DEFINE_string("model", None, "generator name when the weights have no model card")
flags.DEFINE_string("out", None, "SavedModel folder to create (e.g. serving/mdcsrn/1)")
flags.DEFINE_integer("tile", 64, "output tile size in voxels")
flags.DEFINE_integer("margin", 3, "context voxels on each side of a tile, discarded")


def _axis_plan(n, tile, margin):
  """In-graph inference.plan_axis: (tile, window, tile starts, window starts) for length n."""
  import tensorflow as tf

  tile = tf.minimum(tile, n)
  window = tf.minimum(tile + 2 * margin, n)
  count = (n + tile - 1) // tile
  tile_starts = tf.minimum(tf.range(count) * tile, n - tile)
  window_starts = tf.clip_by_value(tile_starts - margin, 0, n - window)
  return tile, window, tile_starts, window_starts


def tiled_forward(model, volume, tile, margin):
  """SR of a normalised [D, H, W] tensor by tiles, in TensorFlow ops only."""
  import tensorflow as tf

  shape = tf.shape(volume)
  plans = [_axis_plan(shape[a], tile, margin) for a in range(3)]
  tiles = tf.stack([p[0] for p in plans])
  windows = tf.stack([p[1] for p in plans])
  grids = tf.meshgrid(*(p[2] for p in plans), indexing="ij")
  window_grids = tf.meshgrid(*(p[3] for p in plans), indexing="ij")
  tile_starts = tf.stack([tf.reshape(g, [-1]) for g in grids], axis=1)
  window_starts = tf.stack([tf.reshape(g, [-1]) for g in window_grids], axis=1)

  def one_tile(starts):
    tile_start, window_start = starts
    window = tf.slice(volume, window_start, windows)[tf.newaxis, ..., tf.newaxis]
    output = model(window, training=False)[0, ..., 0]
    return tf.slice(output, tile_start - window_start, tiles)

  outputs = tf.map_fn(one_tile, (tile_starts, window_starts), parallel_iterations=1,
                      fn_output_signature=tf.TensorSpec([None, None, None], tf.float32))
  counts = tf.stack([tf.size(p[2]) for p in plans])
  stacked = tf.reshape(outputs, tf.concat([counts, tiles], 0))
  merged = tf.reshape(tf.transpose(stacked, [0, 3, 1, 4, 2, 5]), counts * tiles)
  # voxel i is owned by tile i // tile and sits at i - tile_start inside it
  for axis, (tile_size, _, starts, _) in enumerate(plans):
    voxels = tf.range(shape[axis])
    owner = voxels // tile_size
    merged = tf.gather(merged, owner * tile_size + voxels - tf.gather(starts, owner), axis=axis)
  return merged


LAYOUT_ERROR = "volume must be float32 [D, H, W] or [1, D, H, W, 1] with D, H, W >= 1; got shape"


def serving_function(model, tile=64, margin=3):
  """The exported computation: `volume` -> {"sr": its super-resolution, same shape}."""
  import tensorflow as tf

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
    peak = tf.reduce_max(volume)
    scale = tf.where(peak > 0, peak, tf.ones_like(peak))
    # clipped at 0 as in inference.super_resolve (MR magnitude images are non-negative)
    sr = tf.maximum(tiled_forward(model, volume / scale, tile, margin), 0.0) * scale
    return {"sr": tf.reshape(sr, shape)}

  return serve


def check_export_folder(out_dir) -> str:
  """The absolute export folder; InputError if it exists already or could not be made
  (TF Serving's MODEL/VERSION layout: missing parents are made when the export is written)."""
  out_dir = os.path.abspath(os.fspath(out_dir))
  if os.path.exists(out_dir):
    raise InputError(f"{out_dir}: already exists; choose a new folder (e.g. the next version)")
  ancestor = os.path.dirname(out_dir)
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not (os.path.isdir(ancestor) and os.access(ancestor, os.W_OK | os.X_OK)):
    raise InputError(f"{out_dir}: cannot be made, {ancestor} is not a writable folder")
  return out_dir


def plain_permissions(root):
  """Gives a folder tree the permissions plainly made files and folders get (0666 and 0777
  less the umask): mkdtemp makes its folder 0700, which hides the export from a server
  running as another user, and TensorFlow makes its subfolders 0755 whatever the umask."""
  umask = current_umask()
  for folder, _, files in os.walk(root):
    os.chmod(folder, 0o777 & ~umask)
    for name in files:
      os.chmod(os.path.join(folder, name), 0o666 & ~umask)


def export_saved_model(model, out_dir, tile=64, margin=3):
  """Writes the SavedModel to a temporary folder beside `out_dir`, then renames it."""
  import keras
  import tensorflow as tf

  out_dir = check_export_folder(out_dir)
  os.makedirs(os.path.dirname(out_dir), exist_ok=True)
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("serving_default", serving_function(model, tile, margin),
                       input_signature=[tf.TensorSpec(None, tf.float32, name="volume")])
  temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp",
                               dir=os.path.dirname(out_dir))
  try:
    archive.write_out(temporary, verbose=False)
    plain_permissions(temporary)
    os.rename(temporary, out_dir)
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise
  return out_dir


def main(argv):
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {' '.join(argv[1:])}")
  if not FLAGS.weights or not FLAGS.out:
    raise InputError("give --weights PATH and --out DIR")
  if FLAGS.tile < 1 or FLAGS.margin < 0:
    raise InputError(f"need --tile >= 1 and --margin >= 0, got {FLAGS.tile}, {FLAGS.margin}")
  check_export_folder(FLAGS.out)  # before TensorFlow loads: a quick, quiet refusal
  from mdcsrn_tf import weights

  model = weights.load_generator(FLAGS.weights, FLAGS.model)
  print(export_saved_model(model, FLAGS.out, FLAGS.tile, FLAGS.margin))


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
