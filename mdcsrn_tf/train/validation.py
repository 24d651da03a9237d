"""Validation and TensorBoard summaries of a training run.

Validation super-resolves whole volumes of the validation split with the tiled inference
the paper uses (inference.super_resolve, 64^3 tiles, 3-voxel margin) and scores them with
every figure of the metric registry (metrics.quality: in-plane SSIM, PSNR, NRMSE,
sharpness, ...; plus the mean L1), averaged over the subjects. Summaries: each network's losses under "<network>/<loss>", averaged
over `summary_every` steps, the learning rates, the validation metrics under "validation/", and
a middle slice in the acquisition's plane as one image: LR | SR | HR.
"""
import numpy as np

import tensorflow as tf

from mdcsrn_tf import metrics
from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.data import manifest, pipeline
from mdcsrn_tf.infer import inference


def comparison_image(lr, sr, hr, acquisition: Acquisition = PAPER):
  """[1, H, 3W, 1] float32 image LR | SR | HR of the middle slices, clipped to [0, 1]."""
  row = np.concatenate([acquisition.plane_slice(v) for v in (lr, sr, hr)], axis=1)
  return np.clip(row, 0.0, 1.0)[np.newaxis, ..., np.newaxis].astype(np.float32)


class Validator:
  """Validates a generator on a fixed subset of the validation split and writes the run's
  summaries.

  The subset is the first `validation_subjects` volumes of the split in manifest order (all
  when 0), the same at every validation, so the figures of two validations compare; the log
  says which. Volumes stream one at a time from the pipeline's VolumeStore (the disk cache
  keeps their degradation), so memory holds one volume whatever the subset's size.
  `logdir` None (a non-chief worker) writes nothing.
  """

  def __init__(self, config, data_config, generator, logdir, log=print):
    self._config = config
    self._data_config = data_config
    self._generator = generator
    self._writer = tf.summary.create_file_writer(logdir) if logdir else None
    # Read now, so that a data set without validation volumes fails before training.
    entries = manifest.split_entries(config.dataset, "validation")
    self._count = min(config.validation_subjects or len(entries), len(entries))
    names = [entry["name"] for entry in entries[:self._count]]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    log(f"validation: {self._count} of {len(entries)} validation subjects, the same every "
        f"time ({shown})")
    self._loss_sums, self._loss_counts = {}, {}

  def subjects(self) -> dict:
    """The data set's subject names per split (for the model card)."""
    entries = manifest.read(self._config.dataset)
    return {split: [entry["name"] for entry in entries[split]] for split in ("train", "validation")}

  def log_step(self, step, network, values, networks):
    """Adds one step's losses; every `summary_every` steps writes each network's mean
    losses over the steps since the last summary (in the GAN phase the generator's steps
    are sparse) and the learning rates."""
    if self._writer is None:
      return
    sums = self._loss_sums.setdefault(network, {})
    for name, value in values.items():
      sums[name] = sums.get(name, 0.0) + value
    self._loss_counts[network] = self._loss_counts.get(network, 0) + 1
    if step % self._config.summary_every:
      return
    with self._writer.as_default(step=step):
      for network_name, sums in self._loss_sums.items():
        for name, total in sums.items():
          tf.summary.scalar(f"{network_name}/{name}", total / self._loss_counts[network_name])
      for name in ("generator", "critic"):
        optimizer = getattr(networks, f"{name}_optimizer")
        if optimizer is not None:  # .numpy(): float() refuses a MirroredVariable's value
          tf.summary.scalar(f"learning_rate/{name}", float(optimizer.learning_rate.numpy()))
    self._loss_sums, self._loss_counts = {}, {}

  def validate(self, step) -> dict:
    """The mean of every registered figure and of L1 over the validation subjects."""
    scores = []
    volumes = pipeline.volume_pairs(self._config.dataset, "validation", self._data_config,
                                    limit=self._count)
    for index, (_, lr, hr) in enumerate(volumes):
      sr = inference.super_resolve(self._generator, lr, tile=self._config.validation_tile,
                                   margin=self._config.validation_margin, progress=False)
      scores.append({**metrics.quality(hr, sr, self._data_config.acquisition),
                     "l1": float(np.mean(np.abs(sr - hr), dtype=np.float64))})
      if index == 0:
        image = comparison_image(lr, sr, hr, self._data_config.acquisition)
    means = {name: float(np.mean([s[name] for s in scores])) for name in scores[0]}
    if self._writer is not None:
      with self._writer.as_default(step=step):
        for name, value in means.items():
          tf.summary.scalar(f"validation/{name}", value)
        tf.summary.image("validation/lr_sr_hr", image)
      self._writer.flush()
    return means
