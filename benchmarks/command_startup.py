"""How fast every command answers --help, against `import tensorflow`: the commands load
TensorFlow only once their flags are good, so help and flag errors come at once.

  python benchmarks/command_startup.py --out benchmarks/results/command_startup.json

Each figure is the median wall time of `--repeats` fresh processes.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COMMANDS = ("data", "models", "train", "infer", "evaluate", "export", "release", "demo")


def median_seconds(command, repeats) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results", "command_startup.json"))
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel

  tensorflow = median_seconds([sys.executable, "-c", "import tensorflow"], args.repeats)
  print(f"import tensorflow: {tensorflow:.2f} s", flush=True)
  helps = {}
  for name in COMMANDS:
    helps[name] = median_seconds([sys.executable, "-m", f"mdcsrn_tf.{name}", "--help"],
                                 args.repeats)
    print(f"python -m mdcsrn_tf.{name} --help: {helps[name]:.2f} s "
          f"({helps[name] / tensorflow:.0%} of import tensorflow)", flush=True)
  machine.write_json(args.out, {"machine": machine.machine(), "repeats": args.repeats,
                                "import_tensorflow_seconds": tensorflow,
                                "help_seconds": helps,
                                "worst_ratio": max(helps.values()) / tensorflow})


if __name__ == "__main__":
  main()
