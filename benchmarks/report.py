"""Our time per volume beside the paper's (its Table 1-2 'time' column), as a figure and a
Markdown table for docs/performance.md.

  python benchmarks/report.py --results benchmarks/results
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mdcsrn_tf.data.nifti import write_atomically  # noqa: E402


def load(results, name):
  path = os.path.join(results, f"{name}.json")
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as handle:
    return json.load(handle)


def inference_rows(record):
  """The float32 rows without XLA, one per model (the paper's setting), plus every variant."""
  baseline = {r["model"]: r for r in record["results"] if r["precision"] == "float32" and not r["xla"]}
  return baseline, record["results"]


def markdown(inference, training, pipeline) -> str:
  lines = []
  if inference:
    machine = inference["machine"]
    lines += [f"Machine: {machine['cpu']}, {machine['cpu_cores']} cores"
              + (f", GPU {', '.join(machine['gpus'])}" if machine["gpus"] else ", no GPU")
              + f"; TensorFlow {machine['tensorflow']}; matmul peak "
              f"{inference['matmul_peak_gflops']:.0f} GFLOP/s.", "",
              "| model | precision | XLA | s / 320x320x256 volume | paper (GTX 1080 Ti) | "
              "GFLOP/s | of matmul peak | peak host MiB | extrapolated |",
              "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in inference["results"]:
      lines.append(f"| {r['model']} | {r['precision']} | {'on' if r['xla'] else 'off'} | "
                   f"{r['volume_seconds']:.1f} | {r['paper_seconds']:.2f} | "
                   f"{r['gflops_per_second']:.1f} | {r['fraction_of_matmul_peak']:.0%} | "
                   f"{r['peak_host_mib']:.0f} | {'yes' if r['extrapolated'] else 'no'} |")
    baseline, _ = inference_rows(inference)
    if {"b4u4", "srresnet"} <= set(baseline):
      ratio = baseline["srresnet"]["volume_seconds"] / baseline["b4u4"]["volume_seconds"]
      lines += ["", f"SRResNet : b4u4 time ratio: {ratio:.2f} (paper: "
                f"{132.71 / 20.87:.2f})."]
  if training:
    lines += ["", f"Training, {training['model']}, batch {training['batch']} of "
              f"{training['patch']}^3:", "",
              "| precision | XLA | L1 steps/s | critic step (s) | generator GAN step (s) | "
              "GAN phase steps/s |", "|---|---|---:|---:|---:|---:|"]
    for r in training["results"]:
      lines.append(f"| {r['precision']} | {'on' if r['xla'] else 'off'} | "
                   f"{r['l1_steps_per_second']:.3f} | {r['critic_step_seconds']:.2f} | "
                   f"{r['generator_gan_step_seconds']:.2f} | {r['gan_steps_per_second']:.3f} |")
  if pipeline:
    lines += ["", f"tf.data pipeline: {json.dumps({k: v for k, v in pipeline.items() if k != 'machine'})}"]
  return "\n".join(lines) + "\n"


def figure(inference, path):
  baseline, _ = inference_rows(inference)
  models = list(baseline)
  ours = [baseline[m]["volume_seconds"] for m in models]
  paper = [baseline[m]["paper_seconds"] for m in models]
  axis = plt.subplots(figsize=(7, 3.2))[1]
  positions = range(len(models))
  axis.bar([p - 0.2 for p in positions], paper, 0.4, label="paper, GTX 1080 Ti")
  axis.bar([p + 0.2 for p in positions], ours, 0.4,
           label=f"ours, {inference['machine']['gpus'][0] if inference['machine']['gpus'] else 'CPU'}")
  axis.set_xticks(list(positions), models)
  axis.set_ylabel("seconds per 320x320x256 volume")
  axis.set_yscale("log")
  axis.legend()
  axis.figure.tight_layout()
  write_atomically(path, lambda temporary: axis.figure.savefig(temporary, format="png", dpi=120))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results", default="benchmarks/results")
  args = parser.parse_args(argv)
  inference = load(args.results, "inference")
  text = markdown(inference, load(args.results, "training"), load(args.results, "pipeline_throughput"))
  def write_summary(temporary):
    with open(temporary, "w", encoding="utf-8") as handle:
      handle.write(text)

  write_atomically(os.path.join(args.results, "summary.md"), write_summary)
  print(text)
  if inference:
    figure(inference, os.path.join(args.results, "time_per_volume.png"))


if __name__ == "__main__":
  main()
