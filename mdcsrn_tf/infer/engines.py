"""Which engine runs the generator on a window: the one home of that choice
(docs/performance.md#engines).

- `tensorflow`: the project's own pass (infer/inference.py and infer/forward.py), the
  reference every other engine is tested against; `prepare` returns None for it and
  inference.super_resolve runs it as before.
- `openvino` and `onnxruntime`: the network as the project's own ONNX graph
  (models/onnx_graph.py, the converter `mdcsrn-export --format onnx` writes), the plain
  layer-by-layer graph with BatchNormalization unfolded: each engine folds and fuses what
  it can itself (OpenVINO fuses every BN-ELU pair into one kernel of its own).
- `auto`: the engine benchmarks/engines.py measured fastest for this kind of CPU
  (FASTEST), or TensorFlow where that engine's package is missing.

The ONNX graph is cached per weights (the card's SHA-256, else one of the weights in
memory), and OpenVINO's compiled model per window shape, precision, OpenVINO version and
instruction set, under the user's cache folder (cache_dir), written atomically so that
parallel runs never read half a file; a cache that cannot be written is skipped. Compiling
takes OpenVINO about 0.3 s per window shape; converting the Keras model about 1 s.

Every engine computes in float32 unless `precision` is bfloat16 (OpenVINO only, on CPUs
with bfloat16 instructions; the others refuse it): float32 stays the default.
"""
import hashlib
import importlib.util
import io
import os
import sys

import numpy as np

from mdcsrn_tf import hardware
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import write_atomically

ENGINES = ("auto", "tensorflow", "openvino", "onnxruntime")
PRECISIONS = ("float32", "bfloat16")
PACKAGES = {"openvino": "openvino", "onnxruntime": "onnxruntime"}
# auto's engine per kind of CPU: the fastest per 70^3 window (b4u4, the paper's 64^3 tile
# with its margins) in benchmarks/results/engines.json, measured on a 2-core Xeon with
# AVX-512 and AMX, natively and with oneDNN and OpenVINO capped at AVX2. "other" (no AVX2)
# was not measured and keeps the reference.
FASTEST = {"avx512": "openvino", "avx2": "openvino", "other": "tensorflow"}
_OPENVINO_PRECISION = {"float32": "f32", "bfloat16": "bf16"}
# ONEDNN_MAX_CPU_ISA values below AVX2 and below AVX-512 (oneDNN's names, any case)
_BELOW_AVX2 = ("SSE41", "AVX")
_BELOW_AVX512 = _BELOW_AVX2 + ("AVX2", "AVX2_VNNI", "AVX2_VNNI_2")


def isa_kind(flags=None, cap=None) -> str:
  """"avx512", "avx2" or "other": the widest vectors the CPU offers (`flags`, default
  /proc/cpuinfo's) that oneDNN may use under ONEDNN_MAX_CPU_ISA (`cap`, default the
  environment's), which OpenVINO's CPU plugin honours as TensorFlow does."""
  flags = hardware.cpu_flags() if flags is None else set(flags)
  cap = (os.environ.get("ONEDNN_MAX_CPU_ISA", "") if cap is None else cap).upper()
  if "avx512f" in flags and cap not in _BELOW_AVX512:
    return "avx512"
  if "avx2" in flags and cap not in _BELOW_AVX2:
    return "avx2"
  return "other"


def has_bfloat16(flags=None, cap=None) -> bool:
  """Whether the CPU has bfloat16 dot products (AVX512_BF16 or AMX) that oneDNN may use."""
  flags = hardware.cpu_flags() if flags is None else set(flags)
  return isa_kind(flags, cap) == "avx512" and bool({"avx512_bf16", "amx_bf16"} & flags)


def installed(name) -> bool:
  """Whether an engine's package can be found (without importing it)."""
  return name not in PACKAGES or importlib.util.find_spec(PACKAGES[name]) is not None


def check_engine(name, precision="float32", jit_compile=False) -> str:
  """The engine a command will run: `name`, or for auto FASTEST's for this CPU (bfloat16:
  OpenVINO) when its package is installed, else tensorflow (and with `jit_compile`, XLA
  being TensorFlow's). InputError, before anything loads, for an unknown name or precision,
  a missing package, bfloat16 on an engine that has none, or XLA asked of another engine."""
  if name not in ENGINES:
    raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")
  if precision not in PRECISIONS:
    raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
  if jit_compile and name not in ("auto", "tensorflow"):
    raise InputError(f"--jit_compile is TensorFlow's; not with --engine {name}")
  if name == "auto" and jit_compile and precision == "float32":
    name = "tensorflow"
  if name == "auto":
    chosen = "openvino" if precision == "bfloat16" else FASTEST[isa_kind()]
    name = chosen if installed(chosen) or precision == "bfloat16" else "tensorflow"
  if not installed(name):
    raise InputError(f"--engine {name} needs the {PACKAGES[name]} package: "
                     f"pip install {PACKAGES[name]}, or choose --engine tensorflow")
  if precision == "bfloat16" and name != "openvino":
    raise InputError(f"--precision bfloat16 runs through --engine openvino, not {name}")
  if precision == "bfloat16" and not has_bfloat16():
    # OpenVINO would run float32 unasked on such a CPU (and fails to compile where oneDNN
    # is capped below the CPU's bfloat16): say so instead
    raise InputError("--precision bfloat16 needs a CPU with bfloat16 instructions "
                     "(AVX512_BF16 or AMX) that oneDNN may use; this one computes float32")
  return name


def cache_dir() -> str:
  """$MDCSRN_ENGINE_CACHE, else $MDCSRN_DATA_HOME/engines, else ~/.cache/mdcsrn_tf/engines."""
  data_home = os.environ.get("MDCSRN_DATA_HOME") or os.path.expanduser("~/.cache/mdcsrn_tf")
  return os.environ.get("MDCSRN_ENGINE_CACHE") or os.path.join(data_home, "engines")


def weights_key(model, weights_sha256="") -> str:
  """The cache's name for a model's weights: its model name and the card's SHA-256 of the
  weights file, or, for weights without one, the SHA-256 of the weights in memory."""
  if not weights_sha256:
    digest = hashlib.sha256()
    for array in model.get_weights():
      digest.update(np.ascontiguousarray(array).tobytes())
    weights_sha256 = digest.hexdigest()
  return f"{model.name}-{weights_sha256.lower()}"


def _cached(path, make) -> bytes:
  """The bytes at `path`, or `make()`'s, written there atomically; a cache that cannot be
  read or written is passed over (the bytes are made again next time)."""
  try:
    with open(path, "rb") as file:
      return file.read()
  except OSError:
    pass
  data = make()
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, lambda temporary: open(temporary, "wb").write(data))
  except OSError as error:
    print(f"warning: engine cache not written ({error.strerror}); it is made again next run",
          file=sys.stderr)
  return data


class OnnxEngine:
  """The network as ONNX in OpenVINO or ONNX Runtime: `engine(windows)` maps float32
  [N, D, H, W, 1] windows to their output, as the Keras model does."""

  def __init__(self, name, model, weights_sha256="", precision="float32"):
    from mdcsrn_tf.models import onnx_graph

    self.name, self.precision = name, precision
    self._folder = os.path.join(cache_dir(), weights_key(model, weights_sha256))
    self._onnx = _cached(os.path.join(self._folder, "model.onnx"),
                         lambda: onnx_graph.onnx_model(model).SerializeToString())
    self._input, self._output = onnx_graph.INPUT_NAME, onnx_graph.OUTPUT_NAME
    self._compiled = {}
    try:
      if name == "openvino":
        import openvino
        self._module = openvino
        self._core = openvino.Core()
      else:
        import onnxruntime
        self._module = onnxruntime
        self._session = onnxruntime.InferenceSession(self._onnx,
                                                     providers=["CPUExecutionProvider"])
    except ImportError as error:
      raise InputError(f"--engine {name}: its package does not load ({error})") from None

  def _openvino_model(self, shape):
    """OpenVINO's model compiled for one window shape: read from the cache, else compiled
    (with static shapes, which its kernels plan for) and cached."""
    if shape not in self._compiled:
      config = {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[self.precision]}
      name = "openvino-{}-{}-{}-{}.blob".format(
          self._module.__version__.split("-")[0], isa_kind(), self.precision,
          "x".join(map(str, shape)))

      def compile_model():
        graph = self._core.read_model(self._onnx, b"")
        graph.reshape({self._input: list(shape)})
        return self._core.compile_model(graph, "CPU", config).export_model().getvalue()

      blob = _cached(os.path.join(self._folder, name), compile_model)
      try:
        self._compiled[shape] = self._core.import_model(io.BytesIO(blob), "CPU", config)
      except RuntimeError:  # a blob another OpenVINO build wrote: compile afresh
        self._compiled[shape] = self._core.import_model(io.BytesIO(compile_model()), "CPU",
                                                        config)
    return self._compiled[shape]

  def precision_used(self, shape) -> str:
    """The precision the engine computes in for windows of `shape` (OpenVINO runs bfloat16
    as float32 on a CPU without bfloat16 instructions)."""
    if self.name != "openvino":
      return "float32"
    used = self._openvino_model(tuple(shape)).get_property("INFERENCE_PRECISION_HINT")
    used = used.to_string() if hasattr(used, "to_string") else str(used)  # an openvino.Type
    return {"f32": "float32", "bf16": "bfloat16"}.get(used, used)

  def __call__(self, windows):
    windows = np.ascontiguousarray(windows, np.float32)
    if self.name == "openvino":
      compiled = self._openvino_model(windows.shape)
      return compiled({self._input: windows})[compiled.output(self._output)]
    return self._session.run([self._output], {self._input: windows})[0]


def prepare(name, model, weights_sha256="", precision="float32", jit_compile=False):
  """The engine for inference.super_resolve's `engine`: None for the TensorFlow pass (the
  reference), else an OnnxEngine; `name` may be auto (check_engine), which on a machine
  where TensorFlow sees a GPU is TensorFlow's pass."""
  if name == "auto" and precision == "float32":
    import tensorflow as tf  # loaded with the model already

    if tf.config.list_physical_devices("GPU"):
      name = "tensorflow"
  name = check_engine(name, precision, jit_compile)
  if name == "tensorflow":
    return None
  return OnnxEngine(name, model, weights_sha256, precision)
