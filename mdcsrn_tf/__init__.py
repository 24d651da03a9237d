"""mdcsrn-tf: mDCSRN-GAN (Chen et al., MICCAI 2018) in TensorFlow 2 / Keras 3.

The package is grouped by stage (docs/architecture.md): data/ -> models/ -> train/ and
infer/ -> evaluate/ -> export/, release/; demo/ runs them all on the bundled volumes.

Importing it loads no TensorFlow (so that every command's --help answers at once); it only
sets TensorFlow's environment for when a module loads it: oneDNN kernels on machines without
a GPU unless the user already chose (on a 2-core CPU they make Conv3D 2.5-3.3x faster,
docs/performance.md), and C++ log level 2 (warnings about the machine, not progress chatter).
"""
import os as _os


def _cuda_device_visible() -> bool:
  if _os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
    return False
  return _os.path.exists("/dev/nvidia0") or _os.path.exists("/proc/driver/nvidia")


if "TF_ENABLE_ONEDNN_OPTS" not in _os.environ and not _cuda_device_visible():
  _os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.2.0"
