"""The bench and train phases of gpu_session.py (its docstring says what each does)."""
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

import machine
import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN_FLAGS = os.path.join(ROOT, "flags", "pretrain.cfg")
RESERVE_SECONDS = {"full": 150, "smoke": 20}  # for the export, the scoring and the summary
SIZES = {  # volume, the paper plan's tile and batch, training patch, timed repeats, calibration
    # steps, and at most this many steps after them (the smoke run's training is a check)
    "full": dict(volume=(320, 320, 256), tile=64, batch=8, patch=64, repeats=3, calibration=40,
                 most_steps=10**9),
    "smoke": dict(volume=(24, 20, 16), tile=8, batch=2, patch=16, repeats=1, calibration=2,
                  most_steps=2)}

# Most promising first: once the time is up the rest are skipped. XLA on a CPU is 6x slower
# than oneDNN (docs/performance.md), so the smoke run tries it once, on a tiny volume.
INFERENCE_VARIANTS = {
    "full": [("auto", "mixed_float16", True), ("auto", "mixed_float16", False),
             ("auto", "mixed_bfloat16", True), ("auto", "float32", True),
             ("auto", "float32", False), ("paper", "float32", False),
             ("paper", "mixed_float16", True), ("auto", "mixed_bfloat16", False)],
    "smoke": [("auto", "float32", False), ("paper", "float32", False),
              ("auto", "float32", True)]}
STEP_VARIANTS = {"full": [("mixed_float16", True), ("mixed_float16", False), ("float32", True),
                          ("float32", False), ("mixed_bfloat16", True)],
                 "smoke": [("float32", False)]}


def flag_value(path, name) -> int:
  """An integer flag of a flagfile: the paper's step counts live in flags/*.cfg."""
  with open(path, encoding="utf-8") as handle:
    return next(int(line.split("=", 1)[1]) for line in handle
                if line.startswith(f"--{name}="))


def gpu_memory_budget_mib(session) -> int:
  """Half the GPU's memory for one window's activations (the rest: TensorFlow's pool,
  cuDNN's workspaces, the volumes); the CPU default elsewhere."""
  from mdcsrn_tf.infer import inference  # pylint: disable=import-outside-toplevel

  if not session.summary.get("gpu"):
    return inference.DEFAULT_MEMORY_MIB
  total = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,"
                          "nounits"], capture_output=True, text=True).stdout.split()
  return int(total[0]) // 2 if total else inference.DEFAULT_MEMORY_MIB


def bench(session):
  import keras  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import paper  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer import inference, tiling  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.models import analysis, build_model  # pylint: disable=import-outside-toplevel

  sizes, shape = session.sizes, session.sizes["volume"]
  voxels = math.prod(shape)
  volume = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
  budget = gpu_memory_budget_mib(session)
  record = {"volume_shape": shape, "margin": 3, "memory_budget_mib": budget,
            "matmul_peak_gflops": machine.matmul_peak_gflops(),
            "ops_per_voxel": analysis.ops_per_voxel(build_model("b4u4")),
            "paper_seconds": paper.TABLES["b4u4"].seconds, "results": [], "skipped": []}
  for plan, precision, xla in INFERENCE_VARIANTS[session.mode]:
    name = f"{plan} tiles, {precision}, XLA {'on' if xla else 'off'}"
    if session.left() < RESERVE_SECONDS[session.mode] + 60 * (session.mode == "full"):
      record["skipped"].append(name)
      continue
    model = build_model("b4u4", policy=None if precision == "float32" else precision)
    tile, batch = (inference.auto_plan(model, shape, 3, budget * 2**20) if plan == "auto"
                   else (sizes["tile"], sizes["batch"]))
    machine.reset_device_memory_peak()

    def run(model=model, tile=tile, batch=batch, xla=xla):
      return inference.super_resolve(model, volume, tile=tile, margin=paper.MARGIN, batch=batch,
                                     jit_compile=xla, progress=False)

    started = time.perf_counter()
    run()  # traces, and with XLA compiles, for this window shape
    first = time.perf_counter() - started
    seconds, runs = machine.median_seconds(run, sizes["repeats"], warmup=0)
    computed = tiling.computed_voxels(shape, tile, 3)
    row = {"plan": plan, "precision": precision, "xla": xla, "tile": tiling.tile_edges(tile),
           "batch": batch, "seconds": seconds, "runs": runs, "first_run_seconds": first,
           "computed_voxel_ratio": computed / voxels,
           "voxels_per_second": voxels / seconds,
           "useful_gflops": record["ops_per_voxel"] * voxels / seconds / 1e9,
           "peak_device_mib": machine.device_memory_peak_mib()}
    record["results"].append(row)
    session.log(f"inference {name}: {seconds:.3f} s per {shape} volume (first run {first:.1f} "
                f"s), {row['useful_gflops']:.0f} useful GFLOP/s")
    keras.backend.clear_session()
  if record["results"]:  # the moonshot: a whole volume in under a second on an H100
    fastest = min(record["results"], key=lambda r: r["seconds"])
    record["fastest"] = {key: fastest[key] for key in ("plan", "precision", "xla", "seconds")}
    record["fastest"]["under_one_second"] = fastest["seconds"] < 1.0
  session.save("inference", record)
  session.save("training_steps", step_rates(session))


def step_rates(session) -> dict:
  """Pre-training and GAN steps (batch 2 of the patch) in each variant, and the hours the
  paper's step counts take at those rates."""
  pretrain_steps = flag_value(PRETRAIN_FLAGS, "steps")
  gan_steps = flag_value(os.path.join(ROOT, "flags", "gan.cfg"), "steps")
  rules = training.TrainConfig(dataset="", workdir="").critic_schedule
  record = {"patch": session.sizes["patch"], "batch": 2, "paper_pretrain_steps": pretrain_steps,
            "paper_gan_steps": gan_steps, "results": [], "skipped": []}
  repeats = 10 if session.mode == "full" else 2
  for precision, xla in STEP_VARIANTS[session.mode]:
    name = f"{precision}, XLA {'on' if xla else 'off'}"
    if session.left() < RESERVE_SECONDS[session.mode] + 60 * (session.mode == "full"):
      record["skipped"].append(name)
      continue
    pretrain = training.time_steps("pretrain", precision, xla, 2, session.sizes["patch"], "b4u4",
                                   repeats)["generator"]
    gan = training.time_steps("gan", precision, xla, 2, session.sizes["patch"], "b4u4", repeats)
    gan_rate = training.gan_steps_per_second(gan["critic"], gan["generator"], rules)
    row = {"precision": precision, "xla": xla, "l1_step_seconds": pretrain,
           "l1_steps_per_second": 1 / pretrain,
           "pretrain_hours": pretrain_steps * pretrain / 3600,
           "critic_step_seconds": gan["critic"], "generator_gan_step_seconds": gan["generator"],
           "gan_steps_per_second": gan_rate, "gan_hours": gan_steps / gan_rate / 3600}
    record["results"].append(row)
    session.log(f"training {name}: L1 step {pretrain * 1e3:.1f} ms ({row['pretrain_hours']:.1f} "
                f"h for {pretrain_steps} steps), GAN phase {gan_rate:.2f} steps/s")
  if record["results"]:  # the moonshot: the paper's 500k pre-training steps within a day
    fastest = min(record["results"], key=lambda r: r["l1_step_seconds"])
    record["fastest"] = {key: fastest[key] for key in ("precision", "xla", "pretrain_hours")}
    record["fastest"]["pretrain_within_a_day"] = fastest["pretrain_hours"] < 24
  return record


def train_command(dataset, workdir, steps, session):
  smoke = (["--patch_size=16", "--patches_per_volume=2", "--parallel_volumes=1"]
           if session.mode == "smoke" else [])
  return [sys.executable, "-m", "mdcsrn_tf.train", f"--flagfile={PRETRAIN_FLAGS}",
          f"--dataset={dataset}", f"--workdir={workdir}", f"--steps={steps}",
          "--validate_every=0", "--checkpoint_every=250", "--validation_subjects=1",
          f"--cache_dir={os.path.join(session.out, 'work', 'cache')}", *smoke]


def run_training(command, seconds, session) -> float:
  """Runs a training command, SIGTERM after `seconds` (it saves a checkpoint and stops);
  returns its wall time. Its output goes to DIR/work/train.log, its last lines to the log."""
  started = time.monotonic()
  log_path = os.path.join(session.out, "work", "train.log")
  with open(log_path, "a", encoding="utf-8") as log:
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
      process.wait(timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
      session.log("deadline reached: SIGTERM, the run checkpoints and stops")
      process.send_signal(signal.SIGTERM)
      process.wait()
  with open(log_path, encoding="utf-8", errors="replace") as log:
    lines = log.read().replace("\r", "\n").splitlines()
  tail = [line.strip() for line in lines if line.strip() and "%|" not in line][-3:]
  session.log(f"training to {command[6]}: status {process.returncode}; {' | '.join(tail)}")
  if process.returncode not in (0, 128 + signal.SIGTERM):
    raise RuntimeError(f"training failed with status {process.returncode}; see {log_path}")
  return time.monotonic() - started


def train_and_score(session, dataset=None):
  """The paper's pre-training for the minutes left, its export and its held-out scores."""
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.train import run_record  # pylint: disable=import-outside-toplevel

  work = os.path.join(session.out, "work")
  if dataset is None:
    dataset = os.path.join(work, "dataset", "manifest.json")
    if not os.path.exists(dataset):
      subprocess.run([sys.executable, "-m", "mdcsrn_tf.data", "--samples",
                      f"--out={os.path.dirname(dataset)}"], cwd=ROOT, check=True)
  workdir = os.path.join(work, "pretrain")
  reserve = RESERVE_SECONDS[session.mode]
  start = run_record.newest_checkpoint_step(workdir)
  seconds_before = (weights.read_card(weights.exported_generator(workdir)).wall_seconds
                    if start else 0.0)
  wall = run_training(train_command(dataset, workdir, start + session.sizes["calibration"],
                                    session), session.left() - reserve, session)
  reached = run_record.newest_checkpoint_step(workdir)
  card = weights.read_card(weights.exported_generator(workdir))
  # the card's seconds are the loop's own; start-up, validation and export are overhead
  loop_seconds = max(card.wall_seconds - seconds_before, 1e-3)
  rate, overhead = (reached - start) / loop_seconds, max(wall - loop_seconds, 0.0)
  budget = session.left() - reserve - overhead
  target = reached + min(max(int(0.9 * rate * budget), 0), session.sizes["most_steps"])
  if target > reached:
    session.log(f"{rate:.3f} steps/s: training to step {target} in {budget / 60:.1f} minutes")
    run_training(train_command(dataset, workdir, target, session), budget + overhead, session)
    reached = run_record.newest_checkpoint_step(workdir)
    if reached < target:  # stopped at the deadline: export what the checkpoint holds
      run_training(train_command(dataset, workdir, reached, session), session.left(), session)
  card = weights.read_card(weights.exported_generator(workdir))
  session.save("training", {
      "recipe": os.path.relpath(PRETRAIN_FLAGS, ROOT), "precision": card.training["precision"],
      "patch_size": card.training["patch_size"], "batch_size": card.training["batch_size"],
      "started_at_step": start, "calibration_steps_per_second": rate,
      "run_overhead_seconds": overhead, "steps": card.steps, "loop_seconds": card.wall_seconds,
      "validation": card.validation})
  session.save("held_out", score(session, weights.exported_generator(workdir), dataset))


def score(session, exported, dataset) -> dict:
  """The exported and the shipped L1 weights on the data set's held-out test volume with the
  paper's tiling (release.held_out_metrics: the baselines too, whole volume and in the test
  subject's mask), and the exported weights
  and card copied into DIR."""
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.evaluate import subjects  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.release import held_out_metrics  # pylint: disable=import-outside-toplevel

  subject = subjects.manifest_subjects(dataset, "test")[0]  # Colin27, the one with a mask
  name = subject.name
  hr, mask = subject.load()
  shipped = weights.default_weights("l1")
  record = {"volume": name, "shape": list(hr.shape)}
  for label, base in (("trained", exported), ("shipped", shipped)):
    model, card = weights.load_generator(base)
    record[label] = held_out_metrics(model, hr, card, mask=mask)
  trained, ship = record["trained"]["model"], record["shipped"]["model"]
  record["beats_shipped"] = bool(trained["psnr"] > ship["psnr"] and trained["ssim"] >= ship["ssim"])
  session.log(f"held-out {name}: trained PSNR {trained['psnr']:.2f} dB SSIM {trained['ssim']:.4f}; "
              f"shipped {ship['psnr']:.2f} dB {ship['ssim']:.4f}")
  for suffix in (weights.WEIGHTS_SUFFIX, weights.CARD_SUFFIX):
    shutil.copyfile(exported + suffix, os.path.join(session.out, "generator" + suffix))
  return record
