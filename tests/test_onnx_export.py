"""ONNX export: `mdcsrn-export --format onnx` writes the shipped network, and ONNX Runtime and
OpenVINO reproduce the Keras model on an odd-shaped window of a real scan; the baselines'
layers (PReLU, residual Add) export too."""
import json
import subprocess
import sys

import keras
import numpy as np
import onnx
import onnxruntime
import openvino
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.export import onnx_graph
from mdcsrn_tf.models import build_model

# Same windows, same float32 weights: only the order of the additions inside the kernels
# differs between engines. Reordering a sum of K products moves it by about sqrt(K) * 2^-24
# of the products' magnitudes: 1e-5 for b4u4's widest convolution (K = 27 * 80 or 416);
# about thirty such layers in a row stay within 1e-4 of the output's maximum, the bound
# this export promises, 200 times finer than the shipped weights' 0.02 NRMSE.
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def window(colin27_crop, tmp_path_factory):
  """An odd-shaped window of the real Colin27 head, divided by its maximum as mdcsrn-sr
  divides a volume: [1, 37, 45, 29, 1]."""
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  path = colin27_crop(tmp_path_factory.mktemp("onnx") / "crop.nii.gz")
  volume = nib.load(path).get_fdata(dtype=np.float32)
  return (volume / volume.max())[np.newaxis, ..., np.newaxis]


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory):
  """(the shipped L1 generator, its ONNX file written by the command)."""
  base = weights.shipped()["l1"]
  out = tmp_path_factory.mktemp("onnx_export") / "b4u4.onnx"
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.export", "--format=onnx",
                           f"--weights={base}", f"--out={out}"],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == str(out)
  return weights.load_generator(base)[0], out


def assert_close(actual, expected):
  assert actual.shape == expected.shape
  error = float(np.max(np.abs(actual - expected)))
  assert error <= RELATIVE_TOLERANCE * float(np.max(np.abs(expected))), error


def test_onnx_runtime_reproduces_the_shipped_network(shipped_export, window):
  model, path = shipped_export
  session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
  (sr,) = session.run(["sr"], {"lr": window})
  expected = model(window, training=False).numpy()
  assert_close(sr, expected)
  # the network changes the window: a pass-through export would fail the comparison
  assert np.max(np.abs(expected - window)) > 100 * RELATIVE_TOLERANCE


def test_openvino_reproduces_the_shipped_network_in_float32(shipped_export, window):
  model, path = shipped_export
  core = openvino.Core()
  # OpenVINO computes in bfloat16 on CPUs that have it unless asked for float32
  compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                {"INFERENCE_PRECISION_HINT": "f32"})
  sr = compiled({"lr": window})[compiled.output("sr")]
  assert_close(sr, model(window, training=False).numpy())


def test_the_file_records_the_weights_and_takes_any_window_size(shipped_export):
  _, path = shipped_export
  proto = onnx.load(str(path))
  properties = {p.key: p.value for p in proto.metadata_props}
  base = weights.shipped()["l1"]
  assert properties["weights_sha256"] == weights.file_sha256(base + weights.WEIGHTS_SUFFIX)
  assert json.loads(properties["acquisition"]) == weights.read_card(base).acquisition.to_dict()
  dims = [d.dim_param or d.dim_value for d in
          proto.graph.input[0].type.tensor_type.shape.dim]
  assert dims == ["batch", "depth", "height", "width", 1]


@pytest.mark.parametrize("name", ["fsrcnn", "srresnet"])
def test_baselines_export_with_their_prelu_and_residual_layers(name, window):
  keras.utils.set_random_seed(3)
  model = build_model(name)
  small = np.ascontiguousarray(window[:, :13, :18, :11])
  session = onnxruntime.InferenceSession(onnx_graph.onnx_model(model).SerializeToString(),
                                         providers=["CPUExecutionProvider"])
  (sr,) = session.run(["sr"], {"lr": small})
  assert_close(sr, model(small, training=False).numpy())


def test_the_tiling_in_docs_serving_reproduces_mdcsrn_sr(shipped_export, window):
  """docs/serving.md's NumPy tiling around ONNX Runtime gives mdcsrn-sr's volume (tiles of
  16 here, so that there are several per axis, the last ones shifted)."""
  import os  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf.infer import inference  # pylint: disable=import-outside-toplevel

  model, path = shipped_export
  docs = open(os.path.join(os.path.dirname(__file__), "..", "docs", "serving.md"),
              encoding="utf-8").read()
  (code,) = [block for block in re.findall(r"```python\n(.*?)```", docs, re.S)
             if "def super_resolve" in block]
  namespace = {}
  exec(code, namespace)  # pylint: disable=exec-used
  session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
  volume = window[0, ..., 0] * 1000.0  # a scan's intensities, not [0, 1]
  sr = namespace["super_resolve"](volume, lambda w: session.run(["sr"], {"lr": w})[0],
                                  tile=16)
  expected = inference.super_resolve(model, volume / volume.max(), tile=16, margin=3,
                                     progress=False) * volume.max()
  assert_close(sr, expected)


def test_weights_without_a_checksum_export_only_when_the_flag_allows_them(tmp_path):
  """A card from before checksums: refused as by every command, exported with
  --unverified_weights, the same flag as the SavedModel's."""
  from mdcsrn_tf.errors import InputError  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.weights.card import ModelCard  # pylint: disable=import-outside-toplevel

  keras.utils.set_random_seed(4)
  base = weights.save_generator(build_model("fsrcnn"), tmp_path / "old", ModelCard("fsrcnn"))
  card_path = base + weights.CARD_SUFFIX
  card = json.loads(open(card_path, encoding="utf-8").read())
  del card["weights_sha256"]
  with open(card_path, "w", encoding="utf-8") as file:
    json.dump(card, file)
  with pytest.raises(InputError, match="SHA-256"):
    onnx_graph.export_onnx(base, tmp_path / "refused.onnx")
  assert not (tmp_path / "refused.onnx").exists()
  out = onnx_graph.export_onnx(base, tmp_path / "old.onnx", allow_unverified=True)
  properties = {p.key: p.value for p in onnx.load(out).metadata_props}
  assert properties["weights_sha256"] == weights.file_sha256(base + weights.WEIGHTS_SUFFIX)
