"""Training speed: steps per second of L1 pre-training and of the GAN phase.

Times the project's own distributed step functions (train/loop.py) on random patches of the
paper's batch (2 of 64^3). The GAN phase's rate, in global steps
per second as the paper counts its 550k steps, is the schedule's mix after the warm-up
(7 critic steps per generator step plus the extra critic steps, train/schedule.py), computed
from the two measured step times.

  python benchmarks/training.py --out benchmarks/results/training.json
"""
import argparse
import sys
import tempfile

import numpy as np

import machine
from mdcsrn_tf.train import networks, schedule, steps
from mdcsrn_tf.train.config import TrainConfig


def time_steps(phase, precision, jit_compile, batch, patch, model, repeats):
  config = TrainConfig(dataset="", workdir=tempfile.mkdtemp(), model=model, phase=phase,
                       batch_size=batch, patch_size=patch, precision=precision,
                       jit_compile=jit_compile)
  strategy = steps.make_strategy("default")
  built = networks.build_networks(config, strategy)
  step_of = networks.step_functions(config, strategy, built)
  rng = np.random.default_rng(0)
  lr, hr = (rng.uniform(size=(batch, patch, patch, patch, 1)).astype(np.float32) for _ in "ab")
  seconds = {}
  for name, step in step_of.items():
    seconds[name], _ = machine.median_seconds(
        lambda step=step: {k: v.numpy() for k, v in step(lr, hr).items()}, repeats)
  return seconds


def gan_steps_per_second(critic_seconds, generator_seconds, rules, window=7_000):
  """Global steps per second of the GAN phase after its warm-up, with the schedule's mix of
  critic and generator steps counted over `window` steps (a whole number of its cycles)."""
  after = schedule.count_steps(rules.warmup_steps + window, rules)
  before = schedule.count_steps(rules.warmup_steps, rules)
  seconds = ((after[schedule.CRITIC] - before[schedule.CRITIC]) * critic_seconds
             + (after[schedule.GENERATOR] - before[schedule.GENERATOR]) * generator_seconds)
  return window / seconds


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/results/training.json")
  parser.add_argument("--model", default="b4u4")
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--patch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  on_gpu = bool(machine.tf.config.list_physical_devices("GPU"))
  variants = ([("float32", False), ("mixed_float16", False), ("mixed_float16", True),
               ("mixed_bfloat16", False)] if on_gpu else [("float32", False)])
  rules = TrainConfig(dataset="", workdir="").critic_schedule
  results = []
  for precision, jit_compile in variants:
    pretrain = time_steps("pretrain", precision, jit_compile, args.batch, args.patch,
                          args.model, args.repeats)
    gan = time_steps("gan", precision, jit_compile, args.batch, args.patch, args.model,
                     args.repeats)
    row = {"precision": precision, "xla": jit_compile,
           "l1_step_seconds": pretrain["generator"],
           "l1_steps_per_second": 1.0 / pretrain["generator"],
           "critic_step_seconds": gan[schedule.CRITIC],
           "generator_gan_step_seconds": gan[schedule.GENERATOR],
           "gan_steps_per_second": gan_steps_per_second(
               gan[schedule.CRITIC], gan[schedule.GENERATOR], rules),
           "peak_host_mib": machine.peak_host_memory_mib(),
           "peak_device_mib": machine.device_memory_peak_mib()}
    results.append(row)
    print(f"{precision:15s} xla={jit_compile!s:5s} L1 {row['l1_steps_per_second']:.3f} steps/s; "
          f"critic step {row['critic_step_seconds']:.2f} s, generator GAN step "
          f"{row['generator_gan_step_seconds']:.2f} s, "
          f"GAN phase {row['gan_steps_per_second']:.3f} steps/s", flush=True)
  machine.write_json(args.out, {"machine": machine.machine(), "model": args.model,
                                "batch": args.batch, "patch": args.patch, "results": results})


if __name__ == "__main__":
  sys.exit(main())
