"""What training needs of the machine, checked before it starts or ended in one line: the
patch pipeline's memory, the disk cache's room, memory running out, the batch's split over
replicas, and hundreds of subjects in the memory of a few."""
import dataclasses
import os
import signal

import numpy as np
import pytest

import nibabel as nib
import tensorflow as tf

from mdcsrn_tf import cli, hardware
from mdcsrn_tf.train import steps
from mdcsrn_tf.train import config as train_config
from mdcsrn_tf.data import manifest, volume_store
from mdcsrn_tf.errors import InputError
from train_helpers import REPO, smoke_config, train_cli


def test_patch_memory_is_the_visits_the_buffer_and_the_batches(small_real_dataset, tmp_path):
  config = smoke_config("smoke_pretrain.cfg", small_real_dataset, str(tmp_path), parallel_volumes=2,
                         patches_per_volume=8, shuffle_patches=4, batch_size=2, patch_size=40)
  # two visits of a 37 x 45 x 29 volume padded to 40 x 45 x 40 (24 B a voxel: the pair and
  # the FFT), and 16 + 4 + 3 x 2 (LR, HR) pairs of 40^3 float32 patches
  needed = 2 * 40 * 45 * 40 * 24 + (16 + 4 + 6) * 2 * 40**3 * 4
  assert train_config.patch_memory_bytes(config, (37, 45, 29)) == needed
  train_config.check_patch_memory(config, (37, 45, 29), needed)
  with pytest.raises(InputError, match=r"training patches need about .* GiB"):
    train_config.check_patch_memory(config, (37, 45, 29), needed - 1)
  # and 5 degraded (LR, HR) float32 pairs kept in memory besides
  cached = dataclasses.replace(config, memory_cache_volumes=5)
  assert train_config.patch_memory_bytes(cached, (37, 45, 29)) == needed + 5 * 40 * 45 * 40 * 8


def test_the_disk_cache_is_refused_a_disk_without_room_for_the_volumes_it_lacks(
    small_real_dataset, tmp_path):
  """Each volume not cached yet needs its float32 (LR, HR) pair and a .npy header on the
  cache's disk; a volume already cached needs nothing."""
  config = smoke_config("smoke_pretrain.cfg", small_real_dataset, str(tmp_path / "run"),
                         cache_dir=str(tmp_path / "cache"))
  entries = manifest.split_entries(small_real_dataset, "train")
  paths = [entry["path"] for entry in entries]
  shapes = [nib.load(path).shape[:3] for path in paths]
  needed = sum(8 * int(np.prod(shape)) + 128 for shape in shapes)
  train_config.check_cache_space(config, paths, shapes, free_bytes=needed)
  with pytest.raises(InputError, match=rf"cache: the disk cache needs about .* GiB for the "
                                       rf"{len(paths)} volumes it does not hold yet, more than"):
    train_config.check_cache_space(config, paths, shapes, free_bytes=needed - 1)
  store = volume_store.VolumeStore(config.acquisition, tmp_path / "cache")
  store.pair(paths[0])  # cached now: its room is taken already
  train_config.check_cache_space(config, paths, shapes,
                                 free_bytes=needed - 8 * int(np.prod(shapes[0])) - 128)
  train_config.check_cache_space(dataclasses.replace(config, disk_cache=False), paths, shapes,
                                 free_bytes=0)


@dataclasses.dataclass(frozen=True)
class _NoOptions:
  """A command without flags.

  Attributes:
    unused: nothing.
  """
  unused: int = 0


@pytest.mark.parametrize("running_out, said", [
    (lambda: tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with "
                                              "shape[2,64,128,128,128]\nmore detail"),
     " (OOM when allocating tensor with shape[2,64,128,128,128])"),
    (MemoryError, "")], ids=["device", "host"])
def test_memory_running_out_is_one_error_line_naming_the_flags_to_lower(running_out, said,
                                                                        capsys):
  """A GPU's memory cannot be checked before a step asks for it: its ResourceExhaustedError
  (or Python's MemoryError) ends the command as bad input does, not in a traceback."""

  def main(options, arguments):
    raise running_out()

  handlers = {number: signal.getsignal(number) for number in cli.STOP_SIGNALS}
  try:
    with pytest.raises(SystemExit) as exit_status:
      cli.run(main, _NoOptions, "a command", argv=["command"], exit_within=None)
  finally:
    for number, handler in handlers.items():
      signal.signal(number, handler)
  assert exit_status.value.code == 2
  assert capsys.readouterr().err.splitlines() == [
      f"error: out of memory{said}; lower --batch_size, --patch_size or --validation_tile "
      "(training), --tile, --batch or --memory_limit (inference)"]


def test_a_batch_that_leaves_a_replica_without_a_sample_is_refused():
  """The paper's batch of 2 on 4 GPUs, or 3 on 2: tf.distribute would hand a replica no
  sample or an uneven share."""

  class Replicas:  # what check_batch_split reads of a tf.distribute.Strategy
    def __init__(self, count):
      self.num_replicas_in_sync = count

  steps.check_batch_split(2, tf.distribute.get_strategy(), "default")
  steps.check_batch_split(8, Replicas(4), "mirrored")
  for batch, replicas in ((2, 4), (3, 2)):
    with pytest.raises(InputError, match=rf"^--batch_size {batch} does not split evenly over "
                                         rf"the {replicas} replicas of --strategy=mirrored; "
                                         rf"give a multiple of {replicas}$"):
      steps.check_batch_split(batch, Replicas(replicas), "mirrored")


def _peak_rss_mib(command):
  """(stdout, the command's own peak resident memory in MiB)."""
  result = hardware.run_measuring_memory(command, cwd=REPO)
  assert result["returncode"] == 0, result["stderr"]
  return "\n".join(line for _, line in result["lines"]), result["peak_rss_mib"]


def test_hundreds_of_subjects_train_in_the_memory_of_a_few(small_real_dataset, tmp_path):
  """300 subjects, each a real head (nibabel's, tiled to 64^3 and shifted): the first step comes
  after a few volumes are read, and memory stays that of a 4-subject run."""
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  head = nib.load(os.path.join(data_path, "anatomical.nii")).get_fdata(dtype=np.float32)
  volume = np.pad(head, [(0, 64 - n) for n in head.shape], mode="wrap")
  entries = manifest.read(small_real_dataset)
  crops = tmp_path / "crops"
  crops.mkdir()
  for index in range(300):
    path = crops / f"s{index:03d}.nii.gz"
    nib.Nifti1Image(np.roll(volume, index, axis=index % 3), np.eye(4)).to_filename(path)
    entries["train"].append({"name": path.name, "subject": f"crop{index}", "path": str(path),
                             "split": "train"})
  manifest.write(str(tmp_path / "big"), [e for split in entries.values() for e in split], "test")
  cache = tmp_path / "cache"
  runs = {}
  for name, manifest_path in (("few", small_real_dataset),
                              ("many", str(tmp_path / "big" / "manifest.json"))):
    runs[name] = _peak_rss_mib(train_cli("smoke_pretrain.cfg", manifest_path, tmp_path / name,
                                    "--steps=3", f"--cache_dir={cache}", "--parallel_volumes=2"))
  stdout, peak = runs["many"]
  assert "first batch after" in stdout and "301 training volumes" in stdout
  assert peak < 1.2 * runs["few"][1], runs
  assert len([n for n in os.listdir(cache) if n.startswith("s") and ".corners" not in n]) < 20
