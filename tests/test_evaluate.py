"""Evaluation as the paper's Tables 1-2: metrics, baselines on a real brain, the CLI's files."""
import csv
import json
import os
import subprocess
import sys

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf import metrics, weights
from mdcsrn_tf.evaluate import results, scoring
from mdcsrn_tf.evaluate.subjects import Subject
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.weights.card import ModelCard
from mdcsrn_tf.models import build_model

# ch2 (Colin27, 1 mm) cropped to 96 x 96 x 64 around the brain, renormalised to max 1
CH2_CROP = (slice(40, 136), slice(50, 146), slice(60, 124))


def numpy_psnr(hr, sr):
  return 10 * np.log10(1.0 / np.mean((hr.astype(np.float64) - sr) ** 2))


def numpy_nrmse(hr, sr):
  hr = hr.astype(np.float64)
  return np.sqrt(np.sum((hr - sr) ** 2)) / np.sqrt(np.sum(hr ** 2))


def test_metrics_agree_with_numpy():
  from mdcsrn_tf.data import kspace

  hr = np.random.default_rng(0).random((24, 20, 16), dtype=np.float32)
  hr /= hr.max()
  results = scoring.evaluate_volume(hr, ["linear", "zero_filled"])
  for method, values in results.items():
    sr = np.asarray(kspace.degrade(hr, Acquisition(placement=method)), np.float64)
    assert abs(values["psnr"] - numpy_psnr(hr, sr)) < 1e-6
    assert abs(values["nrmse"] - numpy_nrmse(hr, sr)) < 1e-6
    assert 0 < values["ssim"] < 1 and values["seconds"] >= 0


def test_summary_is_mean_and_sample_std_over_subjects_in_mask_over_those_with_one():
  per_subject = {f"s{i}": {"linear": {"ssim": s, "psnr": p, "nrmse": n, "seconds": 1.0}}
                 for i, (s, p, n) in enumerate([(0.9, 30.0, 0.1), (0.8, 34.0, 0.2),
                                                (0.7, 35.0, 0.4)])}
  per_subject["s0"]["linear"].update(ssim_mask=0.6, psnr_mask=28.0, nrmse_mask=0.3)
  per_subject["s2"]["linear"].update(ssim_mask=0.5, psnr_mask=31.0, nrmse_mask=0.5)
  summary = scoring.summarise(per_subject)["linear"]
  assert summary["psnr"]["mean"] == pytest.approx(33.0) and summary["psnr"]["n"] == 3
  assert summary["psnr"]["std"] == pytest.approx(np.std([30, 34, 35], ddof=1))
  assert summary["nrmse"]["std"] == pytest.approx(np.std([0.1, 0.2, 0.4], ddof=1))
  assert summary["psnr_mask"]["mean"] == pytest.approx(29.5) and summary["psnr_mask"]["n"] == 2
  assert summary["ssim_mask"]["std"] == pytest.approx(np.std([0.6, 0.5], ddof=1))
  unmasked = scoring.summarise({"s1": per_subject["s1"]})["linear"]
  assert "psnr_mask" not in unmasked and unmasked["psnr"]["std"] is None


def test_a_table_gives_the_spread_of_each_figure_over_its_own_subjects():
  """Three heads, one with a brain mask: the whole-volume figures carry a std, the in-brain
  ones say n = 1 (a std of 0 would claim a spread nobody measured)."""
  rows = [(0.9, 30.0, 0.1), (0.8, 34.0, 0.2), (0.7, 35.0, 0.4)]
  per_subject = {f"s{i}": {"linear": {"ssim": s, "psnr": p, "nrmse": n, "seconds": 1.0,
                                      "sharpness": 0.1, "band_fidelity": 0.05}}
                 for i, (s, p, n) in enumerate(rows)}
  per_subject["s0"]["linear"].update(ssim_mask=0.6, psnr_mask=28.0, nrmse_mask=0.3,
                                     sharpness_mask=0.2, band_fidelity_mask=0.1)
  table = scoring.format_table(scoring.summarise(per_subject))
  line = next(row for row in table.splitlines() if row.startswith("linear"))
  assert f"33.00 ({np.std([30, 34, 35], ddof=1):.2f})" in line
  assert "28.00 (n = 1)" in line and "(0.00)" not in line
  assert "(1 of 3 subjects)" in table
  alone = scoring.format_table(scoring.summarise({"s0": per_subject["s0"]}))
  assert "30.00" in alone and "(" not in alone.splitlines()[-1]


def test_baseline_ordering_on_colin27(sample):
  volume = nib.load(sample("colin27_1mm")).get_fdata(dtype=np.float32)[CH2_CROP]
  results = scoring.evaluate_methods([Subject("ch2", lambda: (volume / volume.max(), None))],
                                     scoring.BASELINES, progress=False)
  figures = {m: results["subjects"]["ch2"][m] for m in scoring.BASELINES}
  print({m: (round(f["psnr"], 2), round(f["ssim"], 4)) for m, f in figures.items()})
  for metric in ("psnr", "ssim"):
    assert (figures["nearest"][metric] < figures["linear"][metric] < figures["cubic"][metric]
            < figures["zero_filled"][metric])
  assert figures["linear"]["nrmse"] > figures["cubic"]["nrmse"] > figures["zero_filled"]["nrmse"]
  # docs/evaluation.md reports these figures
  expected_psnr = {"linear": 30.88, "cubic": 32.96, "zero_filled": 33.72}
  for method, psnr in expected_psnr.items():
    assert figures[method]["psnr"] == pytest.approx(psnr, abs=0.05)


def test_cli_writes_csv_json_and_table_for_baselines_and_a_model(tmp_path, write_nifti):
  keras.utils.set_random_seed(6)
  random_b2u4 = build_model("b2u4", identity_init=False)
  generator = weights.save_generator(random_b2u4, tmp_path / "b2u4", ModelCard("b2u4"))
  rng = np.random.default_rng(7)
  # two subjects whose scans share one file name, as HCP's do
  for subject in ("subA", "subB"):
    (tmp_path / subject).mkdir()
  volumes = [write_nifti(rng.random((16, 18, 12)).astype(np.float32) * 50, f"{s}/T1w.nii.gz")
             for s in ("subA", "subB")]
  out = tmp_path / "eval"
  result = subprocess.run(
      [sys.executable, "-m", "mdcsrn_tf.evaluate", f"--volumes={volumes[0]},{volumes[1]}",
       f"--weights=random={generator}", "--baselines=linear,cubic", f"--out_dir={out}",
       "--tile=16"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert (f"2 volumes named by the first part of their paths that differs (e.g. subA for "
          f"{volumes[0]}); they name the rows of {out / 'per_subject.csv'}") in result.stderr
  with open(out / "per_subject.csv", newline="") as file:
    rows = list(csv.DictReader(file))
  assert [(r["subject"], r["method"]) for r in rows] == [
      (s, m) for s in ("subA", "subB") for m in ("linear", "cubic", "random")]
  summary = json.loads((out / "summary.json").read_text())
  psnr_linear = [float(r["psnr"]) for r in rows if r["method"] == "linear"]
  assert summary["summary"]["linear"]["psnr"]["mean"] == pytest.approx(np.mean(psnr_linear),
                                                                       rel=1e-5)
  per_subject, table, where = result.stdout.strip().split("\n\n")
  per_subject = per_subject.splitlines()
  figures = ["SSIM", "PSNR", "NRMSE", "sharpness", "band", "fidelity"]
  assert per_subject[0].split() == ["subject", "method", *figures,
                                    *(" mask ".join(["SSIM", "PSNR", "NRMSE", "sharpness",
                                                     "band fidelity"]) + " mask").split()]
  assert [line.split()[:4] for line in per_subject[2:]] == [
      [r["subject"], r["method"], f"{float(r['ssim']):.4f}", f"{float(r['psnr']):.2f}"]
      for r in rows]
  assert all(line.split()[-5:] == ["-"] * 5 for line in per_subject[2:])  # no masks
  table = table.splitlines()
  assert table[0].split()[:4] == ["method", "SSIM", "PSNR", "NRMSE"]
  assert [line.split()[0] for line in table[2:]] == ["linear", "cubic", "random"]
  assert "0.200M" in table[-1]  # b2u4's trainable parameters, as Table 1
  assert where == (f"wrote {out / 'per_subject.csv'} (one row per subject and method) and "
                   f"{out / 'summary.json'}")


def test_cli_refuses_bad_arguments_in_one_line(tmp_path, write_nifti):
  volume = write_nifti(np.random.default_rng(3).random((16, 18, 12)).astype(np.float32))
  shipped_l1 = weights.shipped()["l1"]  # its card: trained on zero-filled input
  for args in (["--volumes=/nonexistent.nii.gz"], [], ["--volumes=a.nii", "--weights=broken"],
               [f"--volumes={volume}", f"--weights=l1={shipped_l1}", "--factors=1,1,4"],
               [f"--volumes={volume}", "--plane_axes=0,0"],
               [f"--volumes={volume}", "--engine=tensorrt"]):
    result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.evaluate", *args,
                             f"--out_dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_each_model_gets_the_input_it_was_trained_on():
  """An untrained mDCSRN is the identity map, so it scores exactly its input's baseline."""
  hr = np.random.default_rng(8).random((24, 20, 12), dtype=np.float32)
  identity = build_model("b1u8")
  scores = scoring.evaluate_volume(
      hr, {"linear": None, "zero_filled": None, "on_linear": identity, "on_zero_filled": identity},
      acquisition={"on_linear": Acquisition(placement="linear"),
                   "on_zero_filled": Acquisition(placement="zero_filled")}, tile=16)
  for mode in ("linear", "zero_filled"):
    for metric in ("psnr", "ssim", "nrmse"):
      assert scores[f"on_{mode}"][metric] == pytest.approx(scores[mode][metric], rel=1e-5)
  assert scores["zero_filled"]["psnr"] > scores["linear"]["psnr"] + 0.1  # the inputs differ


def test_an_interrupted_evaluation_keeps_its_subjects_and_a_rerun_finishes_it(tmp_path):
  """Subject "b" has a mask (its head: voxels above a tenth of the maximum): its in-mask
  figures survive the CSV, and a subject whose mask appeared since is scored again."""
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel

  head = nib.load(os.path.join(data_path, "anatomical.nii")).get_fdata(dtype=np.float32)
  volumes = {name: v / v.max() for name, v in
             (("a", head), ("b", head[::-1, :, :20]), ("c", head[:, 4:, 2:]))}
  masks = {"b": volumes["b"] > 0.1}
  loaded = []

  def subjects(interrupt_at=None):
    def loader(name):
      def load():
        loaded.append(name)
        if name == interrupt_at:
          raise KeyboardInterrupt  # the user's Ctrl-C while "c" is read
        return volumes[name], masks.get(name)
      return load
    return [Subject(name, loader(name), name in masks) for name in volumes]

  methods, settings = ["linear", "cubic"], {"split": "test", "tile": 64}
  with pytest.raises(KeyboardInterrupt):
    scoring.evaluate_methods(subjects("c"), methods, progress=False,
                             record=results.ResultsRecord(tmp_path, settings))
  written = results.read_results_csv(tmp_path / "per_subject.csv")
  assert sorted(written) == ["a", "b"]
  assert "psnr_mask" in written["b"]["cubic"] and "psnr_mask" not in written["a"]["cubic"]

  loaded.clear()
  resumed = scoring.evaluate_methods(
      subjects(), methods, progress=False, record=results.ResultsRecord(tmp_path, settings))
  assert loaded == ["c"]  # the subjects already scored are not even read
  uninterrupted = scoring.evaluate_methods(subjects(), methods, progress=False)
  for method in methods:
    assert set(resumed["summary"][method]) == set(scoring.METRICS)
    for metric in ("psnr", "ssim", "nrmse", "psnr_mask", "ssim_mask", "nrmse_mask"):
      assert resumed["summary"][method][metric] == uninterrupted["summary"][method][metric]

  masks["a"] = volumes["a"] > 0.1
  loaded.clear()
  scoring.evaluate_methods(subjects(), methods, progress=False,
                           record=results.ResultsRecord(tmp_path, settings))
  assert loaded == ["a"]
  assert "psnr_mask" in results.read_results_csv(tmp_path / "per_subject.csv")["a"]["linear"]
  with pytest.raises(InputError, match="holds the results of another evaluation"):
    results.ResultsRecord(tmp_path, {**settings, "tile": 32})


def test_a_rerun_rescores_weights_that_changed_and_warns_of_subjects_they_trained_on(
    tmp_path, colin27_crop, capsys):
  """Resuming is keyed by the weights' SHA-256 and the volumes' size and modification time,
  never by paths: weights retrained into the same path, or a volume written again, are
  scored again (and the rerun says so), unchanged ones are kept; a scored subject that the
  card lists among the training volumes is named in a warning."""
  from mdcsrn_tf.evaluate import evaluation
  from mdcsrn_tf.weights import card as cards

  scan = colin27_crop(tmp_path / "head.nii.gz", (24, 20, 16), (80, 100, 80))
  base = str(tmp_path / "gen")

  def retrain(seed):
    keras.utils.set_random_seed(seed)
    weights.save_generator(build_model("b1u8", identity_init=False), base, ModelCard("b1u8"))

  def scores():
    evaluation.evaluate(evaluation.EvaluateOptions(
        volumes=(str(scan),), baselines=("cubic",), weights=(f"net={base}",), tile=16,
        out_dir=str(tmp_path / "eval")))
    return results.read_results_csv(tmp_path / "eval" / "per_subject.csv")

  retrain(1)
  first = scores()
  (name,) = first
  card = weights.read_card(base)
  cards.write(base, ModelCard(**{**card.__dict__, "subjects": {"train": [name]}}))
  capsys.readouterr()
  assert scores() == first  # the same weights: kept
  out, err = capsys.readouterr()
  assert "1 of 1 subjects already scored, kept" in out
  assert f"warning: {name} is in the train split of net's model card" in err
  retrain(2)  # into the same path: another file
  third = scores()
  out, _ = capsys.readouterr()
  assert "net is not what was scored there before" in out and "scored again" in out
  assert third[name]["net"]["psnr"] != first[name]["net"]["psnr"]
  for metric in ("psnr", "ssim", "nrmse"):  # the subject was read again: the same baseline
    assert third[name]["cubic"][metric] == first[name]["cubic"][metric]
  colin27_crop(scan, (24, 20, 16), (90, 110, 70))  # the data prepared again, same path
  fourth = scores()
  out, _ = capsys.readouterr()
  assert f"{name}'s files changed since it was scored there; scored again" in out
  assert "already scored" not in out
  assert fourth[name]["cubic"]["psnr"] != third[name]["cubic"]["psnr"]


def test_a_run_stopped_before_its_first_subject_leaves_nothing_and_mixes_nothing(tmp_path):
  """Weights retrained into the same path, a run stopped before it scored a subject, then a
  third run: the rows of the old weights are scored again, never taken as the new ones'."""
  settings, rows = {"split": "test"}, {"net": dict.fromkeys(metrics.NAMES, 0.5)}
  results.ResultsRecord(tmp_path / "eval", settings, {"net": "sha-old"}).add("a", rows)
  results.ResultsRecord(tmp_path / "stopped", settings, {"net": "sha-old"})  # then killed
  assert not (tmp_path / "stopped").exists()
  results.ResultsRecord(tmp_path / "eval", settings, {"net": "sha-new"}, log=lambda _: None)
  resumed = results.ResultsRecord(tmp_path / "eval", settings, {"net": "sha-new"},
                                  log=lambda _: None)
  assert not resumed.scored("a", ["net"])
  kept = results.ResultsRecord(tmp_path / "eval", settings, {"net": "sha-old"})
  assert kept.scored("a", ["net"])


def test_summary_json_is_strict_json_with_null_for_non_finite_figures(tmp_path):
  per_subject = {"s": {"linear": {"ssim": 1.0, "psnr": float("inf"), "nrmse": 0.0,
                                  "seconds": 0.5}}}
  outcome = {"subjects": per_subject, "summary": scoring.summarise(per_subject)}
  results.write_results(outcome, tmp_path / "a.csv", tmp_path / "summary.json")

  def refuse(constant):
    raise ValueError(f"not JSON: {constant}")

  summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
  assert summary["summary"]["linear"]["psnr"]["mean"] is None
  assert summary["summary"]["linear"]["ssim"]["mean"] == 1.0
