"""The training loop of both stages (Chen et al. 2018, sec. 3.2; docs/paper.md#training-schedule).

A custom loop around the tf.function steps of steps.py: "pretrain" runs
`generator_l1_step` every step; "gan" asks `schedule.network_for_step` whether each step
trains the critic (`critic_step`) or the generator (`generator_gan_step`).

The run lives in WORKDIR: checkpoints/ (the last `keep_checkpoints`, every
`checkpoint_every` steps), best/ (the best validation PSNR), logs/ (TensorBoard) and, at
the end, export/generator.{weights.h5,json} (weights.save_generator). Running the same
command again resumes from the latest checkpoint: models, optimisers, the step counter and
the best PSNR so far (checkpoints.py: the newest checkpoint that reads completely). The
data iterator is not saved; the resumed pipeline is seeded with seed + step instead, so it
does not replay the patches already seen.

SIGINT/SIGTERM save a checkpoint and stop (TrainingInterrupted). A non-finite loss stops
the run before anything else is saved (TrainingDiverged), and no checkpoint is written
with non-finite weights, so the latest checkpoint stays the last good one; a validation
output with NaN or Inf voxels stops it too, before its step's checkpoint and the export.
"""
import dataclasses
import itertools
import math
import os
import signal
import sys
import time

import keras
import tensorflow as tf
from tqdm import tqdm

from mdcsrn_tf import hardware, weights
from mdcsrn_tf.errors import NonFiniteOutput
from mdcsrn_tf.data import domain, pipeline, volume_store
from mdcsrn_tf.train import checkpoints as run_checkpoints
from mdcsrn_tf.train import networks as networks_lib
from mdcsrn_tf.train import schedule, steps, validation
from mdcsrn_tf.train.config import TrainConfig
from mdcsrn_tf.train.run_record import write_run_record
from mdcsrn_tf.weights.card import ModelCard


class TrainingInterrupted(Exception):
  """SIGINT or SIGTERM arrived; a checkpoint was saved. `signal_number` says which."""

  def __init__(self, message, signal_number):
    super().__init__(message)
    self.signal_number = signal_number


class TrainingDiverged(Exception):
  """A loss or a weight became NaN or Inf; the message is one line."""


def _first_non_finite(values: dict) -> str | None:
  """The name of the first non-finite value, or None."""
  for name, value in values.items():
    if not math.isfinite(value):
      return name
  return None


def _weights_finite(networks) -> bool:
  return all(bool(tf.reduce_all(tf.math.is_finite(v.value)))
             for m in networks.models() for v in m.weights if "float" in v.dtype)


class _Batches:
  """The training batches, whose tf.data iterator close() drops: one alive when the
  interpreter exits (kept by the frames of an exception's traceback, say) waits for its
  Python threads, which wait for the interpreter, and the process hangs."""

  def __init__(self, dataset):
    self._iterator = iter(dataset)

  def __iter__(self):
    return self

  def __next__(self):
    return next(self._iterator)

  def close(self):
    self._iterator = None


class _Signals:
  """Turns SIGINT/SIGTERM into a flag the loop reads between steps."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def __enter__(self):
    for number in (signal.SIGINT, signal.SIGTERM):
      self._previous[number] = signal.signal(number, self._handle)
    return self

  def _handle(self, number, frame):
    del frame
    self.received = number

  def __exit__(self, *exc):
    for number, handler in self._previous.items():
      signal.signal(number, handler)


def train(config: TrainConfig) -> ModelCard | None:
  """Runs (or resumes) the training described by `config`; returns the exported model card
  (None on a multi-worker run's non-chief workers, which export nothing).

  Raises InputError for unusable settings or data, TrainingInterrupted after a signal and
  TrainingDiverged on a non-finite loss or weight.
  """
  config.validate()
  strategy = steps.make_strategy(config.strategy)
  steps.check_batch_split(config.batch_size, strategy, config.strategy)
  chief = steps.is_chief(strategy)
  keras.utils.set_random_seed(config.seed)
  networks = networks_lib.build_networks(config, strategy)
  # Non-chief workers of a multi-worker run must save too (saving is collective), but
  # into a folder of their own.
  workdir = config.workdir if chief else os.path.join(
      config.workdir, "workers", str(strategy.cluster_resolver.task_id))
  checkpoints = run_checkpoints.make(networks, workdir, config.keep_checkpoints)
  run_checkpoints.restore(config, networks, checkpoints, tqdm.write, strategy)
  start_step = int(checkpoints.step.numpy())
  if config.phase == "gan" and chief:
    counts = config.updates()
    tqdm.write(f"GAN schedule: {counts[schedule.GENERATOR]} generator and "
               f"{counts[schedule.CRITIC]} critic updates in {config.steps} steps")
  # A resumed run draws new patches and interpolation weights, not the first run's again.
  keras.utils.set_random_seed(config.seed + start_step)
  data_config = pipeline_config(config, seed=config.seed + start_step)
  patches = pipeline.PatchStream(config.dataset, "train", data_config, log=tqdm.write)
  started = time.time()
  batches = _Batches(strategy.experimental_distribute_dataset(patches.dataset()))
  try:
    with patches.reporting_input_errors():
      first = next(batches)  # an unusable first volume stops the run before it writes anything
    tqdm.write(f"first batch after {time.time() - started:.1f} s ({len(patches.entries)} "
               f"training volumes, {config.parallel_volumes} prepared at once, disk cache: "
               f"{data_config.cache_dir or 'off'})")
    if chief:
      write_run_record(config)
    validator = validation.Validator(config, data_config, networks.generator,
                                     os.path.join(workdir, "logs") if chief else None,
                                     log=tqdm.write)
    if start_step < config.steps:
      validator.log_marks(start_step)
    last_metrics = _loop(config, strategy, networks, checkpoints, patches,
                         itertools.chain([first], batches), validator)
  finally:
    batches.close()
  if last_metrics is None or config.steps % config.validate_every:  # not validated at the end
    last_metrics = _validate(validator, config.steps, checkpoints)
  if not chief:
    return None
  card = ModelCard(
      model=config.model, model_arguments=networks_lib.model_arguments(config),
      acquisition=config.acquisition, training=dataclasses.asdict(config),
      resumed_from_step=start_step,
      wall_seconds=round(float(checkpoints.seconds.numpy()), 1), machine=hardware.machine(),
      replicas=strategy.num_replicas_in_sync, dataset=os.path.abspath(config.dataset),
      subjects=validator.subjects(), validation=last_metrics,
      keeps_measured_band=config.keep_measured_band,
      # Degraded in memory: the profile reads up to domain.MAX_VOLUMES volumes, and a short
      # run on a large data set must not fill the disk cache with volumes it never trained on.
      training_domain=domain.of_entries(validator.entries["train"],
                                        volume_store.VolumeStore(config.acquisition)))
  export_path = weights.exported_generator(config.workdir)
  os.makedirs(os.path.dirname(export_path), exist_ok=True)
  weights.save_generator(networks.generator, export_path, card)
  return card


def pipeline_config(config: TrainConfig, seed) -> pipeline.PipelineConfig:
  """The data pipeline's settings of a run."""
  return pipeline.PipelineConfig(
      patch_size=config.patch_size, batch_size=config.batch_size,
      acquisition=config.acquisition, seed=seed,
      augment=config.augment, min_intensity_scale=config.min_intensity_scale,
      noise_sigma=config.noise_sigma,
      min_foreground=config.min_foreground,
      patches_per_volume=config.patches_per_volume,
      parallel_volumes=config.parallel_volumes, shuffle_patches=config.shuffle_patches,
      cache_dir=(config.cache_dir or volume_store.default_cache_dir()) if config.disk_cache
      else None, memory_volumes=config.memory_cache_volumes)


def _loop(config, strategy, networks, checkpoints, patches, batches, validator):
  """Trains from the restored step to config.steps on `batches`; returns the last
  validation's metrics (None if none ran)."""
  step_of = networks_lib.step_functions(config, strategy, networks)
  step = checkpoints.step
  last_metrics = None
  seconds_before, started = float(checkpoints.seconds.numpy()), time.time()
  interactive = sys.stderr.isatty()  # a bar for a person; for a log, a line per summary
  with _Signals() as signals, tqdm(total=config.steps, initial=int(step.numpy()), unit="step",
                                   desc=config.phase, dynamic_ncols=True,
                                   disable=not interactive) as bar:
    while int(step.numpy()) < config.steps:
      current = int(step.numpy())
      network = networks_lib.network_for_step(config, current)
      with patches.reporting_input_errors():
        lr, hr = next(batches)
      values = {name: float(value) for name, value in step_of[network](lr, hr).items()}
      bad = _first_non_finite(values)
      if bad is not None:
        raise TrainingDiverged(f"non-finite {bad} ({values[bad]}) at step {current}; stopped, "
                               f"the last good checkpoint is {checkpoints.last_good()}")
      step.assign_add(1)
      done = current + 1
      bar.update(1)
      bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
      written = validator.log_step(done, network, values, networks)
      if written and not interactive:
        tqdm.write(validation.summary_line(done, config.steps, written, time.time() - started))
      # Validation first, so that the checkpoint of this step holds the updated best PSNR.
      if config.validate_every and done % config.validate_every == 0:
        last_metrics = _validate(validator, done, checkpoints)
      if done % config.checkpoint_every == 0 or done == config.steps or signals.received:
        if not _weights_finite(networks):
          raise TrainingDiverged(f"non-finite weights after step {current}; stopped, the "
                                 f"last good checkpoint is {checkpoints.last_good()}")
        checkpoints.seconds.assign(seconds_before + time.time() - started)
        checkpoints.recent.save(checkpoint_number=done)
      if signals.received:
        raise TrainingInterrupted(f"stopped by signal {signals.received} at step {done}; "
                                  f"checkpoint {checkpoints.recent.latest_checkpoint} saved",
                                  signals.received)
  return last_metrics


def _validate(validator, step, checkpoints) -> dict:
  """Validates every worker alike (saving the best checkpoint is collective)."""
  try:
    metrics = validator.validate(step)
  except NonFiniteOutput as error:
    raise TrainingDiverged(f"non-finite validation output at step {step} ({error}); stopped, "
                           f"nothing exported; the newest checkpoint is "
                           f"{checkpoints.last_good()}") from None
  if metrics["psnr"] > float(checkpoints.best_psnr.numpy()):
    checkpoints.best_psnr.assign(metrics["psnr"])
    checkpoints.best.save(checkpoint_number=step)
  return metrics
