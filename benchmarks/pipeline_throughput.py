"""Training-patch throughput of the tf.data pipeline (patches/s) on this machine.

  python benchmarks/pipeline_throughput.py --manifest DATASET/manifest.json

Times the steady state (volumes already decoded, degraded and cached), which is what a
long training run sees; the one-off cost of filling the cache is reported apart.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

import machine  # noqa: E402  (imports mdcsrn_tf before TensorFlow)
from mdcsrn_tf.data import pipeline  # noqa: E402
from mdcsrn_tf.errors import report_input_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("manifest", "demo_out/dataset/manifest.json", "prepared data set")
flags.DEFINE_string("split", "train", "split to draw patches from")
flags.DEFINE_integer("patch_size", 64, "patch edge in voxels")
flags.DEFINE_integer("batch_size", 2, "patches per batch")
flags.DEFINE_integer("batches", 200, "timed batches")
flags.DEFINE_string("out", "benchmarks/results/pipeline_throughput.json", "JSON record")


def measure(manifest, split, patch_size, batch_size, batches) -> dict:
  config = pipeline.PipelineConfig(patch_size=patch_size, batch_size=batch_size)
  volumes = len(pipeline.load_manifest(manifest)[split])
  batches_iterator = iter(pipeline.patch_dataset(manifest, split, config))
  start = time.perf_counter()
  for _ in range(max(volumes * config.patches_per_volume // batch_size, 1) + 1):
    next(batches_iterator)  # one pass over every volume: the cache is full
  warmup = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(batches):
    next(batches_iterator)
  seconds = time.perf_counter() - start
  return {"patch_size": patch_size, "batch_size": batch_size, "volumes": volumes,
          "cache_fill_seconds": warmup, "timed_batches": batches,
          "patches_per_second": batches * batch_size / seconds}


@report_input_errors
def main(argv):
  del argv
  record = measure(FLAGS.manifest, FLAGS.split, FLAGS.patch_size, FLAGS.batch_size, FLAGS.batches)
  print(f"{record['patches_per_second']:.1f} patches/s of {FLAGS.patch_size}^3 "
        f"({record['volumes']} volumes, cache filled in {record['cache_fill_seconds']:.1f} s)")
  machine.write_json(FLAGS.out, {"machine": machine.machine(), **record})


if __name__ == "__main__":
  app.run(main)
