"""What every benchmark records: the machine, a median timer, the peak FP32 rate."""
import os
import resource
import statistics
import time

import tensorflow as tf

from mdcsrn_tf import hardware
from mdcsrn_tf.files import json_text, write_text_atomically


def machine() -> dict:
  """CPU model and cores, GPU names, TF version: stored in every JSON."""
  return hardware.machine()


def median_seconds(function, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
  """Median wall time of `function()` over `repeats` runs after `warmup` runs."""
  for _ in range(warmup):
    function()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return statistics.median(times), times


def peak_host_memory_mib() -> float:
  """Peak resident memory of this process so far (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_memory_peak_mib():
  if not tf.config.list_physical_devices("GPU"):
    return None
  return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def reset_device_memory_peak():
  if tf.config.list_physical_devices("GPU"):
    tf.config.experimental.reset_memory_stats("GPU:0")


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
  """FP32 rate of a large square matmul: the processor's practical peak."""
  device = "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
  with tf.device(device):
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    seconds, _ = median_seconds(lambda: matmul().numpy(), repeats)
  return 2 * size**3 / seconds / 1e9


def write_json(path, record: dict):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

  write_text_atomically(path, json_text(record, indent=2))
  print(f"wrote {path}")
