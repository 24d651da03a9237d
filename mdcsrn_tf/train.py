"""Trains a generator: `python -m mdcsrn_tf.train --flagfile=flags/pretrain.cfg --workdir=DIR`.

Flags after the flagfile override it. The resolved flags are written to
WORKDIR/flags.cfg (flagfile format) so that the run can be repeated, and as
WORKDIR/config.json; running the same command again resumes from WORKDIR's newest intact
checkpoint, and a command whose model, phase or precision differ from the run's is refused. Exit status: 0 when done, 2 for
bad flags or data (one line on stderr), 3 when a loss diverged (NaN/Inf), 128 + N after
signal N (a checkpoint is saved first).
"""
import dataclasses
import json
import os
import sys

from absl import app, flags

import mdcsrn_tf  # noqa: F401  (TensorFlow's environment before TF loads)
from mdcsrn_tf.data.nifti import write_text_atomically
from mdcsrn_tf.errors import InputError, report_input_errors
from mdcsrn_tf.train_config import RUN_RECORD, TrainConfig, check_resumable

FLAGS = flags.FLAGS
EXIT_DIVERGED = 3
_DEFAULTS = TrainConfig(dataset="", workdir="")
_HELP = {
    "dataset": "manifest.json of a prepared data set (python -m mdcsrn_tf.data.prepare)",
    "workdir": "folder of the run: checkpoints, best/, logs/ (TensorBoard), export/generator",
    "model": "generator: b1u8, b2u4, b3u4, b4u4, fsrcnn or srresnet",
    "identity_init": "start an mDCSRN generator as the identity map (no: Glorot everywhere)",
    "phase": "pretrain (L1) or gan (WGAN-GP)",
    "steps": "total global steps (in the GAN phase one step updates one network)",
    "batch_size": "global batch size, split over the replicas",
    "patch_size": "training patch edge in voxels (a multiple of 16 for the critic)",
    "lr_mode": "network input: linear (the paper's) or zero_filled",
    "factor": "k-space truncation factor along the plane axes",
    "plane_axes": "the two degraded axes",
    "augment": "random flips/rotations of training patches",
    "patches_per_volume": "patches cut from a volume per visit",
    "parallel_volumes": "volumes prepared at once (bounds the pipeline's memory)",
    "shuffle_patches": "shuffle buffer, in patches, that mixes several volumes",
    "disk_cache": "keep each degraded volume on disk: the degradation is paid once",
    "cache_dir": "disk cache folder (default: $MDCSRN_CACHE_DIR or ~/.cache/mdcsrn_tf/degraded)",
    "memory_cache_volumes": "degraded volumes also kept in memory (0: none)",
    "generator_lr": "Adam learning rate of the generator",
    "critic_lr": "Adam learning rate of the critic",
    "lr_decay": "constant (the paper's) or cosine (to 0 over the run)",
    "adversarial_weight": "lambda: weight of -D(G(LR)) in the generator loss",
    "gp_weight": "gradient penalty weight",
    "warmup_steps": "GAN phase: critic-only steps at the start",
    "critic_per_generator": "GAN phase: critic steps per generator step",
    "extra_critic_every": "GAN phase: regular steps between bursts of extra critic steps",
    "extra_critic_steps": "GAN phase: critic steps per burst",
    "precision": "float32, mixed_float16 or mixed_bfloat16",
    "jit_compile": "compile the training steps with XLA",
    "strategy": "default, mirrored or multi_worker (TF_CONFIG)",
    "checkpoint_every": "steps between checkpoints",
    "keep_checkpoints": "recent checkpoints kept",
    "validate_every": "steps between validations (0: only at the end)",
    "validation_subjects": "validate on the first N validation subjects, a fixed subset (0: all)",
    "validation_tile": "tile edge of validation inference",
    "validation_margin": "margin of validation inference",
    "summary_every": "steps between TensorBoard scalar summaries",
    "init_generator": "starting weights: exported PATH(.weights.h5) or a training workdir",
    "seed": "random seed",
}


def _define_flags():
  for field in dataclasses.fields(TrainConfig):
    default = getattr(_DEFAULTS, field.name)
    help_text = _HELP[field.name]
    if field.name in ("dataset", "workdir"):
      flags.DEFINE_string(field.name, None, help_text)
    elif isinstance(default, bool):
      flags.DEFINE_bool(field.name, default, help_text)
    elif isinstance(default, int):
      flags.DEFINE_integer(field.name, default, help_text)
    elif isinstance(default, float):
      flags.DEFINE_float(field.name, default, help_text)
    elif isinstance(default, tuple):
      flags.DEFINE_list(field.name, [str(v) for v in default], help_text)
    else:
      flags.DEFINE_string(field.name, default, help_text)


_define_flags()


def config_from_flags() -> TrainConfig:
  values = {field.name: getattr(FLAGS, field.name) for field in dataclasses.fields(TrainConfig)}
  for name in ("dataset", "workdir"):
    if not values[name]:
      raise InputError(f"--{name} is required")
  try:
    values["plane_axes"] = tuple(int(v) for v in values["plane_axes"])
  except ValueError:
    raise InputError(f"--plane_axes must be two integers, got {values['plane_axes']}") from None
  if not os.path.isfile(values["dataset"]):
    raise InputError(f"{values['dataset']}: no such data set manifest")
  return TrainConfig(**values)


def resolved_flags(config: TrainConfig) -> str:
  """The run's settings in flagfile format."""
  lines = []
  for name, value in dataclasses.asdict(config).items():
    if isinstance(value, bool):
      lines.append(f"--{name}" if value else f"--no{name}")
    elif isinstance(value, tuple):
      lines.append(f"--{name}={','.join(str(v) for v in value)}")
    else:
      lines.append(f"--{name}={value}")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = config_from_flags()
  config.validate()
  check_resumable(config)
  os.makedirs(config.workdir, exist_ok=True)
  flag_text = resolved_flags(config)
  write_text_atomically(os.path.join(config.workdir, "flags.cfg"), flag_text)
  write_text_atomically(os.path.join(config.workdir, RUN_RECORD),
                        json.dumps(dataclasses.asdict(config), indent=1) + "\n")
  from mdcsrn_tf import train_lib  # TensorFlow loads only once the flags are good

  flagfiles = [arg.split("=", 1)[1] for arg in sys.argv if arg.startswith("--flagfile=")]
  try:
    card = train_lib.train(config, {"flagfile": flagfiles, "flags": flag_text.splitlines()})
  except train_lib.TrainingDiverged as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(EXIT_DIVERGED)
  except train_lib.TrainingInterrupted as error:
    print(str(error), file=sys.stderr)
    sys.exit(128 + error.signal_number)
  if card:
    scores = card["validation"]
    print(f"exported {os.path.join(config.workdir, train_lib.EXPORT_NAME)} after {card['steps']} "
          f"steps; validation PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f}, "
          f"NRMSE {scores['nrmse']:.4f}, L1 {scores['l1']:.4f}")


def run():
  app.run(report_input_errors(main))


if __name__ == "__main__":
  run()
