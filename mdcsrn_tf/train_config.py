"""The training run's settings as one frozen dataclass (flags/*.cfg set them; NOTES.md,
Training schedule, gives the paper's values)."""
import dataclasses
import json
import math
import os

from mdcsrn_tf.errors import InputError
from mdcsrn_tf.schedule import CRITIC, GENERATOR, CriticSchedule, count_steps

PHASES = ("pretrain", "gan")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker")
LR_MODES = ("linear", "zero_filled")
LR_DECAYS = ("constant", "cosine")
RUN_RECORD = "config.json"  # the resolved config of the run in WORKDIR
# Settings a resumed run must share with the checkpoints it continues: they shape the
# checkpoint (networks, optimisers, loss scaling, the critic's input) or the data it learns.
RESUME_INVARIANTS = ("model", "phase", "precision", "lr_decay", "lr_mode", "factor",
                     "plane_axes")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one training run depends on.

  Attributes:
    dataset: manifest.json of a prepared data set (data/prepare.py).
    workdir: checkpoints/, best/, logs/ (TensorBoard) and export/generator go here.
    model: generator name (models.GENERATOR_NAMES).
    identity_init: an mDCSRN generator starts as the identity map (models/mdcsrn.py); False
      starts it from Keras' default initialisers everywhere. Baselines ignore it.
    phase: "pretrain" (L1 only) or "gan" (WGAN-GP with the critic schedule).
    steps: total global steps; in the GAN phase one step updates one network.
    batch_size: global batch (split over the replicas of the strategy).
    patch_size: patch edge in voxels; the critic needs a multiple of 16.
    lr_mode, factor, plane_axes: how LR patches are made (data.pipeline.PipelineConfig).
    augment: flips/rotations of training patches.
    patches_per_volume: patches cut from a volume per visit (data.pipeline).
    parallel_volumes: volumes prepared at once; with the shuffle buffer, it bounds the
      pipeline's memory whatever the number of subjects.
    shuffle_patches: patches in the buffer that mixes the patches of several volumes.
    disk_cache: keep each degraded volume on disk (data.volume_store), so the k-space
      degradation is paid once per subject, not once per visit.
    cache_dir: where the disk cache lives ("": $MDCSRN_CACHE_DIR or
      ~/.cache/mdcsrn_tf/degraded).
    memory_cache_volumes: degraded volumes also kept in memory (0: none), for small data
      sets without a disk cache.
    generator_lr, critic_lr: Adam learning rates (paper: 1e-4 pre-training, 5e-6 GAN).
    lr_decay: "constant" (the paper's) or "cosine": each rate falls to 0 along a cosine over
      its optimiser's own updates in `steps` (short runs end on settled weights and
      BatchNorm statistics; docs/deviations.md).
    adversarial_weight: lambda of eq. 5 (0.001).
    gp_weight: gradient penalty weight (10).
    warmup_steps, critic_per_generator, extra_critic_every, extra_critic_steps: the GAN
      schedule (schedule.CriticSchedule; paper 10000, 7, 500, 200).
    precision: "float32", "mixed_float16" (with loss scaling) or "mixed_bfloat16".
    jit_compile: compile each replica's step with XLA.
    strategy: "default", "mirrored" (all local GPUs, else all logical CPUs) or
      "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG).
    checkpoint_every: steps between checkpoints; a killed run loses at most this many.
    keep_checkpoints: most recent checkpoints kept (the best-PSNR one is kept apart).
    validate_every: steps between validations on whole validation volumes (0: never,
      only at the end).
    validation_subjects: validate on the first N validation subjects of the manifest, a
      fixed subset (0: all of them).
    validation_tile, validation_margin: tiled inference (the paper's 64 and 3).
    summary_every: steps between TensorBoard scalar summaries.
    init_generator: weights the generator starts from when no checkpoint exists: an
      exported PATH(.weights.h5) or a training workdir / checkpoint folder. The GAN phase
      needs it (the paper starts G from the pre-trained network).
    seed: seeds the weights, the patches and the penalty's interpolation weights.
  """
  dataset: str
  workdir: str
  model: str = "b4u4"
  identity_init: bool = True
  phase: str = "pretrain"
  steps: int = 500_000
  batch_size: int = 2
  patch_size: int = 64
  lr_mode: str = "linear"
  factor: int = 2
  plane_axes: tuple = (0, 1)
  augment: bool = True
  patches_per_volume: int = 8
  parallel_volumes: int = 4
  shuffle_patches: int = 64
  disk_cache: bool = True
  cache_dir: str = ""
  memory_cache_volumes: int = 0
  generator_lr: float = 1e-4
  critic_lr: float = 5e-6
  lr_decay: str = "constant"
  adversarial_weight: float = 1e-3
  gp_weight: float = 10.0
  warmup_steps: int = 10_000
  critic_per_generator: int = 7
  extra_critic_every: int = 500
  extra_critic_steps: int = 200
  precision: str = "float32"
  jit_compile: bool = False
  strategy: str = "default"
  checkpoint_every: int = 1000
  keep_checkpoints: int = 5
  validate_every: int = 10_000
  validation_subjects: int = 8
  validation_tile: int = 64
  validation_margin: int = 3
  summary_every: int = 100
  init_generator: str = ""
  seed: int = 0

  def updates(self) -> dict:
    """{"generator": n, "critic": m}: each optimiser's updates over the whole run."""
    if self.phase == "pretrain":
      return {GENERATOR: self.steps, CRITIC: 0}
    return count_steps(self.steps, self.critic_schedule)

  @property
  def critic_schedule(self) -> CriticSchedule:
    return CriticSchedule(self.warmup_steps, self.critic_per_generator,
                          self.extra_critic_every, self.extra_critic_steps)

  def validate(self):
    """Raises InputError naming the first unusable setting."""
    from mdcsrn_tf import models  # keeps this module free of TensorFlow

    checks = [
        (self.model in models.GENERATOR_NAMES,
         f"--model must be one of {', '.join(models.GENERATOR_NAMES)}, got {self.model!r}"),
        (self.phase in PHASES, f"--phase must be one of {', '.join(PHASES)}, got {self.phase!r}"),
        (self.precision in PRECISIONS,
         f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
        (self.strategy in STRATEGIES,
         f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"),
        (self.lr_mode in LR_MODES, f"--lr_mode must be one of {', '.join(LR_MODES)}"),
        (self.lr_decay in LR_DECAYS, f"--lr_decay must be one of {', '.join(LR_DECAYS)}"),
        (min(self.steps, self.batch_size, self.patch_size, self.checkpoint_every,
             self.keep_checkpoints, self.summary_every, self.validation_tile,
             self.patches_per_volume, self.parallel_volumes, self.shuffle_patches) >= 1,
         "--steps, --batch_size, --patch_size, --checkpoint_every, --keep_checkpoints, "
         "--summary_every, --validation_tile, --patches_per_volume, --parallel_volumes and "
         "--shuffle_patches must be >= 1"),
        (min(self.validate_every, self.validation_subjects, self.validation_margin,
             self.memory_cache_volumes, self.seed) >= 0,
         "--validate_every, --validation_subjects, --validation_margin, "
         "--memory_cache_volumes and --seed must be >= 0"),
        (all(math.isfinite(x) and x > 0 for x in (self.generator_lr, self.critic_lr)),
         f"learning rates must be finite and > 0, got {self.generator_lr}, {self.critic_lr}"),
        (self.adversarial_weight >= 0 and self.gp_weight >= 0,
         "--adversarial_weight and --gp_weight must be >= 0"),
        (self.phase == "pretrain" or self.patch_size % 16 == 0,
         f"the critic needs --patch_size a multiple of 16, got {self.patch_size}"),
        (not self.jit_compile or self.strategy == "default",
         "--jit_compile works with --strategy=default only (tf.distribute cannot compile "
         "a replicated step)"),
        (self.phase == "pretrain" or self.init_generator,
         "the GAN phase starts from a pre-trained generator: pass --init_generator"),
    ]
    for ok, message in checks:
      if not ok:
        raise InputError(message)
    try:
      self.critic_schedule  # noqa: B018  (validates the schedule's numbers)
    except ValueError as error:
      raise InputError(f"GAN schedule: {error}") from None


def read_run_record(workdir) -> dict | None:
  """The settings WORKDIR's run was started with, or None when it holds no run record."""
  path = os.path.join(workdir, RUN_RECORD)
  try:
    with open(path, encoding="utf-8") as handle:
      return json.load(handle)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as error:
    raise InputError(f"{path}: unreadable run record ({error})") from None


def check_resumable(config: TrainConfig):
  """InputError when WORKDIR holds a run that `config` cannot continue (another model,
  phase, precision, ...): checked before anything is written into WORKDIR."""
  earlier = read_run_record(config.workdir)
  if earlier is None:
    return
  current = json.loads(json.dumps(dataclasses.asdict(config)))
  names = RESUME_INVARIANTS + (("patch_size",) if config.phase == "gan" else ())
  for name in names:
    if name in earlier and earlier[name] != current[name]:
      raise InputError(
          f"{config.workdir}: holds a run with --{name}={_flag_value(earlier[name])}, this one "
          f"asks for --{name}={_flag_value(current[name])}; resume with the same setting or "
          "choose another --workdir")


def _flag_value(value) -> str:
  return ",".join(map(str, value)) if isinstance(value, list) else str(value)
