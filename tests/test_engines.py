"""The inference engines (infer/engines.py): OpenVINO and ONNX Runtime on the project's ONNX
graph give the TensorFlow pass's volume on a real head, the compiled models are cached per
weights and window shape, auto follows the measured table, and a missing package is one
error line."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import engines, inference
from mdcsrn_tf.models import build_model

# The promise: every float32 engine within 1e-5 of the output's maximum of the TensorFlow
# pass. The arithmetic behind it: both evaluate the same float32 weights on the same windows
# and differ only in the order of their sums, each rounding at 2^-24 = 6e-8 relative. A
# 3x3x3 convolution over 80 channels sums K = 2160 products, which in blocked order moves
# its output by about sqrt(K) * 6e-8 = 3e-6 of the products' magnitude at worst, and b4u4
# chains about twenty such layers between input and output, whose errors mostly cancel:
# measured on this head the TensorFlow pass is 5.3e-7 of the maximum from the exact
# (float64) result, OpenVINO 1.6e-6 and ONNX Runtime 1.0e-6, and they differ from
# TensorFlow by 1.4e-6 and 1.0e-6. So the bound keeps 7x headroom over the largest
# difference, and each engine must also stay within ENGINE_VS_EXACT times the reference's
# own distance from the exact result: an engine's arithmetic no worse than float32's.
RELATIVE_TOLERANCE = 1e-5
ENGINE_VS_EXACT = 8


@pytest.fixture(scope="module")
def shipped():
  """(the shipped b4u4 L1 generator, its card)."""
  return weights.load_generator(weights.shipped()["l1"])


@pytest.fixture(scope="module")
def head(colin27_crop, tmp_path_factory):
  """A 37x45x29 crop of the real Colin27 head divided by its maximum, as mdcsrn-sr does."""
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  volume = nib.load(colin27_crop(tmp_path_factory.mktemp("engines") / "crop.nii.gz"))
  volume = volume.get_fdata(dtype=np.float32)
  return volume / volume.max()


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
  monkeypatch.delenv("MDCSRN_ENGINE_CACHE", raising=False)  # the suite's own, conftest.py
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path / "data_home"))
  return tmp_path / "data_home" / "engines"


def float64_model(model, name):
  """The same network and weights with every layer in float64: the exact result to
  float32's eyes (built afresh: the shipped one's initialisers are not serialisable)."""
  exact = keras.models.clone_model(
      build_model(name, identity_init=False),
      clone_function=lambda layer: layer.__class__.from_config(
          {**layer.get_config(), "dtype": "float64"}))
  exact.set_weights(model.get_weights())
  return exact


@pytest.mark.parametrize("name", ["openvino", "onnxruntime"])
def test_an_engine_gives_the_tensorflow_pass_on_a_real_head(name, shipped, head):
  model, card = shipped
  engine = engines.prepare(name, model, card.weights_sha256)
  # one window (the whole crop): against the exact result too
  window = head[np.newaxis, ..., np.newaxis]
  reference = inference.super_resolve(model, head, tile=64, progress=False)
  got = inference.super_resolve(model, head, tile=64, progress=False, engine=engine)
  exact = float64_model(model, card.model)(window.astype(np.float64), training=False)
  exact = np.maximum(exact[0, ..., 0], 0)
  peak = float(reference.max())
  reference_error = float(np.max(np.abs(reference - exact))) / peak
  assert 0 < reference_error < 1e-6
  assert float(np.max(np.abs(got - exact))) / peak <= ENGINE_VS_EXACT * reference_error
  assert float(np.max(np.abs(got - reference))) <= RELATIVE_TOLERANCE * peak
  # tiles of 16 with the paper's margin: several windows per axis, the last ones shifted
  tiled = inference.super_resolve(model, head, tile=16, margin=3, batch=2, progress=False)
  got = inference.super_resolve(model, head, tile=16, margin=3, batch=2, progress=False,
                                engine=engine)
  assert float(np.max(np.abs(got - tiled))) <= RELATIVE_TOLERANCE * float(tiled.max())
  # the network changes the head: an engine that passed its input through would fail above
  assert float(np.max(np.abs(tiled - head))) > 100 * RELATIVE_TOLERANCE


def test_compiled_models_are_cached_per_weights_and_window_shape(shipped, head, cache_home):
  model, card = shipped
  window = head[np.newaxis, :20, :24, :16, np.newaxis]
  first = engines.prepare("openvino", model, card.weights_sha256)(window)
  (folder,) = cache_home.iterdir()
  assert folder.name == f"b4u4-{card.weights_sha256}"
  blobs = sorted(p.name for p in folder.iterdir())
  assert blobs[0] == "model.onnx" and len(blobs) == 2
  assert blobs[1].endswith(f"-{engines.isa_kind()}-float32-1x20x24x16x1.blob")
  # another process's engine reads the cached model; a damaged one is compiled again
  blob = folder / blobs[1]
  before = blob.stat().st_mtime_ns
  np.testing.assert_array_equal(engines.prepare("openvino", model, card.weights_sha256)(window),
                                first)
  assert blob.stat().st_mtime_ns == before
  blob.write_bytes(b"not a compiled model")
  np.testing.assert_array_equal(engines.prepare("openvino", model, card.weights_sha256)(window),
                                first)
  # weights without a checksum are keyed by the weights themselves
  other = build_model("b4u4", identity_init=False)
  other.set_weights([w * 0.5 for w in model.get_weights()])
  assert engines.weights_key(other) != engines.weights_key(model)
  assert engines.weights_key(model).startswith("b4u4-")
  assert not [p for p in folder.iterdir() if ".tmp" in p.name]


def test_auto_follows_the_measured_table_for_the_cpu_and_its_cap():
  assert engines.isa_kind({"avx2", "avx512f"}, cap="") == "avx512"
  assert engines.isa_kind({"avx2", "avx512f"}, cap="avx512_core_amx") == "avx512"
  assert engines.isa_kind({"avx2", "avx512f"}, cap="AVX2") == "avx2"
  assert engines.isa_kind({"avx2"}, cap="") == "avx2"
  assert engines.isa_kind({"avx2", "avx512f"}, cap="SSE41") == "other"
  assert engines.check_engine("auto") == engines.FASTEST[engines.isa_kind()]
  assert engines.has_bfloat16({"avx2", "avx512f", "amx_bf16"}, cap="")
  assert not engines.has_bfloat16({"avx2", "avx512f", "amx_bf16"}, cap="AVX2")
  assert not engines.has_bfloat16({"avx2", "avx512f"}, cap="")
  if engines.has_bfloat16():
    assert engines.check_engine("auto", "bfloat16") == "openvino"
  else:
    with pytest.raises(InputError, match="needs a CPU with bfloat16 instructions"):
      engines.check_engine("auto", "bfloat16")
  assert engines.check_engine("tensorflow") == "tensorflow"


def test_a_missing_package_or_a_wrong_choice_is_one_error_line(monkeypatch):
  monkeypatch.setitem(engines.PACKAGES, "openvino", "no_such_openvino_package")
  with pytest.raises(InputError, match="needs the no_such_openvino_package package"):
    engines.check_engine("openvino")
  monkeypatch.setitem(engines.FASTEST, engines.isa_kind(), "openvino")
  assert engines.check_engine("auto") == "tensorflow"  # auto falls back to the reference
  with pytest.raises(InputError, match="runs through --engine openvino"):
    engines.check_engine("onnxruntime", "bfloat16")
  with pytest.raises(InputError, match="--engine must be one of"):
    engines.check_engine("torch")


def test_the_command_names_a_missing_engine_package_in_one_line(tmp_path):
  """mdcsrn-sr as a user runs it, in a Python where OpenVINO's package cannot be found."""
  hide = ("import runpy, sys; from mdcsrn_tf.infer import engines; "
          "engines.PACKAGES['openvino'] = 'no_such_openvino_package'; "
          "sys.argv[0] = 'mdcsrn-sr'; runpy.run_module('mdcsrn_tf.infer', run_name='__main__')")
  result = subprocess.run([sys.executable, "-c", hide, str(tmp_path / "in.nii.gz"),
                           str(tmp_path / "out.nii.gz"), "--engine", "openvino"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MDCSRN_DATA_HOME": str(tmp_path)})
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      "error: --engine openvino needs the no_such_openvino_package package: pip install "
      "no_such_openvino_package, or choose --engine tensorflow"]


def test_evaluation_scores_a_network_run_by_an_engine_as_the_reference_pass(shipped, head):
  from mdcsrn_tf.evaluate import scoring  # pylint: disable=import-outside-toplevel

  model, card = shipped
  runner = engines.prepare("openvino", model, card.weights_sha256)
  by = {name: scoring.evaluate_volume(head, {"m": model}, card.acquisition, tile=16,
                                      engines=chosen)["m"]
        for name, chosen in (("tensorflow", None), ("openvino", {"m": runner}))}
  # outputs within d = RELATIVE_TOLERANCE of the maximum (1) move the RMS error e by at most
  # d, so the PSNR by at most 20 / ln(10) * d / e dB: below 0.01 dB while e > 0.009 (a PSNR
  # below 41 dB, which this crop's is)
  assert by["tensorflow"]["psnr"] < 41
  assert by["openvino"]["psnr"] == pytest.approx(by["tensorflow"]["psnr"], abs=0.01)
