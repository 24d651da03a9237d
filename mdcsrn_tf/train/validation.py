"""Validation and TensorBoard summaries of a training run.

Validation super-resolves whole volumes of the validation split with the tiled inference
the paper uses (inference.super_resolve, 64^3 tiles, 3-voxel margin) and scores them as
every figure of the metric registry (metrics.quality: in-plane SSIM, PSNR, NRMSE,
sharpness, band fidelity; plus the mean L1), averaged over the subjects. Beside them, once when a run starts, the same figures of the network's
input and of the bicubic baseline on the same subjects, so that a validation PSNR can be
read against what the network starts from (`baselines`). Summaries: each network's losses
under "<network>/<loss>", averaged over `summary_every` steps, the learning rates, the
validation metrics under "validation/", the baselines' under "validation_input/" and
"validation_bicubic/" (at the run's first step), and a middle slice in the acquisition's plane
as one image: LR | SR | HR.

Scalars are written as plain `simple_value` summaries, which TensorBoard and every event
reader (EventAccumulator.Scalars among them) show; tf.summary.scalar writes TF2 tensor
summaries that only TensorBoard's own loader turns back into scalars.
"""
import dataclasses

import numpy as np

import tensorflow as tf

from mdcsrn_tf import metrics
from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.data import kspace, manifest, naming, pipeline
from mdcsrn_tf.infer import inference
from mdcsrn_tf.weights import seen


def write_scalar(tag, value, step):
  """One scalar as a plain simple_value summary of the default writer."""
  summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag,
                                                                   simple_value=float(value))])
  tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)


def summary_line(step, total, written, seconds) -> str:
  """One log line for a summary: the step, the mean losses, the learning rates, the time."""
  values = " ".join(f"{tag}={value:.4g}" for tag, value in written.items())
  return f"step {step}/{total}: {values} ({seconds:.1f} s since start)"


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
    self._keep_band = data_config.acquisition if config.keep_measured_band else None
    self._writer = tf.summary.create_file_writer(logdir) if logdir else None
    # Read now, so that a data set without validation volumes fails before training, and
    # once: the card describes the data set as the run read it, whatever the manifest
    # file holds by the time the run ends.
    entries = manifest.split_entries(config.dataset, "validation")
    self.entries = manifest.read(config.dataset)
    self._count = min(config.validation_subjects or len(entries), len(entries))
    names = naming.unique_names([e["name"] for e in entries[:self._count]],
                                [e["path"] for e in entries[:self._count]])
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    log(f"validation: {self._count} of {len(entries)} validation subjects, the same every "
        f"time ({shown})")
    self._loss_sums, self._loss_counts = {}, {}
    self._log = log

  def subjects(self) -> dict:
    """The data set's subject names per split as the run read it when it started, and under
    "files" each volume's resolved path, size and SHA-256 (for the model card:
    weights/seen.py)."""
    entries = self.entries
    names = {split: naming.unique_names([e["name"] for e in entries[split]],
                                        [e["path"] for e in entries[split]])
             for split in seen.SPLITS}
    return {**names, seen.FILES: {split: seen.volume_records(names[split], entries[split])
                                  for split in seen.SPLITS}}

  def log_step(self, step, network, values, networks) -> dict | None:
    """Adds one step's losses; every `summary_every` steps writes each network's mean
    losses over the steps since the last summary (in the GAN phase the generator's steps
    are sparse) and the learning rates, and returns them ({tag: value}; None between
    summaries)."""
    if self._writer is None:
      return None
    sums = self._loss_sums.setdefault(network, {})
    for name, value in values.items():
      sums[name] = sums.get(name, 0.0) + value
    self._loss_counts[network] = self._loss_counts.get(network, 0) + 1
    if step % self._config.summary_every:
      return None
    written = {f"{network_name}/{name}": total / self._loss_counts[network_name]
               for network_name, sums in self._loss_sums.items() for name, total in sums.items()}
    for name in ("generator", "critic"):
      optimizer = getattr(networks, f"{name}_optimizer")
      if optimizer is not None:  # .numpy(): float() refuses a MirroredVariable's value
        written[f"learning_rate/{name}"] = float(optimizer.learning_rate.numpy())
    with self._writer.as_default(step=step):
      for tag, value in written.items():
        write_scalar(tag, value, step)
    self._loss_sums, self._loss_counts = {}, {}
    return written

  def baselines(self, step, summarise=True) -> dict:
    """{"input": figures, "bicubic": figures} on the validation subjects: the network's input
    and the bicubic baseline, scored as `validate` scores the network; written to the
    summaries at `step` when `summarise`."""
    config, acquisition = self._config, self._data_config.acquisition
    sums = {"input": [], "bicubic": []}
    for _, lr, hr in pipeline.volume_pairs(config.dataset, "validation", self._data_config,
                                           limit=self._count):
      cubic = kspace.degrade(hr, dataclasses.replace(acquisition, placement="cubic"))
      for name, volume in (("input", lr), ("bicubic", cubic)):
        volume = np.asarray(volume, np.float32)
        sums[name].append({**metrics.quality(hr, volume, acquisition),
                           "l1": float(np.mean(np.abs(volume - hr), dtype=np.float64))})
    means = {name: {m: float(np.mean([s[m] for s in scores])) for m in scores[0]}
             for name, scores in sums.items()}
    if self._writer is not None and summarise:
      with self._writer.as_default(step=step):
        for name, figures_of in means.items():
          for metric, value in figures_of.items():
            write_scalar(f"validation_{name}/{metric}", value, step)
      self._writer.flush()
    return means

  def log_marks(self, start_step):
    """Logs `baselines`, the marks a validation PSNR is read against; into the summaries
    only at a run's first step, so that a resumed run adds no second point."""
    figures_of = self.baselines(start_step, summarise=not start_step)
    placement = self._data_config.acquisition.placement
    self._log("validation marks before training: " + "; ".join(
        f"{f'input ({placement})' if name == 'input' else name} PSNR "
        f"{values['psnr']:.2f} dB, SSIM {values['ssim']:.4f}"
        for name, values in figures_of.items()))

  def validate(self, step) -> dict:
    """Mean PSNR, SSIM, NRMSE and L1 over the validation subjects."""
    scores = []
    volumes = pipeline.volume_pairs(self._config.dataset, "validation", self._data_config,
                                    limit=self._count)
    for index, (_, lr, hr) in enumerate(volumes):
      sr = inference.super_resolve(self._generator, lr, tile=self._config.validation_tile,
                                   margin=self._config.validation_margin, progress=False,
                                   keep_band=self._keep_band)
      scores.append({**metrics.quality(hr, sr, self._data_config.acquisition),
                     "l1": float(np.mean(np.abs(sr - hr), dtype=np.float64))})
      if index == 0:
        image = comparison_image(lr, sr, hr, self._data_config.acquisition)
    means = {name: float(np.mean([s[name] for s in scores])) for name in scores[0]}
    if self._writer is not None:
      with self._writer.as_default(step=step):
        for name, value in means.items():
          write_scalar(f"validation/{name}", value, step)
        tf.summary.image("validation/lr_sr_hr", image)
      self._writer.flush()
    self._log(f"validation at step {step}: PSNR {means['psnr']:.2f} dB, SSIM "
              f"{means['ssim']:.4f}")
    return means
