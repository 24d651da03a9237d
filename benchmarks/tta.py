"""Test-time augmentation measured on one held-out head (docs/evaluation.md#test-time-
augmentation-and-the-uncertainty-map): the central 96^3 crop of Colin27 (divided by the
whole head's maximum), degraded with the weights' card's acquisition (the default weights
unless --weights names others), super-resolved with them over the 16 acquisition-keeping
transforms in --tta's order, each pass keeping the input's measured band when the card says
so, as mdcsrn-sr runs them.

  python benchmarks/tta.py [--edge 96] [--weights heads_b4u4_l1]

For N = 1, 2, 4, 8, 16 passes (the first N transforms, as `mdcsrn-sr --tta N` takes them):
the PSNR of their mean, over the crop and inside Colin27's brain (ch2bet), its gain over
one pass, the seconds the N passes took, and how well the per-voxel standard deviation of
the N passes predicts the mean's real error: the Pearson correlation between the standard
deviation and the absolute error over the crop's head voxels (above metrics.HEAD_LEVEL),
and the share of the head voxels with the largest 5% of errors that lie among the 5% most
uncertain ones (0.05 by chance). One run of infer/tta.super_resolve with N = 4 checks that
the product's path costs what its passes cost. Prints a Markdown table and writes JSON to
benchmarks/results/tta.json.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
COUNTS = (1, 2, 4, 8, 16)
TOP = 0.05  # the share of voxels whose largest errors and deviations are compared


def agreement(error, spread) -> dict:
  """Pearson correlation of `spread` with `error`, and the share of the TOP largest errors
  that lie among the TOP largest spreads."""
  if not spread.any():
    return {"correlation": None, "top_errors_in_top_uncertain": None}
  count = max(1, int(round(TOP * error.size)))
  worst = np.argpartition(error, -count)[-count:]
  uncertain = np.argpartition(spread, -count)[-count:]
  return {"correlation": float(np.corrcoef(error, spread)[0, 1]),
          "top_errors_in_top_uncertain": len(np.intersect1d(worst, uncertain)) / count}


def _shown(figure) -> str:
  return "-" if figure is None else f"{figure:.3f}"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--edge", type=int, default=96, help="edge of the central crop")
  parser.add_argument("--weights", default=None,
                      help="shipped name or path (default: the default weights)")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "tta.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import machine  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import metrics, weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data import kspace, samples  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.metrics import HEAD_LEVEL  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.evaluate import subjects  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer import consistency, inference, tta  # pylint: disable=import-outside-toplevel

  args.weights = args.weights or os.path.basename(weights.default_weights())
  model, card = weights.load_generator(weights.resolve(args.weights))
  keep_band = consistency.band_kept_by(card)
  head = subjects.read_subject(samples.sample_path("colin27_1mm"), crop=args.edge,
                               mask_path=samples.sample_path("colin27_1mm_bet"))
  hr, brain = head.hr, head.mask
  lr = np.asarray(kspace.degrade(hr, card.acquisition), np.float32)
  chosen = tta.passes_for(max(COUNTS), card.acquisition.swap_axes)
  passes, seconds = [], []
  for transform in chosen:  # each pass as infer/tta runs it
    started = time.perf_counter()
    moved = transform.apply(lr)
    tile, batch = tta.tile_plan(model, moved.shape, None, 3, 1, None)
    passes.append(transform.invert(inference.super_resolve(model, moved, tile=tile, batch=batch,
                                                           progress=False, keep_band=keep_band)))
    seconds.append(time.perf_counter() - started)
  started = time.perf_counter()
  product, _ = tta.super_resolve(model, lr, tile=None, passes=4,
                                 swap_axes=card.acquisition.swap_axes, progress=False,
                                 keep_band=keep_band)
  product_seconds = time.perf_counter() - started
  stack, inside = np.stack(passes), hr > HEAD_LEVEL
  rows = {}
  for count in COUNTS:
    mean = stack[:count].mean(axis=0)
    spread = stack[:count].std(axis=0)
    error = np.abs(mean - hr)
    rows[count] = {"psnr": metrics.psnr(hr, mean), "psnr_brain": metrics.psnr(hr[brain],
                                                                             mean[brain]),
                   "seconds": float(sum(seconds[:count])),
                   "mean_std": float(spread[inside].mean()),
                   **agreement(error[inside], spread[inside])}
  for row in rows.values():
    row["gain_db"] = row["psnr"] - rows[1]["psnr"]
    row["gain_brain_db"] = row["psnr_brain"] - rows[1]["psnr_brain"]
    row["time_factor"] = row["seconds"] / rows[1]["seconds"]
  four = stack[:4].mean(axis=0)
  result = {"machine": machine.machine(), "weights": args.weights,
            "keeps_measured_band": keep_band is not None, "subject": "colin27_1mm",
            "crop": {"edge": args.edge, "start": head.starts},
            "acquisition": card.acquisition.to_dict(),
            "transforms": [t.describe() for t in chosen], "passes": rows,
            "product_4_passes": {"seconds": product_seconds,
                                 "max_abs_difference": float(np.abs(product - four).max())}}
  print("| passes | PSNR (dB) | gain | in brain | gain | seconds | x one pass | mean std | "
        "corr(std, error) | top-5% errors in top-5% std |\n" + "|---" * 10 + "|")
  for count, row in rows.items():
    print(f"| {count} | {row['psnr']:.3f} | {row['gain_db']:+.3f} | {row['psnr_brain']:.3f} | "
          f"{row['gain_brain_db']:+.3f} | {row['seconds']:.1f} | {row['time_factor']:.2f} | "
          f"{row['mean_std']:.2e} | {_shown(row['correlation'])} | "
          f"{_shown(row['top_errors_in_top_uncertain'])} |")
  print(f"infer/tta with 4 passes: {product_seconds:.1f} s, its mean within "
        f"{result['product_4_passes']['max_abs_difference']:.1e} of the passes'")
  machine.write_json(args.out, result)


if __name__ == "__main__":
  main()
