"""The training loop on real MRI patches: smoke runs of both phases, distribution, the
NaN guard, learning-rate schedules, mixed precision and refused restarts (resuming:
test_train_resume.py; memory and disk: test_train_resources.py)."""
import dataclasses
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import keras
import tensorflow as tf

from mdcsrn_tf import cli, models, weights
from mdcsrn_tf.train import __main__ as train_command, loop, steps, validation
from mdcsrn_tf.train import networks as networks_lib
from mdcsrn_tf.train.config import TrainConfig
from mdcsrn_tf.data import manifest, pipeline
from mdcsrn_tf.errors import NonFiniteOutput
from train_helpers import REPO, latest_step, smoke_config, train_cli


@pytest.fixture(scope="module")
def dataset(small_real_dataset):
  """The manifest of four real small heads (conftest), prepared by the prepare command."""
  return small_real_dataset


@pytest.fixture(scope="module")
def pretrained(dataset, tmp_path_factory):
  """A smoke pre-training run (30 L1 steps) from random weights (the identity start is
  already near its best after 30 steps) and the untrained model's validation L1."""
  workdir = tmp_path_factory.mktemp("pretrain")
  config = smoke_config("smoke_pretrain.cfg", dataset, str(workdir), identity_init=False)
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
  records = card.subjects["files"]["validation"]  # each volume by resolved path and content
  assert [r["name"] for r in records] == card.subjects["validation"]
  assert all(os.path.isabs(r["path"]) and len(r["sha256"]) == 64 for r in records)


def test_the_card_describes_the_data_set_as_the_run_read_it(dataset, tmp_path):
  """A manifest rewritten while a run trains (a volume added to a split) does not reach
  the run's card: its subjects are the volumes the run read when it started."""
  entries = [entry for split in manifest.read(dataset).values() for entry in split]
  copy = tmp_path / "manifest.json"
  copy.write_text(json.dumps({"subjects": entries}), encoding="utf-8")
  config = smoke_config("smoke_pretrain.cfg", str(copy), str(tmp_path / "run"))
  data_config = pipeline.PipelineConfig(patch_size=config.patch_size,
                                        batch_size=config.batch_size)
  validator = validation.Validator(config, data_config, models.build_model(config.model), None)
  before = validator.subjects()
  moved = [{**entry, "split": "train"} if entry["split"] == "evaluation" else entry
           for entry in entries]
  copy.write_text(json.dumps({"subjects": moved}), encoding="utf-8")
  assert len(manifest.read(copy)["train"]) == len(before["train"]) + 1
  assert validator.subjects() == before
  assert [e["name"] for e in validator.entries["train"]] == before["train"]


def test_the_card_records_the_domain_of_the_training_inputs(pretrained, dataset):
  """Each training volume's network input profiled (data/domain.py): nibabel's 2 mm head."""
  workdir, _, card = pretrained
  trained = card.training_domain["volumes"]
  assert set(trained) == {entry["name"] for entry in manifest.read(dataset)["train"]}
  assert all(figures["voxel_mm"] == [2.0, 2.0, 2.0] and figures["head_ml"] > 0
             for figures in trained.values())
  assert weights.read_card(workdir / "export" / "generator").training_domain == (
      card.training_domain)


def test_a_finished_run_run_again_does_nothing_and_says_so(pretrained, dataset):
  workdir, _, card = pretrained
  logs = sorted(os.listdir(workdir / "logs"))
  export = workdir / "export" / "generator.json"
  before = export.stat().st_mtime_ns
  result = subprocess.run(train_cli("smoke_pretrain.cfg", dataset, str(workdir)), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"{workdir}: finished, ") and "nothing to do" in result.stdout
  assert f"after {card.steps} steps" in result.stdout
  assert sorted(os.listdir(workdir / "logs")) == logs and export.stat().st_mtime_ns == before


def test_gan_from_another_network_is_refused_before_tensorflow_loads(pretrained, dataset,
                                                                     tmp_path):
  workdir, _, _ = pretrained
  result = subprocess.run(train_cli("smoke_gan.cfg", dataset, str(tmp_path / "gan"), "--model=b2u4",
                               f"--init_generator={workdir}"),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: {workdir}: holds a b1u8 generator, this run trains --model=b2u4; pass "
      "--model=b1u8 (or another --init_generator)"]
  assert not os.path.exists(tmp_path / "gan")


def test_nan_guard_stops_with_one_line_and_keeps_last_good_checkpoint(dataset, tmp_path):
  workdir = str(tmp_path / "run")
  result = subprocess.run(
      train_cli("smoke_pretrain.cfg", dataset, workdir, "--generator_lr=1e38", "--checkpoint_every=1",
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


def test_cosine_decay_runs_each_optimiser_to_zero_over_its_own_updates(dataset, tmp_path):
  config = smoke_config("smoke_gan.cfg", dataset, str(tmp_path), init_generator="g",
                         lr_decay="cosine", steps=60)
  updates = config.updates()
  assert updates["generator"] + updates["critic"] == 60 and 0 < updates["generator"] < 30
  networks = networks_lib.build_networks(config, tf.distribute.get_strategy())
  for optimizer, lr, n in [
      (networks.generator_optimizer, config.generator_lr, updates["generator"]),
      (networks.critic_optimizer, config.critic_lr, updates["critic"])]:
    assert float(optimizer.learning_rate) == pytest.approx(lr)
    optimizer.iterations.assign(n // 3)
    cosine = (1 + np.cos(np.pi * (n // 3) / n)) / 2
    assert float(optimizer.learning_rate) == pytest.approx(lr * cosine)
    optimizer.iterations.assign(n)
    assert float(optimizer.learning_rate) == pytest.approx(0.0, abs=1e-12)
  constant = networks_lib.build_networks(dataclasses.replace(config, lr_decay="constant"),
                                      tf.distribute.get_strategy())
  constant.generator_optimizer.iterations.assign(updates["generator"])
  assert float(constant.generator_optimizer.learning_rate) == pytest.approx(config.generator_lr)


def test_bad_flag_is_one_line(dataset, tmp_path):
  result = subprocess.run(train_cli("smoke_pretrain.cfg", dataset, str(tmp_path), "--phase=adversarial"),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "error: --phase must be one of pretrain, gan, got 'adversarial'"]


def test_resolved_flags_reproduce_the_config(dataset, tmp_path):
  config = smoke_config("smoke_gan.cfg", dataset, str(tmp_path), init_generator="g",
                         plane_axes=(0, 2), jit_compile=True, generator_lr=3e-5)
  flagfile = tmp_path / "flags.cfg"
  flagfile.write_text(cli.flagfile_text(config))
  assert cli.parse(TrainConfig, ["train", f"--flagfile={flagfile}"]) == (config, [])


def test_mixed_float16_step_scales_the_loss_and_keeps_float32_weights(dataset, tmp_path):
  config = smoke_config("smoke_pretrain.cfg", dataset, str(tmp_path), model="fsrcnn",
                         precision="mixed_float16")
  networks = networks_lib.build_networks(config, tf.distribute.get_strategy())
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
  result = subprocess.run(train_cli("smoke_pretrain.cfg", dataset, str(tmp_path), "--strategy=multi_worker",
                               "--steps=10", "--checkpoint_every=5", "--summary_every=5"),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  card = json.load(open(tmp_path / "export" / "generator.json"))
  assert card["training"]["strategy"] == "multi_worker" and card["replicas"] == 1
  assert latest_step(str(tmp_path)) == 10


def test_restart_with_another_model_is_refused_before_the_run_is_touched(pretrained, dataset,
                                                                          tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(pretrained[0], workdir)
  before = {path: path.read_bytes() for path in workdir.rglob("*") if path.is_file()}
  refused = subprocess.run(train_cli("smoke_pretrain.cfg", dataset, workdir, "--model=fsrcnn"),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
  assert refused.returncode == 2
  assert refused.stderr.strip().splitlines() == [
      f"error: {workdir}: holds a run with --model=b1u8, this one asks for --model=fsrcnn; "
      "resume with the same setting or choose another --workdir"]
  assert {path: path.read_bytes() for path in workdir.rglob("*") if path.is_file()} == before


def test_each_validation_is_one_line_in_the_log(dataset, tmp_path):
  config = smoke_config("smoke_pretrain.cfg", dataset, str(tmp_path))
  lines = []
  validator = validation.Validator(config, pipeline.PipelineConfig(), models.build_model(
      config.model), None, log=lines.append)
  means = validator.validate(7)
  assert lines[-1] == (f"validation at step 7: PSNR {means['psnr']:.2f} dB, SSIM "
                       f"{means['ssim']:.4f}")
