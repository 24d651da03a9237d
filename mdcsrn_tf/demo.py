"""The README's demo: the held-out real brain, degraded in k-space and super-resolved.

  python -m mdcsrn_tf.demo --out demo_out [--crop 96]

1. builds the bundled demo dataset from the registry volumes (data/prepare.py);
2. takes its test subject, Colin27 (never trained or tuned on), normalises it and degrades
   it in k-space as the paper does (NOTES.md);
3. scores the baselines (linear = the network input, cubic = the paper's bicubic,
   zero-filled) and the shipped mDCSRN b4u4 weights (L1 and GAN) with evaluate_lib;
4. writes every volume as NIfTI with Colin27's geometry (colin27_lr is the network input,
   the volume to give `mdcsrn-sr`), a PNG of the same slice for LR (the network input) /
   bicubic / mDCSRN / mDCSRN-GAN / HR, and the metrics as a table and JSON.
"""
import os

from absl import app, flags

from mdcsrn_tf.errors import report_input_errors

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "demo_out", "Output folder (created; files in it are replaced).")
flags.DEFINE_integer("crop", 0, "Keep only a central cube of this edge (0: the whole volume).")
flags.DEFINE_integer("tile", 64, "Inference tile edge.")
flags.DEFINE_integer("batch", 1, "Tiles per batch.")

PANELS = {"LR": "lr", "bicubic": "cubic", "mDCSRN": "mdcsrn", "mDCSRN-GAN": "mdcsrn_gan",
          "HR": "hr"}


SHIPPED_METHODS = {"l1": "mdcsrn", "gan": "mdcsrn_gan"}


def shipped_generators() -> dict:
  """{method name: (model, card)} for the shipped weights that exist."""
  from mdcsrn_tf import weights

  return {SHIPPED_METHODS[kind]: (weights.load_generator(path), weights.read_card(path))
          for kind, path in weights.shipped().items()}


def run_demo(out_dir, crop=0, tile=64, batch=1) -> dict:
  """Runs the demo into `out_dir`; returns {method: metrics}."""
  import numpy as np

  from mdcsrn_tf import evaluate_lib, figures, weights
  from mdcsrn_tf.models import analysis
  from mdcsrn_tf.data import dataset as datasets, intensity, manifest, nifti

  os.makedirs(out_dir, exist_ok=True)
  dataset_dir = os.path.join(out_dir, "dataset")
  datasets.prepare_samples(dataset_dir)
  (subject,) = manifest.read(dataset_dir)["test"]
  volume, image = nifti.load_volume(subject["path"])
  volume, starts = evaluate_lib.central_crop(volume, crop)
  hr, scale = intensity.normalise(volume)

  generators = shipped_generators()
  network_input = weights.common_network_input(card for _, card in generators.values())
  volumes = {}
  results = evaluate_lib.evaluate_volume(
      hr, {**dict.fromkeys(evaluate_lib.BASELINES),
           **{method: model for method, (model, _) in generators.items()}},
      network_input=network_input, tile=tile, batch=batch, outputs=volumes)
  volumes["hr"], volumes["lr"] = hr, volumes[network_input]

  crop_to_volume = np.eye(4)
  crop_to_volume[:3, 3] = starts
  for method, normalised in volumes.items():
    nifti.save_volume(intensity.denormalise(normalised, scale),
                      os.path.join(out_dir, f"colin27_{method}.nii.gz"), image,
                      to_reference=crop_to_volume, inputs=(subject["path"],))
  slices = {(f"LR ({network_input.replace('_', '-')})" if method == "lr" else label):
            figures.degraded_plane_slice(volumes[method])
            for label, method in PANELS.items() if method in volumes}
  figures.comparison_figure(
      slices, os.path.join(out_dir, "comparison.png"),
      title=f"Colin27 (held out), degraded plane, network input: {network_input}")

  summary = {method: {metric: {"mean": value, "std": 0.0} for metric, value in scores.items()}
             for method, scores in results.items()}
  table = evaluate_lib.format_table(summary, {
      method: analysis.trainable_parameters(model) for method, (model, _) in generators.items()})
  print(table)
  missing = [kind for kind, method in (("L1", "mdcsrn"), ("GAN", "mdcsrn_gan"))
             if method not in generators]
  if missing:
    print(f"no shipped {' and '.join(missing)} weights in this install: baselines only")
  evaluate_lib.write_results({"subjects": {subject["subject"]: results}, "summary": summary},
                             os.path.join(out_dir, "metrics.csv"),
                             os.path.join(out_dir, "metrics.json"),
                             card={"crop": crop, "network_input": network_input,
                                   "weights": {m: c for m, (_, c) in generators.items()}})
  print(f"wrote {out_dir}/: colin27_*.nii.gz, comparison.png, metrics.csv, metrics.json")
  return results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  run_demo(FLAGS.out, crop=FLAGS.crop, tile=FLAGS.tile, batch=FLAGS.batch)


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
