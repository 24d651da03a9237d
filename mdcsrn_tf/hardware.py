"""What a run ran on, for model cards and benchmark records."""
import os
import platform

import mdcsrn_tf  # noqa: F401  (TensorFlow's environment before it loads)
import tensorflow as tf


def cpu_model() -> str:
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  return platform.processor() or platform.machine()


def machine() -> dict:
  """CPU model and cores, GPU names, TensorFlow version and oneDNN setting."""
  gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
          for gpu in tf.config.list_physical_devices("GPU")]
  return {"host": platform.node(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(),
          "gpus": gpus, "tensorflow": tf.__version__,
          "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")}
