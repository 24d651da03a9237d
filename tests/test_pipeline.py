"""The streaming tf.data pipeline (data/pipeline.py) on small real heads (nibabel's
anatomical.nii): patches, determinism, augmentation, epochs and unusable volumes."""
import itertools
import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf import metrics
from mdcsrn_tf.data import dataset, kspace, manifest, pipeline, volume_store
from mdcsrn_tf.errors import InputError

HEAD = np.asarray(nib.load(os.path.join(data_path, "anatomical.nii")).get_fdata(), np.float32)

ZERO_FILLED = Acquisition(placement="zero_filled")


def make_dataset(tmp_path, volumes):
  """Manifest with every volume of `volumes` ({name: array}) in the train split."""
  source = tmp_path / "source"
  source.mkdir()
  for name, volume in volumes.items():
    nib.Nifti1Image(volume, np.eye(4)).to_filename(source / f"{name}.nii.gz")
  dataset.prepare_folder(str(source), str(tmp_path / "dataset"), log=lambda _: None)
  path = tmp_path / "dataset" / "manifest.json"
  entries = [entry for split in manifest.read(path).values() for entry in split]
  for entry in entries:  # one split holding them all, for these tests
    entry["split"] = "train"
  manifest.write(str(tmp_path / "dataset"), entries, "test", replace=True)
  return path


def head_in_background():
  """The real head in one corner of a larger empty volume: about 17% foreground."""
  volume = np.zeros((64, 64, 48), np.float32)
  volume[:33, :41, :25] = HEAD
  return volume


def take(manifest_path, config, n):
  stream = pipeline.PatchStream(manifest_path, "train", config)
  return [tuple(t.numpy() for t in batch) for batch in itertools.islice(stream.dataset(), n)]


def test_patches_have_shape_dtype_and_range(tmp_path):
  manifest_path = make_dataset(tmp_path, {"head": HEAD, "small": HEAD[:12, :10, :9]})
  config = pipeline.PipelineConfig(patch_size=16, batch_size=3, patches_per_volume=2)
  for lr, hr in take(manifest_path, config, 3):
    assert lr.shape == hr.shape == (3, 16, 16, 16, 1)
    assert lr.dtype == hr.dtype == np.float32
    assert hr.max() <= 1 and lr.min() >= 0  # the HR head has a few slightly negative voxels


def test_same_seed_same_patches_other_seed_other_patches(tmp_path):
  # three volumes prepared in parallel: their threads' timing must not change the stream
  manifest_path = make_dataset(tmp_path, {"head": HEAD, "flipped": HEAD[::-1],
                                          "half": HEAD[:, :20]})
  config = pipeline.PipelineConfig(patch_size=12, batch_size=2, seed=7, parallel_volumes=3,
                                   patches_per_volume=2, shuffle_patches=4)
  first, again = (take(manifest_path, config, 6) for _ in range(2))
  other = take(manifest_path, pipeline.PipelineConfig(patch_size=12, batch_size=2, seed=8), 6)
  for (lr_a, hr_a), (lr_b, hr_b) in zip(first, again):
    np.testing.assert_array_equal(hr_a, hr_b)
    np.testing.assert_array_equal(lr_a, lr_b)
  assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))


def test_patches_are_mostly_head(tmp_path):
  volume = head_in_background()
  assert (volume / volume.max() > metrics.HEAD_LEVEL).mean() < 0.2
  manifest_path = make_dataset(tmp_path, {"head": volume})
  config = pipeline.PipelineConfig(patch_size=16, batch_size=4, min_foreground=0.6)
  fractions = [(hr > metrics.HEAD_LEVEL).mean(axis=(1, 2, 3, 4))
               for _, hr in take(manifest_path, config, 5)]
  assert np.min(fractions) >= 0.6


def plane_keeping_transforms(volume):
  """The 16 transforms of the augmentation: optional swap of axes 0 and 1, then flips."""
  for swap in (False, True):
    swapped = np.swapaxes(volume, 0, 1) if swap else volume
    for flips in itertools.product((False, True), repeat=3):
      yield np.flip(swapped, [axis for axis in range(3) if flips[axis]])


def test_augmentation_is_the_same_on_lr_and_hr_and_keeps_the_plane(tmp_path):
  # 18 = 2 x 9: the zero-filled crop keeps frequencies -4..4, symmetric, so the degradation
  # commutes exactly with the plane swap and every flip: the LR of the augmented HR patch
  # must equal the augmented LR patch.
  cube = HEAD[6:24, 10:28, 3:21]
  manifest_path = make_dataset(tmp_path, {"cube": cube})
  config = pipeline.PipelineConfig(patch_size=18, batch_size=1, acquisition=ZERO_FILLED,
                                   min_foreground=0.0, shuffle_patches=1)
  # the head has a few slightly negative voxels: mapped onto [0, 1] by its range
  normalised = (cube - cube.min()) / (cube.max() - cube.min())
  assert cube.min() < 0
  allowed = list(plane_keeping_transforms(normalised))
  seen = set()
  for lr, hr in take(manifest_path, config, 12):
    hr, lr = hr[0, ..., 0], lr[0, ..., 0]
    np.testing.assert_allclose(lr, kspace.degrade(hr, ZERO_FILLED), atol=2e-6)
    matches = [i for i, t in enumerate(allowed) if np.allclose(hr, t, atol=1e-6)]
    assert matches, "patch is not a plane-keeping transform of the volume"
    seen.add(matches[0])
  moved = np.swapaxes(normalised, 1, 2)  # the untouched axis moved into the plane
  assert not any(np.allclose(t, moved) for t in allowed)
  assert len(seen) >= 4


def test_volume_pairs_yield_normalised_degraded_volumes_in_manifest_order(tmp_path):
  manifest_path = make_dataset(tmp_path, {"a": HEAD, "b": 3 * HEAD[:20, :22, :11]})
  config = pipeline.PipelineConfig(acquisition=ZERO_FILLED)
  items = list(pipeline.volume_pairs(manifest_path, "train", config))
  assert [entry["name"] for entry, _, _ in items] == [
      entry["name"] for entry in manifest.read(manifest_path)["train"]]
  for _, lr, hr in items:
    assert hr.max() == 1.0 and hr.shape == lr.shape
    np.testing.assert_allclose(lr, kspace.degrade(hr, ZERO_FILLED), atol=1e-6)
  assert len(list(pipeline.volume_pairs(manifest_path, "train", config, limit=1))) == 1


def test_bad_manifest_and_empty_split_are_input_errors(tmp_path):
  with pytest.raises(InputError, match="no such data set manifest"):
    manifest.read(tmp_path / "missing.json")
  (tmp_path / "bad.json").write_text("{not json")
  with pytest.raises(InputError, match="unreadable data set manifest"):
    manifest.read(tmp_path / "bad.json")
  manifest_path = make_dataset(tmp_path, {"head": HEAD})
  with pytest.raises(InputError, match="has no volume"):
    next(pipeline.volume_pairs(manifest_path, "test", pipeline.PipelineConfig()))
  with pytest.raises(InputError, match="placement"):
    pipeline.PipelineConfig(acquisition=Acquisition(placement="bicubic"))


def test_darker_patches_scale_lr_and_hr_by_one_factor_within_the_range(tmp_path):
  manifest_path = make_dataset(tmp_path, {"head": HEAD})
  plain = pipeline.PipelineConfig(patch_size=12, batch_size=4, seed=3, patches_per_volume=4,
                                  shuffle_patches=1)
  darker = pipeline.PipelineConfig(patch_size=12, batch_size=4, seed=3, patches_per_volume=4,
                                   shuffle_patches=1, min_intensity_scale=0.3)
  factors = []
  for (lr, hr), (dark_lr, dark_hr) in zip(take(manifest_path, plain, 3),
                                          take(manifest_path, darker, 3)):
    for k in range(len(hr)):
      factor = float(np.sum(dark_hr[k] * hr[k]) / np.sum(hr[k] * hr[k]))  # least squares
      # one float32 product per voxel: a relative error of at most float32's half ulp
      np.testing.assert_allclose(dark_hr[k], factor * hr[k], rtol=2**-23, atol=2**-24)
      np.testing.assert_allclose(dark_lr[k], factor * lr[k], rtol=2**-23, atol=2**-24)
      factors.append(factor)
  assert 0.3 - 1e-6 <= min(factors) and max(factors) <= 1 + 1e-6
  assert len({round(f, 4) for f in factors}) == len(factors)  # a new factor every patch
  with pytest.raises(InputError, match="min_intensity_scale"):
    pipeline.PipelineConfig(min_intensity_scale=0)
