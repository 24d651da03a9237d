"""Our time per volume beside the paper's (its Table 1-2 'time' column), as a figure and a
Markdown table for docs/performance.md.

  python benchmarks/report.py --results benchmarks/results
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mdcsrn_tf import paper
from mdcsrn_tf.files import write_atomically, write_text_atomically


def load(results, name):
  path = os.path.join(results, f"{name}.json")
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as handle:
    return json.load(handle)


def inference_rows(record):
  """{model: its mdcsrn-sr row (float32, rewritten pass, auto tiles, no XLA)}, every row."""
  baseline = {r["model"]: r for r in record["results"]
              if (r["precision"], r["xla"], r["plan"], r["pass"]) == ("float32", False, "auto",
                                                                     "rewritten")}
  return baseline, record["results"]


def markdown(inference, training, pipeline, profile=None) -> str:
  lines = []
  if inference:
    machine = inference["machine"]
    lines += [f"Machine: {machine['cpu']} ({machine.get('cpu_vectors', '?')}), "
              f"{machine['cpu_cores']} cores"
              + (f", GPU {', '.join(machine['gpus'])}" if machine["gpus"] else ", no GPU")
              + f"; TensorFlow {machine['tensorflow']}; matmul peak "
              f"{inference['matmul_peak_gflops']:.0f} GFLOP/s.", "",
              "GFLOP/s count the useful operations (ops per voxel x output voxels); a plan "
              f"computes 'computes' times as many, for the {inference['margin']}-voxel margins "
              "of its tiles (the computed rate, useful x computes, is the processor's). Tiles: "
              f"paper = 64^3, {inference['paper_batch']} per batch; auto = planned from "
              f"{inference['memory_limit_mib']} MiB of activations (mdcsrn-sr's default). Pass: "
              "keras = the model as it is (before), rewritten = infer/forward.py (after).", "",
              "| model | precision | XLA | tiles | pass | s / 320x320x256 volume (median) | "
              "best run | paper (GTX 1080 Ti) | useful GFLOP/s | of matmul peak | computes | "
              "computed, of peak | peak host MiB |",
              "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in inference["results"]:
      tile = "x".join(map(str, r["tile"])) if len(set(r["tile"])) > 1 else f"{r['tile'][0]}^3"
      lines.append(f"| {r['model']} | {r['precision']} | {'on' if r['xla'] else 'off'} | "
                   f"{r['plan']} ({tile}, {r['batch']}) | {r['pass']} | "
                   f"{r['volume_seconds']:.1f} | {min(r['runs']):.1f} | "
                   f"{r['paper_seconds']:.2f} | {r['gflops_per_second']:.1f} | "
                   f"{r['fraction_of_matmul_peak']:.0%} | {r['computed_voxel_ratio']:.2f}x | "
                   f"{r['fraction_of_matmul_peak'] * r['computed_voxel_ratio']:.0%} | "
                   f"{r['peak_host_mib']:.0f} |")
    baseline, _ = inference_rows(inference)
    if {"b4u4", "srresnet"} <= set(baseline):
      ratio = baseline["srresnet"]["volume_seconds"] / baseline["b4u4"]["volume_seconds"]
      lines += ["", f"SRResNet : b4u4 time ratio: {ratio:.2f} (paper: "
                f"{paper.TABLES['srresnet'].seconds / paper.TABLES['b4u4'].seconds:.2f})."]
  if profile:
    lines += profile_lines(profile)
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
    lines += pipeline_lines(pipeline)
  return "\n".join(lines) + "\n"


def profile_lines(profile) -> list:
  """Where one batch's time goes by kind of operation, per pass."""
  kinds = sorted({k for r in profile["results"] for k in r["op_share"]})
  lines = ["", f"{profile['model']} on {profile['windows'][0]} windows of "
           f"{profile['windows'][1]}^3, share of the operations' time (profiler):", "",
           "| pass | s per batch | computed GFLOP/s | " + " | ".join(kinds) + " |",
           "|---|---:|---:|" + "---:|" * len(kinds)]
  for r in profile["results"]:
    lines.append(f"| {r['pass']} | {r['wall_seconds']:.2f} | {r['computed_gflops']:.0f} | "
                 + " | ".join(f"{r['op_share'].get(k, 0):.0%}" for k in kinds) + " |")
  return lines


def pipeline_lines(pipeline) -> list:
  """The streaming pipeline's throughput and memory, and the smoke pre-training's start."""
  lines = ["", f"Training pipeline, {pipeline['patch_size']}^3 patches, batch "
           f"{pipeline['batch_size']}, {pipeline['parallel_volumes']} volumes in flight:", "",
           "| training subjects | disk cache | first batch (s) | patches/s | peak MiB |",
           "|---:|---|---:|---:|---:|"]
  for r in pipeline["streams"]:
    lines.append(f"| {r['subjects']} | {r['cache']} | {r['first_batch_seconds']:.2f} | "
                 f"{r['patches_per_second']:.0f} | {r['peak_rss_mib']:.0f} |")
  lines += ["", "| volume | network input | decode + degrade (s) |", "|---|---|---:|"]
  lines += [f"| {r['volume']} | {r['lr_mode']} | {r['seconds']:.2f} |"
            for r in pipeline["cold_visit_degradation"]]
  lines += ["", "Smoke pre-training (flags/smoke_pretrain.cfg, 3 steps, cold cache):", "",
            "| data set | launch to first batch (s) | wall (s) | peak MiB |", "|---|---:|---:|---:|"]
  lines += [f"| {r['data_set']} | {r['launch_to_first_batch_seconds']:.1f} | "
            f"{r['wall_seconds']:.1f} | {r['peak_rss_mib']:.0f} |"
            for r in pipeline["smoke_pretraining"]]
  return lines


def device_name(machine) -> str:
  return machine["gpus"][0] if machine["gpus"] else f"{machine['cpu_cores']}-core CPU"


def figure(inference, path):
  baseline, _ = inference_rows(inference)
  models = list(baseline)
  ours = [baseline[m]["volume_seconds"] for m in models]
  paper = [baseline[m]["paper_seconds"] for m in models]
  axis = plt.subplots(figsize=(7, 3.2))[1]
  positions = range(len(models))
  axis.bar([p - 0.2 for p in positions], paper, 0.4, label="paper, GTX 1080 Ti")
  axis.bar([p + 0.2 for p in positions], ours, 0.4,
           label=f"ours, {device_name(inference['machine'])}")
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
  text = markdown(inference, load(args.results, "training"),
                  load(args.results, "pipeline_throughput"), load(args.results, "profile"))
  write_text_atomically(os.path.join(args.results, "summary.md"), text)
  print(text)
  if inference:
    figure(inference, os.path.join(args.results, "time_per_volume.png"))


if __name__ == "__main__":
  main()
