"""The training-domain check measured on the bundled volumes (docs/evaluation.md#when-not-to-
trust-an-output): the shipped b4u4 cards' domain (their four training volumes, degraded as
their acquisition says), and the figures and findings of every bundled sample against it,
as the file is (what mdcsrn-sr reads) and, for the held-out heads and the volumes the check
should flag, as the network input made from it (degraded); plus a held-out head smoothed
(a Gaussian of 1 voxel), and the margins the held-out heads need.

  python benchmarks/training_domain.py [--write_cards]

--write_cards writes the domain into the shipped b4u4_l1 and b4u4_gan cards that lack one,
or whose domain is of an older data/domain.VERSION (lacking later figures): the card only,
the weights file and its SHA-256 are untouched, and checked. A second domain,
the whole-head data set's training split (data/heads, the data of a network trained on
whole heads), shows what the same check says for such weights. Prints a table per domain
and writes benchmarks/results/training_domain.json.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HELD_OUT = ("colin27_1mm", "pycortex_s1", "brainbrowser_structural1")
EXAMPLES = ("icbm152_2009c_t2", "colin27_1mm_bet", "conte_core2_2mm", "nibabel_anatomical",
            "colin27_05mm")


def needed_margins(figures, trained) -> dict:
  """The smallest margin of each figure at which `figures` lies inside `trained`."""
  from mdcsrn_tf.data import domain  # pylint: disable=import-outside-toplevel

  voxel, head, band = (domain.trained_span(trained, key)
                       for key in ("voxel_mm", "head_ml", "upper_band"))
  skew = domain.trained_span(trained, "interior_skew", signed=True)
  quantiles = [domain.trained_span(trained, "quantiles", i)
               for i in range(len(domain.QUANTILES))]
  voxels = figures["voxel_mm"]
  return {"voxel": max(voxel[0] / min(voxels), max(voxels) / voxel[1], 1.0),
          "head": max(head[0] / figures["head_ml"], 1.0),
          "intensity": max([max(lo - q, q - hi, 0.0) for (lo, hi), q in
                            zip(quantiles, figures["quantiles"])]),
          "band": max(band[0] / figures["upper_band"], figures["upper_band"] / band[1], 1.0),
          "skew": max(figures["interior_skew"] - skew[1], 0.0)}


def profiles(names, acquisition, store, degraded_too=()) -> dict:
  """{name: {"file": profile[, "network input": profile]}} of bundled samples."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf.data import (domain, intensity, nifti,  # pylint: disable=import-outside-toplevel
                              samples)

  found = {}
  for name in names:
    path = samples.find(name)
    if path is None:
      print(f"{name}: not installed, left out", file=sys.stderr)
      continue
    volume, image = nifti.load_volume(path)
    voxel = nifti.voxel_size_mm(image, path)
    normalised, _ = intensity.normalise(volume, name=path)
    found[name] = {"file": domain.profile(normalised, voxel, acquisition)}
    if name in degraded_too:
      found[name]["network input"] = domain.profile(np.asarray(store.pair(path)[0]), voxel,
                                                    acquisition)
    if name == HELD_OUT[0]:
      smooth = ndimage.gaussian_filter(normalised, 1.0)
      found[f"{name} smoothed (Gaussian, 1 voxel)"] = {
          "file": domain.profile(smooth / smooth.max(), voxel, acquisition)}
  return found


def skew_text(figures) -> str:
  skew = figures.get("interior_skew")
  return "-" if skew is None else f"{skew:+.2f}"


def table(measured, trained) -> tuple:
  """(Markdown rows of each volume's figures and findings, needed margins of the held-out
  heads)."""
  from mdcsrn_tf.data import domain  # pylint: disable=import-outside-toplevel

  lines = ["| volume | as | voxel (mm) | head (mL) | quantiles 5-95% | interior skew | "
           "upper band | findings |", "|---" * 8 + "|"]
  needed = {}
  for name, views in measured.items():
    for view, figures in views.items():
      found = domain.findings(figures, trained)
      if name in HELD_OUT:
        for key, value in needed_margins(figures, trained).items():
          needed[key] = max(needed.get(key, 0.0), value)
      kinds = "; ".join(f.split(":")[0].split(" (")[0][:40] for f in found) or "-"
      lines.append(f"| {name} | {view} | {' x '.join(f'{v:g}' for v in figures['voxel_mm'])} | "
                   f"{figures['head_ml']:.0f} | "
                   f"{' '.join(f'{q:.2f}' for q in figures['quantiles'])} | "
                   f"{skew_text(figures)} | {figures['upper_band']:.2g} | {kinds} |")
  return lines, needed


def write_cards(trained) -> list:
  """Writes `trained` into the shipped b4u4 cards without a domain of this VERSION, their
  other fields as the file has them; returns the cards written."""
  from mdcsrn_tf import files, weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import domain  # pylint: disable=import-outside-toplevel

  written = []
  for name in weights.SHIPPED.values():
    base = weights.shipped_path(name)
    card = weights.read_card(base)
    if card.training_domain.get("version") == domain.VERSION:
      continue
    before = weights.file_sha256(base + weights.WEIGHTS_SUFFIX)
    assert before == card.weights_sha256, f"{base}: weights are not the card's"
    path = base + weights.CARD_SUFFIX
    fields = files.read_json(path, "model card")
    files.write_text_atomically(path, files.json_text({**fields, "training_domain": trained},
                                                      indent=2, sort_keys=True) + "\n")
    assert weights.read_card(base).training_domain == trained
    assert weights.file_sha256(base + weights.WEIGHTS_SUFFIX) == before
    written.append(path)
  return written


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--write_cards", action="store_true",
                      help="add the domain to the shipped b4u4 cards that lack one")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "training_domain.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel

  os.chdir(REPO)  # the cards name their data set relative to the repository
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import (domain, samples,  # pylint: disable=import-outside-toplevel
                              volume_store)

  card = weights.read_card(weights.default_weights("l1"))
  shipped = (card.training_domain if card.training_domain.get("version") == domain.VERSION
             else domain.of_training(card.dataset, card.subjects["train"], card.acquisition))
  heads = domain.of_training("data/heads/manifest.json", None, card.acquisition)
  if args.write_cards:
    for path in write_cards(shipped):
      print(f"wrote the training domain into {path}")
  store = volume_store.VolumeStore(card.acquisition, volume_store.default_cache_dir())
  names = [name for name in samples.SAMPLES if name not in card.subjects["train"]]
  measured = profiles(names, card.acquisition, store, degraded_too=HELD_OUT + EXAMPLES)
  result = {"machine": machine.machine(), "acquisition": card.acquisition.to_dict(),
            "margins": {"voxel": domain.VOXEL_MARGIN, "head": domain.HEAD_MARGIN,
                        "intensity": domain.INTENSITY_MARGIN, "band": domain.BAND_MARGIN,
                        "skew": domain.SKEW_MARGIN},
            "domains": {}}
  for label, trained in (("shipped b4u4 cards (data/samples train split)", shipped),
                         ("whole heads (data/heads train split)", heads)):
    lines, needed = table(measured, trained)
    print(f"\n## against the {label}\n\n" + "\n".join(lines))
    print(f"\nmargins the held-out heads need: {json.dumps(needed)}")
    result["domains"][label] = {
        "trained": trained, "held_out_need": needed,
        "volumes": {name: {view: {"figures": figures,
                                  "findings": domain.findings(figures, trained)}
                           for view, figures in views.items()}
                    for name, views in measured.items()}}
  machine.write_json(args.out, result)


if __name__ == "__main__":
  main()
