"""`python -m mdcsrn_tf.train --flagfile=flags/pretrain.cfg --dataset=MANIFEST --workdir=DIR`
(mdcsrn-train): trains a generator, L1 pre-training or the GAN phase (docs/training.md).

Flags after a flagfile override it; every flag is a field of train/config.py's TrainConfig.
Once the first batch is ready, the resolved settings are written to WORKDIR/flags.cfg (to
repeat the run) and WORKDIR/config.json. Running the same command again resumes from
WORKDIR's newest intact checkpoint; a command whose model, phase, precision, lr_decay,
validation_subjects, validation_tile, validation_margin, keep_measured_band, acquisition or
volumes (and in the GAN phase patch_size) differ from the run's, or whose --steps is below
the step the run reached, is refused (docs/training.md#workdir). A run that has exported its generator after --steps
steps is finished: the same command again says so and does nothing (a larger --steps
trains on).

One trainer works in a WORKDIR at a time: WORKDIR/.lock is held while it runs (a second one
is refused; a lock left by a killed run is free, docs/training.md). In a multi-worker run
the chief holds it; the other workers write into folders of their own.

Exit status: 0 when done, 2 for bad flags or data (one line on stderr), 3 when a loss
diverged (NaN/Inf), 128 + N after signal N (a checkpoint is saved first).
"""
import json
import os
import sys

from mdcsrn_tf import cli, hardware, weights
from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.data import manifest
from mdcsrn_tf.files import FolderLock
from mdcsrn_tf.train.config import (TrainConfig, check_cache_space, check_patch_memory,
                                    patch_memory_bytes)
from mdcsrn_tf.train.run_record import check_init_generator, check_resumable, finished_card

EXIT_DIVERGED = 3


def main(config: TrainConfig, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  config.validate()
  # a hand-written manifest's mistake, volumes too small, too little memory: before any work
  factor = max(config.acquisition.factors)
  train = manifest.split_entries(config.dataset, "train")
  validation = manifest.split_entries(config.dataset, "validation")
  shapes = manifest.check_sizes(train, factor, config.patch_size)
  validation_shapes = manifest.check_sizes(validation, factor)
  check_patch_memory(config, max(shapes, key=lambda shape: patch_memory_bytes(config, shape)),
                     hardware.available_memory())
  validated = config.validation_subjects or len(validation)  # the first N are read
  check_cache_space(config, [entry["path"] for entry in train + validation[:validated]],
                    shapes + validation_shapes[:validated])
  check_resumable(config)
  check_init_generator(config)
  done = finished_card(config)
  if done is not None:
    print(f"{config.workdir}: finished, {weights.exported_generator(config.workdir)} holds the "
          f"generator after {done.steps} steps (validation PSNR "
          f"{done.validation.get('psnr', float('nan')):.2f} dB); nothing to do; a larger "
          "--steps trains on")
    return 0
  if not _is_chief(config):
    return _train(config)
  with FolderLock(config.workdir, "training workdir"):
    return _train(config)


def _is_chief(config) -> bool:
  """Whether this process is the run's chief (steps.is_chief, read from TF_CONFIG before
  TensorFlow loads); a TF_CONFIG that is not JSON is left for TensorFlow to refuse."""
  if config.strategy != "multi_worker":
    return True
  try:
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = cluster.get("task", {})
    kind, index = task.get("type"), int(task.get("index", 0))
  except (ValueError, AttributeError, TypeError):
    return True
  return kind in (None, "chief") or (
      kind == "worker" and index == 0 and "chief" not in cluster.get("cluster", {}))


def _train(config):
  from mdcsrn_tf.train import loop  # TensorFlow loads only once the flags and data are good

  try:
    card = loop.train(config)
  except loop.TrainingDiverged as error:
    print(f"error: {one_line(error)}", file=sys.stderr)
    return EXIT_DIVERGED
  except loop.TrainingInterrupted as error:
    print(one_line(error), file=sys.stderr)
    return 128 + error.signal_number
  if card:
    scores = card.validation
    print(f"exported {weights.exported_generator(config.workdir)} after {card.steps} "
          f"steps; validation PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f}, "
          f"NRMSE {scores['nrmse']:.4f}, L1 {scores['l1']:.4f}")
  return 0


def run():
  cli.run(main, TrainConfig, __doc__, exit_within=None)  # the loop saves a checkpoint first


if __name__ == "__main__":
  run()
