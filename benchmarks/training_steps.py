"""Training steps per second against the machine's FP32 matmul peak, before and after the
training pass (train/training_pass.py), and what mixed_bfloat16 does to speed and loss.

`--phase speed` times the project's own L1 step (networks.step_functions, as train/loop.py
runs it) for each variant in one process: b4u4 on the default recipe's batch (2 of 32^3,
flags/cpu_default/l1.cfg) and on 2 of 64^3, SRResNet on 2 of 32^3, each through the Keras
model ("keras", the step before this work) and through the training pass ("fused"), and
b4u4 in mixed_bfloat16. Rounds are interleaved (every variant once per round), and the
medians of wall and process CPU seconds are reported, with the useful work (3x the
forward pass's operations: the forward pass, the input gradient and the weight gradient)
as a fraction of the matmul peak measured in the same process before and after.

`--phase loss` trains b4u4 in float32 and in mixed_bfloat16 from the same weights on the
same batches of the default recipe's pipeline (data/heads, the warm disk cache), one step
of each per batch, and reports both L1 curves: whether bfloat16 harms the weights.

`--phase pipeline` says what the data costs: seconds per batch of the default recipe's
pipeline, pulled with nothing else running.

Nothing else should run meanwhile (pause a training run: kill -STOP, then -CONT); the
records of docs/performance.md came from, in benchmarks/:

  python training_steps.py --only "b4u4 32^3 keras" "b4u4 32^3 fused" \
      "b4u4 32^3 fused mixed_bfloat16" "b4u4 32^3 keras mixed_bfloat16" "b4u4 64^3 keras" \
      "b4u4 64^3 fused" --rounds 5 --steps_per_round 1 --out results/training_steps_b4u4.json
  python training_steps.py --only "srresnet 32^3 keras" "srresnet 32^3 fused" --rounds 3 \
      --steps_per_round 1 --out results/training_steps_srresnet.json
  ONEDNN_MAX_CPU_ISA=AVX2 python training_steps.py --only "b4u4 32^3 keras" \
      "b4u4 32^3 fused" --rounds 5 --steps_per_round 1 --out results/training_steps_avx2.json
  python training_steps.py --phase loss --loss_steps 200 --dataset ../data/heads/manifest.json \
      --out results/training_loss_bf16.json
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import keras
import numpy as np

import machine
from mdcsrn_tf.models import analysis
from mdcsrn_tf.train import loop, networks, steps
from mdcsrn_tf.train.config import TrainConfig

# (name, model, patch, precision, fused)
VARIANTS = [("b4u4 32^3 keras", "b4u4", 32, "float32", False),
            ("b4u4 32^3 fused", "b4u4", 32, "float32", True),
            ("b4u4 32^3 fused mixed_bfloat16", "b4u4", 32, "mixed_bfloat16", True),
            ("b4u4 32^3 keras mixed_bfloat16", "b4u4", 32, "mixed_bfloat16", False),
            ("srresnet 32^3 keras", "srresnet", 32, "float32", False),
            ("srresnet 32^3 fused", "srresnet", 32, "float32", True),
            ("b4u4 64^3 keras", "b4u4", 64, "float32", False),
            ("b4u4 64^3 fused", "b4u4", 64, "float32", True)]
RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flags",
                      "cpu_default", "l1.cfg")


def recipe_config(**changes) -> TrainConfig:
  """The default weights' L1 recipe (its flagfile's values that matter to a step)."""
  values = dict(dataset="data/heads/manifest.json", workdir=tempfile.mkdtemp(), model="b4u4",
                phase="pretrain", batch_size=2, patch_size=32, placement="zero_filled",
                generator_lr=1.5e-4, min_intensity_scale=0.3, min_foreground=0.5)
  values.update(changes)
  return TrainConfig(**values)


def make_step(model, patch, precision, fused, seed=0):
  config = recipe_config(model=model, patch_size=patch, precision=precision, seed=seed)
  strategy = steps.make_strategy("default")
  keras.utils.set_random_seed(seed)
  built = networks.build_networks(config, strategy)
  return built, networks.step_functions(config, strategy, built, fused=fused)["generator"]


def speed(args) -> dict:
  peak_before = machine.matmul_peak_gflops()
  rng = np.random.default_rng(0)
  timed = []
  for name, model, patch, precision, fused in VARIANTS:
    if args.only and name not in args.only:
      continue
    built, step = make_step(model, patch, precision, fused)
    batch = [rng.uniform(size=(2, patch, patch, patch, 1)).astype(np.float32) for _ in "ab"]
    for _ in range(2):  # the trace, then one more: oneDNN's first-call reorders
      float(step(*batch)["l1"])
    work = 3 * analysis.flops(built.generator, (patch,) * 3) * 2
    timed.append(dict(name=name, model=model, patch=patch, precision=precision, fused=fused,
                      step=step, batch=batch, useful_gflop=work / 1e9, walls=[], cpus=[]))
  print(f"timing {len(timed)} variants", flush=True)
  for round_number in range(args.rounds):  # interleaved: each variant once per round
    for row in timed:
      wall, cpu = time.perf_counter(), time.process_time()
      for _ in range(args.steps_per_round):
        float(row["step"](*row["batch"])["l1"])
      row["walls"].append((time.perf_counter() - wall) / args.steps_per_round)
      row["cpus"].append((time.process_time() - cpu) / args.steps_per_round)
    print(f"round {round_number + 1}: " + ", ".join(
        f"{row['name']} {row['walls'][-1]:.2f} s" for row in timed), flush=True)
  peak = statistics.median([peak_before, machine.matmul_peak_gflops()])
  results = []
  for row in timed:
    wall, cpu = statistics.median(row["walls"]), statistics.median(row["cpus"])
    result = {k: v for k, v in row.items() if k not in ("step", "batch")}
    # On a shared machine the wall clock moves with the neighbours while the CPU time stays:
    # steps per second on all the cores, had they been the step's alone, come from it.
    cores = os.cpu_count()
    result.update(wall_seconds=wall, cpu_seconds=cpu, steps_per_second=1 / wall,
                  useful_gflops=row["useful_gflop"] / wall,
                  fraction_of_peak=row["useful_gflop"] / wall / peak,
                  steps_per_second_of_cpu_time=cores / cpu,
                  fraction_of_peak_of_cpu_time=row["useful_gflop"] * cores / cpu / peak)
    results.append(result)
    print(f"{row['name']:32s} {1 / wall:6.3f} steps/s ({wall:.3f} s wall, {cpu:.3f} s CPU: "
          f"{cores / cpu:.3f} steps/s on {cores} whole cores), {result['useful_gflops']:6.1f} "
          f"GFLOP/s = {result['fraction_of_peak']:.0%} of the {peak:.0f} GFLOP/s peak "
          f"({result['fraction_of_peak_of_cpu_time']:.0%} in CPU time)", flush=True)
  return {"matmul_peak_gflops": peak, "rounds": args.rounds,
          "steps_per_round": args.steps_per_round, "results": results}


def loss(args) -> dict:
  """Both precisions from the same weights on the same batches."""
  from mdcsrn_tf.data import pipeline  # pylint: disable=import-outside-toplevel

  runs = {p: make_step("b4u4", 32, p, True) for p in ("float32", "mixed_bfloat16")}
  runs["mixed_bfloat16"][0].generator.set_weights(runs["float32"][0].generator.get_weights())
  stream = pipeline.PatchStream(args.dataset, "train", loop.pipeline_config(recipe_config(
      dataset=args.dataset), seed=0))
  curves = {p: [] for p in runs}
  for index, (lr, hr) in zip(range(args.loss_steps), stream.dataset()):
    for precision, (_, step) in runs.items():
      curves[precision].append(float(step(lr, hr)["l1"]))
    if (index + 1) % 50 == 0:
      means = {p: np.mean(c[-50:]) for p, c in curves.items()}
      print(f"steps {index - 48}-{index + 1}: mean L1 " + ", ".join(
          f"{p} {m:.6f}" for p, m in means.items()), flush=True)
  f32, bf16 = (np.array(curves[p]) for p in ("float32", "mixed_bfloat16"))
  weights = [(a - b) for a, b in zip(runs["float32"][0].generator.get_weights(),
                                      runs["mixed_bfloat16"][0].generator.get_weights())]
  return {"steps": len(f32), "l1_float32": f32.tolist(), "l1_mixed_bfloat16": bf16.tolist(),
          "last_50_mean_l1": {"float32": float(f32[-50:].mean()),
                              "mixed_bfloat16": float(bf16[-50:].mean())},
          "mean_relative_l1_difference": float(np.mean((bf16 - f32) / f32)),
          "largest_weight_difference": float(max(np.abs(w).max() for w in weights))}


def pipeline_cost(args) -> dict:
  from mdcsrn_tf.data import pipeline  # pylint: disable=import-outside-toplevel

  stream = pipeline.PatchStream(args.dataset, "train", loop.pipeline_config(recipe_config(
      dataset=args.dataset), seed=0))
  batches = iter(stream.dataset())
  for _ in range(10):
    next(batches)
  wall, cpu = time.perf_counter(), time.process_time()
  for _ in range(args.pipeline_batches):
    next(batches)
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  print(f"pipeline: {wall / args.pipeline_batches * 1e3:.1f} ms wall, "
        f"{cpu / args.pipeline_batches * 1e3:.1f} ms CPU per batch of 2 x 32^3")
  return {"batches": args.pipeline_batches, "wall_seconds_per_batch": wall / args.pipeline_batches,
          "cpu_seconds_per_batch": cpu / args.pipeline_batches}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--phase", choices=("speed", "loss", "pipeline"), default="speed")
  parser.add_argument("--out", default="")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--steps_per_round", type=int, default=2)
  parser.add_argument("--only", nargs="*", default=[], help="these variants only (names as VARIANTS)")
  parser.add_argument("--inter_op", type=int, default=0, help="inter-op threads (0: TF's)")
  parser.add_argument("--dataset", default="data/heads/manifest.json")
  parser.add_argument("--loss_steps", type=int, default=300)
  parser.add_argument("--pipeline_batches", type=int, default=200)
  args = parser.parse_args(argv)
  if args.inter_op:
    machine.tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
  record = {"machine": machine.machine(), "phase": args.phase, "recipe": RECIPE,
            "inter_op_threads": args.inter_op or "default",
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native")}
  record.update({"speed": speed, "loss": loss, "pipeline": pipeline_cost}[args.phase](args))
  machine.write_json(args.out or f"benchmarks/results/training_{args.phase}.json", record)


if __name__ == "__main__":
  sys.exit(main())
