"""One command for a lent GPU: check, benchmark, train b4u4 for the minutes left, score it.

  python benchmarks/gpu_session.py --out DIR --minutes 35            (everything)
  python benchmarks/gpu_session.py --out DIR --minutes 9 --phase bench
  python benchmarks/gpu_session.py --out DIR --minutes 9 --phase train   (resumes DIR's run)
  python benchmarks/gpu_session.py --out DIR --smoke --dataset MANIFEST  (CI: the CPU, ~1 min)
  python benchmarks/gpu_session.py --pack_dataset FOLDER   (here: a data set that can travel)

Phases (docs/performance.md#a-lent-gpu):
- check: the TensorFlow version, the GPUs it sees and what nvidia-smi says; without a GPU
  the summary says why and the command stops with status 1 (not with --smoke).
- bench: b4u4 over a whole 320x320x256 volume in float32, mixed_float16 and mixed_bfloat16,
  XLA off and on, with tiles planned from the GPU's memory (--tile auto) and the paper's
  64^3 tiles; then the pre-training and GAN steps (batch 2 of 64^3) in the same variants.
  Variants run in order of promise and are skipped, and listed, once the time is up.
- train: flags/pretrain.cfg (linear input, 64^3 patches, batch 2, Adam 1e-4) on the bundled
  data set, for the minutes left: a short calibration run measures the step rate, then the
  run resumes to the step count that rate reaches before the deadline (SIGTERM at the
  deadline stops it cleanly with a checkpoint). The export is scored on the held-out test
  volume (Colin27) beside the shipped weights with the paper's tiling (release's metrics).
DIR ends with summary.json (every figure), session.log, and generator.weights.h5 + .json (the
exported weights and card); the run's workdir and data set live in DIR/work, so that a later
call resumes them.
"""
import argparse
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
machine = session_steps = None  # imported once TensorFlow is known to be there


def pack_dataset(manifest_path, folder):
  """Copies a prepared data set's volumes into FOLDER with a manifest of relative paths, so
  that it travels to a machine that reaches no package registry (the bundled one: 28 MB)."""
  from mdcsrn_tf.data import manifest  # pylint: disable=import-outside-toplevel

  entries = []
  for split, split_entries in manifest.read(manifest_path).items():
    for entry in split_entries:
      name = entry["name"] + ".nii.gz" if entry["path"].endswith(".gz") else entry["name"] + ".nii"
      os.makedirs(folder, exist_ok=True)
      shutil.copyfile(entry["path"], os.path.join(folder, name))
      entries.append({**entry, "path": name, "split": split})
  manifest.write(folder, entries, f"packed from {manifest_path}")
  print(f"packed {len(entries)} volumes into {folder}")


class Session:
  """The summary being written and the log, both under DIR; `deadline` in monotonic time."""

  def __init__(self, out, minutes, mode):
    self.out, self.mode, self.sizes = out, mode, session_steps.SIZES[mode]
    self.deadline = time.monotonic() + 60 * minutes
    os.makedirs(os.path.join(out, "work"), exist_ok=True)
    self.path = os.path.join(out, "summary.json")
    self.summary = {}
    if os.path.exists(self.path):  # a later call of the same session adds its phases
      with open(self.path, encoding="utf-8") as handle:
        self.summary = json.load(handle)
    self.summary.update(mode=mode, minutes=minutes)
    self._log = open(os.path.join(out, "session.log"), "a", encoding="utf-8")

  def log(self, message):
    line = f"{datetime.datetime.now():%H:%M:%S} {message}"
    print(line, flush=True)
    self._log.write(line + "\n")
    self._log.flush()

  def left(self) -> float:
    return self.deadline - time.monotonic()

  def save(self, phase, record):
    self.summary.setdefault("phases", {})[phase] = record
    machine.write_json(self.path, self.summary)


def check(session) -> bool:
  """Whether TensorFlow sees a GPU; the record says what it and nvidia-smi see."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import hardware  # pylint: disable=import-outside-toplevel

  smi = shutil.which("nvidia-smi")
  smi_text = (subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip()
              if smi else "nvidia-smi not found")
  gpus = tf.config.list_physical_devices("GPU")
  record = {"machine": hardware.machine(), "tensorflow_gpus": [g.name for g in gpus],
            "nvidia_smi": smi_text, "cuda_build": tf.test.is_built_with_cuda()}
  if not gpus:
    record["why_no_gpu"] = (
        "TensorFlow sees no GPU: " + ("it is a CPU-only build (tensorflow-cpu); make venv on "
                                      "a machine with nvidia-smi installs tensorflow[and-cuda]"
                                      if not record["cuda_build"] else
                                      f"the CUDA build found none ({smi_text})"))
  session.summary["gpu"] = bool(gpus)
  session.log(f"TensorFlow {tf.__version__}; GPUs: {record['tensorflow_gpus'] or 'none'}; "
              f"nvidia-smi: {smi_text}")
  if not gpus:
    session.log(record["why_no_gpu"])
  session.save("check", record)
  return bool(gpus)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", help="folder for the summary, log and weights")
  parser.add_argument("--minutes", type=float, default=35.0, help="wall time for this call")
  parser.add_argument("--phase", choices=("all", "bench", "train"), default="all")
  parser.add_argument("--smoke", action="store_true",
                      help="tiny shapes and steps on any device: the CI run that keeps it working")
  parser.add_argument("--dataset", default=None,
                      help="manifest of a prepared data set (default: the bundled one, made in "
                           "DIR/work/dataset)")
  parser.add_argument("--pack_dataset", metavar="FOLDER",
                      help="only copy --dataset (default data/samples/manifest.json) into FOLDER")
  args = parser.parse_args(argv)
  if args.pack_dataset:
    return pack_dataset(args.dataset or os.path.join(ROOT, "data", "samples", "manifest.json"),
                        args.pack_dataset)
  if not args.out:
    parser.error("--out is required")
  try:
    import tensorflow  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError as error:  # a machine without the project's environment
    print(f"error: TensorFlow cannot be imported by {sys.executable} ({error}); build the "
          "environment with make venv (tensorflow[and-cuda] where nvidia-smi exists)")
    return 1
  global machine, session_steps  # pylint: disable=global-statement
  import machine  # pylint: disable=import-outside-toplevel,redefined-outer-name
  import session_steps  # pylint: disable=import-outside-toplevel,redefined-outer-name

  session = Session(args.out, args.minutes, "smoke" if args.smoke else "full")
  has_gpu = check(session)
  if not has_gpu and not args.smoke:
    return 1
  if args.phase in ("all", "bench"):
    session_steps.bench(session)
  if args.phase in ("all", "train"):
    session_steps.train_and_score(session, args.dataset)
  session.log(f"done; {max(session.left(), 0) / 60:.1f} of {args.minutes:g} minutes left")
  return 0


if __name__ == "__main__":
  with contextlib.suppress(KeyboardInterrupt):
    sys.exit(main())
