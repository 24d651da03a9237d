"""The training loop on real MRI patches: smoke runs of both phases, distribution,
checkpoints (and resuming past damaged ones), signals, the NaN guard, and a split of
hundreds of subjects in bounded memory."""
import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import keras
import nibabel as nib
import tensorflow as tf

from mdcsrn_tf import cli, files, hardware, models
from mdcsrn_tf.train import __main__ as train_command, loop, steps, validation
from mdcsrn_tf.train import config as train_config
from mdcsrn_tf.train.config import TrainConfig
from mdcsrn_tf.data import manifest, pipeline, volume_store
from mdcsrn_tf.errors import InputError, NonFiniteOutput

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


@pytest.fixture(scope="module")
def dataset(small_real_dataset):
  """The manifest of four real small heads (conftest), prepared by the prepare command."""
  return small_real_dataset


def _smoke_config(flagfile, dataset, workdir, **overrides):
  """The TrainConfig a flagfile gives, as the train command parses it."""
  config, _ = cli.parse(TrainConfig, ["train", f"--flagfile={os.path.join(REPO, 'flags', flagfile)}",
                                      f"--dataset={dataset}", f"--workdir={workdir}"])
  return dataclasses.replace(config, **overrides)


def _cli(flagfile, dataset, workdir, *extra):
  return [PYTHON, "-m", "mdcsrn_tf.train", f"--flagfile=flags/{flagfile}", f"--dataset={dataset}",
          f"--workdir={workdir}", *extra]


@pytest.fixture(scope="module")
def pretrained(dataset, tmp_path_factory):
  """A smoke pre-training run (30 L1 steps) from random weights (the identity start is
  already near its best after 30 steps) and the untrained model's validation L1."""
  workdir = tmp_path_factory.mktemp("pretrain")
  config = _smoke_config("smoke_pretrain.cfg", dataset, str(workdir), identity_init=False)
  keras.utils.set_random_seed(config.seed)  # as train() does: the same initial weights
  untrained = models.build_model(config.model, identity_init=False)
  data_config = pipeline.PipelineConfig(patch_size=config.patch_size, batch_size=config.batch_size)
  untrained_metrics = validation.Validator(config, data_config, untrained, None).validate(0)
  card = loop.train(config)
  return workdir, untrained_metrics, card


def test_l1_steps_lower_validation_l1(pretrained):
  workdir, untrained, card = pretrained
  assert card.steps == 30 and card.phase == "pretrain" and card.model == "b1u8"
  assert card.validation["l1"] < 0.8 * untrained["l1"]
  assert card.validation["psnr"] > untrained["psnr"]
  assert os.path.isfile(workdir / "export" / "generator.weights.h5")
  assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-30")
  assert card.subjects["validation"]


def test_a_finished_run_run_again_does_nothing_and_says_so(pretrained, dataset):
  workdir, _, card = pretrained
  logs = sorted(os.listdir(workdir / "logs"))
  export = workdir / "export" / "generator.json"
  before = export.stat().st_mtime_ns
  result = subprocess.run(_cli("smoke_pretrain.cfg", dataset, str(workdir)), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"{workdir}: finished, ") and "nothing to do" in result.stdout
  assert f"after {card.steps} steps" in result.stdout
  assert sorted(os.listdir(workdir / "logs")) == logs and export.stat().st_mtime_ns == before


def test_gan_from_another_network_is_refused_before_tensorflow_loads(pretrained, dataset,
                                                                     tmp_path):
  workdir, _, _ = pretrained
  result = subprocess.run(_cli("smoke_gan.cfg", dataset, str(tmp_path / "gan"), "--model=b2u4",
                               f"--init_generator={workdir}"),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: {workdir}: holds a b1u8 generator, this run trains --model=b2u4; pass "
      "--model=b1u8 (or another --init_generator)"]
  assert not os.path.exists(tmp_path / "gan")


def _wait_for(path_glob_dir, pattern, process, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.isdir(path_glob_dir) and any(n.startswith(pattern) for n in os.listdir(path_glob_dir)):
      return
    assert process.poll() is None, process.communicate()
    time.sleep(0.2)
  raise AssertionError(f"no {pattern} in {path_glob_dir} after {timeout} s")


def _latest_step(workdir):
  return int(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).rsplit("-", 1)[1])


def test_sigterm_saves_and_sigkill_resumes(dataset, tmp_path):
  workdir = str(tmp_path / "run")
  command = _cli("smoke_pretrain.cfg", dataset, workdir, "--steps=45", "--checkpoint_every=10")
  first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  _wait_for(os.path.join(workdir, "checkpoints"), "ckpt-10.index", first)
  first.send_signal(signal.SIGTERM)  # the loop runs: ckpt-10 exists, at any step from 10 on
  _, stderr = first.communicate(timeout=60)
  assert first.returncode == 128 + signal.SIGTERM, stderr
  stopped_at = _latest_step(workdir)
  # the step the signal was answered at is the newest checkpoint's, whichever step it was
  assert stopped_at >= 10, stderr
  saved = os.path.join(workdir, "checkpoints", f"ckpt-{stopped_at}")
  assert f"at step {stopped_at}; checkpoint {saved} saved" in stderr
  assert "Traceback" not in stderr
  assert not os.path.exists(os.path.join(workdir, ".lock"))  # the workdir is free again

  second = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
  _wait_for(os.path.join(workdir, "checkpoints"), f"ckpt-{(stopped_at // 10 + 2) * 10}.index",
            second)
  second.kill()  # SIGKILL: nothing runs after it
  second.communicate()
  killed_at = _latest_step(workdir)
  assert killed_at >= (stopped_at // 10 + 2) * 10

  third = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert third.returncode == 0, third.stderr
  assert f"resuming from {os.path.join(workdir, 'checkpoints', f'ckpt-{killed_at}')} at step " \
         f"{killed_at}" in third.stdout
  assert _latest_step(workdir) == 45
  # without a terminal: no progress bar redraws, one line per summary
  assert "\r" not in third.stdout + third.stderr
  assert "step 45/45: generator/l1=" in third.stdout
  card = json.load(open(os.path.join(workdir, "export", "generator.json")))
  assert card["resumed_from_step"] == killed_at and card["training"]["steps"] == 45


def test_patch_memory_is_the_visits_the_buffer_and_the_batches(dataset, tmp_path):
  config = _smoke_config("smoke_pretrain.cfg", dataset, str(tmp_path), parallel_volumes=2,
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


HOLD_LOCK = """
import sys
from mdcsrn_tf.files import FolderLock
lock = FolderLock(sys.argv[1], "training workdir").acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_trainer_is_refused_and_a_killed_ones_lock_is_taken_over(dataset, tmp_path):
  workdir = tmp_path / "run"
  holder = subprocess.Popen([PYTHON, "-c", HOLD_LOCK, str(workdir)], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
  assert holder.stdout.readline() == "locked\n"  # holds the lock from now on
  second = subprocess.run(_cli("smoke_pretrain.cfg", dataset, workdir), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert second.returncode == 2 and len(second.stderr.splitlines()) == 1, second.stderr
  assert second.stderr.startswith(f"error: {workdir}: training workdir in use by pid "
                                  f"{holder.pid} on ")
  assert sorted(os.listdir(workdir)) == [".lock"]  # the refused trainer wrote nothing
  holder.kill()  # SIGKILL: the lock file stays, the kernel's lock goes
  holder.communicate()
  assert f"pid {holder.pid} " in (workdir / ".lock").read_text()
  lock = files.FolderLock(workdir, "training workdir").acquire()
  assert f"pid {os.getpid()} " in (workdir / ".lock").read_text()
  lock.release()
  assert not os.listdir(workdir)  # released: the lock file goes with the lock


def test_nan_guard_stops_with_one_line_and_keeps_last_good_checkpoint(dataset, tmp_path):
  workdir = str(tmp_path / "run")
  result = subprocess.run(
      _cli("smoke_pretrain.cfg", dataset, workdir, "--generator_lr=1e38", "--checkpoint_every=1",
           "--steps=30"), cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == train_command.EXIT_DIVERGED, result.stderr
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line.startswith("error: non-finite") and "Traceback" not in result.stderr
  latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
  assert latest and latest in last_line
  for name, _ in tf.train.list_variables(latest):
    if name.startswith("generator/") and "OPTIMIZER" not in name:
      value = tf.train.load_variable(latest, name)
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        assert np.all(np.isfinite(value)), name
  assert not os.path.exists(os.path.join(workdir, "export"))


def test_a_non_finite_validation_output_stops_the_run_as_diverged():
  """Finite weights can still give NaN or Inf voxels (a float16 activation past 65504 on a
  volume larger than the patches): the run stops with the diverged status before the
  step's checkpoint, the best checkpoint and the export, which would carry null figures."""

  class OverflowingValidator:
    def validate(self, step):
      raise NonFiniteOutput(17, 4096)

  class Checkpoints:
    best_psnr = tf.Variable(-np.inf, dtype=tf.float64)

    def last_good(self):
      return "checkpoints/ckpt-100"

  with pytest.raises(loop.TrainingDiverged) as raised:
    loop._validate(OverflowingValidator(), 150, Checkpoints())  # pylint: disable=protected-access
  assert str(raised.value) == (
      "non-finite validation output at step 150 (17 of 4096 output voxels are NaN or Inf); "
      "stopped, nothing exported; the newest checkpoint is checkpoints/ckpt-100")
  assert Checkpoints.best_psnr.numpy() == -np.inf


def test_the_disk_cache_is_refused_a_disk_without_room_for_the_volumes_it_lacks(dataset,
                                                                                tmp_path):
  """Each volume not cached yet needs its float32 (LR, HR) pair and a .npy header on the
  cache's disk; a volume already cached needs nothing."""
  config = _smoke_config("smoke_pretrain.cfg", dataset, str(tmp_path / "run"),
                         cache_dir=str(tmp_path / "cache"))
  entries = manifest.split_entries(dataset, "train")
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


def test_cosine_decay_runs_each_optimiser_to_zero_over_its_own_updates(dataset, tmp_path):
  config = _smoke_config("smoke_gan.cfg", dataset, str(tmp_path), init_generator="g",
                         lr_decay="cosine", steps=60)
  updates = config.updates()
  assert updates["generator"] + updates["critic"] == 60 and 0 < updates["generator"] < 30
  networks = loop.build_networks(config, tf.distribute.get_strategy())
  for optimizer, lr, n in [
      (networks.generator_optimizer, config.generator_lr, updates["generator"]),
      (networks.critic_optimizer, config.critic_lr, updates["critic"])]:
    assert float(optimizer.learning_rate) == pytest.approx(lr)
    optimizer.iterations.assign(n // 3)
    cosine = (1 + np.cos(np.pi * (n // 3) / n)) / 2
    assert float(optimizer.learning_rate) == pytest.approx(lr * cosine)
    optimizer.iterations.assign(n)
    assert float(optimizer.learning_rate) == pytest.approx(0.0, abs=1e-12)
  constant = loop.build_networks(dataclasses.replace(config, lr_decay="constant"),
                                      tf.distribute.get_strategy())
  constant.generator_optimizer.iterations.assign(updates["generator"])
  assert float(constant.generator_optimizer.learning_rate) == pytest.approx(config.generator_lr)


def test_bad_flag_is_one_line(dataset, tmp_path):
  result = subprocess.run(_cli("smoke_pretrain.cfg", dataset, str(tmp_path), "--phase=adversarial"),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "error: --phase must be one of pretrain, gan, got 'adversarial'"]


def test_resolved_flags_reproduce_the_config(dataset, tmp_path):
  config = _smoke_config("smoke_gan.cfg", dataset, str(tmp_path), init_generator="g",
                         plane_axes=(0, 2), jit_compile=True, generator_lr=3e-5)
  flagfile = tmp_path / "flags.cfg"
  flagfile.write_text(cli.flagfile_text(config))
  assert cli.parse(TrainConfig, ["train", f"--flagfile={flagfile}"]) == (config, [])


def test_mixed_float16_step_scales_the_loss_and_keeps_float32_weights(dataset, tmp_path):
  config = _smoke_config("smoke_pretrain.cfg", dataset, str(tmp_path), model="fsrcnn",
                         precision="mixed_float16")
  networks = loop.build_networks(config, tf.distribute.get_strategy())
  optimizer = networks.generator_optimizer
  assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
  assert networks.generator.layers[1].compute_dtype == "float16"
  before = [v.numpy() for v in networks.generator.trainable_variables]
  lr, hr = next(iter(pipeline.PatchStream(dataset, "train", pipeline.PipelineConfig(
      patch_size=16, batch_size=2)).dataset()))
  l1 = steps.generator_l1_step(networks.generator, optimizer, lr, hr, 2)["l1"]
  assert l1.dtype == tf.float32 and np.isfinite(float(l1))
  after = networks.generator.trainable_variables
  assert all(v.dtype == "float32" for v in after)
  assert max(float(np.max(np.abs(a - b.numpy()))) for a, b in zip(before, after)) > 0


def test_multi_worker_strategy_trains_on_one_host(dataset, tmp_path):
  # Without TF_CONFIG, MultiWorkerMirroredStrategy is one worker whose variables and
  # gradient reductions still go through the collective (multi-host) code path.
  result = subprocess.run(_cli("smoke_pretrain.cfg", dataset, str(tmp_path), "--strategy=multi_worker",
                               "--steps=10", "--checkpoint_every=5", "--summary_every=5"),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  card = json.load(open(tmp_path / "export" / "generator.json"))
  assert card["training"]["strategy"] == "multi_worker" and card["replicas"] == 1
  assert _latest_step(str(tmp_path)) == 10


def _damage(prefix, how):
  """Damages checkpoint `prefix` as a full disk, a bad block or a failed copy would."""
  data = glob.glob(prefix + ".data-*")[0]
  if how == "truncated":
    with open(data, "r+b") as file:
      file.truncate(os.path.getsize(data) // 2)
  elif how == "checksum":
    with open(data, "r+b") as file:
      file.seek(os.path.getsize(data) // 3)
      file.write(b"\xff" * 64)
  else:
    open(prefix + ".index", "w").close()


def test_resume_skips_damaged_checkpoints_and_refuses_when_none_is_intact(
    dataset, tmp_path, capsys):
  config = _smoke_config("smoke_pretrain.cfg", dataset, str(tmp_path), steps=4,
                         checkpoint_every=2, keep_checkpoints=3)
  loop.train(config)
  folder = str(tmp_path / "checkpoints")
  _damage(os.path.join(folder, "ckpt-4"), "truncated")
  capsys.readouterr()
  card = loop.train(dataclasses.replace(config, steps=5))
  out = capsys.readouterr().out
  warnings = [line for line in out.splitlines() if line.startswith("warning: checkpoint")]
  assert len(warnings) == 1 and os.path.join(folder, "ckpt-4") in warnings[0]
  assert f"resuming from {os.path.join(folder, 'ckpt-2')} at step 2" in out
  assert card.resumed_from_step == 2 and _latest_step(str(tmp_path)) == 5

  for number, how in ((5, "index"), (4, "truncated"), (2, "checksum")):
    _damage(os.path.join(folder, f"ckpt-{number}"), how)
  with pytest.raises(InputError, match="none of its 3 checkpoints can be read"):
    loop.train(dataclasses.replace(config, steps=6))


def test_restart_with_another_model_is_refused_before_the_run_is_touched(pretrained, dataset,
                                                                          tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(pretrained[0], workdir)
  before = {path: path.read_bytes() for path in workdir.rglob("*") if path.is_file()}
  refused = subprocess.run(_cli("smoke_pretrain.cfg", dataset, workdir, "--model=fsrcnn"),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
  assert refused.returncode == 2
  assert refused.stderr.strip().splitlines() == [
      f"error: {workdir}: holds a run with --model=b1u8, this one asks for --model=fsrcnn; "
      "resume with the same setting or choose another --workdir"]
  assert {path: path.read_bytes() for path in workdir.rglob("*") if path.is_file()} == before


def _peak_rss_mib(command):
  """(stdout, the command's own peak resident memory in MiB)."""
  result = hardware.run_measuring_memory(command, cwd=REPO)
  assert result["returncode"] == 0, result["stderr"]
  return "\n".join(line for _, line in result["lines"]), result["peak_rss_mib"]


def test_hundreds_of_subjects_train_in_the_memory_of_a_few(dataset, tmp_path):
  """300 subjects, each a real head (nibabel's, tiled to 64^3 and shifted): the first step comes
  after a few volumes are read, and memory stays that of a 4-subject run."""
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  head = nib.load(os.path.join(data_path, "anatomical.nii")).get_fdata(dtype=np.float32)
  volume = np.pad(head, [(0, 64 - n) for n in head.shape], mode="wrap")
  entries = manifest.read(dataset)
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
  for name, manifest_path in (("few", dataset), ("many", str(tmp_path / "big" / "manifest.json"))):
    runs[name] = _peak_rss_mib(_cli("smoke_pretrain.cfg", manifest_path, tmp_path / name,
                                    "--steps=3", f"--cache_dir={cache}", "--parallel_volumes=2"))
  stdout, peak = runs["many"]
  assert "first batch after" in stdout and "301 training volumes" in stdout
  assert peak < 1.2 * runs["few"][1], runs
  assert len([n for n in os.listdir(cache) if n.startswith("s") and ".corners" not in n]) < 20
