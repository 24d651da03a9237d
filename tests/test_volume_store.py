"""The degraded-volume cache and the pipeline's bounded streaming, on real heads: entries
reused across runs, invalidated by a changed source or degradation, never half-written;
every subject once per epoch; only a few volumes touched before the first batch."""
import itertools
import json
import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import kspace, manifest, pipeline, volume_store
from mdcsrn_tf.errors import InputError

HEAD = np.asarray(nib.load(os.path.join(data_path, "anatomical.nii")).get_fdata(), np.float32)
LINEAR = Acquisition()


def write_volume(path, volume):
  nib.Nifti1Image(np.asarray(volume, np.float32), np.eye(4)).to_filename(path)
  return str(path)


def expected_pair(volume, acquisition=LINEAR):
  low = min(volume.min(), 0)  # anatomical.nii has a few negative voxels: mapped by its range
  hr = (volume - low) / (volume.max() - low)
  return np.stack([kspace.degrade(hr, acquisition), hr])


def cache_entries(folder, kind=".npy"):
  return sorted(n for n in os.listdir(folder)
                if n.endswith(kind) and ".corners-" not in n) if os.path.isdir(folder) else []


def test_pair_is_computed_once_and_read_back_by_a_later_run(tmp_path, monkeypatch):
  source = write_volume(tmp_path / "head.nii.gz", HEAD)
  cache = tmp_path / "cache"
  first = volume_store.VolumeStore(LINEAR, cache).pair(source)
  np.testing.assert_allclose(first, expected_pair(HEAD), atol=1e-6)
  assert len(cache_entries(cache)) == 1

  def no_recomputation(*_):
    raise AssertionError("the cached pair was computed again")

  monkeypatch.setattr(volume_store, "degraded_pair", no_recomputation)
  again = volume_store.VolumeStore(LINEAR, cache).pair(source)  # a new run, same cache
  np.testing.assert_array_equal(again, first)
  assert isinstance(again, np.memmap)  # read from disk, not recomputed


def test_changed_source_or_degradation_never_reads_a_stale_entry(tmp_path):
  source = tmp_path / "head.nii.gz"
  cache = tmp_path / "cache"
  write_volume(source, HEAD)
  volume_store.VolumeStore(LINEAR, cache).pair(str(source))
  changed = HEAD[::-1].copy()
  write_volume(source, changed)
  os.utime(source, ns=(os.stat(source).st_atime_ns, os.stat(source).st_mtime_ns + 10**9))
  np.testing.assert_allclose(volume_store.VolumeStore(LINEAR, cache).pair(str(source)),
                             expected_pair(changed), atol=1e-6)
  for other in (Acquisition(placement="zero_filled"), Acquisition((2, 1, 2)),
                Acquisition((3, 3, 1)), Acquisition((1, 1, 4), "boxcar")):
    np.testing.assert_allclose(volume_store.VolumeStore(other, cache).pair(str(source)),
                               expected_pair(changed, other), atol=1e-6)
  assert len(cache_entries(cache)) == 6


def test_a_killed_write_leaves_no_entry_and_a_damaged_one_is_recomputed(tmp_path, monkeypatch):
  source = write_volume(tmp_path / "head.nii.gz", HEAD)
  cache = tmp_path / "cache"
  store = volume_store.VolumeStore(LINEAR, cache)
  real_save = np.save

  def killed_half_way(path, array):
    with open(path, "wb") as file:
      file.write(b"\x93NUMPY half an entry")
    raise KeyboardInterrupt

  monkeypatch.setattr(np, "save", killed_half_way)
  with pytest.raises(KeyboardInterrupt):
    store.pair(source)
  assert os.listdir(cache) == []  # neither the entry nor its temporary file
  monkeypatch.setattr(np, "save", real_save)

  entry = store.entry_base(source) + ".npy"
  store.pair(source)
  with open(entry, "r+b") as file:  # a disk fault: the entry loses its second half
    file.truncate(os.path.getsize(entry) // 2)
  messages = []
  repaired = volume_store.VolumeStore(LINEAR, cache, log=messages.append).pair(source)
  np.testing.assert_allclose(repaired, expected_pair(HEAD), atol=1e-6)
  assert len(messages) == 1 and entry in messages[0] and messages[0].startswith("warning:")
  assert os.path.getsize(entry) > 2 * HEAD.nbytes


def test_memory_cache_keeps_the_last_n_pairs(tmp_path, monkeypatch):
  paths = {name: write_volume(tmp_path / f"{name}.nii.gz", HEAD[:, :, k:k + 20])
           for k, name in enumerate("abc")}
  computed = []
  real = volume_store.degraded_pair

  def counting(path, degradation):
    computed.append(os.path.basename(path)[0])
    return real(path, degradation)

  monkeypatch.setattr(volume_store, "degraded_pair", counting)
  store = volume_store.VolumeStore(LINEAR, cache_dir=None, memory_volumes=2)
  for name in "abacab":
    store.pair(paths[name])
  # a, b; a hit; c evicts b (least recently used); a hit; b again
  assert computed == ["a", "b", "c", "b"]


def write_crops(tmp_path, count, edge=16):
  """`count` distinct real crops of the head, one subject each, in the train split."""
  folder = tmp_path / "crops"
  folder.mkdir()
  offsets = list(itertools.product(range(0, 17, 2), range(0, 25, 2), range(0, 9, 2)))
  entries = []
  for index, (x, y, z) in enumerate(offsets[:count]):
    path = write_volume(folder / f"s{index:03d}.nii.gz", HEAD[x:x + edge, y:y + edge, z:z + edge])
    entries.append({"name": f"s{index:03d}", "subject": f"s{index:03d}", "path": path,
                    "split": "train"})
  manifest.write(str(tmp_path / "dataset"), entries, "crops")
  return str(tmp_path / "dataset" / "manifest.json")


def test_every_subject_is_visited_once_per_epoch(tmp_path):
  manifest_path = write_crops(tmp_path, 120)
  config = pipeline.PipelineConfig(patch_size=8, batch_size=1, patches_per_volume=1,
                                   shuffle_patches=1, cache_dir=str(tmp_path / "cache"))
  stream = pipeline.PatchStream(manifest_path, "train", config)
  visits = [tuple(map(int, v)) for v in itertools.islice(stream.visits().as_numpy_iterator(), 360)]
  assert [number for number, _ in visits] == list(range(360))
  epochs = [[entry for _, entry in visits[k * 120:(k + 1) * 120]] for k in range(3)]
  for order in epochs:
    assert sorted(order) == list(range(120))
  assert epochs[0] != epochs[1] != epochs[2]  # reshuffled every epoch

  batches = stream.dataset()
  for _ in itertools.islice(batches, 120):
    pass
  assert len(cache_entries(tmp_path / "cache")) == 120  # each visit read its own volume


def test_first_batches_touch_a_few_volumes_not_the_whole_split(tmp_path):
  manifest_path = write_crops(tmp_path, 300)
  config = pipeline.PipelineConfig(patch_size=8, batch_size=2, patches_per_volume=4,
                                   parallel_volumes=2, shuffle_patches=8,
                                   cache_dir=str(tmp_path / "cache"))
  for _ in itertools.islice(pipeline.PatchStream(manifest_path, "train", config).dataset(), 2):
    pass
  touched = len(cache_entries(tmp_path / "cache"))
  # the shuffle buffer (8 patches = 2 visits), two prefetched batches and the parallel
  # visits: a handful of volumes, however long the split
  assert 1 <= touched <= 12


def test_an_unusable_volume_met_while_streaming_is_one_input_error(tmp_path):
  bad = HEAD.copy()
  bad[3, 4, 5] = np.nan
  entries = [{"name": "nan", "path": write_volume(tmp_path / "nan.nii.gz", bad),
              "split": "train"}]
  manifest.write(str(tmp_path / "dataset"), entries, "hand-written")
  stream = pipeline.PatchStream(str(tmp_path / "dataset"), "train",
                                pipeline.PipelineConfig(patch_size=8))
  with pytest.raises(InputError, match=r"nan\.nii\.gz: 1 of .* voxels are NaN or Inf"):
    with stream.reporting_input_errors():
      next(iter(stream.dataset()))


@pytest.mark.parametrize("subjects, message", [
    ([{"name": "a", "split": "train"}], 'entry 0 has no "path"'),
    (5, '"subjects" must be a list'),
    ([{"name": "a", "path": "a.nii.gz", "split": "training"}], "split 'training' is not one of"),
])
def test_hand_written_manifest_mistakes_name_the_entry(tmp_path, subjects, message):
  path = tmp_path / "manifest.json"
  path.write_text(json.dumps({"subjects": subjects}))
  with pytest.raises(InputError, match=message) as error:
    manifest.read(path)
  assert str(path) in str(error.value)


def test_relative_paths_are_read_against_the_manifest_folder(tmp_path):
  write_volume(tmp_path / "head.nii.gz", HEAD)
  (tmp_path / "manifest.json").write_text(
      '{"subjects": [{"name": "head", "path": "head.nii.gz", "split": "test"}]}')
  (entry,) = manifest.split_entries(tmp_path, "test")
  assert entry["path"] == str(tmp_path / "head.nii.gz") and entry["subject"] == "head"
