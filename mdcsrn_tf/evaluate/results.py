"""An evaluation's files: per_subject.csv (one row per subject and method, at full
precision; the in-mask columns empty for a subject without a mask), settings.json and
summary.json, all written atomically.

A ResultsRecord writes each subject's rows as soon as they are scored; reopened with the
same settings it carries on where an interrupted evaluation stopped, so a 111-subject run
loses at most the subject in progress.
"""
import csv
import io
import json
import os

from mdcsrn_tf import metrics
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.evaluate.scoring import METRICS
from mdcsrn_tf.files import json_text, read_json, write_text_atomically

CSV_NAME, SETTINGS_NAME, SUMMARY_NAME = "per_subject.csv", "settings.json", "summary.json"
IDENTITIES = ("methods", "subjects")  # settings.json's record of what was scored, not asked


def results_csv(per_subject: dict) -> str:
  """One row per (subject, method); numbers at full precision, so a resumed evaluation's
  summary is the one an uninterrupted run gives; a metric a subject lacks (the in-mask
  ones without a mask) is an empty cell."""
  rows = io.StringIO()
  writer = csv.writer(rows)
  writer.writerow(("subject", "method", *METRICS))
  for subject, by_method in per_subject.items():
    for method, values in by_method.items():
      writer.writerow((subject, method, *(repr(float(values[m])) if m in values else ""
                                          for m in METRICS)))
  return rows.getvalue()


def read_results_csv(path) -> dict:
  """{subject: {method: metrics}} of a results_csv file, without the empty cells."""
  per_subject = {}
  with open(path, newline="", encoding="utf-8") as file:
    for row in csv.DictReader(file):
      per_subject.setdefault(row["subject"], {})[row["method"]] = {
          metric: float(row[metric]) for metric in METRICS if row.get(metric)}
  return per_subject


class ResultsRecord:
  """An evaluation's folder: settings.json (what was asked) and per_subject.csv, rewritten
  atomically after every subject (the folder is made with the first). Reopened with the
  same settings it carries on where it stopped; with other settings it refuses, since
  mixing them would mix two evaluations.

  `methods` maps each method to what identifies it beyond its name (a network: its weights'
  SHA-256; a baseline: nothing), kept in settings.json under "methods". A method whose
  identity changed since (weights retrained into the same path) loses its rows, which are
  scored again, and `log` says so; the other methods' rows are kept. `subjects` does the
  same for the subjects ({name: subjects.Subject's identity}, under "subjects"): a volume or
  mask rewritten since (a data set prepared again into the same manifest) is scored again.
  """

  def __init__(self, out_dir, settings: dict, methods: dict | None = None, log=print,
               subjects: dict | None = None):
    self.csv_path = os.path.join(out_dir, CSV_NAME)
    settings_path = os.path.join(out_dir, SETTINGS_NAME)
    settings = json.loads(json_text(settings))
    methods = json.loads(json_text(methods or {}))
    earlier = {}
    if os.path.exists(settings_path) or os.path.exists(self.csv_path):
      earlier = read_json(settings_path, "evaluation settings", missing_ok=True) or {}
      if {k: v for k, v in earlier.items() if k not in IDENTITIES} != settings:
        raise InputError(f"{out_dir}: holds the results of another evaluation; give a new "
                         "--out_dir (or the same flags to finish that one)")
    self.per_subject = read_results_csv(self.csv_path) if os.path.exists(self.csv_path) else {}
    for subject, identity in (subjects or {}).items():
      before = earlier.get("subjects", {}).get(subject, identity)
      if before != identity and self.per_subject.pop(subject, None) is not None:
        log(f"{out_dir}: {subject}'s files changed since it was scored there; scored again")
    subjects = {**earlier.get("subjects", {}), **(subjects or {})}
    for method, identity in methods.items():
      before = earlier.get("methods", {}).get(method, identity)
      if before != identity:
        dropped = sum(rows.pop(method, None) is not None for rows in self.per_subject.values())
        log(f"{out_dir}: {method} is not what was scored there before "
            f"({_identity_text(before)}, now {_identity_text(identity)}); its {dropped} "
            "subjects are scored again")
    self._out_dir, self._settings_path = out_dir, settings_path
    self._settings_text = json_text({**settings, "methods": methods, "subjects": subjects},
                                    indent=2, sort_keys=True) + "\n"

  def scored(self, subject, methods, masked=False) -> bool:
    """Whether every method's rows of `subject` are here, with in-mask figures exactly when
    the subject now has a mask (a mask added to a manifest since, or taken out, rescores
    it) and every figure of the metric registry (one added since rescores it)."""
    rows = self.per_subject.get(subject, {})
    wanted = metrics.NAMES + (metrics.MASKED_NAMES if masked else ())
    return all(method in rows and set(wanted) <= set(rows[method])
               and (metrics.MASKED_NAMES[0] in rows[method]) == masked for method in methods)

  def add(self, subject, results: dict):
    self.per_subject[subject] = results
    os.makedirs(self._out_dir, exist_ok=True)
    write_text_atomically(self.csv_path, results_csv(self.per_subject))
    # The settings follow the rows, never precede them: a run stopped before its first
    # subject leaves nothing, and no settings.json names new weights beside rows of old ones.
    if self._settings_text:
      write_text_atomically(self._settings_path, self._settings_text)
      self._settings_text = None


def write_results(results: dict, csv_path, json_path, card: dict | None = None):
  """One CSV row per (subject, method) and a JSON summary (with `card`), both atomic."""
  summary = {**(card or {}), "subjects": sorted(results["subjects"]),
             "summary": results["summary"]}
  write_text_atomically(csv_path, results_csv(results["subjects"]))
  write_text_atomically(json_path, json_text(summary, indent=2, sort_keys=True) + "\n")


def _identity_text(identity) -> str:
  if isinstance(identity, dict) and identity.get("sha256"):
    return f"weights SHA-256 {identity['sha256'][:12]}..."
  return json.dumps(identity)
