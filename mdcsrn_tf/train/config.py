"""A training run's settings: one frozen, documented dataclass (docs/training.md).

`python -m mdcsrn_tf.train` makes one flag per field, with the field's line below as its
help; flags/*.cfg hold the paper's recipes (docs/paper.md#training-schedule). WORKDIR keeps
the resolved settings as flags.cfg (to repeat the run) and config.json (what a restart is
checked against: run_record.py).
"""
import dataclasses
import math
import os
import shutil

from mdcsrn_tf import acquisition as acquisitions
from mdcsrn_tf import models, paper
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import noise
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.train.schedule import CRITIC, GENERATOR, CriticSchedule, count_steps

PHASES = ("pretrain", "gan")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker")
LR_DECAYS = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one training run depends on.

  Attributes:
    dataset: manifest.json of a prepared data set (python -m mdcsrn_tf.data).
    workdir: the run's folder: checkpoints/, best/, logs/ (TensorBoard), export/generator.
    model: generator: b1u8, b2u4, b3u4, b4u4, fsrcnn or srresnet.
    identity_init: start an mDCSRN generator as the identity map (no: Glorot everywhere).
    phase: pretrain (L1) or gan (WGAN-GP with the critic schedule).
    steps: total global steps; in the GAN phase one step updates one network.
    batch_size: global batch size, split over the replicas.
    patch_size: training patch edge in voxels (a multiple of 16 for the critic).
    factors: per-axis factors from the HR grid to the LR one (default 2,2,1, the paper's;
      docs/data.md#the-acquisition).
    slice_profile: none (the paper's k-space truncation), boxcar or gaussian (thick slices
      averaged along the one axis with a factor > 1).
    placement: how the LR volume returns to the HR grid as the network's input: linear
      (default, the paper's), zero_filled, cubic or nearest.
    lr_mode: the older name of --placement (the paper's flagfiles).
    factor: the older spelling of --factors: this factor along the two --plane_axes.
    plane_axes: with --factor, the two axes it applies to (default 0,1).
    augment: random plane-keeping flips and swaps of training patches.
    min_intensity_scale: multiply each training patch pair by a factor drawn log-uniformly
      from [this, 1], as if the head were darker after its normalisation (1: off).
    noise_sigma: add Rician noise to each training patch pair, of a standard deviation drawn
      uniformly from [0, this] of the normalised maximum (0: none; zero-filled
      acquisitions only).
    keep_measured_band: validate, and mark the exported weights' card so that every command
      runs them so, with outputs that keep their input's k-space inside the band the
      acquisition kept (zero-filled acquisitions only; docs/evaluation.md).
    min_foreground: the fraction of a training patch that must be head (voxels above the
      head's level, metrics.HEAD_LEVEL); 0 cuts patches anywhere in the volume.
    patches_per_volume: patches cut from a volume per visit.
    parallel_volumes: volumes prepared at once; with the shuffle buffer it bounds the
      pipeline's memory, whatever the number of subjects.
    shuffle_patches: patches in the buffer that mixes the patches of several volumes.
    disk_cache: keep each degraded volume on disk, so the degradation is paid once per
      subject, not once per visit.
    cache_dir: the disk cache's folder ("": $MDCSRN_CACHE_DIR, else
      ~/.cache/mdcsrn_tf/degraded).
    memory_cache_volumes: degraded volumes also kept in memory (0: none).
    generator_lr: Adam learning rate of the generator (paper: 1e-4, then 5e-6 in the GAN).
    critic_lr: Adam learning rate of the critic (paper: 5e-6).
    lr_decay: constant (the paper's) or cosine: each rate falls to 0 over its optimiser's
      own updates in the run.
    adversarial_weight: lambda, the weight of -D(G(LR)) in the generator's GAN loss.
    gp_weight: the gradient penalty's weight.
    warmup_steps: GAN phase: critic-only steps at the start (paper: 10000).
    critic_per_generator: GAN phase: critic steps per generator step (paper: 7).
    extra_critic_every: GAN phase: regular steps between bursts of extra critic steps
      (paper: 500).
    extra_critic_steps: GAN phase: critic steps per burst (paper: 200).
    precision: float32, mixed_float16 (with loss scaling) or mixed_bfloat16.
    jit_compile: compile the training steps with XLA.
    strategy: default (one device), mirrored (all local GPUs) or multi_worker (TF_CONFIG).
    checkpoint_every: steps between checkpoints; a killed run loses at most this many.
    keep_checkpoints: recent checkpoints kept (the best-PSNR one is kept apart).
    validate_every: steps between validations (0: only at the end).
    validation_subjects: validate on the first N validation volumes of the manifest, the
      same at every validation (0: all of them).
    validation_tile: tile edge of validation inference (the paper's 64).
    validation_margin: tile margin of validation inference (the paper's 3).
    summary_every: steps between TensorBoard scalar summaries.
    init_generator: starting weights when the run has no checkpoint yet: an exported
      PATH(.weights.h5) or a training workdir (the GAN phase needs one).
    unverified_weights: accept --init_generator weights whose model card records no
      SHA-256 (cards from before checksums); otherwise they are refused.
    seed: seeds the weights, the data stream and the penalty's interpolation weights.
  """
  dataset: str
  workdir: str
  model: str = "b4u4"
  identity_init: bool = True
  phase: str = "pretrain"
  steps: int = 500_000
  batch_size: int = 2
  patch_size: int = 64
  factors: tuple[int, ...] | None = None
  slice_profile: str = "none"
  placement: str | None = None
  lr_mode: str | None = None
  factor: int | None = None
  plane_axes: tuple[int, ...] | None = None
  augment: bool = True
  min_intensity_scale: float = 1.0
  noise_sigma: float = 0.0
  keep_measured_band: bool = False
  min_foreground: float = 0.5
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
  validation_tile: int = paper.TILE
  validation_margin: int = paper.MARGIN
  summary_every: int = 100
  init_generator: str = ""
  unverified_weights: bool = False
  seed: int = 0

  def updates(self) -> dict:
    """{"generator": n, "critic": m}: each optimiser's updates over the whole run."""
    if self.phase == "pretrain":
      return {GENERATOR: self.steps, CRITIC: 0}
    return count_steps(self.steps, self.critic_schedule)

  @property
  def acquisition(self) -> Acquisition:
    """The acquisition the flags describe (InputError for an unusable one)."""
    return acquisitions.from_flags(self.factors, self.slice_profile, self.placement,
                                   self.lr_mode, self.factor, self.plane_axes)

  @property
  def critic_schedule(self) -> CriticSchedule:
    return CriticSchedule(self.warmup_steps, self.critic_per_generator,
                          self.extra_critic_every, self.extra_critic_steps)

  def validate(self):
    """Raises InputError naming the first unusable setting."""
    checks = [
        (self.model in models.GENERATOR_NAMES,
         f"--model must be one of {', '.join(models.GENERATOR_NAMES)}, got {self.model!r}"),
        (self.phase in PHASES, f"--phase must be one of {', '.join(PHASES)}, got {self.phase!r}"),
        (self.precision in PRECISIONS,
         f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
        (self.strategy in STRATEGIES,
         f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"),
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
        (0 < self.min_intensity_scale <= 1,
         f"--min_intensity_scale must be within (0, 1], got {self.min_intensity_scale}"),
        (0 <= self.noise_sigma < 1,
         f"--noise_sigma must be within [0, 1), got {self.noise_sigma}"),
        (0 <= self.min_foreground <= 1,
         f"--min_foreground must be within [0, 1], got {self.min_foreground}"),
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
    self.acquisition  # noqa: B018  (validates the acquisition)
    if self.noise_sigma:
      noise.check_acquisition(self.acquisition)
    if self.keep_measured_band and not self.acquisition.band_is_measured:
      raise InputError(f"--keep_measured_band needs an acquisition whose input holds the "
                       f"measured band (--placement=zero_filled, no slice profile), got "
                       f"{self.acquisition.describe()}")
    try:
      self.critic_schedule  # noqa: B018  (validates the schedule's numbers)
    except ValueError as error:
      raise InputError(f"GAN schedule: {error}") from None


NPY_HEADER_BYTES = 128  # a .npy file's header (NumPy pads it to 64-byte multiples)
# Bytes per voxel of a training volume while a visit prepares it: the float32 (LR, HR) pair
# and, while the disk cache is cold, the volume's complex FFT (data/volume_store.py).
VISIT_BYTES_PER_VOXEL = 8 + 16


def patch_memory_bytes(config: TrainConfig, largest_shape) -> int:
  """The data pipeline's peak memory: `parallel_volumes` visits of the largest training
  volume (padded to the patch) with their cut patches, the shuffle buffer, the batches in
  flight (data/pipeline.py: three, with the prefetched two), and the (LR, HR) pairs that
  `memory_cache_volumes` keeps."""
  padded = math.prod(max(n, config.patch_size) for n in largest_shape)
  patch_pair = 2 * 4 * config.patch_size**3
  patches = (config.parallel_volumes * config.patches_per_volume + config.shuffle_patches
             + 3 * config.batch_size)
  return ((config.parallel_volumes * VISIT_BYTES_PER_VOXEL + config.memory_cache_volumes * 8)
          * padded + patches * patch_pair)


def check_patch_memory(config: TrainConfig, largest_shape, available: int | None):
  """InputError when the data pipeline would need more than `available` bytes (None:
  unknown, not checked)."""
  needed = patch_memory_bytes(config, largest_shape)
  if available is not None and needed > available:
    raise InputError(
        f"{config.dataset}: training patches need about {needed / 2**30:.3g} GiB "
        f"(--parallel_volumes {config.parallel_volumes} visits of a "
        f"{' x '.join(map(str, largest_shape))} volume, --patch_size {config.patch_size}, "
        f"--shuffle_patches {config.shuffle_patches}, --memory_cache_volumes "
        f"{config.memory_cache_volumes}), more than the "
        f"{available / 2**30:.3g} GiB of memory available; lower those flags")


def cache_folder(config: TrainConfig) -> str | None:
  """The disk cache's folder (None without one); InputError when it is a file or cannot
  be made."""
  if not config.disk_cache:
    return None
  from mdcsrn_tf.data import volume_store

  folder = config.cache_dir or volume_store.default_cache_dir()
  if os.path.exists(folder) and not os.path.isdir(folder):
    raise InputError(f"{folder}: the disk cache's folder is a file; give --cache_dir a folder "
                     "or --nodisk_cache")
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as error:
    raise InputError(f"{folder}: cannot make the disk cache's folder ({error.strerror})") from None
  if not os.access(folder, os.W_OK | os.X_OK):
    raise InputError(f"{folder}: the disk cache's folder is not writable")
  return folder


def check_cache_space(config: TrainConfig, paths, shapes, free_bytes=None):
  """InputError when the disk cache would need more room than its disk has free
  (`free_bytes`: shutil.disk_usage's) for the (LR, HR) pairs of `paths` (of `shapes`) it does
  not hold yet, float32 [2, D, H, W] each (data/volume_store.py): known now, not hours in
  when the disk fills."""
  folder = cache_folder(config)
  if folder is None:
    return
  from mdcsrn_tf.data import volume_store

  store = volume_store.VolumeStore(config.acquisition, folder)
  missing = [shape for path, shape in zip(paths, shapes)
             if not os.path.exists(store.entry_base(path) + ".npy")]
  needed = sum(2 * 4 * math.prod(shape) + NPY_HEADER_BYTES for shape in missing)
  free = shutil.disk_usage(folder).free if free_bytes is None else free_bytes
  if needed > free:
    raise InputError(
        f"{folder}: the disk cache needs about {needed / 2**30:.3g} GiB for the {len(missing)} "
        f"volumes it does not hold yet, more than the {free / 2**30:.3g} GiB free there; free "
        "space, give --cache_dir a larger disk, or --nodisk_cache")
