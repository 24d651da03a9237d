"""Which L1 recipe learns fastest per CPU hour: validation PSNR gain over the network's own
input against the CPU time training spent, for b4u4 (docs/training.md#the-recipe-search).

Every recipe trains in its own workdir (`--work`, default runs/recipe_search/RECIPE) with a
constant learning rate, so that a run can be cut anywhere and continued: a round gives each
recipe `--piece` more seconds of CPU (user + system time of the training process, all its
threads; a shared machine slows the clock, not this count), then stops it with SIGTERM,
which saves a checkpoint, and scores that checkpoint on the first validation volume of the
data set with `train --steps=<the step reached>` (the trainer's own end-of-run validation
and export, whose CPU is not counted). Rounds go recipe by recipe, so a cut search still
compares every recipe at equal CPU; a rerun skips what `--out` already holds and resumes
the workdirs, so the search runs in pieces over several sessions.

  python benchmarks/recipe_search.py --rounds 3 --piece 300 \\
      --out benchmarks/results/recipe_search.json

The winner's workdir is where the long default run continues (docs/training.md).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

import machine
from mdcsrn_tf import acquisition, metrics
from mdcsrn_tf.data import manifest, pipeline
from mdcsrn_tf.files import json_text, write_text_atomically

HEADS = "data/heads/manifest.json"
TABLES = "data/samples/manifest.json"
# What every recipe shares: the shipped weights' network, acquisition and validation.
COMMON = ["--model=b4u4", "--placement=zero_filled", "--lr_decay=constant",
          "--checkpoint_every=25", "--keep_checkpoints=2", "--validate_every=0",
          "--validation_subjects=1", "--summary_every=25"]
BASE = {"dataset": HEADS, "batch_size": 2, "patch_size": 32, "generator_lr": 1.5e-4,
        "min_foreground": 0.5}
# One change from BASE each (the tables' recipe without its cosine), except the old data,
# which trains on the tables' volumes and validates on the whole heads' volume.
RECIPES = {
    "base": {},
    "lr_5e-4": {"generator_lr": 5e-4},
    "lr_1e-3": {"generator_lr": 1e-3},
    "patch_64_batch_1": {"patch_size": 64, "batch_size": 1, "generator_lr": 5e-4},
    "head_0.9": {"min_foreground": 0.9, "generator_lr": 5e-4},
    "anywhere": {"min_foreground": 0.0, "generator_lr": 5e-4},
    "old_data": {"dataset": "OLD", "generator_lr": 5e-4},
    # added after the first two rounds: every recipe lost PSNR on the validation head, one
    # person's scan darker after its normalisation than the averages training sees
    "darker_0.3": {"min_intensity_scale": 0.3},
    "darker_0.3_head_0.9": {"min_intensity_scale": 0.3, "min_foreground": 0.9},
    # then: scanner noise, which one person's scan has and the averages do not
    "darker_0.3_noisy_0.02": {"min_intensity_scale": 0.3, "noise_sigma": 0.02},
}
NEVER = 10**7  # --steps of a piece: it ends by signal, never by count


def old_data_manifest(folder) -> str:
  """The tables' training volumes with the whole heads' validation and test volumes."""
  path = os.path.join(folder, "manifest.json")
  if not os.path.exists(path):
    entries = (manifest.split_entries(TABLES, "train")
               + manifest.split_entries(HEADS, "validation") + manifest.split_entries(HEADS, "test"))
    manifest.write(folder, entries, "benchmarks/recipe_search.py (old data)", replace=False)
  return path


def recipe_flags(name, work) -> list:
  settings = {**BASE, **RECIPES[name]}
  if settings["dataset"] == "OLD":
    settings["dataset"] = old_data_manifest(os.path.join(work, "old_data_set"))
  return COMMON + [f"--{key}={value}" for key, value in settings.items()] + [
      f"--workdir={os.path.join(work, name)}"]


def cpu_seconds(pid) -> float:
  """User + system CPU of a running process, all its threads (/proc/PID/stat)."""
  with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
    fields = stat.read().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train_piece(flags, budget, log) -> float:
  """Trains until the process has used `budget` CPU seconds, then SIGTERM (a checkpoint is
  saved); returns the CPU seconds it used."""
  with open(log, "a", encoding="utf-8") as out:
    process = subprocess.Popen([sys.executable, "-m", "mdcsrn_tf.train", *flags,
                                f"--steps={NEVER}"], stdout=out, stderr=subprocess.STDOUT)
    used = 0.0
    while process.poll() is None and used < budget:
      time.sleep(2)
      try:
        used = cpu_seconds(process.pid)
      except OSError:  # it ended between the poll and the read
        break
    if process.poll() is None:
      process.send_signal(signal.SIGTERM)
    process.wait()
  return used


def score(flags, workdir, log) -> dict:
  """The checkpoint reached, validated and exported by the trainer itself."""
  from mdcsrn_tf.train import run_record  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel

  step = run_record.newest_checkpoint_step(workdir)
  with open(log, "a", encoding="utf-8") as out:
    subprocess.run([sys.executable, "-m", "mdcsrn_tf.train", *flags, f"--steps={step}"],
                   stdout=out, stderr=subprocess.STDOUT, check=True)
  card = weights.read_card(weights.exported_generator(workdir) + ".json")
  return {"step": step, **card.validation}


def input_figures(dataset) -> dict:
  """The network input's figures on the first validation volume: the mark a gain is over."""
  placement = acquisition.from_flags(placement="zero_filled")
  config = pipeline.PipelineConfig(acquisition=placement)
  _, lr, hr = next(pipeline.volume_pairs(dataset, "validation", config, limit=1))
  return metrics.quality(hr, lr, placement)


def plot(rows, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  figure, axes = plt.subplots(figsize=(7, 4.5))
  for name in RECIPES:
    points = sorted((row["cpu_seconds"] / 3600, row["gain_db"]) for row in rows
                    if row["recipe"] == name)
    if points:
      axes.plot(*zip(*points), marker="o", label=name)
  axes.axhline(0, color="gray", linewidth=0.8)
  axes.set_xlabel("training CPU time (hours, all threads)")
  axes.set_ylabel("validation PSNR gain over the input (dB)")
  axes.set_title("b4u4 L1 recipes, ROBEX head (validation)")
  axes.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=90)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/recipe_search.json")
  parser.add_argument("--work", default="runs/recipe_search")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--piece", type=float, default=300.0, help="CPU seconds per round")
  parser.add_argument("--recipes", default=",".join(RECIPES))
  args = parser.parse_args()
  result = (json.load(open(args.out, encoding="utf-8")) if os.path.exists(args.out)
            else {"machine": machine.machine(), "piece_cpu_seconds": args.piece, "rows": []})
  marks = result.setdefault("input", input_figures(HEADS))
  os.makedirs(args.work, exist_ok=True)
  for round_number in range(1, args.rounds + 1):
    for name in args.recipes.split(","):
      if any(row["recipe"] == name and row["round"] == round_number for row in result["rows"]):
        continue
      flags, workdir = recipe_flags(name, args.work), os.path.join(args.work, name)
      log = os.path.join(args.work, f"{name}.log")
      before = max((row["cpu_seconds"] for row in result["rows"] if row["recipe"] == name),
                   default=0.0)
      used = train_piece(flags, args.piece, log)
      figures = score(flags, workdir, log)
      row = {"recipe": name, "round": round_number, "cpu_seconds": round(before + used, 1),
             **figures, "gain_db": round(figures["psnr"] - marks["psnr"], 4)}
      result["rows"].append(row)
      print(f"{name} round {round_number}: step {row['step']}, CPU {row['cpu_seconds']:.0f} s, "
            f"PSNR {row['psnr']:.3f} dB, gain {row['gain_db']:+.3f} dB", flush=True)
      write_text_atomically(args.out, json_text(result))
      plot(result["rows"], os.path.splitext(args.out)[0] + ".png")


if __name__ == "__main__":
  main()
