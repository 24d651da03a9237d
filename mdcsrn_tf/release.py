"""Ships a trained generator with the package: held-out metrics into its model card.

  python -m mdcsrn_tf.release --workdir=runs/release_l1 --kind=l1
  python -m mdcsrn_tf.release --workdir=runs/release_gan --kind=gan

Reads WORKDIR/export/generator (written by `python -m mdcsrn_tf.train`), scores it with
evaluate_lib on the data set's test subject (Colin27, never trained or tuned on) against
the baselines, whole volume and a fixed central crop (the crop is what the test suite
re-measures), and writes mdcsrn_tf/weights/b4u4_{kind}.weights.h5 with its card. Weights
below the project's bar (issue 7: PSNR at least 1 dB and SSIM above the bicubic baseline;
GAN weights within 1 dB PSNR of the shipped L1 weights) get a `warning` in the card, which
`mdcsrn-sr` prints whenever it uses them.
"""
import os

from absl import app, flags

from mdcsrn_tf import evaluate_lib, weights
from mdcsrn_tf.data import intensity, nifti
from mdcsrn_tf.data import manifest as manifests
from mdcsrn_tf.errors import InputError, report_input_errors

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "training workdir whose export/generator is shipped")
flags.DEFINE_enum("kind", "l1", sorted(weights.SHIPPED), "which shipped weights these are")
flags.DEFINE_integer("check_crop", 64,
                     "edge of the central crop whose metrics the tests re-measure")
flags.DEFINE_integer("batch", 1, "tiles per batch")

CHECK_TILE, CHECK_MARGIN = 64, 3


def held_out_metrics(model, hr, network_input, batch=1):
  """{method: metrics} of the model and the baselines on one normalised HR volume."""
  return evaluate_lib.evaluate_volume(
      hr, {"linear": None, "cubic": None, "zero_filled": None, "model": model},
      network_input=network_input, tile=CHECK_TILE, margin=CHECK_MARGIN, batch=batch)


def _flag(card, name):
  """The value of --name in the card's resolved flags, or "?"."""
  prefix = f"--{name}="
  return next((f[len(prefix):] for f in card.get("flags", []) if f.startswith(prefix)), "?")


def release(workdir, kind, check_crop=64, batch=1) -> str:
  exported = os.path.join(workdir, "export", "generator")
  card = weights.read_card(exported)
  model = weights.load_generator(exported)
  manifest = card.get("dataset")
  if not manifest:
    raise InputError(f"{exported}: the model card names no data set")
  test = manifests.read(manifest)["test"]
  if len(test) != 1:
    raise InputError(f"{manifest}: expected one held-out test subject, found {len(test)}")
  volume, _ = nifti.load_volume(test[0]["path"])
  hr = intensity.normalise(volume)[0]
  network_input = weights.network_input(card)
  whole = held_out_metrics(model, hr, network_input, batch)
  crop, starts = evaluate_lib.central_crop(hr, check_crop)
  card.update({
      "held_out": {"subject": test[0]["subject"], "volume": test[0]["name"],
                   "normalisation": "divided by the whole volume's maximum",
                   "tile": CHECK_TILE, "margin": CHECK_MARGIN, "whole_volume": whole,
                   "check_crop": {"start": starts, "edge": check_crop,
                                  "metrics": held_out_metrics(model, crop, network_input, batch)}},
      "lr_mode": network_input, "shipped_as": kind})
  on_gpu = bool(card.get("machine", {}).get("gpus"))
  if not on_gpu:
    card["note"] = (
        f"trained on CPU only: {_flag(card, 'patch_size')}^3 patches, batch "
        f"{_flag(card, 'batch_size')}, {card.get('steps')} steps, where the paper trains 64^3 "
        "patches, batch 2, for 500k (L1) and 550k (GAN) steps on a GPU; a session with a GPU "
        "replaces these weights (docs/reproducing.md)")
  l1_psnr = None
  shipped_l1 = weights.shipped().get("l1")
  if kind != "l1" and shipped_l1:
    l1_psnr = weights.read_card(shipped_l1)["held_out"]["whole_volume"]["model"]["psnr"]
  shortfalls = weights.quality_shortfalls(whole, l1_psnr)
  if shortfalls:
    card["warning"] = (
        f"preliminary {card.get('model', 'generator')} weights ({card.get('steps')} steps, "
        f"{'GPU' if on_gpu else 'CPU only'}): "
        f"{'; '.join(shortfalls)}; see the model card and docs/reproducing.md")
  else:
    card.pop("warning", None)
  os.makedirs(weights.SHIPPED_DIR, exist_ok=True)
  return weights.save_generator(model, os.path.join(weights.SHIPPED_DIR, weights.SHIPPED[kind]),
                                card)


def main(argv):
  if len(argv) > 1:
    raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.workdir:
    raise InputError("--workdir is required")
  path = release(FLAGS.workdir, FLAGS.kind, FLAGS.check_crop, FLAGS.batch)
  card = weights.read_card(path)
  for method, scores in card["held_out"]["whole_volume"].items():
    print(f"{method:12s} PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}  "
          f"NRMSE {scores['nrmse']:.4f}")
  print(f"shipped {path}{weights.WEIGHTS_SUFFIX}" + (f"\nwarning: {card['warning']}"
                                                     if "warning" in card else ""))


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
