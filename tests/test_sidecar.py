"""mdcsrn-sr's JSON sidecars (OUTPUT.json beside each output and uncertainty map): what they
record, checked against the files themselves (the input's and the weights' bytes, the
card, the grids), and the rule they follow: never another output's path nor an input's own
sidecar, an earlier one replaced only with --overwrite, nothing written on a refusal."""
import hashlib
import json
import os

import nibabel as nib
import pytest

import mdcsrn_tf
from command_cases import run_in_process
from mdcsrn_tf import weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import outputs


def sha256_of(path) -> str:
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


def nibabel_head(folder):
  """nibabel's anatomical.nii (a 2 mm head, 33 x 41 x 25): outside the shipped weights'
  training domain (sharper), so its sidecar has a finding to record."""
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel

  folder.mkdir(parents=True, exist_ok=True)
  path = folder / "anatomical.nii"
  path.write_bytes(open(f"{data_path}/anatomical.nii", "rb").read())
  return str(path)


def test_each_output_has_a_sidecar_of_what_made_it_and_how_far_to_trust_it(
    tmp_path, monkeypatch, capsys):
  scan, out = nibabel_head(tmp_path / "in"), tmp_path / "out"
  status, lines, _ = run_in_process("predict", [scan, "--out_dir", str(out), "--tta", "2",
                                                "--tile", "32"], monkeypatch, capsys)
  assert status == 0, lines
  # a 2 mm head of 33 x 41 x 25 voxels: at least sharper than any default's training input
  assert lines and all(line.startswith(f"warning: {scan}: ") for line in lines)
  assert any(line.startswith(f"warning: {scan}: sharper or noisier") for line in lines)
  assert sorted(os.listdir(out)) == ["anatomical_sr.json", "anatomical_sr.nii",
                                     "anatomical_sr_uncertainty.json",
                                     "anatomical_sr_uncertainty.nii"]
  sidecar = json.loads((out / "anatomical_sr.json").read_text(encoding="utf-8"))
  base = weights.default_weights("l1")
  card = json.load(open(base + weights.CARD_SUFFIX, encoding="utf-8"))
  assert sidecar["SourceFile"] == scan and sidecar["SourceSHA256"] == sha256_of(scan)
  assert sidecar["GeneratedBy"] == {"Name": "mdcsrn-tf", "Version": mdcsrn_tf.__version__}
  assert sidecar["Weights"]["file"] == base + weights.WEIGHTS_SUFFIX
  assert sidecar["Weights"]["sha256"] == sha256_of(base + weights.WEIGHTS_SUFFIX)
  assert sidecar["Weights"]["model"] == card["model"] == "b4u4"
  assert (sidecar["Weights"]["shipped_set"], sidecar["Weights"]["keeps_measured_band"]) == (
      card["shipped_set"], card["keeps_measured_band"])
  assert sidecar["Acquisition"] == card["acquisition"]
  assert sidecar["Settings"] == {"scale": None, "target_voxel": None, "tile": "32",
                                 "margin": 3, "tta": 2}
  assert sidecar["TrainingDomain"] == [line[len("warning: "):] for line in lines]
  output = nib.load(out / "anatomical_sr.nii")
  assert sidecar["GridChange"]["input"]["shape"] == [33, 41, 25] == list(output.shape)
  assert sidecar["TestTimeAugmentation"]["Uncertainty"] == "anatomical_sr_uncertainty.nii"
  assert "--tta 2 --tile 32" in sidecar["CommandLine"]
  spread = json.loads((out / "anatomical_sr_uncertainty.json").read_text(encoding="utf-8"))
  assert spread["Passes"] == 2 and spread["SourceFile"] == scan
  assert "whose mean is anatomical_sr.nii" in spread["Description"]


def test_a_sidecar_never_replaces_an_inputs_own_nor_an_earlier_one_unasked(
    tmp_path, monkeypatch, capsys, write_nifti):
  scan = str(write_nifti(nib.load(nibabel_head(tmp_path)).get_fdata(), "scan.nii.gz"))
  own = tmp_path / "scan.json"  # the scan's BIDS sidecar, beside it
  own.write_text('{"RepetitionTime": 2.3}\n', encoding="utf-8")
  status, lines, _ = run_in_process("predict", [scan, str(tmp_path / "scan.nii"),
                                                "--overwrite"], monkeypatch, capsys)
  assert status == 2 and lines == [
      f"error: {own}: the sidecar of {tmp_path / 'scan.nii'} would replace the sidecar of the "
      f"input {scan}; name the output apart from its input"]
  assert own.read_text(encoding="utf-8") == '{"RepetitionTime": 2.3}\n'
  assert sorted(os.listdir(tmp_path)) == ["anatomical.nii", "scan.json", "scan.nii.gz"]
  stale = tmp_path / "sr.json"  # an earlier run's, whose image is gone
  stale.write_text("{}\n", encoding="utf-8")
  status, lines, _ = run_in_process("predict", [scan, str(tmp_path / "sr.nii.gz")],
                                    monkeypatch, capsys)
  assert status == 2 and lines == [f"error: {stale}: exists already; pass --overwrite to "
                                   "replace, or name another OUTPUT"]
  assert stale.read_text(encoding="utf-8") == "{}\n"


def test_sidecars_of_two_outputs_that_are_one_file_are_refused(tmp_path):
  """Outputs named apart that one folder link makes one sidecar (out/a -> out/b)."""
  (tmp_path / "b").mkdir()
  (tmp_path / "a").symlink_to(tmp_path / "b")
  pairs = [("x.nii", str(tmp_path / "a" / "x_sr.nii")),
           ("y/x.nii.gz", str(tmp_path / "b" / "x_sr.nii.gz"))]
  with pytest.raises(InputError, match=r"x_sr.json: the sidecar of .*b/x_sr.nii.gz would also "
                                       r"be .*a/x_sr.json, written by this run"):
    outputs.plan_sidecars(pairs)
  assert outputs.plan_sidecars(pairs[:1], [str(tmp_path / "report.html")]) == {
      pairs[0][1]: str(tmp_path / "a" / "x_sr.json")}
