"""The training data pipeline at the paper's scale: patches/s, first batch and peak memory
for data sets of 6, 100 and 780 training subjects, with a cold and a warm disk cache, and
the 3-step smoke pre-training on the bundled data set and on a 780/111/111/111 manifest.

  python benchmarks/pipeline_throughput.py --out benchmarks/results/pipeline_throughput.json

HCP cannot be downloaded here, so its size is simulated: the larger manifests list the
bundled MNI152 template (197x233x189, the size class of HCP's 260x311x260) once per
subject, each entry visited once per epoch like a real subject. They share one source file,
hence one cache entry: "cold" is a cache emptied before the run (the first visits pay the
k-space degradation), "warm" the cache that run left. Every measurement runs in a process of
its own, whose peak resident memory (its VmHWM) is its own.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SIZES = (6, 100, 780)
PAPER_SPLIT = {"train": 780, "validation": 111, "evaluation": 111, "test": 111}


def simulated_manifest(folder, source, counts) -> str:
  """A manifest with counts[split] entries per split, all reading `source`."""
  from mdcsrn_tf.data import manifest  # pylint: disable=import-outside-toplevel

  entries = [{"name": f"{split}{index:04d}", "subject": f"{split}{index:04d}", "path": source,
              "split": split} for split, count in counts.items() for index in range(count)]
  manifest.write(folder, entries, f"simulated: {source} x {len(entries)}")
  return os.path.join(folder, "manifest.json")


def run_measured(command) -> dict:
  """Runs `command` in the repository; stdout lines with their times, wall time, peak memory."""
  from mdcsrn_tf import hardware  # pylint: disable=import-outside-toplevel

  result = hardware.run_measuring_memory(command, cwd=REPO)
  if result["returncode"]:
    raise RuntimeError(f"{' '.join(command)} exited {result['returncode']}: "
                       f"{result['stderr'][-2000:]}")
  return result


def measure_stream(manifest_path, cache_dir, batches, patch_size, batch_size, parallel) -> dict:
  """In this process: seconds to the first batch, then patches/s over `batches` batches."""
  from mdcsrn_tf.data import pipeline  # pylint: disable=import-outside-toplevel

  config = pipeline.PipelineConfig(patch_size=patch_size, batch_size=batch_size,
                                   parallel_volumes=parallel, cache_dir=cache_dir)
  stream = pipeline.PatchStream(manifest_path, "train", config)
  iterator = iter(stream.dataset())
  start = time.perf_counter()
  next(iterator)
  first = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  seconds = time.perf_counter() - start
  del iterator  # before the interpreter exits: tf.data's Python threads must finish first
  return {"first_batch_seconds": first, "patches_per_second": batches * batch_size / seconds,
          "subjects": len(stream.entries)}


def stream_rows(work, source, args) -> list:
  rows = []
  for size in SIZES:
    manifest_path = simulated_manifest(os.path.join(work, f"train{size}"), source,
                                       {"train": size})
    cache = os.path.join(work, f"cache{size}")
    for state in ("cold", "warm"):
      if state == "cold":
        shutil.rmtree(cache, ignore_errors=True)
      result = run_measured([sys.executable, os.path.abspath(__file__), "--stream",
                             manifest_path, f"--cache={cache}", f"--batches={args.batches}",
                             f"--patch_size={args.patch_size}", f"--batch_size={args.batch_size}",
                             f"--parallel_volumes={args.parallel_volumes}"])
      row = {**json.loads(result["lines"][-1][1]), "cache": state,
             "peak_rss_mib": result["peak_rss_mib"]}
      rows.append(row)
      print(f"{size:4d} subjects, {state} cache: first batch {row['first_batch_seconds']:.2f} s, "
            f"{row['patches_per_second']:.0f} patches/s of {args.patch_size}^3, "
            f"peak {row['peak_rss_mib']:.0f} MiB", flush=True)
  return rows


def smoke_rows(work, bundled_manifest, source) -> list:
  """The 3-step smoke pre-training, cold cache, on the bundled data set and on 6-entry and
  780/111/111/111 manifests of MNI152: launch to first batch, wall time, peak memory."""
  small = simulated_manifest(os.path.join(work, "small_split"), source,
                             {"train": 4, "validation": 1, "test": 1})
  paper = simulated_manifest(os.path.join(work, "paper_split"), source, PAPER_SPLIT)
  rows = []
  for name, manifest_path in (("bundled data set (6 volumes)", bundled_manifest),
                              ("4/1/0/1 x MNI152", small),
                              ("780/111/111/111 x MNI152", paper)):
    cache = tempfile.mkdtemp(dir=work)
    result = run_measured([sys.executable, "-m", "mdcsrn_tf.train",
                           "--flagfile=flags/smoke_pretrain.cfg", "--steps=3",
                           f"--dataset={manifest_path}", f"--workdir={tempfile.mkdtemp(dir=work)}",
                           f"--cache_dir={cache}"])
    first = next(seconds for seconds, line in result["lines"] if line.startswith("first batch"))
    rows.append({"data_set": name, "launch_to_first_batch_seconds": first,
                 "wall_seconds": result["wall_seconds"], "peak_rss_mib": result["peak_rss_mib"]})
    print(f"smoke pre-training, {name}: first batch {first:.1f} s after launch, done in "
          f"{result['wall_seconds']:.1f} s, peak {result['peak_rss_mib']:.0f} MiB", flush=True)
  return rows


def degradation_rows(work, source) -> list:
  """Seconds to decode, normalise and degrade one volume (what a cold visit pays), for the
  MNI152 template and for it padded to HCP's 260x311x260."""
  import nibabel as nib  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf.acquisition import Acquisition  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import volume_store  # pylint: disable=import-outside-toplevel

  image = nib.load(source)
  volume = image.get_fdata(dtype=np.float32)
  hcp = os.path.join(work, "hcp_sized.nii.gz")
  nib.Nifti1Image(np.pad(volume, [(0, n - m) for n, m in zip((260, 311, 260), volume.shape)]),
                  image.affine).to_filename(hcp)
  rows = []
  for name, path in (("MNI152 197x233x189", source), ("HCP-sized 260x311x260", hcp)):
    for lr_mode in ("linear", "zero_filled"):
      acquisition = Acquisition(placement=lr_mode)
      volume_store.degraded_pair(path, acquisition)  # warm-up: TensorFlow's kernels
      start = time.perf_counter()
      volume_store.degraded_pair(path, acquisition)
      rows.append({"volume": name, "lr_mode": lr_mode, "seconds": time.perf_counter() - start})
      print(f"degrading {name} ({lr_mode}): {rows[-1]['seconds']:.2f} s", flush=True)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results", "pipeline_throughput.json"))
  parser.add_argument("--manifest", default="data/samples/manifest.json",
                      help="the bundled data set (python -m mdcsrn_tf.data --samples)")
  parser.add_argument("--batches", type=int, default=300, help="timed batches per measurement")
  parser.add_argument("--patch_size", type=int, default=64)
  parser.add_argument("--batch_size", type=int, default=2)
  parser.add_argument("--parallel_volumes", type=int, default=4)
  parser.add_argument("--stream", metavar="MANIFEST", help=argparse.SUPPRESS)
  parser.add_argument("--cache", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.stream:  # one measurement, in its own process
    print(json.dumps(measure_stream(args.stream, args.cache, args.batches, args.patch_size,
                                    args.batch_size, args.parallel_volumes)))
    return
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import samples  # pylint: disable=import-outside-toplevel

  source = samples.sample_path("mni152_2009a")
  with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as work:
    degradation = degradation_rows(work, source)
    streams = stream_rows(work, source, args)
    smoke = smoke_rows(work, args.manifest, source)
  machine.write_json(args.out, {"machine": machine.machine(), "source_volume": source,
                                "patch_size": args.patch_size, "batch_size": args.batch_size,
                                "parallel_volumes": args.parallel_volumes,
                                "timed_batches": args.batches, "streams": streams,
                                "cold_visit_degradation": degradation,
                                "smoke_pretraining": smoke})


if __name__ == "__main__":
  main()
