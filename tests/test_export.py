"""SavedModel export: a clean process without mdcsrn_tf, and TF Serving's session-based
loader (saved_model_cli), reproduce the Keras tiled output; the export is readable by
others as the umask allows."""
import os
import stat
import subprocess
import sys
import textwrap

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.infer import inference
from mdcsrn_tf.weights.card import ModelCard
from mdcsrn_tf.models import build_model

LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    serving = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    for name in sys.argv[2:]:
      volume = np.load(name + ".in.npy")
      np.save(name + ".out.npy", serving(volume=tf.constant(volume))["sr"].numpy())
      batched = serving(volume=tf.constant(volume[np.newaxis, ..., np.newaxis]))["sr"].numpy()
      np.save(name + ".batched.npy", batched)
    try:
      serving(volume=tf.constant(volume[np.newaxis]))
    except tf.errors.InvalidArgumentError as error:
      print(error.message)
    assert not [m for m in sys.modules if m.startswith("mdcsrn_tf")]
    """)
UMASK = 0o002  # group-writable, unlike the usual 022: the export must follow it


def export_random_b2u4(root, seed, *flags, umask=0o022):
  """(generator, its SavedModel folder): a random b2u4 exported by the command."""
  keras.utils.set_random_seed(seed)
  base = weights.save_generator(build_model("b2u4", identity_init=False), root / "gen",
                                ModelCard("b2u4"))
  out = root / "serving" / "1"
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.export", f"--weights={base}",
                           f"--out={out}", *flags],
                          capture_output=True, text=True, timeout=300, umask=umask)
  assert result.returncode == 0, result.stderr
  return weights.load_generator(base)[0], out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """(generator, its SavedModel folder), exported by the command under UMASK."""
  return export_random_b2u4(tmp_path_factory.mktemp("export"), 8, "--tile=12", "--margin=3",
                            umask=UMASK)


def test_export_is_one_version_folder_with_the_umasks_permissions(exported):
  _, out = exported
  assert (out / "saved_model.pb").exists()
  assert [p.name for p in out.parent.iterdir()] == ["1"]  # no temporary folder left
  for folder, folders, files in os.walk(out):
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o777 & ~UMASK, folder
    for name in files:
      path = os.path.join(folder, name)
      assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~UMASK, path


def test_saved_model_round_trip_in_a_clean_process(exported, tmp_path):
  model, out = exported
  # odd shapes: several tiles with a shifted last one, and an axis shorter than a window
  rng = np.random.default_rng(9)
  volumes = {"odd": rng.random((20, 26, 17), dtype=np.float32) * 900,
             "thin": rng.random((9, 30, 14), dtype=np.float32) * 3}
  for name, volume in volumes.items():
    np.save(tmp_path / f"{name}.in.npy", volume)
  # a clean interpreter: no conftest, no mdcsrn_tf on the import path
  load = subprocess.run([sys.executable, "-I", "-c", LOADER, str(out),
                         *(str(tmp_path / n) for n in volumes)],
                        capture_output=True, text=True, timeout=300, cwd=tmp_path)
  assert load.returncode == 0, load.stderr
  for name, volume in volumes.items():
    served = np.load(tmp_path / f"{name}.out.npy")
    peak = volume.max()
    expected = inference.super_resolve(model, volume / peak, tile=12, margin=3, progress=False)
    assert served.shape == volume.shape
    np.testing.assert_allclose(served / peak, expected, atol=1e-4)
    # the [1, D, H, W, 1] layout gives the same numbers in that layout
    np.testing.assert_array_equal(np.load(tmp_path / f"{name}.batched.npy"),
                                  served[np.newaxis, ..., np.newaxis])
  # any other layout: a message that says which ones the signature takes
  assert "volume must be float32 [D, H, W] or [1, D, H, W, 1]" in load.stdout
  assert "got shape] [1 9 30 14]" in load.stdout


def test_session_based_loader_reproduces_keras_on_a_real_scan(exported, tmp_path,
                                                              colin27_crop):
  """`saved_model_cli run` loads the SavedModel as TF Serving and the C++/Java APIs do."""
  model, out = exported
  volume = nib.load(colin27_crop(tmp_path / "crop.nii.gz")).get_fdata(dtype=np.float32)
  assert volume.shape == (37, 45, 29)
  np.save(tmp_path / "volume.npy", volume)
  # the saved_model_cli command of TensorFlow's pip package, run as its module
  result = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
                           "run", "--dir", str(out), "--tag_set", "serve", "--signature_def",
                           "serving_default", "--inputs", f"volume={tmp_path / 'volume.npy'}",
                           "--outdir", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  served = np.load(tmp_path / "sr.npy")
  peak = volume.max()
  expected = inference.super_resolve(model, volume / peak, tile=12, margin=3, progress=False)
  # Both run the same windows through the same float32 weights; only the order of the
  # additions inside the kernels may differ (the loaded graph fuses ops, eager Keras does
  # not). Reordering a sum of K products moves it by about sqrt(K) * 2^-24 of the products'
  # magnitudes: 3e-6 for b2u4's widest convolution (K = 27 * 80); ten such layers in a row
  # add up to about 3e-5 on the [0, 1] scale of the normalised volume (measured: below
  # 1e-8). 1e-4 covers that and is 400 times finer than the shipped weights' 0.04 NRMSE, so
  # a wrong tile, margin or normalisation cannot pass.
  np.testing.assert_allclose(served / peak, expected, atol=1e-4)


def test_auto_tiles_are_planned_in_the_graph_as_mdcsrn_sr_plans_them(tmp_path):
  """--tile=auto: the SavedModel plans each volume's tiles from its shape with the same
  budget, so it keeps the same voxels as the Python path's auto_plan (seams included)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  model, out = export_random_b2u4(tmp_path, 10, "--tile=auto", "--memory_limit=8")
  serving = tf.saved_model.load(str(out)).signatures["serving_default"]
  for shape in ((20, 26, 17), (33, 12, 40)):
    volume = np.random.default_rng(11).random(shape, dtype=np.float32) * 50
    edges, _ = inference.auto_plan(model, shape, 3, 8 * 2**20)
    assert edges != shape  # several tiles: the seams must land where the Python path's do
    expected = inference.super_resolve(model, volume / volume.max(), tile=edges, margin=3,
                                       progress=False)
    served = serving(volume=tf.constant(volume))["sr"].numpy()
    # the same windows through the same weights, as in the test above
    np.testing.assert_allclose(served / volume.max(), expected, atol=1e-4)


def test_served_volumes_are_checked_before_any_other_op(exported):
  """mdcsrn-sr's checks in the graph: the layout, finite voxels and a range to map, each a
  message that says what is wrong; a volume with negative voxels is mapped by its range and
  comes back in it."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  model, out = exported
  serving = tf.saved_model.load(str(out)).signatures["serving_default"]
  rng = np.random.default_rng(12)
  one_nan = rng.random((10, 11, 12), dtype=np.float32)
  one_nan[3, 4, 5] = np.nan
  cases = {"volume must be float32 [D, H, W] or [1, D, H, W, 1]": [
               np.ones((5, 6), np.float32), np.ones((0, 5, 5), np.float32),
               np.ones((1, 4, 0, 4, 1), np.float32)],
           "volume has NaN or Inf voxels; count:] [1]": [one_nan],  # Assert prints its data so
           "volume has no positive voxel": [np.zeros((9, 9, 9), np.float32)]}
  for message, volumes in cases.items():
    for volume in volumes:
      with pytest.raises(tf.errors.InvalidArgumentError) as error:
        serving(volume=tf.constant(volume))
      assert message in " ".join(error.value.message.split()), (volume.shape, error.value.message)
  z_scored = rng.standard_normal((20, 26, 17)).astype(np.float32)
  low, spread = z_scored.min(), z_scored.max() - z_scored.min()
  served = serving(volume=tf.constant(z_scored))["sr"].numpy()
  expected = inference.super_resolve(model, (z_scored - low) / spread, tile=12, margin=3,
                                     progress=False)
  np.testing.assert_allclose((served - low) / spread, expected, atol=1e-4)
  assert served.min() < 0  # the input's range kept, not clipped at 0


def test_a_served_output_with_nan_or_inf_voxels_fails_with_their_count():
  """As mdcsrn-sr refuses to write it, the graph refuses to return it: a network dividing
  by its input (0 / 0 = NaN in IEEE arithmetic) has exactly one bad voxel per zero voxel of
  an input whose minimum is 0, which the mapping onto [0, 1] keeps at 0."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.export import saved_model  # pylint: disable=import-outside-toplevel

  windows = keras.Input((None, None, None, 1))
  model = keras.Model(windows, keras.layers.Lambda(lambda x: x / x)(windows))
  serve = tf.function(saved_model.serving_function(model, tile=8, margin=2))
  volume = np.random.default_rng(5).uniform(0.5, 1.0, (20, 17, 13)).astype(np.float32)
  volume[(0, 9, 19), (0, 16, 4), (0, 6, 12)] = 0.0
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    serve(tf.constant(volume))
  assert (f"{saved_model.NOT_FINITE_OUTPUT_ERROR}] [3]"
          in " ".join(error.value.message.split())), error.value.message
  volume[volume == 0] = 0.25
  assert np.all(np.isfinite(serve(tf.constant(volume))["sr"].numpy()))


def test_export_onto_a_full_file_system_is_one_line_and_leaves_nothing(tmp_path):
  """A write that the operating system refuses midway (here the file size limit, EFBIG, as
  ENOSPC does on a full disk): one error line naming the export, no temporary folder."""
  import resource  # pylint: disable=import-outside-toplevel
  import signal  # pylint: disable=import-outside-toplevel

  keras.utils.set_random_seed(8)
  base = weights.save_generator(build_model("b2u4", identity_init=False), tmp_path / "gen",
                                ModelCard("b2u4"))
  size = os.path.getsize(base + weights.WEIGHTS_SUFFIX)

  def small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 4, size // 4))

  out = tmp_path / "serving" / "1"
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.export", f"--weights={base}",
                           f"--out={out}"], capture_output=True, text=True, timeout=300,
                          preexec_fn=small_files)
  assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
  assert result.stderr.startswith("error: ") and str(out) in result.stderr
  assert not list((tmp_path / "serving").iterdir())
