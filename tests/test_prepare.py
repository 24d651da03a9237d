"""Data set preparation (python -m mdcsrn_tf.data, data/dataset.py): layouts, validation report, split by subject."""
import json
import os
import random
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from mdcsrn_tf.data import dataset, manifest, samples
from mdcsrn_tf.evaluate import subjects

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD = np.asarray(nib.load(os.path.join(data_path, "anatomical.nii")).dataobj)


def run_prepare(*args):
  return subprocess.run([sys.executable, "-m", "mdcsrn_tf.data", *args], cwd=REPO,
                        capture_output=True, text=True, check=False)


def test_hcp_and_plain_layouts_with_bad_files_skipped_and_reported(tmp_path, write_nifti):
  source = tmp_path / "src"
  for subject, size in {"100307": 30, "100408": 29, "101915": 28}.items():
    (source / subject / "T1w").mkdir(parents=True)
    write_nifti(HEAD[:size], f"src/{subject}/{dataset.HCP_T1W}",
                affine=np.diag([0.7, 0.7, 0.7, 1.0]))
  write_nifti(HEAD, "src/plain.nii")
  (source / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
  write_nifti(np.stack([HEAD, HEAD], axis=-1), "src/series.nii.gz")
  write_nifti(HEAD[:, :, 12:13], "src/slice.nii.gz")  # one voxel thick
  write_nifti(HEAD[10:13, 10:13, 10:13], "src/cube3.nii.gz")
  microns = nib.Nifti1Image(HEAD, np.diag([700.0, 700.0, 700.0, 1.0]))
  microns.header.set_xyzt_units(xyz="micron")
  microns.to_filename(source / "microns.nii.gz")
  result = run_prepare("--src", str(source), "--out", str(tmp_path / "out"))
  assert result.returncode == 0, result.stderr
  skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
  assert len(skipped) == 4
  assert any("corrupt.nii.gz" in line for line in skipped)
  assert any("series.nii.gz" in line and "4D" in line for line in skipped)
  for name, size in (("slice", "33 x 41 x 1"), ("cube3", "3 x 3 x 3")):
    assert any(f"{name}.nii.gz: volume of {size} voxels is too small" in line
               for line in skipped), skipped
  written = json.loads((tmp_path / "out" / "manifest.json").read_text())
  entries = {entry["subject"]: entry for entry in written["subjects"]}
  assert sorted(entries) == ["100307", "100408", "101915", "microns", "plain"]
  assert entries["100307"]["path"].endswith("100307/T1w/T1w_acpc_dc_restore.nii.gz")
  assert entries["100408"]["shape"] == [29, 41, 25]
  assert entries["100408"]["zooms"] == pytest.approx([0.7, 0.7, 0.7])
  assert entries["microns"]["zooms"] == pytest.approx([0.7, 0.7, 0.7])  # in mm
  assert set(entry["split"] for entry in entries.values()) == set(manifest.SPLITS)
  # the manifest is there now: a second prepare into the folder is refused, unless asked
  again = run_prepare("--src", str(source), "--out", str(tmp_path / "out"))
  assert again.returncode == 2 and again.stderr.splitlines() == [
      f"error: {tmp_path / 'out' / 'manifest.json'}: exists already (and 1 more); pass "
      "--replace to replace, or choose another --out"]
  assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == written
  assert run_prepare("--src", str(source), "--out", str(tmp_path / "out"),
                     "--replace").returncode == 0


def test_split_has_paper_proportions_and_depends_only_on_the_subject_set():
  ids = [f"{100000 + 17 * i}" for i in range(1113)]
  splits = dataset.assign_splits(ids)
  counts = {split: list(splits.values()).count(split) for split in manifest.SPLITS}
  assert counts == dataset.PAPER_COUNTS
  shuffled = ids[:]
  random.Random(0).shuffle(shuffled)
  assert dataset.assign_splits(shuffled) == splits
  assert dataset.split_counts(1) == {"validation": 0, "test": 0, "evaluation": 0, "train": 1}
  assert dataset.split_counts(2)["validation"] == 1 and dataset.split_counts(2)["train"] == 1


def test_bad_source_gives_one_line_and_exit_2(tmp_path):
  result = run_prepare("--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nowhere'}: no such folder"]
  assert not (tmp_path / "out").exists()


def test_all_volumes_bad_is_an_error(tmp_path):
  (tmp_path / "src").mkdir()
  (tmp_path / "src" / "a.nii").write_bytes(b"garbage")
  with pytest.raises(dataset.InputError, match="none of the 1 volumes is usable"):
    dataset.prepare_folder(str(tmp_path / "src"), str(tmp_path / "out"), log=lambda _: None)


def test_demo_dataset_holds_three_real_heads_out_for_testing(tmp_path, sample):
  for name in ("colin27_1mm", "pycortex_s1", "brainbrowser_structural1"):
    sample(name)
  written = dataset.prepare_samples(str(tmp_path), log=lambda _: None)
  by_split = {split: [e for e in written["subjects"] if e["split"] == split]
              for split in manifest.SPLITS}
  assert [e["name"] for e in by_split["test"]] == [
      "colin27_1mm", "pycortex_s1", "brainbrowser_structural1"]
  assert {e["subject"] for e in by_split["test"]} == set(samples.TEST_SUBJECTS)
  # its brain mask, from the same package, on its grid; no other volume has one
  assert by_split["test"][0]["mask"] == sample("colin27_1mm_bet")
  assert [e["name"] for e in written["subjects"] if "mask" in e] == ["colin27_1mm"]
  test_subject = subjects.manifest_subjects(tmp_path, "test")[0]
  hr, brain = test_subject.load()
  assert test_subject.masked and brain.shape == hr.shape and 0.2 < brain.mean() < 0.3
  assert all(e["subject"] not in samples.TEST_SUBJECTS
             for split in ("train", "validation") for e in by_split[split])
  assert by_split["train"]


def test_hcp_tree_report_masks_and_split_list(tmp_path, write_nifti):
  source = tmp_path / "HCP"
  mask = (HEAD > np.percentile(HEAD, 60)).astype(np.uint8)
  for subject in ("100206", "100307", "100408"):
    (source / subject / "T1w").mkdir(parents=True)
    write_nifti(HEAD, f"HCP/{subject}/{dataset.HCP_T1W}")
  write_nifti(mask, f"HCP/100206/{dataset.HCP_MASK}")
  write_nifti(mask[:20], f"HCP/100307/{dataset.HCP_MASK}")  # not on the scan's grid
  (source / "100610" / "T1w").mkdir(parents=True)  # empty T1w folder
  (source / "100711").mkdir()  # no T1w folder
  (source / "101006" / "T1w").mkdir(parents=True)
  (source / "101006" / "T1w" / "T1w.nii.gz").write_bytes(b"")  # not the file HCP names
  (source / "101107" / "T1w").mkdir(parents=True)
  (source / "101107" / dataset.HCP_T1W).write_bytes(b"\x1f\x8b truncated")  # unreadable
  result = run_prepare("--src", str(source), "--out", str(tmp_path / "out"))
  assert result.returncode == 0, result.stderr
  lines = result.stderr.strip().splitlines()
  t1w = dataset.HCP_T1W
  assert lines[:4] == [
      f"skipped: {source / '100610'}: missing {t1w} (its T1w folder is empty)",
      f"skipped: {source / '100711'}: missing {t1w} (has no T1w folder)",
      f"skipped: {source / '101006'}: missing {t1w} (its T1w folder holds no "
      "T1w_acpc_dc_restore.nii.gz)",
      f"warning: {source / '100307' / dataset.HCP_MASK}: mask of 20 x 41 x 25 voxels is not on "
      f"the grid of {source / '100307' / t1w} (33 x 41 x 25); 100307 is left without a brain "
      "mask"]
  assert lines[4].startswith(f"skipped: {source / '101107' / t1w}: ")
  assert lines[5:] == [f"{source}: 7 entries seen, 4 volumes found, 3 used (1 with a brain "
                       "mask), 4 not used"]
  written = json.loads((tmp_path / "out" / "manifest.json").read_text())
  entries = {entry["subject"]: entry for entry in written["subjects"]}
  assert entries["100206"]["mask"] == str(source / "100206" / dataset.HCP_MASK)
  assert "mask" not in entries["100307"] and "mask" not in entries["100408"]
  # the split list beside the manifest says the same as the manifest
  rows = [line.split("\t") for line in
          (tmp_path / "out" / manifest.SPLITS_FILE).read_text().splitlines()]
  assert rows[0] == ["subject", "split", "path", "mask"]
  assert sorted(rows[1:]) == sorted([e["subject"], e["split"], e["path"], e.get("mask", "")]
                                    for e in entries.values())
  assert result.stdout.strip().endswith(f"the subject of each split in "
                                        f"{tmp_path / 'out' / manifest.SPLITS_FILE}")
  without = run_prepare("--src", str(source), "--out", str(tmp_path / "plain"), "--nobrain_masks")
  assert without.returncode == 0, without.stderr
  assert "0 with a brain mask, masks off" in without.stderr
  assert not any("mask" in e for e in json.loads(
      (tmp_path / "plain" / "manifest.json").read_text())["subjects"])


def test_a_bids_style_brain_mask_beside_a_plain_file_is_its_mask(tmp_path, write_nifti):
  (tmp_path / "src").mkdir()
  write_nifti(HEAD, "src/sub-01_T1w.nii.gz")
  write_nifti(HEAD, "src/sub-02_T1w.nii.gz")
  write_nifti((HEAD > 0).astype(np.uint8), "src/sub-01_desc-brain_mask.nii.gz")
  written = dataset.prepare_folder(str(tmp_path / "src"), str(tmp_path / "out"),
                                   log=lambda _: None)
  assert {e["subject"]: e.get("mask") for e in written["subjects"]} == {
      "sub-01_T1w": str(tmp_path / "src" / "sub-01_desc-brain_mask.nii.gz"), "sub-02_T1w": None}


def test_a_header_nibabel_repairs_loads_with_one_warning_naming_the_file(tmp_path, capsys):
  """sizeof_hdr must be 348 in NIfTI-1; nibabel repairs another value (here 340) while
  loading and would print that bare on stderr: it comes as one warning naming the file,
  and the voxels are the ones written."""
  from mdcsrn_tf.data import nifti  # pylint: disable=import-outside-toplevel

  voxels = np.arange(7 * 8 * 9, dtype=np.float32).reshape(7, 8, 9)
  path = tmp_path / "odd_header.nii"
  nib.Nifti1Image(voxels, np.eye(4)).to_filename(path)
  with open(path, "r+b") as file:
    file.write(np.int32(340).astype("<i4").tobytes())
  loaded, _ = nifti.load_volume(path)
  np.testing.assert_array_equal(loaded, voxels)
  lines = capsys.readouterr().err.splitlines()
  assert lines == [f"warning: {path}: NIfTI header: sizeof_hdr should be 348; "
                   "set sizeof_hdr to 348"]
