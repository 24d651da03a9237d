"""benchmarks/gpu_session.py in its reduced CPU mode, end to end: the command a lent GPU
runs cannot rot unnoticed, and its summary's figures are real and agree with each other."""
import json
import math
import os
import subprocess
import sys

from mdcsrn_tf import weights

from conftest import REPO


def finite_positive(value) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_smoke_session_writes_a_consistent_summary_and_scored_weights(small_real_dataset,
                                                                       tmp_path):
  script = os.path.join(REPO, "benchmarks", "gpu_session.py")
  # the data set travels as a folder of its own, with relative paths (the device's copy)
  subprocess.run([sys.executable, script, f"--dataset={small_real_dataset}",
                  f"--pack_dataset={tmp_path / 'packed'}"], check=True, capture_output=True)
  assert sorted(p.name for p in (tmp_path / "packed").iterdir()) == [
      "manifest.json", "s1.nii", "s2.nii", "s3.nii", "s4.nii", "splits.tsv"]
  out = tmp_path / "session"
  # a deadline far beyond the smoke run's work (about a minute on 2 idle cores), so that a
  # loaded machine never reaches it: the run's steps then depend on nothing but the counts
  result = subprocess.run(
      [sys.executable, script, "--smoke", "--minutes=60", f"--out={out}",
       f"--dataset={tmp_path / 'packed' / 'manifest.json'}"],
      cwd=tmp_path, capture_output=True, text=True, timeout=1800)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  summary = json.loads((out / "summary.json").read_text())
  assert summary["mode"] == "smoke" and summary["gpu"] is False
  phases = summary["phases"]
  assert "TensorFlow sees no GPU" in phases["check"]["why_no_gpu"]
  assert "TensorFlow sees no GPU" in (out / "session.log").read_text()

  inference = phases["inference"]
  voxels = math.prod(inference["volume_shape"])
  assert {(r["plan"], r["xla"]) for r in inference["results"]} == {
      ("auto", False), ("paper", False), ("auto", True)}
  for row in inference["results"]:
    assert all(finite_positive(row[k]) for k in ("seconds", "voxels_per_second",
                                                  "useful_gflops", "first_run_seconds"))
    assert math.isclose(row["voxels_per_second"] * row["seconds"], voxels)
    assert math.isclose(row["useful_gflops"] * 1e9,
                        inference["ops_per_voxel"] * row["voxels_per_second"])
    assert row["computed_voxel_ratio"] >= 1
  auto = next(r for r in inference["results"] if r["plan"] == "auto" and not r["xla"])
  paper = next(r for r in inference["results"] if r["plan"] == "paper")
  # the whole small volume is one auto window; 8^3 tiles with 3-voxel margins compute more
  assert auto["tile"] == inference["volume_shape"] and auto["computed_voxel_ratio"] == 1
  assert paper["tile"] == [8, 8, 8] and paper["computed_voxel_ratio"] > 2
  assert inference["fastest"]["seconds"] == min(r["seconds"] for r in inference["results"])

  steps = phases["training_steps"]["results"][0]
  assert math.isclose(steps["l1_steps_per_second"] * steps["l1_step_seconds"], 1)
  assert math.isclose(steps["pretrain_hours"],
                      phases["training_steps"]["paper_pretrain_steps"]
                      * steps["l1_step_seconds"] / 3600)
  assert all(finite_positive(steps[k]) for k in ("critic_step_seconds",
                                                 "generator_gan_step_seconds",
                                                 "gan_steps_per_second"))

  training = phases["training"]
  assert training["recipe"] == "flags/pretrain.cfg" and training["batch_size"] == 2
  assert training["steps"] == 4  # 2 calibration steps, then the smoke run's 2 more
  assert finite_positive(training["calibration_steps_per_second"])
  card = weights.read_card(out / "generator")
  assert card.steps == training["steps"] and card.model == "b4u4"
  assert card.validation == training["validation"]
  model, _ = weights.load_generator(out / "generator")  # the copied pair, checksum verified
  assert model.name == "b4u4"

  held_out = phases["held_out"]
  for label in ("trained", "shipped"):
    for method, scores in held_out[label].items():
      assert all(math.isfinite(scores[k]) for k in ("psnr", "ssim", "nrmse")), (label, method)
    # the baselines do not depend on the network: both rows score the same volume
    assert held_out[label]["cubic"]["psnr"] == held_out["trained"]["cubic"]["psnr"]
  assert held_out["beats_shipped"] == (
      held_out["trained"]["model"]["psnr"] > held_out["shipped"]["model"]["psnr"]
      and held_out["trained"]["model"]["ssim"] >= held_out["shipped"]["model"]["ssim"])
