"""Shared fixtures: the real sample volumes, small real data sets, temporary NIfTI files.

A test that needs a sample volume asks `sample(name)`: where the volume is missing it skips
with the command that installs it, except under CI (CI=true), where a missing volume fails
the test, and any skipped test fails the run: CI must never pass a hollow suite.
"""
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite's degraded-volume and engine caches are its own, never the user's ~/.cache
# (subprocesses inherit them); one folder per test process, removed with the process's
# temporary files.
if "MDCSRN_CACHE_DIR" not in os.environ:
  import tempfile  # pylint: disable=import-outside-toplevel

  _CACHE = tempfile.mkdtemp(prefix="mdcsrn-test-cache-")
  os.environ["MDCSRN_CACHE_DIR"] = os.path.join(_CACHE, "degraded")
  os.environ.setdefault("MDCSRN_ENGINE_CACHE", os.path.join(_CACHE, "engines"))

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture
def write_nifti(tmp_path):
  """Writes an array as NIfTI under tmp_path and returns the path."""

  def write(array, name="volume.nii.gz", affine=None, dtype=None):
    array = np.asarray(array)
    image = nib.Nifti1Image(array.astype(dtype or array.dtype),
                            np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine)
    path = tmp_path / name
    image.to_filename(path)
    return path

  return write


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def small_real_dataset(tmp_path_factory):
  """A data set of nibabel's real 33x41x25 T1 head four times, moved by 0 to 3 voxels
  along its second axis so that no two are one file (a manifest refuses one file in two
  splits), prepared by the prepare command (one subject per split): the path of its
  manifest.json."""
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel

  root = tmp_path_factory.mktemp("small_real_dataset")
  source = root / "source"
  source.mkdir()
  head = nib.load(os.path.join(data_path, "anatomical.nii"))
  for index, name in enumerate(("s1", "s2", "s3", "s4")):
    moved = np.roll(np.asarray(head.dataobj), index, axis=1)
    nib.Nifti1Image(moved, head.affine, head.header).to_filename(source / f"{name}.nii")
  out = root / "prepared"
  subprocess.run([sys.executable, "-m", "mdcsrn_tf.data", "--src", str(source),
                  "--out", str(out)], cwd=REPO, check=True, capture_output=True)
  return str(out / "manifest.json")


UNDER_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")


def sample_path(name):
  """The installed sample volume `name`; skips, or under CI fails, when it is missing."""
  from mdcsrn_tf.data import samples  # pylint: disable=import-outside-toplevel

  path = samples.find(name)
  if path is None:
    message = f"sample {name} is not installed: {samples.install_hint(samples.get(name))}"
    if UNDER_CI:
      pytest.fail(f"{message} (under CI a missing sample fails the suite)")
    pytest.skip(message)
  return path


@pytest.fixture(scope="session")
def sample():
  return sample_path


# make test hands whole modules to its xdist workers (--dist loadfile: each module-scoped
# fixture is built once), in collection order. The modules with the most work
# (pytest --durations) go first, so that the light ones left at the end keep both workers
# busy until the last heavy one finishes.
HEAVIEST_FIRST = ("test_train.py", "test_train_resume.py", "test_train_resources.py",
                  "test_gpu_session.py", "test_predict.py", "test_predict_outputs.py",
                  "test_readme_walk.py", "test_thick_slices.py", "test_export.py",
                  "test_bad_input.py", "test_notebooks.py", "test_train_steps.py",
                  "test_multi_worker_resume.py")


def pytest_collection_modifyitems(items):
  rank = {name: index for index, name in enumerate(HEAVIEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_sessionfinish(session, exitstatus):
  reporter = session.config.pluginmanager.get_plugin("terminalreporter")
  skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
  if UNDER_CI and skipped and exitstatus == 0:
    reporter.write_line(f"error: {skipped} tests skipped; under CI every test must run")
    session.exitstatus = 1


@pytest.fixture(scope="session")
def colin27():
  """The real Colin27 head (mricron-data, 1 mm, sform only) as a nibabel image."""
  return nib.load(sample_path("colin27_1mm"))


@pytest.fixture(scope="session")
def colin27_crop(colin27):
  """Writes a crop of the real Colin27 head, its header and geometry kept (the affine moved
  to the crop's corner), and returns the path."""

  def write(path, shape=(37, 45, 29), start=(70, 90, 70)):
    box = tuple(slice(s, s + n) for s, n in zip(start, shape))
    to_head = np.eye(4)
    to_head[:3, 3] = start
    nib.Nifti1Image(np.asarray(colin27.dataobj)[box], colin27.affine @ to_head,
                    colin27.header).to_filename(path)
    return path

  return write


@pytest.fixture(scope="session")
def bids_tree(colin27_crop):
  """Writes a small real BIDS dataset under a folder and returns its path: sub-01 with two
  sessions (Colin27 crops: ses-a, and ses-b with a run entity), sub-02 without sessions
  (nibabel's anatomical.nii, 2 mm), plus files the app must pass over (a T2w image, a
  hidden leftover, a sidecar)."""
  import json  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel

  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel

  def write(root):
    root = Path(root)
    anat = {"a": root / "sub-01" / "ses-a" / "anat", "b": root / "sub-01" / "ses-b" / "anat",
            "02": root / "sub-02" / "anat"}
    for folder in anat.values():
      folder.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "tiny", "BIDSVersion": "1.9.0"}), encoding="utf-8")
    colin27_crop(anat["a"] / "sub-01_ses-a_T1w.nii.gz")
    colin27_crop(anat["b"] / "sub-01_ses-b_run-1_T1w.nii.gz", shape=(25, 29, 21),
                 start=(78, 98, 64))
    (anat["b"] / "sub-01_ses-b_run-1_T1w.json").write_text("{}", encoding="utf-8")
    shutil.copy(os.path.join(data_path, "anatomical.nii"), anat["02"] / "sub-02_T1w.nii")
    shutil.copy(os.path.join(data_path, "anatomical.nii"), anat["02"] / "sub-02_T2w.nii")
    (anat["02"] / ".sub-02_T1w.nii.x1.tmp.nii").write_bytes(b"")
    return str(root)

  return write


@pytest.fixture(scope="session")
def generator_weights(tmp_path_factory):
  """Exported weights of a b2u4 with random (seeded) weights: inference runs them exactly
  as trained ones, and tests need no training."""
  import keras  # pylint: disable=import-outside-toplevel

  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.models import build_model  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.weights.card import ModelCard  # pylint: disable=import-outside-toplevel

  keras.utils.set_random_seed(5)
  random_b2u4 = build_model("b2u4", identity_init=False)
  return weights.save_generator(random_b2u4, tmp_path_factory.mktemp("w") / "b2u4",
                                ModelCard("b2u4"))


def run_predict(*args):
  """`mdcsrn-sr ARGS` as a user runs it (a CompletedProcess with its text output)."""
  return subprocess.run([sys.executable, "-m", "mdcsrn_tf.infer", *map(str, args)],
                        capture_output=True, text=True, timeout=300)
