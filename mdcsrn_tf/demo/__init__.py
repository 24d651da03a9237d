"""The README's demo: the held-out real brain, degraded in k-space and super-resolved.

1. builds the bundled demo data set from the registry volumes (data/dataset.py);
2. takes its test subject, Colin27 (never trained or tuned on), divides it by its maximum
   and acquires it as the shipped weights' cards say (the paper's k-space truncation,
   docs/paper.md#degradation-lr-generation);
3. scores the baselines (linear, cubic = the paper's bicubic, zero-filled) and the default
   mDCSRN b4u4 weights (L1 and GAN, each from the first shipped set that has it:
   weights.DEFAULTS, named in a line) with evaluate/scoring.py, every figure of the metric
   registry (SSIM, PSNR, NRMSE, sharpness, ...), on the whole volume and inside the brain
   (the data set's mask of Colin27: the skull-stripped ch2bet, voxels > 0): a network can
   gain in the brain and lose on scalp, skull and neck (docs/reproducing.md);
4. writes every volume as NIfTI with Colin27's geometry (colin27_lr is the network input,
   the volume to give `mdcsrn-sr`), a PNG of the same slice for LR (the network input) /
   bicubic / mDCSRN / mDCSRN-GAN / HR over a row of their errors |output - HR| with the
   brain's outline, and the metrics, whole volume and in the brain, as a table, CSV and JSON.
"""
import dataclasses
import os

from mdcsrn_tf import cli, destinations, paper

PANELS = {"LR": "lr", "bicubic": "cubic", "mDCSRN": "mdcsrn", "mDCSRN-GAN": "mdcsrn_gan",
          "HR": "hr"}
MASK_LABEL = "in the brain (ch2bet > 0)"
SHIPPED_METHODS = {"l1": "mdcsrn", "gan": "mdcsrn_gan"}


@dataclasses.dataclass(frozen=True)
class DemoOptions:
  """What `python -m mdcsrn_tf.demo` does.

  Attributes:
    out: the output folder (created; the demo's files in it are replaced).
    crop: keep only a central cube of this edge (0: the whole volume).
    tile: inference tile edge.
    batch: tiles per forward pass.
  """
  out: str = "demo_out"
  crop: int = 0
  tile: int = paper.TILE
  batch: int = 1

  def __post_init__(self):
    cli.require_at_least(self, crop=0, tile=1, batch=1)
    destinations.check_output_folder(self.out, "--out")


def shipped_generators() -> dict:
  """{method name: (model, card)} for the shipped weights that exist."""
  from mdcsrn_tf import weights

  return {SHIPPED_METHODS[kind]: weights.load_generator(path)
          for kind, path in weights.shipped().items()}


def run_demo(options: DemoOptions) -> dict:
  """Runs the demo into options.out; returns {method: metrics}."""
  import numpy as np

  from mdcsrn_tf import weights
  from mdcsrn_tf.data import dataset as datasets, intensity, manifest, nifti
  from mdcsrn_tf.evaluate import figures, results as result_files, scoring, subjects
  from mdcsrn_tf.infer import consistency

  out_dir = options.out
  os.makedirs(out_dir, exist_ok=True)
  dataset_dir = os.path.join(out_dir, "dataset")
  # the demo's own folder, rebuilt each run; a volume without contrast is skipped in a line
  # (intensity.check_contrast), before TensorFlow loads
  datasets.prepare_samples(dataset_dir, replace=True)
  (subject,) = [entry for entry in manifest.split_entries(dataset_dir, "test")
                if entry["name"] == datasets.DEMO_SUBJECT]
  hr, scale, image, starts, brain = subjects.read_subject(subject["path"], options.crop,
                                                          subject["mask"])

  generators = shipped_generators()
  acquisition = weights.common_acquisition(card for _, card in generators.values())
  placement = acquisition.placement
  volumes = {}
  results = scoring.evaluate_volume(
      hr, {**dict.fromkeys(scoring.BASELINES),
           **{method: model for method, (model, _) in generators.items()}},
      acquisition=acquisition, tile=options.tile, batch=options.batch, outputs=volumes, mask=brain,
      keep_band=consistency.bands_kept_by({m: card for m, (_, card) in generators.items()}))
  volumes["hr"], volumes["lr"] = hr, volumes[placement]

  crop_to_volume = np.eye(4)
  crop_to_volume[:3, 3] = starts
  for method, normalised in volumes.items():
    nifti.save_volume(intensity.denormalise(normalised, scale),
                      os.path.join(out_dir, f"colin27_{method}.nii.gz"), image,
                      to_reference=crop_to_volume, inputs=(subject["path"],))
  shown = {(f"LR ({placement.replace('_', '-')})" if method == "lr" else label): method
           for label, method in PANELS.items() if method in volumes}
  figures.comparison_figure(
      {label: acquisition.plane_slice(volumes[method]) for label, method in shown.items()},
      os.path.join(out_dir, "comparison.png"),
      title=f"Colin27 (held out), degraded plane, network input: {placement}",
      errors={label: acquisition.plane_slice(np.abs(volumes[method] - hr))
              for label, method in shown.items() if method != "hr"},
      outline=acquisition.plane_slice(brain))

  from mdcsrn_tf.models import analysis  # Keras: loaded with the generators already

  summary = scoring.summarise({subject["subject"]: results})
  table = scoring.format_table(summary, {
      method: analysis.trainable_parameters(model) for method, (model, _) in generators.items()},
      mask_label=MASK_LABEL)
  print(table)
  if generators:
    print("weights: " + "; ".join(
      f"{method} {weights.shipped_name(card.shipped_set, card.model, card.shipped_as)} (the "
      f"{card.shipped_set} set)" for method, (_, card) in generators.items()))
  missing = [kind for kind, method in (("L1", "mdcsrn"), ("GAN", "mdcsrn_gan"))
             if method not in generators]
  if missing:
    print(f"no shipped {' and '.join(missing)} weights in this install: baselines only")
  result_files.write_results(
      {"subjects": {subject["subject"]: results}, "summary": summary},
      os.path.join(out_dir, "metrics.csv"), os.path.join(out_dir, "metrics.json"),
      card={"crop": options.crop, "acquisition": acquisition.to_dict(), "mask": subject["mask"],
            "weights": {m: dataclasses.asdict(c) for m, (_, c) in generators.items()}})
  print(f"wrote {out_dir}/: colin27_*.nii.gz, comparison.png, metrics.csv, metrics.json")
  return results
