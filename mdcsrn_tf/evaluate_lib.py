"""Scoring methods as the paper's Tables 1 and 2 do (NOTES.md, Metrics; docs/evaluation.md).

For each test subject the HR volume is divided by its maximum, degraded in k-space
(kspace.degrade: the central 1/factor of the spectrum along the two plane axes), and every
method produces an SR volume on the HR grid:

- "nearest": the reduced image by nearest neighbour (the paper's Figure 2),
- "linear": the reduced image interpolated linearly (the networks' input),
- "cubic": the same with a cubic B-spline (the paper's "bicubic interpolation" baseline),
- "zero_filled": the inverse FFT of the zero-padded cropped spectrum,
- a model: tiled whole-volume inference (inference.super_resolve) on the `network_input`
  baseline ("linear" unless the model was trained on zero-filled input).

SSIM (in-plane), PSNR and NRMSE come from mdcsrn_tf.metrics: data range 1 (HR max), whole
volume, no brain mask. Seconds are wall-clock for the whole volume: the degradation for a
baseline, the tiled inference for a model. Subjects are summarised by mean and sample std.

Subjects stream one at a time: a subject is a (name, load) pair whose `load()` reads and
normalises the volume only when it is scored, so memory holds one volume whatever the
split's size. A ResultsRecord writes each subject's rows as soon as they are scored, and a
rerun into the same folder skips the subjects it already holds.
"""
import csv
import functools
import io
import json
import os
import time

import numpy as np

from mdcsrn_tf import metrics
from mdcsrn_tf.data import intensity, kspace, manifest, nifti
from mdcsrn_tf.data.nifti import write_text_atomically
from mdcsrn_tf.errors import InputError

BASELINES = kspace.INTERPOLATIONS
METRICS = ("ssim", "psnr", "nrmse", "seconds")


def central_crop(volume, edge):
  """(the central cube of `edge` voxels, its start index per axis); edge 0 keeps it all."""
  if not edge:
    return volume, [0, 0, 0]
  starts = [max(0, (n - edge) // 2) for n in volume.shape]
  return volume[tuple(slice(s, s + edge) for s in starts)], starts


def _timed(compute):
  start = time.perf_counter()
  result = np.asarray(compute(), np.float32)
  return result, time.perf_counter() - start


def evaluate_volume(hr, methods, factor=2, plane_axes=(0, 1), network_input="linear",
                    lr=None, tile=64, margin=3, batch=1, outputs=None):
  """{method: {"ssim", "psnr", "nrmse", "seconds"}} for one normalised HR volume.

  `methods` maps a name to a Keras generator, or to None for a baseline in BASELINES (a
  plain list of baseline names works too). `network_input` is the lr_mode of every model,
  or {model name: lr_mode} for models trained on different inputs. `lr` is the network
  input if the caller already has it (a training pipeline's validation volume); otherwise
  it is made from `hr`.
  A dict passed as `outputs` receives each method's volume (the demo writes them).
  """
  from mdcsrn_tf import inference

  hr = np.asarray(hr, np.float32)
  methods = dict(methods) if isinstance(methods, dict) else dict.fromkeys(methods)
  for name, model in methods.items():
    if model is None and name not in BASELINES:
      raise ValueError(f"{name!r} is neither a baseline ({', '.join(BASELINES)}) nor a model")
  inputs = {}  # lr_mode: network input volume, made once

  def input_of(name):
    mode = network_input if isinstance(network_input, str) else network_input[name]
    if mode not in inputs:
      inputs[mode] = lr if lr is not None else kspace.degrade(hr, factor, plane_axes,
                                                              interpolation=mode)
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


def _normalised_volume(path, crop=0):
  volume, _ = nifti.load_volume(path)
  return intensity.normalise(central_crop(volume, crop)[0], name=os.fspath(path))[0]


def manifest_subjects(manifest_path, split, crop=0, limit=0) -> list:
  """[(volume name, load)] of a manifest split (the first `limit` when > 0); `load()` gives
  the volume, cropped to a central cube of `crop` voxels when > 0, divided by its maximum."""
  entries = manifest.split_entries(manifest_path, split)
  return [(entry["name"], functools.partial(_normalised_volume, entry["path"], crop))
          for entry in (entries[:limit] if limit else entries)]


def file_subjects(paths, crop=0) -> list:
  """[(file name, load)] of NIfTI files, as manifest_subjects."""
  return [(os.path.basename(os.fspath(path)), functools.partial(_normalised_volume, path, crop))
          for path in paths]


def results_csv(per_subject: dict) -> str:
  """One row per (subject, method); numbers at full precision, so a resumed evaluation's
  summary is the one an uninterrupted run gives."""
  rows = io.StringIO()
  writer = csv.writer(rows)
  writer.writerow(("subject", "method", *METRICS))
  for subject, by_method in per_subject.items():
    for method, values in by_method.items():
      writer.writerow((subject, method, *(repr(float(values[m])) for m in METRICS)))
  return rows.getvalue()


def read_results_csv(path) -> dict:
  """{subject: {method: metrics}} of a results_csv file."""
  per_subject = {}
  with open(path, newline="", encoding="utf-8") as file:
    for row in csv.DictReader(file):
      per_subject.setdefault(row["subject"], {})[row["method"]] = {
          metric: float(row[metric]) for metric in METRICS}
  return per_subject


class ResultsRecord:
  """An evaluation's folder: settings.json (what was asked) and per_subject.csv, rewritten
  atomically after every subject. Reopened with the same settings it carries on where it
  stopped; with other settings it refuses, since mixing them would mix two evaluations."""

  def __init__(self, out_dir, settings: dict):
    self.csv_path = os.path.join(out_dir, "per_subject.csv")
    settings_path = os.path.join(out_dir, "settings.json")
    settings = json.loads(json.dumps(settings))
    if os.path.exists(settings_path) or os.path.exists(self.csv_path):
      try:
        with open(settings_path, encoding="utf-8") as file:
          earlier = json.load(file)
      except (OSError, ValueError):
        earlier = None
      if earlier != settings:
        raise InputError(f"{out_dir}: holds the results of another evaluation; give a new "
                         "--out_dir (or the same flags to finish that one)")
    os.makedirs(out_dir, exist_ok=True)
    write_text_atomically(settings_path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
    self.per_subject = read_results_csv(self.csv_path) if os.path.exists(self.csv_path) else {}

  def scored(self, subject, methods) -> bool:
    return set(methods) <= set(self.per_subject.get(subject, {}))

  def add(self, subject, results: dict):
    self.per_subject[subject] = results
    write_text_atomically(self.csv_path, results_csv(self.per_subject))


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


def write_results(results: dict, csv_path, json_path, card: dict | None = None):
  """One CSV row per (subject, method) and a JSON summary (with `card`), both atomic."""
  summary = {**(card or {}), "subjects": sorted(results["subjects"]),
             "summary": results["summary"]}
  write_text_atomically(csv_path, results_csv(results["subjects"]))
  write_text_atomically(json_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")


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
