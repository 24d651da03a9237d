"""`mdcsrn-bids` on a small real BIDS dataset (conftest.bids_tree): the derivatives layout and
dataset_description.json, the sidecars against the files themselves, the outputs equal to
mdcsrn-sr's, label filtering, and reruns that skip what is done."""
import hashlib
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import mdcsrn_tf
from mdcsrn_tf import weights
from mdcsrn_tf.bids.app import BidsOptions, run_app
from mdcsrn_tf.infer import predict

SCALE = (2.0, 2.0, 1.0)  # a grid change, so that the sidecars have one to record
EXPECTED = {  # BIDS Derivatives: source entities kept, desc-<label> before the suffix
    "dataset_description.json", "sub-01.html", "sub-02.html",
    "sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.nii.gz",
    "sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.json",
    "sub-01/ses-b/anat/sub-01_ses-b_run-1_desc-mdcsrn_T1w.nii.gz",
    "sub-01/ses-b/anat/sub-01_ses-b_run-1_desc-mdcsrn_T1w.json",
    "sub-02/anat/sub-02_desc-mdcsrn_T1w.nii.gz", "sub-02/anat/sub-02_desc-mdcsrn_T1w.json"}


def files_under(root) -> dict:
  """{relative path: (size, mtime_ns)} of every file under root."""
  found = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      found[os.path.relpath(path, root)] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
  return found


def run_command(*args):
  return subprocess.run([sys.executable, "-m", "mdcsrn_tf.bids", *map(str, args)],
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def derivatives(bids_tree, tmp_path_factory):
  """(dataset, derivatives folder) after one run of the command over every participant."""
  root = tmp_path_factory.mktemp("bids_app")
  dataset = bids_tree(root / "raw")
  out = root / "raw" / "derivatives" / "mdcsrn"  # derivatives/ is made, as BIDS places it
  result = run_command(dataset, out, "participant", "--participant_label", "01", "sub-02",
                       "--scale=2,2,1")
  assert result.returncode == 0, result.stderr
  return dataset, out


def test_derivatives_dataset_layout_and_description(derivatives):
  _, out = derivatives
  assert set(files_under(out)) == EXPECTED
  description = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
  assert description["DatasetType"] == "derivative"
  generated = description["GeneratedBy"][0]
  shipped = weights.shipped()["l1"] + weights.WEIGHTS_SUFFIX
  assert generated["Name"] == "mdcsrn-tf" and generated["Version"] == mdcsrn_tf.__version__
  assert generated["WeightsSHA256"] == hashlib.sha256(open(shipped, "rb").read()).hexdigest()


def test_sidecar_names_source_weights_acquisition_grid_and_command(derivatives):
  dataset, out = derivatives
  stem = out / "sub-02" / "anat" / "sub-02_desc-mdcsrn_T1w"
  sidecar = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
  source = os.path.join(dataset, "sub-02", "anat", "sub-02_T1w.nii")
  assert sidecar["Sources"] == ["bids:raw:sub-02/anat/sub-02_T1w.nii"]
  assert sidecar["SourceFile"] == source
  assert sidecar["SourceSHA256"] == hashlib.sha256(open(source, "rb").read()).hexdigest()
  assert sidecar["Settings"] == {"scale": list(SCALE), "target_voxel": None, "tile": "auto",
                                 "margin": 3, "memory_limit": None}
  card = json.load(open(weights.shipped()["l1"] + weights.CARD_SUFFIX, encoding="utf-8"))
  assert sidecar["Weights"]["sha256"] == card["weights_sha256"]
  assert sidecar["Acquisition"] == card["acquisition"]
  output = nib.load(str(stem) + ".nii.gz")
  change = sidecar["GridChange"]
  assert change["input"]["shape"] == [33, 41, 25] and change["input"]["voxel_mm"] == [2, 2, 2]
  assert change["output"]["shape"] == list(output.shape) == [66, 82, 25]
  assert change["output"]["voxel_mm"] == [float(z) for z in output.header.get_zooms()]
  assert change["factors"] == list(SCALE)
  assert "participant --participant_label 01 sub-02 --scale=2,2,1" in sidecar["CommandLine"]


def test_outputs_are_mdcsrn_srs(derivatives, tmp_path):
  """The app runs the library of mdcsrn-sr: the same settings give the same voxels."""
  dataset, out = derivatives
  source = os.path.join(dataset, "sub-01", "ses-b", "anat", "sub-01_ses-b_run-1_T1w.nii.gz")
  expected = tmp_path / "sr.nii.gz"
  predict.super_resolve_files(predict.PredictOptions(scale=SCALE), [source, expected])
  produced = out / "sub-01" / "ses-b" / "anat" / "sub-01_ses-b_run-1_desc-mdcsrn_T1w.nii.gz"
  produced_voxels, expected_voxels = (nib.load(p).get_fdata() for p in (produced, expected))
  # the same arithmetic in two processes: only a different split of the sums between
  # threads could move a voxel, by round-off (float32: 1e-7 of the sums' size per step)
  np.testing.assert_allclose(produced_voxels, expected_voxels, rtol=0,
                             atol=1e-5 * expected_voxels.max())
  np.testing.assert_array_equal(nib.load(produced).affine, nib.load(expected).affine)


def test_rerun_skips_finished_participants_and_completes_an_interrupted_one(derivatives):
  dataset, out = derivatives
  before = files_under(out)
  os.remove(out / "sub-02.html")  # as if the run had stopped before sub-02's report
  result = run_command(dataset, out, "participant", "--scale=2,2,1")
  assert result.returncode == 0, result.stderr
  assert "sub-01: done already, skipped" in result.stderr
  after = files_under(out)
  assert set(after) == EXPECTED
  assert {k: v for k, v in after.items() if k != "sub-02.html"} == {
      k: v for k, v in before.items() if k != "sub-02.html"}  # nothing else rewritten


def test_labels_select_participants_and_sessions(bids_tree, tmp_path):
  dataset = bids_tree(tmp_path / "raw")
  options = BidsOptions(participant_label=("sub-01",), session_label=("b",), report=False)
  logged = []
  assert run_app(options, [dataset, tmp_path / "one", "participant"],
                 log=lambda *a, **k: logged.append(a[0])) == ["01"]
  assert set(files_under(tmp_path / "one")) == {
      "dataset_description.json",
      "sub-01/ses-b/anat/sub-01_ses-b_run-1_desc-mdcsrn_T1w.nii.gz",
      "sub-01/ses-b/anat/sub-01_ses-b_run-1_desc-mdcsrn_T1w.json"}
  # a session filter alone passes over participants without that session
  only_a = BidsOptions(session_label=("ses-a",), report=False)
  assert run_app(only_a, [dataset, tmp_path / "two", "participant"],
                 log=lambda *a, **k: None) == ["01"]
  assert sorted(files_under(tmp_path / "two")) == [
      "dataset_description.json", "sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.json",
      "sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.nii.gz"]


def test_sessions_run_apart_share_one_report_and_one_set_of_settings(bids_tree, tmp_path):
  """A job per session into one folder: the participant's report covers every session done
  so far, not the last job's alone; a job with flags that change the voxels (here the
  tiling) is refused, as one with other weights is."""
  from mdcsrn_tf.errors import InputError  # pylint: disable=import-outside-toplevel

  dataset, out = bids_tree(tmp_path / "raw"), tmp_path / "raw" / "derivatives" / "mdcsrn"
  quiet = {"log": lambda *a, **k: None}
  for session in ("a", "b"):
    options = BidsOptions(participant_label=("01",), session_label=(session,))
    assert run_app(options, [dataset, out, "participant"], **quiet) == ["01"]
  report = (out / "sub-01.html").read_text(encoding="utf-8")
  assert "sub-01_ses-a_T1w.nii.gz" in report and "sub-01_ses-b_run-1_T1w.nii.gz" in report
  description = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
  assert description["GeneratedBy"][0]["Settings"] == {
      "scale": None, "target_voxel": None, "tile": "auto", "margin": 3, "memory_limit": None}
  before = files_under(out)
  paper_tiles = BidsOptions(participant_label=("02",), tile="64")
  with pytest.raises(InputError, match=r"holds derivatives made with other settings "
                                       r"\(--tile auto there, 64 now\)"):
    run_app(paper_tiles, [dataset, out, "participant"], **quiet)
  assert files_under(out) == before


def test_an_image_in_two_files_is_refused_naming_both(bids_tree, tmp_path):
  """x_T1w.nii beside x_T1w.nii.gz: both would write one output; neither is chosen."""
  from mdcsrn_tf.errors import InputError  # pylint: disable=import-outside-toplevel

  dataset = tmp_path / "raw"
  bids_tree(dataset)
  anat = dataset / "sub-02" / "anat"
  nib.save(nib.load(anat / "sub-02_T1w.nii"), anat / "sub-02_T1w.nii.gz")
  with pytest.raises(InputError) as raised:
    run_app(BidsOptions(), [dataset, tmp_path / "out", "participant"], log=lambda *a, **k: None)
  assert str(raised.value) == (f"{anat / 'sub-02_T1w.nii'}: the same image as "
                               f"{anat / 'sub-02_T1w.nii.gz'} (one name, two files); keep one "
                               "of them")
  assert not (tmp_path / "out").exists()


def test_of_two_jobs_making_one_folder_the_first_description_stays_and_binds_the_other(
    bids_tree, tmp_path):
  """Two jobs, other weights, one new folder: both find no description and go on; the first
  to write it keeps it (an exclusive create, not a rename over it), and the second, which
  checks the folder again after its own attempt, is refused before it writes an image."""
  from mdcsrn_tf.bids import derivatives  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.errors import InputError  # pylint: disable=import-outside-toplevel

  dataset, out = bids_tree(tmp_path / "raw"), tmp_path / "raw" / "derivatives" / "mdcsrn"
  out.mkdir(parents=True)
  settings = {"scale": None, "target_voxel": None, "tile": "auto", "margin": 3,
              "memory_limit": None}
  first = {"model": "b4u4", "file": "b4u4_l1.weights.h5", "sha256": "a" * 64}
  second = {**first, "sha256": "b" * 64}
  from mdcsrn_tf import files  # pylint: disable=import-outside-toplevel

  derivatives.write_description(out, first, settings)
  written = (out / "dataset_description.json").read_bytes()
  derivatives.write_description(out, second, settings)
  # what the second job's write meets when it passed its check before the first one wrote
  with pytest.raises(FileExistsError):
    files.write_text_atomically(out / "dataset_description.json", "{}", exclusive=True)
  assert (out / "dataset_description.json").read_bytes() == written
  assert os.listdir(out) == ["dataset_description.json"]  # no temporary left behind
  with pytest.raises(InputError, match="holds derivatives of other weights"):
    derivatives.check_output_dir(out, dataset, second["sha256"], settings)
