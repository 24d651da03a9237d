"""Acquisitions end to end: a smoke training run on thick Gaussian slices (--factors=1,1,4)
whose weights `mdcsrn-sr --scale 1,1,4` uses and any other grid change refuses; and a run
record and model card in the format written before the acquisition was recorded (lr_mode,
factor, plane_axes), which still resume and load."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np

from mdcsrn_tf import weights
from mdcsrn_tf.acquisition import Acquisition

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = [sys.executable, "-m", "mdcsrn_tf.train", "--flagfile=flags/smoke_pretrain.cfg"]


def train(dataset, workdir, *flags):
  result = subprocess.run([*SMOKE, f"--dataset={dataset}", f"--workdir={workdir}", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  return result


def test_thick_slice_weights_super_resolve_the_grid_they_were_trained_for(small_real_dataset,
                                                                          tmp_path):
  workdir = tmp_path / "thick"
  train(small_real_dataset, workdir, "--steps=4", "--factors=1,1,4", "--slice_profile=gaussian")
  base = weights.exported_generator(workdir)
  card = weights.read_card(base)
  assert card.acquisition == Acquisition((1, 1, 4), "gaussian", "linear")
  assert card.model_arguments == {"identity_init": True}
  assert card.validation["sharpness"] >= 0 and "band_fidelity" in card.validation
  # a scan of 1 x 1 x 4 mm slices
  rng = np.random.default_rng(5)
  lowres = tmp_path / "thick.nii.gz"
  nib.Nifti1Image((rng.random((20, 18, 6)) * 100).astype(np.float32),
                  np.diag([1.0, 1.0, 4.0, 1.0])).to_filename(lowres)
  run = [sys.executable, "-m", "mdcsrn_tf.infer", str(lowres), "--weights", base, "--tile=16"]
  done = subprocess.run([*run, str(tmp_path / "sr.nii.gz"), "--scale=1,1,4"], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr
  sr = nib.load(tmp_path / "sr.nii.gz")
  assert sr.shape == (20, 18, 24) and np.allclose(sr.header.get_zooms(), (1, 1, 1))
  refused = subprocess.run([*run, str(tmp_path / "sr2.nii.gz"), "--scale=2,2,1"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
  assert refused.returncode == 2 and not (tmp_path / "sr2.nii.gz").exists()
  assert refused.stderr.splitlines() == [
      f"error: {lowres}: --scale/--target_voxel ask for factors 2,2,1, but {base} were trained "
      "for factors 1,1,4 (gaussian slices), linear placement; give a scan whose grid they "
      "fit, or weights trained for this one (mdcsrn-train --factors)"]


def todays_format(record: dict) -> dict:
  """A run record or card as written before the acquisition was recorded."""
  old = {name: value for name, value in record.items()
         if name not in ("acquisition", "factors", "slice_profile", "placement",
                         "model_arguments")}
  return {**old, "lr_mode": "zero_filled", "factor": 2, "plane_axes": [0, 1]}


def test_a_run_and_card_of_the_earlier_format_resume_and_load(small_real_dataset, tmp_path):
  workdir = tmp_path / "run"
  train(small_real_dataset, workdir, "--steps=2", "--checkpoint_every=2", "--placement=zero_filled")
  record_path = workdir / "config.json"
  record_path.write_text(json.dumps(todays_format(json.loads(record_path.read_text()))))
  base = weights.exported_generator(workdir)
  card = json.loads(open(base + weights.CARD_SUFFIX, encoding="utf-8").read())
  card = {**todays_format(card), "training": todays_format(card["training"])}
  del card["factor"], card["plane_axes"]  # a card kept them in "training" only
  with open(base + weights.CARD_SUFFIX, "w", encoding="utf-8") as file:
    json.dump(card, file)
  model, loaded = weights.load_generator(base)  # the checksum still holds
  assert loaded.acquisition == Acquisition(placement="zero_filled")
  # resumed with the flags of the paper-era flagfiles; today's spelling of another
  # placement is refused
  resumed = train(small_real_dataset, workdir, "--steps=3", "--lr_mode=zero_filled",
                  "--factor=2", "--plane_axes=0,1")
  assert "exported" in resumed.stdout and "after 3 steps" in resumed.stdout
  refused = subprocess.run([*SMOKE, f"--dataset={small_real_dataset}", f"--workdir={workdir}",
                            "--steps=5", "--factors=2,2,1"], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
  assert refused.returncode == 2
  assert refused.stderr.splitlines() == [
      f"error: {workdir}: holds a run of factors 2,2,1 (k-space), zero_filled placement, this "
      "one asks for factors 2,2,1 (k-space), linear placement; resume with the same "
      "acquisition or choose another --workdir"]
  assert model.count_params() > 0
