"""A training run's checkpoints: what they hold, and resuming from the newest intact one.

WORKDIR/checkpoints/ keeps the last `keep_checkpoints` (models, optimisers, the step, the
best validation PSNR so far and the training wall time), WORKDIR/best/ the one of the best
validation PSNR. A checkpoint can be damaged after it was written (a full disk truncates
its data file, a bad block breaks its checksum, a copy leaves its index empty): resuming
then tries the checkpoints from the newest down, says in one line which one it skipped and
why, and continues from the newest that reads completely. None readable is an InputError.
"""
import dataclasses
import glob
import itertools
import os
import re

import numpy as np
import tensorflow as tf

from mdcsrn_tf import weights
from mdcsrn_tf.errors import InputError

PREFIX = "ckpt"
# What reading a damaged checkpoint raises: a truncated data file (IndexError), a checksum
# or an empty index (OpError), a checkpoint of another network (AssertionError, ValueError).
UNREADABLE = (tf.errors.OpError, IndexError, ValueError, AssertionError, KeyError)


@dataclasses.dataclass
class Checkpoints:
  """The run's checkpoint, its two managers and the counters saved with the models."""
  checkpoint: tf.train.Checkpoint
  recent: tf.train.CheckpointManager
  best: tf.train.CheckpointManager
  step: tf.Variable
  best_psnr: tf.Variable
  seconds: tf.Variable  # training wall time over all invocations
  keep: int  # how many recent checkpoints `recent` keeps

  def last_good(self) -> str:
    return self.recent.latest_checkpoint or "none (no checkpoint yet)"


def make(networks, workdir, keep) -> Checkpoints:
  """Checkpoints of `networks` (generator, critic and optimisers) under `workdir`."""
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  best_psnr = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_psnr")
  seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="seconds")
  tracked = {"generator": networks.generator,
             "generator_optimizer": networks.generator_optimizer, "step": step,
             "best_psnr": best_psnr, "seconds": seconds}
  if networks.critic is not None:
    tracked.update(critic=networks.critic, critic_optimizer=networks.critic_optimizer)
  checkpoint = tf.train.Checkpoint(**tracked)
  return Checkpoints(
      checkpoint, _manager(checkpoint, os.path.join(workdir, "checkpoints"), keep),
      _manager(checkpoint, os.path.join(workdir, "best"), 1), step, best_psnr, seconds, keep)


def _manager(checkpoint, folder, keep):
  return tf.train.CheckpointManager(checkpoint, folder, max_to_keep=keep,
                                    checkpoint_name=PREFIX)


def _number(prefix) -> int:
  return int(prefix.rsplit("-", 1)[1])


def saved_in(folder) -> list:
  """The checkpoint prefixes in `folder`, newest (highest number) first; the index files
  tell, not the `checkpoint` state file, which may be the damaged part."""
  numbered = []
  for index in glob.glob(os.path.join(glob.escape(folder), f"{PREFIX}-*.index")):
    match = re.fullmatch(rf"{PREFIX}-(\d+)\.index", os.path.basename(index))
    if match:
      numbered.append((int(match.group(1)), index[:-len(".index")]))
  return [prefix for _, prefix in sorted(numbered, reverse=True)]


def restore_newest_intact(checkpoint, folder, log, partial=False):
  """Restores `checkpoint` from the newest checkpoint in `folder` that reads completely;
  returns its prefix, or None when the folder holds none. Each damaged one skipped is one
  line through `log`; InputError when there were checkpoints and none could be read.
  `partial`: the files may hold more than `checkpoint` tracks (a generator out of a run)."""
  prefixes = saved_in(folder)
  for prefix in prefixes:
    try:
      status = checkpoint.restore(prefix)
      (status.expect_partial() if partial else status).assert_existing_objects_matched()
      return prefix
    except UNREADABLE as error:
      reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
      log(f"warning: checkpoint {prefix} cannot be read ({reason[:200]}); "
          "trying the one before it")
  if prefixes:
    raise InputError(f"{folder}: none of its {len(prefixes)} checkpoints can be read "
                     f"(newest {prefixes[0]}); start a new --workdir or repair them")
  return None


def restore(config, networks, checkpoints: Checkpoints, log, strategy):
  """Resumes from the newest intact checkpoint, or starts the generator from
  `config.init_generator` when the run has none yet. The workers of a multi-worker run
  agree on one step and fail together (agree_across_workers, all_succeeded): a worker that
  stopped alone would leave the others waiting in a collective for ever."""
  multi_worker = config.strategy == "multi_worker"
  failure = None
  try:
    resumed = restore_newest_intact(checkpoints.checkpoint, checkpoints.recent.directory, log)
  except InputError as error:
    if not multi_worker:
      raise
    resumed, failure = None, error
  if multi_worker:
    resumed = agree_across_workers(strategy, checkpoints, log, failure) or resumed
  if resumed:
    log(f"resuming from {resumed} at step {int(checkpoints.step.numpy())}")
  elif config.init_generator:
    try:
      source = load_initial_generator(networks.generator, config.init_generator, log,
                                      config.unverified_weights)
    except InputError as error:
      if not multi_worker:
        raise
      source, failure = None, error
    if multi_worker:
      all_succeeded(strategy, failure, "start the generator from --init_generator")
    log(f"generator starts from {source}")


def _gathered(strategy, *values) -> list:
  """Every replica's `values` (integers), in task order: a collective every worker calls."""
  per_replica = strategy.experimental_distribute_values_from_function(
      lambda _: tf.constant([values], tf.int64))
  return [tuple(row) for row in strategy.gather(per_replica, axis=0).numpy().tolist()]


def all_succeeded(strategy, failure, what):
  """Raises, on every worker of a multi-worker run alike, when any worker could not do
  `what`: its own error where it failed, elsewhere an InputError naming the failed ones."""
  failed = [index for index, (ok,) in enumerate(_gathered(strategy, failure is None)) if not ok]
  if failure is not None:
    raise failure
  if failed:
    raise InputError(f"replica(s) {failed} of the multi-worker run could not {what}; "
                     "their workers' error lines say why")


def agree_across_workers(strategy, checkpoints: Checkpoints, log, failure=None):
  """Each worker of a multi-worker run restores its own checkpoints folder; a worker stopped
  before its last save holds an older step, and workers at different steps would train
  different weights under one step count. Workers ahead fall back to the newest step that
  every worker holds (returns the prefix this worker fell back to; the newer checkpoints
  leaves go aside, set_aside_after); InputError on every worker alike when one could not
  restore (`failure`) or cannot read that step."""
  all_succeeded(strategy, failure, "read their checkpoints")
  steps = [step for (step,) in _gathered(strategy, int(checkpoints.step.numpy()))]
  if len(set(steps)) == 1:
    return None
  target, readable, prefix = min(steps), True, None
  if int(checkpoints.step.numpy()) != target:
    prefix = os.path.join(checkpoints.recent.directory, f"{PREFIX}-{target}")
    try:
      checkpoints.checkpoint.restore(prefix).assert_existing_objects_matched()
    except UNREADABLE:
      readable = False
  agreed = _gathered(strategy, int(checkpoints.step.numpy()), readable)
  by_replica = f"steps {steps} (one per replica, in task order)"
  if not all(ok for _, ok in agreed) or len({step for step, _ in agreed}) > 1:
    reason = ("some hold none" if target == 0
              else f"not every worker can read step {target}")
    raise InputError(f"{checkpoints.recent.directory}: the workers' newest checkpoints are "
                     f"at {by_replica} and {reason}; give the workers the same checkpoints "
                     "or start a new --workdir")
  log(f"warning: the workers' newest checkpoints are at {by_replica}; all resume from "
      f"step {target}, the newest every worker holds")
  if prefix:
    set_aside_after(checkpoints, target, log)
  return prefix


def set_aside_after(checkpoints: Checkpoints, step, log):
  """Moves the recent checkpoints past `step` into a new checkpoints/abandoned-N/ folder and
  makes the newest one left the run's latest: the run goes on from `step`, so they no
  longer belong to it, and a later resume or "last good checkpoint" must not name them.
  They are kept, not deleted: the user may repair what made the workers fall back."""
  folder = checkpoints.recent.directory
  newer = [prefix for prefix in saved_in(folder) if _number(prefix) > step]
  for attempt in itertools.count(1):
    aside = os.path.join(folder, f"abandoned-{attempt}")
    try:
      os.mkdir(aside)
      break
    except FileExistsError:
      continue
  for prefix in newer:
    for path in glob.glob(glob.escape(prefix) + ".*"):
      os.replace(path, os.path.join(aside, os.path.basename(path)))
  kept = saved_in(folder)
  tf.compat.v1.train.update_checkpoint_state(folder, kept[0],
                                             all_model_checkpoint_paths=kept[::-1])
  checkpoints.recent = _manager(checkpoints.checkpoint, folder, checkpoints.keep)
  log(f"warning: {len(newer)} checkpoint(s) past step {step} moved to {aside}")


def load_initial_generator(generator, path, log, allow_unverified=False):
  """Loads `path` into `generator`: an exported PATH(.weights.h5) with its model card, whose
  checksum is verified first (weights.verify_checksum), or a training workdir / checkpoint
  folder (the generator of its newest intact checkpoint)."""
  folder = os.path.join(path, "checkpoints") if os.path.isdir(
      os.path.join(path, "checkpoints")) else path
  if os.path.isdir(folder):
    try:
      restored = restore_newest_intact(tf.train.Checkpoint(generator=generator), folder, log,
                                       partial=True)
    except InputError:
      raise InputError(f"{folder}: no checkpoint in it holds a readable {generator.name}") from None
    if restored is None:
      raise InputError(f"{path}: no checkpoint to start the generator from")
    return restored
  if not os.path.isfile(weights.base_path(path) + weights.WEIGHTS_SUFFIX):
    raise InputError(f"{path}: neither exported weights nor a training workdir")
  card = weights.read_card(path)
  if card.model != generator.name:
    raise InputError(f"{path}: weights are for {card.model}, this run trains {generator.name}")
  base = weights.base_path(path)
  weights.verify_checksum(base + weights.WEIGHTS_SUFFIX, card, allow_unverified)
  try:
    generator.load_weights(base + weights.WEIGHTS_SUFFIX)
  except (ValueError, OSError) as error:
    raise InputError(f"{base}{weights.WEIGHTS_SUFFIX}: cannot load ({error})") from None
  return base
