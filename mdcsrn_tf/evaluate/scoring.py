"""Scoring methods as the paper's Tables 1 and 2 do (docs/evaluation.md, docs/paper.md#metrics).

For each test subject the HR volume is divided by its maximum, degraded in k-space
(kspace.degrade: the central 1/factor of the spectrum along the two plane axes), and every
method produces an SR volume on the HR grid:

- "nearest": the reduced image by nearest neighbour (the paper's Figure 2),
- "linear": the reduced image interpolated linearly (the networks' input),
- "cubic": the same with a cubic B-spline (the paper's "bicubic interpolation" baseline),
- "zero_filled": the inverse FFT of the zero-padded cropped spectrum,
- a model: tiled whole-volume inference (inference.super_resolve) on its `lr_mode` input,
  the one its model card says it was trained on.

SSIM (in-plane), PSNR and NRMSE come from metrics.py: data range 1 (HR max), whole
volume, no brain mask. Seconds are wall-clock for the whole volume: the degradation for a
baseline, the tiled inference for a model. Subjects are summarised by mean and sample std.

Subjects (subjects.py) stream one at a time; a ResultsRecord (results.py) keeps each
subject's rows as soon as they are scored.
"""
import time

import numpy as np

from mdcsrn_tf.data.degradation import INTERPOLATIONS
from mdcsrn_tf.evaluate import metrics

BASELINES = INTERPOLATIONS
METRICS = ("ssim", "psnr", "nrmse", "seconds")


def _timed(compute):
  start = time.perf_counter()
  result = np.asarray(compute(), np.float32)
  return result, time.perf_counter() - start


def evaluate_volume(hr, methods, factor=2, plane_axes=(0, 1), lr_mode="linear", tile=64,
                    margin=3, batch=1, outputs=None):
  """{method: {"ssim", "psnr", "nrmse", "seconds"}} for one normalised HR volume.

  `methods` maps a name to a Keras generator, or to None for a baseline in BASELINES (a
  plain list of baseline names works too). `lr_mode` is the network input of every model,
  or {model name: lr_mode} for models trained on different inputs. A dict passed as
  `outputs` receives each method's volume (the demo writes them).
  """
  from mdcsrn_tf.data import kspace
  from mdcsrn_tf.infer import inference

  hr = np.asarray(hr, np.float32)
  methods = dict(methods) if isinstance(methods, dict) else dict.fromkeys(methods)
  for name, model in methods.items():
    if model is None and name not in BASELINES:
      raise ValueError(f"{name!r} is neither a baseline ({', '.join(BASELINES)}) nor a model")
  inputs = {}  # lr_mode: network input volume, made once

  def input_of(name):
    mode = lr_mode if isinstance(lr_mode, str) else lr_mode[name]
    if mode not in inputs:
      inputs[mode] = kspace.degrade(hr, factor, plane_axes, interpolation=mode)
    return inputs[mode]

  results = {}
  for name, model in methods.items():
    if model is None:
      sr, seconds = _timed(lambda: kspace.degrade(hr, factor, plane_axes, interpolation=name))
    else:
      network_lr = input_of(name)
      sr, seconds = _timed(lambda: inference.super_resolve(
          model, network_lr, tile=tile, margin=margin, batch=batch, progress=False))
    results[name] = {**metrics.quality(hr, sr, plane_axes), "seconds": seconds}
    if outputs is not None:
      outputs[name] = sr
  return results


def summarise(per_subject: dict) -> dict:
  """{method: {metric: {"mean", "std"}}} over subjects; std is the sample std (ddof 1),
  0 for a single subject."""
  summary = {}
  for subject_results in per_subject.values():
    for method in subject_results:
      summary.setdefault(method, {})
  for method in summary:
    for metric in METRICS:
      values = np.array([r[method][metric] for r in per_subject.values() if method in r])
      std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
      summary[method][metric] = {"mean": float(np.mean(values)), "std": std}
  return summary


def evaluate_methods(subjects, methods, progress=True, record=None, **options) -> dict:
  """Scores `methods` on every (name, load) of `subjects`, one volume in memory at a time.

  With a ResultsRecord, subjects it already holds are skipped (their volumes are not read)
  and every new subject is written to it as soon as it is scored. Returns {"subjects":
  {name: {method: metrics}}, "summary": summarise(...)}; `options` go to evaluate_volume.
  """
  from tqdm import tqdm

  per_subject = {}
  for name, load in tqdm(subjects, unit="subject", desc="evaluate", disable=not progress):
    if record is not None and record.scored(name, methods):
      per_subject[name] = {method: record.per_subject[name][method] for method in methods}
      continue
    per_subject[name] = evaluate_volume(load(), methods, **options)
    if record is not None:
      record.add(name, per_subject[name])
  return {"subjects": per_subject, "summary": summarise(per_subject)}


def format_table(summary: dict, parameters: dict | None = None) -> str:
  """The paper's Tables 1-2 layout: mean (std) per metric, parameters and seconds."""
  parameters = parameters or {}
  header = (f"{'method':<14} {'SSIM':<15} {'PSNR':<13} {'NRMSE':<15} {'params':>8} "
            f"{'time (s)':>9}")
  lines = [header, "-" * len(header)]
  for method, values in summary.items():
    ssim, psnr, nrmse = (values[m] for m in ("ssim", "psnr", "nrmse"))
    params = f"{parameters[method] / 1e6:.3f}M" if method in parameters else "-"
    lines.append(f"{method:<14} {ssim['mean']:.4f} ({ssim['std']:.4f}) "
                 f"{psnr['mean']:5.2f} ({psnr['std']:.2f}) {nrmse['mean']:.4f} ({nrmse['std']:.4f}) "
                 f"{params:>8} {values['seconds']['mean']:9.2f}")
  return "\n".join(lines)
