"""Scoring methods as the paper's Tables 1 and 2 do (docs/evaluation.md, docs/paper.md#metrics).

For each test subject the HR volume is divided by its maximum, acquired as an Acquisition
says (kspace.degrade; the paper's: the central half of the spectrum along the first two
axes), and every method produces an SR volume on the HR grid:

- a baseline, one per placement (acquisition.PLACEMENTS): "nearest" (the paper's Figure
  2), "linear", "cubic" (the paper's "bicubic interpolation" baseline) and "zero_filled";
- a model: tiled whole-volume inference (inference.super_resolve) on the input its model
  card's acquisition makes.

Every figure of the metric registry (mdcsrn_tf/metrics.py) is computed: data range 1 (HR
max), on the whole volume and, for a subject with a mask, inside the mask too. Seconds are wall-clock for the whole volume: the degradation for a baseline,
the tiled inference for a model. Subjects are summarised by mean and sample std, each
in-mask figure over the subjects that have a mask.

Subjects (subjects.py) stream one at a time; a ResultsRecord (results.py) keeps each
subject's rows as soon as they are scored.
"""
import dataclasses
import time

import numpy as np

from mdcsrn_tf import metrics, paper
from mdcsrn_tf.acquisition import PAPER, PLACEMENTS, Acquisition
from mdcsrn_tf.errors import NonFiniteOutput, one_line

BASELINES = PLACEMENTS
METRICS = (*metrics.NAMES, *metrics.MASKED_NAMES, "seconds")  # no masked ones without a mask


def _timed(compute):
  start = time.perf_counter()
  result = np.asarray(compute(), np.float32)
  return result, time.perf_counter() - start


def evaluate_volume(hr, methods, acquisition: Acquisition | dict = PAPER, tile=paper.TILE,
                    margin=paper.MARGIN, batch=1, outputs=None, mask=None, keep_band=None,
                    engines=None):
  """{method: {metric: value, "seconds": s}} for one normalised HR volume: every figure of
  metrics.REGISTRY, and their in-mask variants too when a boolean `mask` on its grid is given.

  `methods` maps a name to a Keras generator, or to None for a baseline in BASELINES (a
  plain list of baseline names works too); a model whose output has NaN or Inf voxels
  raises errors.NonFiniteOutput naming it (`method`). `acquisition` is every model's, or
  {model name: Acquisition} for models trained on different ones; the baselines take the
  first model's factors and slice profile (PAPER's without models) with their own
  placement. A dict passed as `outputs` receives each method's volume (the demo writes
  them). `keep_band` is {model name: Acquisition} for the models whose card keeps the
  measured band (consistency.band_kept_by), `engines` {model name: engine} for the models
  another engine than TensorFlow's pass runs (engines.prepare).
  """
  from mdcsrn_tf.data import kspace
  from mdcsrn_tf.infer import inference

  hr = np.asarray(hr, np.float32)
  methods = dict(methods) if isinstance(methods, dict) else dict.fromkeys(methods)
  for name, model in methods.items():
    if model is None and name not in BASELINES:
      raise ValueError(f"{name!r} is neither a baseline ({', '.join(BASELINES)}) nor a model")
  of_model = {name: acquisition if isinstance(acquisition, Acquisition) else acquisition[name]
              for name, model in methods.items() if model is not None}
  baseline_acquisition = next(iter(of_model.values()), acquisition if isinstance(
      acquisition, Acquisition) else PAPER)
  inputs = {}  # Acquisition: network input volume, made once

  def input_of(name):
    if of_model[name] not in inputs:
      inputs[of_model[name]] = kspace.degrade(hr, of_model[name])
    return inputs[of_model[name]]

  results = {}
  for name, model in methods.items():
    if model is None:
      used = dataclasses.replace(baseline_acquisition, placement=name)
      sr, seconds = _timed(lambda: kspace.degrade(hr, used))
    else:
      used, network_lr = of_model[name], input_of(name)
      try:
        sr, seconds = _timed(lambda: inference.super_resolve(
            model, network_lr, tile=tile, margin=margin, batch=batch, progress=False,
            keep_band=(keep_band or {}).get(name), engine=(engines or {}).get(name)))
      except NonFiniteOutput as error:
        error.method = name
        raise
    results[name] = {**metrics.quality(hr, sr, used, mask), "seconds": seconds}
    if outputs is not None:
      outputs[name] = sr
  return results


def summarise(per_subject: dict) -> dict:
  """{method: {metric: {"mean", "std", "n"}}} over the `n` subjects that have the metric
  (the in-mask ones: the subjects with a mask; none, no entry); std is the sample std
  (ddof 1), None for a single subject, whose spread is unknown rather than 0."""
  summary = {}
  for subject_results in per_subject.values():
    for method in subject_results:
      summary.setdefault(method, {})
  for method in summary:
    for metric in METRICS:
      values = np.array([r[method][metric] for r in per_subject.values()
                         if metric in r.get(method, {})])
      if len(values):
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        summary[method][metric] = {"mean": float(np.mean(values)), "std": std,
                                   "n": len(values)}
  return summary


def evaluate_methods(subjects, methods, progress=True, record=None, **options) -> dict:
  """Scores `methods` on every subjects.Subject of `subjects`, one
  volume in memory at a time, inside its mask too when it has one.

  With a ResultsRecord, subjects it already holds are skipped (their volumes are not read)
  and every new subject is written to it as soon as it is scored; a NonFiniteOutput names
  the subject it came from (`subject`), and the record keeps the subjects before it. Returns {"subjects":
  {name: {method: metrics}}, "summary": summarise(...)}; `options` go to evaluate_volume.
  """
  from tqdm import tqdm

  per_subject = {}
  for subject in tqdm(subjects, unit="subject", desc="evaluate", disable=not progress):
    name = subject.name
    if record is not None and record.scored(name, methods, subject.masked):
      per_subject[name] = {method: record.per_subject[name][method] for method in methods}
      continue
    hr, mask = subject.load()
    try:
      per_subject[name] = evaluate_volume(hr, methods, mask=mask, **options)
    except NonFiniteOutput as error:
      error.subject = name
      raise
    if record is not None:
      record.add(name, per_subject[name])
  return {"subjects": per_subject, "summary": summarise(per_subject)}


def format_table(summary: dict, parameters: dict | None = None,
                 mask_label="inside the mask") -> str:
  """The paper's Tables 1-2 layout: mean (std) of every figure metrics.IN_TABLES lists (the
  mean and "n = 1" for a figure of one subject), parameters and seconds; when the subjects
  had masks, the in-mask figures beside the whole volume's, under `mask_label` (with how
  many subjects they cover when not all)."""
  parameters = parameters or {}
  first = next(iter(summary.values()))
  with_std = first["psnr"]["n"] > 1
  shown = metrics.IN_TABLES
  widths = [max(len(m.label), (3 + m.digits) * (2 if with_std else 1) + 3 * with_std)
            for m in shown]
  groups = [[m.name for m in shown]]
  lines = []
  if shown[1].masked_name in first:
    groups.append([m.masked_name for m in shown])
    covered, total = first[shown[1].masked_name]["n"], first["psnr"]["n"]
    label = mask_label + (f" ({covered} of {total} subjects)" if covered < total else "")
    lines.append(f"{'':<14} {'whole volume':<{sum(widths) + len(widths) - 1}} {label}")
  header = (f"{'method':<14} " + " ".join(
      " ".join(f"{m.label:<{width}}" for m, width in zip(shown, widths))
      for _ in groups) + f" {'params':>8} {'time (s)':>9}")
  lines += [header, "-" * len(header)]
  for method, values in summary.items():
    params = f"{parameters[method] / 1e6:.3f}M" if method in parameters else "-"
    cells = " ".join(_figure_cells(values, keys, with_std, widths) for keys in groups)
    lines.append(f"{method:<14} {cells} {params:>8} {values['seconds']['mean']:9.2f}")
  return "\n".join(lines)


def format_subject_table(per_subject: dict) -> str:
  """One line per (subject, method): every figure metrics.IN_TABLES lists, over the whole
  volume and, for a subject with a mask, inside it ("-" without one)."""
  shown = metrics.IN_TABLES
  names = {name: one_line(name) for name in per_subject}  # named by their files
  width = max([len("subject")] + [len(name) for name in names.values()])
  columns = [(m.name, m.label, m.digits) for m in shown] + [
      (m.masked_name, f"{m.label} mask", m.digits) for m in shown]
  widths = [max(len(label), 8) for _, label, _ in columns]
  header = f"{'subject':<{width}} {'method':<14} " + " ".join(
      f"{label:>{w}}" for (_, label, _), w in zip(columns, widths))
  lines = [header, "-" * len(header)]
  for subject, by_method in per_subject.items():
    for method, values in by_method.items():
      cells = " ".join(f"{values[key]:{w}.{digits}f}" if key in values else f"{'-':>{w}}"
                       for (key, _, digits), w in zip(columns, widths))
      lines.append(f"{names[subject]:<{width}} {method:<14} {cells}")
  return "\n".join(lines)


def _figure_cells(values, keys, with_std, widths) -> str:
  """Each figure as "mean (std)" under format_table's headers; a figure of one subject in a
  table of several as "mean (n = 1)", and with one subject in all, the mean alone."""
  cells = []
  for key, metric, width in zip(keys, metrics.IN_TABLES, widths):
    figure, digits = values[key], metric.digits
    spread = f" ({figure['std']:.{digits}f})" if figure["n"] > 1 else " (n = 1)"
    text = f"{figure['mean']:.{digits}f}" + (spread if with_std else "")
    cells.append(f"{text:<{width}}")
  return " ".join(cells)
