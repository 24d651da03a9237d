"""Every benchmark in one go (`make bench`): JSON per benchmark, then the report.

  python benchmarks/run_all.py --out benchmarks/results

Each benchmark runs in its own process, so the peak memory it records is its own. On a
2-core CPU the whole run takes about 10 minutes; nothing else should run meanwhile.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--manifest", default="data/samples/manifest.json",
                      help="prepared data set for the pipeline benchmark (built if missing)")
  args = parser.parse_args(argv)
  if not os.path.exists(args.manifest):
    subprocess.run([sys.executable, "-m", "mdcsrn_tf.data", "--samples",
                    f"--out={os.path.dirname(args.manifest)}"], check=True)
  runs = [["inference.py", f"--out={args.out}/inference.json"],
          ["profile_inference.py", f"--out={args.out}/profile.json"],
          ["training.py", f"--out={args.out}/training.json"],
          ["pipeline_throughput.py", f"--manifest={args.manifest}",
           f"--out={args.out}/pipeline_throughput.json"],
          ["command_startup.py", f"--out={args.out}/command_startup.json"],
          ["onnx_runtimes.py", f"--out={args.out}/onnx_runtimes.json"],
          ["report.py", f"--results={args.out}"]]
  for script, *options in runs:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, script), *options], check=True)


if __name__ == "__main__":
  main()
