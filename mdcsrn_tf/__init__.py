"""mdcsrn-tf: mDCSRN-GAN (Chen et al., MICCAI 2018) in TensorFlow 2 / Keras 3.

Importing the package turns on TensorFlow's oneDNN kernels on machines without a
GPU, unless the user already chose: on a 2-core CPU they make Conv3D 2.5-3.3x faster
(docs/performance.md). This must happen before TensorFlow is imported, so the
package's modules import TensorFlow only after this file has run.
"""
import os as _os


def _cuda_device_visible() -> bool:
  if _os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
    return False
  return _os.path.exists("/dev/nvidia0") or _os.path.exists("/proc/driver/nvidia")


if "TF_ENABLE_ONEDNN_OPTS" not in _os.environ and not _cuda_device_visible():
  _os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
