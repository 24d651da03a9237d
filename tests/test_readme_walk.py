"""README's HCP workflow, command by command, as a researcher runs it: read from README.md
itself, run from a working directory outside the repository, on a ten-subject tree in
HCP's layout made from nibabel's real 33x41x25 head (each subject with HCP's
brainmask_fs.nii.gz). The full recipes become the smoke ones (flags/smoke_*.cfg: the same
code paths in seconds); every path and every other flag is README's. A documented command,
flagfile or path that stops working fails here.
"""
import csv
import json
import os
import importlib
import re
import shlex
import sys

import nibabel as nib
import numpy as np
import pytest
import tensorflow as tf
from nibabel.testing import data_path
from tensorboard.backend.event_processing import event_accumulator

from mdcsrn_tf import weights

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = "## Your HCP data, end to end"
SMOKE = {"flags/pretrain.cfg": "flags/smoke_pretrain.cfg", "flags/gan.cfg": "flags/smoke_gan.cfg"}
SUBJECTS = [str(100206 + 101 * i) for i in range(10)]


def readme_commands() -> list:
  """The command lines of the sh block under SECTION, continuation lines joined."""
  text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
  block = re.search(re.escape(SECTION) + r".*?```sh\n(.*?)```", text, re.S).group(1)
  joined = block.replace("\\\n", " ")
  return [line.strip() for line in joined.splitlines()
          if line.strip() and not line.strip().startswith("#")]


def console_scripts() -> dict:
  """{console script: package} from setup.py's entry points."""
  setup = open(os.path.join(REPO, "setup.py"), encoding="utf-8").read()
  return {name: module.rsplit(".", 1)[0]
          for name, module in re.findall(r'"(mdcsrn-[a-z]+)=([\w.]+):run"', setup)}


def hcp_tree(root):
  """ROOT/<subject>/T1w/{T1w_acpc_dc_restore,brainmask_fs}.nii.gz for SUBJECTS."""
  image = nib.load(os.path.join(data_path, "anatomical.nii"))
  head = np.asarray(image.dataobj, np.float32)
  for index, subject in enumerate(SUBJECTS):
    folder = root / subject / "T1w"
    folder.mkdir(parents=True)
    scan = np.roll(head, index - 5, axis=1) * (0.8 + 0.05 * index)  # ten different heads
    nib.Nifti1Image(scan, image.affine).to_filename(folder / "T1w_acpc_dc_restore.nii.gz")
    brain = (scan > np.percentile(scan, 55)).astype(np.uint8)
    nib.Nifti1Image(brain, image.affine).to_filename(folder / "brainmask_fs.nii.gz")


def summaries(logs) -> tuple:
  """({scalar tag: [(step, value)]} as every event reader sees them, {tag: tensor} of the
  rest as TensorBoard's tensor loader does) of a run's logs folder."""
  accumulator = event_accumulator.EventAccumulator(str(logs))
  accumulator.Reload()
  scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
             for tag in accumulator.Tags()["scalars"]}
  others = {}
  for event in tf.compat.v1.train.summary_iterator(str(next(logs.glob("events.*")))):
    for value in event.summary.value:
      if value.HasField("tensor"):
        others[value.tag] = tf.make_ndarray(value.tensor)
  return scalars, others


def check_gan_run(workdir):
  """The GAN stage's card and what TensorBoard shows of it: the critic's terms, the
  learning rates, validation against its marks (once, at the first step), and the
  LR | SR | HR image."""
  card = weights.read_card(weights.exported_generator(str(workdir)))
  flagfile = open(os.path.join(REPO, SMOKE["flags/gan.cfg"]), encoding="utf-8").read()
  assert card.phase == "gan" and card.steps == int(re.search(r"--steps=(\d+)", flagfile)[1])
  assert np.isfinite(card.validation["psnr"])
  scalars, others = summaries(workdir / "logs")
  penalty = [value for _, value in scalars["critic/gradient_penalty"]]
  assert penalty and np.all(np.isfinite(penalty))
  assert scalars["generator/l1"] and "critic/wasserstein" in scalars
  assert "validation/psnr" in scalars and "learning_rate/critic" in scalars
  assert [step for step, _ in scalars["validation_bicubic/psnr"]] == [0]
  assert len(scalars["validation_input/psnr"]) == 1
  assert others["validation/lr_sr_hr"].shape == (3,)  # width, height and one PNG


def run_command(line, places, monkeypatch):
  """Runs one README line in this process (as its console script or `python -m` would),
  with README's /data paths at `places`; returns the exit status."""
  for documented, here in places.items():
    line = line.replace(documented, here)
  words = shlex.split(line)
  if words[0].endswith("/python"):
    assert words[1] == "-m", line
    module, arguments = words[2], words[3:]
  else:
    module, arguments = console_scripts()[os.path.basename(words[0])], words[1:]
  monkeypatch.setattr(sys, "argv", [module] + arguments)
  with pytest.raises(SystemExit) as exit_status:
    importlib.import_module(module + ".__main__").run()  # what the console script calls
  return exit_status.value.code


def test_readme_hcp_workflow_runs_from_another_working_directory(tmp_path, monkeypatch,
                                                                 capsys):
  hcp_tree(tmp_path / "HCP")
  work = tmp_path / "project"
  work.mkdir()
  monkeypatch.chdir(work)
  monkeypatch.setenv("MDCSRN_CACHE_DIR", str(tmp_path / "cache"))
  places = {"/data/HCP": str(tmp_path / "HCP"), "/data/hcp_sr": str(tmp_path / "sr"), **SMOKE}
  commands = readme_commands()
  modules = [re.search(r"-m (\S+)|(mdcsrn-\w+)", c).group(0).split()[-1] for c in commands]
  assert modules == ["mdcsrn_tf.data", "mdcsrn_tf.train", "mdcsrn_tf.train",
                     "mdcsrn_tf.evaluate", "mdcsrn-sr", "mdcsrn_tf.export"]
  for line in commands:
    assert run_command(line, places, monkeypatch) == 0, (line, capsys.readouterr())

  out, err = capsys.readouterr()
  dataset = work / "data" / "hcp"  # README's data/hcp, read from the working directory
  written = json.loads((dataset / "manifest.json").read_text())["subjects"]
  assert sorted(e["subject"] for e in written) == SUBJECTS
  assert all(e["mask"].endswith("/T1w/brainmask_fs.nii.gz") for e in written)
  assert f"{tmp_path / 'HCP'}: 10 entries seen, 10 volumes found, 10 used (10 with a brain " \
         "mask), 0 not used" in err
  assert len((dataset / "splits.tsv").read_text().splitlines()) == 11
  for workdir in ("runs/b4u4", "runs/b4u4_gan"):
    assert (work / workdir / "export" / "generator.weights.h5").is_file(), workdir
  check_gan_run(work / "runs" / "b4u4_gan")
  (test,) = [e["subject"] for e in written if e["split"] == "test"]
  with open(work / "runs" / "eval_hcp" / "per_subject.csv", newline="") as file:
    rows = list(csv.DictReader(file))
  assert [(row["subject"], row["method"]) for row in rows] == [
      (test, method) for method in ("linear", "cubic", "zero_filled", "b4u4", "b4u4_gan")]
  assert all(float(row["psnr_mask"]) > 0 for row in rows)  # inside HCP's brain mask
  assert f"wrote {os.path.join('runs/eval_hcp', 'per_subject.csv')}" in out
  assert sorted(os.listdir(tmp_path / "sr")) == sorted(  # each output with its sidecar
      f"{s}_sr{suffix}" for s in SUBJECTS for suffix in (".nii.gz", ".json"))
  assert (work / "serving" / "1" / "saved_model.pb").is_file()
