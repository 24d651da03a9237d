"""`python -m mdcsrn_tf.export --weights PATH --out DIR`: a SavedModel for TF Serving.

Its `serving_default` signature takes `volume`, float32 [D, H, W] of any size on the HR
grid, and returns {"sr": float32 [D, H, W]}. Everything the Python path does happens in
the graph: division by the volume's maximum and back, and inference.py's tiling (the same
windows, sliding inside the volume, the same owned output voxels), so the SavedModel
reproduces `mdcsrn-sr` without mdcsrn_tf installed. Tiles run one at a time (a
`tf.map_fn` with no parallel iterations) to keep memory bounded by one window. The export
is written to a temporary folder beside DIR and renamed onto it (docs/serving.md).
"""
import os
import shutil
import tempfile

from absl import app, flags

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


def serving_module(model, tile=64, margin=3):
  """A tf.Module whose `serve` is the exported signature."""
  import tensorflow as tf

  class SuperResolver(tf.Module):

    def __init__(self):
      super().__init__(name="mdcsrn_super_resolver")
      self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32, name="volume")])
    def serve(self, volume):
      peak = tf.reduce_max(volume)
      scale = tf.where(peak > 0, peak, tf.ones_like(peak))
      # clipped at 0 as in inference.super_resolve (MR magnitude images are non-negative)
      return {"sr": tf.maximum(tiled_forward(self.model, volume / scale, tile, margin), 0.0)
                    * scale}

  return SuperResolver()


def check_export_folder(out_dir) -> str:
  """The absolute export folder, its parents created (TF Serving's MODEL/VERSION layout);
  InputError if it exists already or a parent cannot be made."""
  out_dir = os.path.abspath(os.fspath(out_dir))
  if os.path.exists(out_dir):
    raise InputError(f"{out_dir}: already exists; choose a new folder (e.g. the next version)")
  try:
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
  except OSError as error:
    raise InputError(f"{out_dir}: cannot create its parent folder ({error.strerror})") from None
  return out_dir


def export_saved_model(model, out_dir, tile=64, margin=3):
  """Writes the SavedModel to a temporary folder beside `out_dir`, then renames it."""
  import tensorflow as tf

  out_dir = check_export_folder(out_dir)
  parent = os.path.dirname(out_dir)
  module = serving_module(model, tile, margin)
  temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)
  try:
    tf.saved_model.save(module, temporary, signatures={"serving_default": module.serve})
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
