"""SavedModel export: a clean process without mdcsrn_tf reproduces the Keras tiled output."""
import subprocess
import sys
import textwrap

import keras
import numpy as np

from mdcsrn_tf import inference, weights
from mdcsrn_tf.models import build_model

LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    serving = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    for name in sys.argv[2:]:
      volume = np.load(name + ".in.npy")
      np.save(name + ".out.npy", serving(volume=tf.constant(volume))["sr"].numpy())
    assert not [m for m in sys.modules if m.startswith("mdcsrn_tf")]
    """)


def test_saved_model_round_trip_in_a_clean_process(tmp_path):
  keras.utils.set_random_seed(8)
  random_b2u4 = build_model("b2u4", identity_init=False)
  base = weights.save_generator(random_b2u4, tmp_path / "gen", {"model": "b2u4"})
  out = tmp_path / "serving" / "1"
  (tmp_path / "serving").mkdir()
  export = subprocess.run([sys.executable, "-m", "mdcsrn_tf.export", f"--weights={base}",
                           f"--out={out}", "--tile=12", "--margin=3"],
                          capture_output=True, text=True, timeout=300)
  assert export.returncode == 0, export.stderr
  assert (out / "saved_model.pb").exists()
  assert [p.name for p in (tmp_path / "serving").iterdir()] == ["1"]
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
  model = weights.load_generator(base)
  for name, volume in volumes.items():
    served = np.load(tmp_path / f"{name}.out.npy")
    peak = volume.max()
    expected = inference.super_resolve(model, volume / peak, tile=12, margin=3, progress=False)
    assert served.shape == volume.shape
    np.testing.assert_allclose(served / peak, expected, atol=1e-4)


def test_export_refuses_an_existing_folder_in_one_line(tmp_path):
  keras.utils.set_random_seed(10)
  random_b2u4 = build_model("b2u4", identity_init=False)
  base = weights.save_generator(random_b2u4, tmp_path / "gen", {"model": "b2u4"})
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.export", f"--weights={base}",
                           f"--out={tmp_path}"], capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert len(result.stderr.strip().splitlines()) == 1 and "already exists" in result.stderr
