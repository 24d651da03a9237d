"""Tables 1 and 2 of the paper next to ours (the notebooks in notebooks/ call this).

Our figures come from scoring.py (the metric registry's, seconds per volume) and
models.analysis (parameters, ops); the paper's from mdcsrn_tf.paper. When the manifest's test entries carry
masks (the bundled data set: Colin27's brain), our figures inside the mask stand beside the
whole volume's; the paper gives no such figure. Each network comes from its training run in
the checkpoints folder when there is one, else from the weights shipped with the package
(trained with one CPU budget, docs/reproducing.md), and its row says which; a network with
neither gets a row that says so, never invented numbers.
"""
import dataclasses
import os

from mdcsrn_tf import metrics, paper, weights
from mdcsrn_tf.acquisition import PAPER
from mdcsrn_tf.evaluate import figures, scoring, subjects
from mdcsrn_tf.infer import consistency
from mdcsrn_tf.models import analysis
from mdcsrn_tf.weights import seen as seen_volumes

LABELS = {"b1u8": "DCSRN b1u8", "b2u4": "mDCSRN b2u4", "b3u4": "mDCSRN b3u4",
          "b4u4": "mDCSRN b4u4", "b4u4_gan": "mDCSRN-GAN b4u4", "cubic": "bicubic interpolation",
          "fsrcnn": "3D FSRCNN", "srresnet": "3D SRResNet", "linear": "linear (network input)",
          "zero_filled": "zero-filled", "nearest": "nearest neighbour", "hr": "HR"}


@dataclasses.dataclass(frozen=True)
class TableSettings:
  """The notebooks' parameters cell.

  manifest: a prepared dataset's manifest.json (python -m mdcsrn_tf.data).
  checkpoints: a folder with one training workdir per method (`checkpoints/b1u8`,
    `checkpoints/b4u4_gan`, ...), each holding export/generator.weights.h5.
  split: which split to score (the paper: "test").
  crop: keep a central cube of this edge of every volume (0: whole volumes; smoke runs).
  max_subjects: score at most this many subjects (0: all).
  use_shipped: take a network's shipped weights when its workdir has no export.
  """
  manifest: str
  checkpoints: str
  split: str = "test"
  crop: int = 0
  max_subjects: int = 0
  use_shipped: bool = True
  tile: int = paper.TILE
  margin: int = paper.MARGIN
  batch: int = 1


def weights_source(method, settings: TableSettings):
  """(the generator of `method`, where it comes from, for the reader), or (None, why not):
  the training run's export in the checkpoints folder first, else the shipped weights."""
  workdir = os.path.join(settings.checkpoints, method)
  exported = weights.exported_generator(workdir)
  if os.path.exists(exported + weights.WEIGHTS_SUFFIX):
    return exported, f"your run {workdir}"
  shipped = weights.shipped_network(method) if settings.use_shipped else None
  if shipped is not None:
    return shipped, f"shipped weights {os.path.basename(shipped)} (CPU budget)"
  return None, f"no checkpoint in {workdir}" + (", no shipped weights"
                                                  if settings.use_shipped else "")


def test_subjects(settings: TableSettings):
  """[subjects.Subject] of the split, cropped as the settings say."""
  return subjects.manifest_subjects(settings.manifest, settings.split, settings.crop,
                                        settings.max_subjects)


def _load_models(methods, settings: TableSettings):
  """(models, sources, missing, {method: Acquisition}, {method: ModelCard}) for the
  non-baseline `methods`; each model gets the input its model card's acquisition makes."""
  models, sources, missing, acquisitions, cards = {}, {}, {}, {}, {}
  for method in methods:
    if method in scoring.BASELINES:
      continue
    path, source = weights_source(method, settings)
    if path is None:
      missing[method] = source
      continue
    (models[method], cards[method]), sources[method] = weights.load_generator(path), source
    acquisitions[method] = cards[method].acquisition
  return models, sources, missing, acquisitions, cards


def seen_subjects(scored, cards) -> dict:
  """{method: {subject: where its card has it}} of the subjects.Subject `scored` that are
  among a network's training or validation volumes, by name, resolved path or content
  (weights/seen.py): their figures are not held-out figures."""
  found = {method: seen_volumes.among(card, scored) for method, card in cards.items()}
  return {method: {subject.name: f"{match.split} split, {match.detail(subject.name)}"
                   for subject, match in matches}
          for method, matches in found.items() if matches}


def reproduce(methods, settings: TableSettings) -> dict:
  """Evaluates `methods` (baselines and model names) on the split.

  Returns {"rows": [...], "missing": {method: reason}, "sources": {method: where its
  weights come from}, "subjects": [...], "seen": seen_subjects(...)}: a network's row scored
  on volumes it trained or validated on says so in its note.
  """
  models, sources, missing, acquisitions, cards = _load_models(methods, settings)
  baselines = [m for m in methods if m in scoring.BASELINES]
  scored = test_subjects(settings)
  seen = seen_subjects(scored, cards)
  results = scoring.evaluate_methods(
      scored, {**dict.fromkeys(baselines), **models},
      acquisition=acquisitions or PAPER, tile=settings.tile, margin=settings.margin,
      batch=settings.batch, keep_band=consistency.bands_kept_by(cards))
  rows = [_row(method, results["summary"].get(method), models.get(method),
               missing.get(method, sources.get(method, ""))
               + "".join(f"; not held out: {name} ({where})"
                         for name, where in seen.get(method, {}).items()))
          for method in methods]
  return {"rows": rows, "missing": missing, "sources": sources,
          "subjects": sorted(results["subjects"]), "seen": seen}


def figure2(settings: TableSettings, path, methods=paper.FIGURE2) -> dict:
  """The paper's Figure 2 for the first subject of the split, written to `path` (PNG).

  Returns {"shown": [labels], "missing": {method: reason}}.
  """
  models, _, missing, acquisitions, cards = _load_models(methods, settings)
  first = test_subjects(dataclasses.replace(settings, max_subjects=1))[0]
  hr, _ = first.load()
  volumes = {}
  scoring.evaluate_volume(
      hr, {**{m: None for m in methods if m in scoring.BASELINES}, **models},
      acquisition=acquisitions or PAPER, tile=settings.tile, margin=settings.margin,
      batch=settings.batch, outputs=volumes, keep_band=consistency.bands_kept_by(cards))
  volumes["hr"] = hr
  shown = next(iter(acquisitions.values()), PAPER)
  slices = {LABELS.get(m, m): shown.plane_slice(volumes[m])
            for m in (*methods, "hr") if m in volumes}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figures.comparison_figure(slices, path,
                            title=f"{first.name}, middle slice of the degraded plane")
  return {"shown": list(slices), "missing": missing}


def card_rows(methods) -> list:
  """`markdown`'s rows from the held-out figures in the shipped weights' model cards (the
  release measured them on the bundled test heads; no network runs): a network's row from
  its own card, a baseline's from the first card's (every card scored the same heads)."""
  from mdcsrn_tf import models

  shipped = {m: weights.shipped_network(m) for m in methods if m not in scoring.BASELINES}
  cards = {m: weights.read_card(base) for m, base in shipped.items() if base}
  if not cards:
    raise ValueError("no shipped weights in this install: no model card to read figures from")
  baselines = next(iter(cards.values())).held_out["per_volume"]
  rows = []
  for method in methods:
    if method in scoring.BASELINES:
      figures, model, note = {name: f[method] for name, f in baselines.items()}, None, ""
    elif method in cards:
      card = cards[method]
      figures = {name: f["model"] for name, f in card.held_out["per_volume"].items()}
      model = models.build_model(card.model, **card.model_arguments)
      note = f"shipped weights {os.path.basename(shipped[method])} (CPU budget)"
    else:
      rows.append(_row(method, None, None, "no shipped weights"))
      continue
    summary = scoring.summarise({name: {method: f} for name, f in figures.items()})[method]
    rows.append(_row(method, summary, model, note))
  return rows


def _row(method, summary, model, note):
  theirs_row = paper.TABLES.get(method)  # mDCSRN-GAN is only in the paper's Figure 2
  row = {"method": LABELS.get(method, method), "note": note,
         "n": summary["psnr"]["n"] if summary else 0,
         "n_mask": (summary or {}).get(metrics.IN_TABLES[0].masked_name, {}).get("n", 0)}
  for metric in metrics.IN_TABLES:
    ours = summary[metric.name] if summary else None
    in_mask = (summary or {}).get(metric.masked_name)  # only for subjects with masks
    # the paper prints SSIM, PSNR and NRMSE only
    theirs = getattr(theirs_row, metric.name, None) if theirs_row else None
    theirs = theirs or (None, None)
    row[metric.name] = (ours["mean"], ours["std"]) if ours else None
    row[metric.masked_name] = (in_mask["mean"], in_mask["std"]) if in_mask else None
    row[f"paper_{metric.name}"] = theirs[0]
    row[f"diff_{metric.name}"] = (ours["mean"] - theirs[0] if ours and theirs[0] is not None
                                  else None)
  row["seconds"] = summary["seconds"]["mean"] if summary else None
  row["paper_seconds"] = theirs_row.seconds if theirs_row else None
  if model is not None:
    row["params"] = analysis.trainable_parameters(model)
    row["ops_per_voxel"] = analysis.ops_per_voxel(model)
  return row


def markdown(rows) -> str:
  """The rows as a Markdown table: ours (mean (std) over n subjects, the mean alone when
  n = 1), the paper's, and the difference; then ours inside the mask, when the subjects had
  masks; then where each network's weights come from."""
  def number(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"

  def mean_std(value, digits, n):
    if not value:
      return "-"
    return f"{value[0]:.{digits}f}" + (f" ({value[1]:.{digits}f})" if n > 1 else "")

  figures_shown = [(m.name, m.label, m.digits) for m in metrics.IN_TABLES]
  masked = [(m.masked_name, m.label, m.digits) for m in metrics.IN_TABLES
            if any(row[m.masked_name] for row in rows)]
  header = ["method"]
  in_paper = {field.name for field in dataclasses.fields(paper.PaperRow)}
  for key, label, _ in figures_shown:
    header += [label, f"paper {label}", f"diff {label}"] if key in in_paper else [label]
  header += [f"{label} in mask" for _, label, _ in masked] + (["n in mask"] if masked else [])
  header += ["n", "params", "ops/voxel", "time (s)", "paper time (s)", "weights"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    cells = [row["method"]]
    for key, _, digits in figures_shown:
      cells += [mean_std(row[key], digits, row["n"])] + ([
          number(row[f"paper_{key}"], digits), number(row[f"diff_{key}"], digits)]
          if key in in_paper else [])
    cells += [mean_std(row[key], digits, row["n_mask"]) for key, _, digits in masked]
    cells += [str(row["n_mask"] or "-")] if masked else []
    cells += [str(row["n"] or "-"), f"{row['params']:,}" if "params" in row else "-",
              f"{row['ops_per_voxel']:,.0f}" if "ops_per_voxel" in row else "-",
              number(row["seconds"], 2), number(row["paper_seconds"], 2), row["note"]]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
