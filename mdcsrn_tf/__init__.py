"""mdcsrn-tf: mDCSRN-GAN (Chen et al., MICCAI 2018) in TensorFlow 2 / Keras 3.

Importing the package turns on TensorFlow's oneDNN kernels on machines without a
GPU, unless the user already chose: on a 2-core CPU they make Conv3D 2.5-3.3x faster
(docs/performance.md). This must happen before TensorFlow is imported, so the
package's modules import TensorFlow only after this file has run.

It also imports TensorFlow with the process's stderr silenced: TF 2.21 writes absl's
"All log messages before absl::InitializeLog()" banner and a oneDNN notice straight to
file descriptor 2 while it loads, whatever TF_CPP_MIN_LOG_LEVEL says, and the commands
promise one line on stderr for a bad input. Errors raised by the import still surface.
"""
import os as _os
import sys as _sys


def _cuda_device_visible() -> bool:
  if _os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
    return False
  return _os.path.exists("/dev/nvidia0") or _os.path.exists("/proc/driver/nvidia")


if "TF_ENABLE_ONEDNN_OPTS" not in _os.environ and not _cuda_device_visible():
  _os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
  _sys.stderr.flush()
  saved = _os.dup(2)
  null = _os.open(_os.devnull, _os.O_WRONLY)
  _os.dup2(null, 2)
  try:
    import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  finally:
    _os.dup2(saved, 2)
    _os.close(saved)
    _os.close(null)


if "tensorflow" not in _sys.modules:
  _import_tensorflow_quietly()

__version__ = "0.1.0"
