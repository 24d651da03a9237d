"""PATH.onnx: the generator of a weights file written as ONNX (`mdcsrn-export --format onnx`),
with its model, acquisition and weights checksum in the file's metadata. The graph itself is
models/onnx_graph.py's, the converter the inference engines use too (infer/engines.py).
"""
import json
import os

from mdcsrn_tf.errors import InputError
from mdcsrn_tf import destinations
from mdcsrn_tf.files import write_atomically
# the converter's names, read through this module by its callers and tests
from mdcsrn_tf.models.onnx_graph import (  # pylint: disable=unused-import
    INPUT_NAME, OPSET, OUTPUT_NAME, UnsupportedLayer, onnx_model)


def check_onnx_path(path, overwrite=False) -> str:
  """The absolute PATH.onnx to write; InputError for another suffix, a folder there, a file
  or link there without `overwrite` (destinations.refuse_existing), or a folder that is not
  there or not writable."""
  path = os.path.abspath(os.fspath(path))
  if not path.endswith(".onnx"):
    raise InputError(f"{path}: an ONNX export is a PATH.onnx file")
  if os.path.isdir(path) and not os.path.islink(path):
    raise InputError(f"{path}: is a folder; give the ONNX file's name")
  destinations.refuse_existing([path], overwrite, instead="choose a new file")
  folder = os.path.dirname(path)
  if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
    raise InputError(f"{path}: {folder} is not a writable folder")
  return path


def export_onnx(weights_path, out, model_name=None, allow_unverified=False,
                overwrite=False) -> str:
  """Writes the generator of `weights_path` as PATH.onnx (atomically, over a file there
  only with `overwrite`), with its model's name, acquisition (JSON) and weights checksum in
  the file's metadata; `allow_unverified` as weights.load_generator's."""
  out = check_onnx_path(out, overwrite)
  try:
    import onnx
  except ImportError:
    raise InputError("--format onnx needs the onnx package: pip install onnx") from None
  from mdcsrn_tf import weights  # TensorFlow loads only for a file that can be written

  model, card = weights.load_generator(weights_path, model_name, allow_unverified)
  base = weights.base_path(weights_path)
  try:
    proto = onnx_model(model)
  except UnsupportedLayer as error:
    raise InputError(f"{weights_path}: {error}") from None
  metadata = {"model": card.model, "acquisition": json.dumps(card.acquisition.to_dict()),
              "weights_sha256": weights.file_sha256(base + weights.WEIGHTS_SUFFIX)}
  onnx.helper.set_model_props(proto, metadata)
  write_atomically(out, lambda temporary: onnx.save_model(proto, temporary))
  return out
