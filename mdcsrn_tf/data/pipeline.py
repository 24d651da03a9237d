"""From a manifest split to (LR, HR) training patches and validation volumes (docs/data.md).

Training patches stream in memory set by the configuration, not by the number of subjects:

1. Visits: every epoch the split's entries come in a new order, a permutation drawn from
   (seed, epoch), so every subject is visited once per epoch. Only the list of files is
   shuffled, never decoded volumes.
2. `parallel_volumes` visits run at once: the volume's (LR, HR) pair comes from the
   VolumeStore (the disk cache, or decoded, divided by its maximum and degraded in k-space
   now), then `patches_per_volume` cubes are cut at random among the corners whose patch is
   mostly head (at least `min_foreground` of its voxels above metrics.HEAD_LEVEL) and
   augmented with one of the 16 transforms that keep the acquisition (a swap of two axes
   with equal factors, flips along any axis), the same on LR and HR. An axis never moves to
   where the factor differs.
3. The patches of several volumes are mixed in a shuffle buffer of `shuffle_patches` patches
   and batched.

Every random draw comes from (seed, visit) or the seeded shuffle, so a seed gives the same
stream on any machine whatever the threads' timing. Memory: the pairs of the visits in
flight (memory-mapped from the cache when it is warm; while it is cold each visit also holds
its volume's FFT), the shuffle buffer and two batches.

Validation reads whole volumes one at a time (`volume_pairs`).
"""
import contextlib
import dataclasses
import threading

import numpy as np

import tensorflow as tf

from mdcsrn_tf.data import manifest, noise, transforms
from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.data.volume_store import HR, LR, VolumeStore, corner_stride
from mdcsrn_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """How training patches and validation volumes are made.

  Attributes:
    patch_size: patch edge in voxels.
    batch_size: patches per batch.
    acquisition: how the network input is made from HR (acquisition.Acquisition).
    seed: seeds the visit order, the patches and the shuffle.
    augment: random plane-keeping flips and swaps of the patches.
    noise_sigma: each patch pair gets Rician noise of a standard deviation drawn uniformly
      from [0, noise_sigma] (data/noise.py; 0: none).
    min_intensity_scale: each patch pair is multiplied by a factor drawn log-uniformly
      from [min_intensity_scale, 1] (1: never scaled; see intensity_scales).
    min_foreground: the fraction of head a patch needs.
    patches_per_volume: patches cut per visit of a volume.
    parallel_volumes: visits prepared at once.
    shuffle_patches: patches in the shuffle buffer that mixes volumes.
    cache_dir: the disk cache of degraded volumes; None: no disk cache.
    memory_volumes: pairs kept in memory (0: none).
  """
  patch_size: int = 64
  batch_size: int = 2
  acquisition: Acquisition = PAPER
  seed: int = 0
  augment: bool = True
  min_intensity_scale: float = 1.0
  noise_sigma: float = 0.0
  min_foreground: float = 0.5
  patches_per_volume: int = 8
  parallel_volumes: int = 4
  shuffle_patches: int = 64
  cache_dir: str | None = None
  memory_volumes: int = 0

  def __post_init__(self):
    if not 0 < self.min_intensity_scale <= 1:
      raise InputError(f"min_intensity_scale must be within (0, 1], got "
                       f"{self.min_intensity_scale}")
    if not 0 <= self.noise_sigma < 1:
      raise InputError(f"noise_sigma must be within [0, 1), got {self.noise_sigma}")
    if self.noise_sigma:
      noise.check_acquisition(self.acquisition)
    if min(self.patch_size, self.batch_size, self.patches_per_volume, self.parallel_volumes,
           self.shuffle_patches) < 1 or self.memory_volumes < 0 or self.seed < 0:
      raise InputError("patch_size, batch_size, patches_per_volume, parallel_volumes and "
                       "shuffle_patches must be >= 1, memory_volumes and seed >= 0")

  def store(self, log=None) -> VolumeStore:
    return VolumeStore(self.acquisition, self.cache_dir, self.memory_volumes, log)


def _pad_to_patch(pair, patch_size):
  """Zero-pads each spatial axis shorter than the patch, evenly on both sides."""
  missing = [max(patch_size - n, 0) for n in pair.shape[1:]]
  if not any(missing):
    return pair
  return np.pad(pair, [(0, 0)] + [(m // 2, m - m // 2) for m in missing])


def augment(pair, draws, swap_axes):
  """One of the 16 acquisition-keeping transforms (data/transforms.py) of a [C, P, P, P]
  stack, chosen by `draws` (4 uniforms in [0, 1)): swap `swap_axes` (two axes with equal
  factors; None: never), then flip each spatial axis."""
  return transforms.drawn(draws, swap_axes).apply(pair, first_axis=1)


def intensity_scales(rng, count, lowest) -> np.ndarray:
  """`count` factors drawn log-uniformly from [lowest, 1]. Volumes are divided by their
  maximum (data/intensity.py), and one bright outlier voxel leaves a scanned head darker
  than an average of many heads, whose maxima are smoothed away; k-space degradation is
  linear, so a pair scaled alike is still a true (LR, HR) pair, of a darker head."""
  return np.exp(rng.uniform(np.log(lowest), 0.0, count)).astype(np.float32)


class PatchStream:
  """The infinite stream of training batches of one manifest split.

  `dataset()` yields (lr, hr) float32 batches [B, P, P, P, 1]. An unusable volume met while
  streaming (NaN voxels in a hand-written manifest, say) stops the stream; the loop reading
  it wraps each read in `reporting_input_errors()` to get that InputError back, instead of
  the error TensorFlow wraps around it. Any other error inside tf.data becomes one
  InputError line too, never a traceback from a pipeline thread.
  """

  def __init__(self, manifest_path, split, config: PipelineConfig, log=None):
    self.config = config
    self.entries = manifest.split_entries(manifest_path, split)
    self._store = config.store(log)
    self._failure = None
    self._failure_lock = threading.Lock()

  def visit_order(self, epoch) -> np.ndarray:
    """The entry indices of one epoch, a permutation of range(len(entries))."""
    return np.random.default_rng([self.config.seed, int(epoch)]).permutation(len(self.entries))

  def visits(self) -> tf.data.Dataset:
    """(visit number, entry index) int64 pairs, epoch after epoch, forever."""
    n = len(self.entries)

    def epoch_visits(epoch):
      order = tf.numpy_function(lambda e: self.visit_order(e).astype(np.int64), [epoch],
                                tf.int64, stateful=False)
      return tf.data.Dataset.from_tensor_slices(
          (epoch * n + tf.range(n, dtype=tf.int64), tf.ensure_shape(order, [n])))

    return tf.data.Dataset.counter().flat_map(epoch_visits)

  def cut_patches(self, visit, entry_index):
    """(lr, hr), each [patches_per_volume, P, P, P, 1] float32, of one visit."""
    config, size = self.config, self.config.patch_size
    path = self.entries[int(entry_index)]["path"]
    pair = _pad_to_patch(self._store.pair(path), size)
    corners = self._store.corners(path, pair[HR], size, config.min_foreground)
    rng = np.random.default_rng([config.seed, int(visit)])
    picks = rng.integers(0, len(corners), config.patches_per_volume)
    # jitter within the corner grid's stride, so every offset (and LR-grid parity) occurs
    jitter = rng.integers(0, corner_stride(size), (config.patches_per_volume, 3))
    starts = np.minimum(corners[picks] + jitter, np.array(pair.shape[1:]) - size)
    shape = (config.patches_per_volume, size, size, size, 1)
    lr, hr = np.empty(shape, np.float32), np.empty(shape, np.float32)
    for k, start in enumerate(starts):
      patch = pair[(slice(None), *(slice(s, s + size) for s in start))]
      if config.augment:
        patch = augment(patch, rng.random(4), config.acquisition.swap_axes)
      lr[k, ..., 0], hr[k, ..., 0] = patch[LR], patch[HR]
    if config.min_intensity_scale < 1:
      scales = intensity_scales(rng, config.patches_per_volume, config.min_intensity_scale)
      lr *= scales[:, None, None, None, None]
      hr *= scales[:, None, None, None, None]
    if config.noise_sigma:
      for k, sigma in enumerate(rng.uniform(0.0, config.noise_sigma, config.patches_per_volume)):
        lr[k, ..., 0], hr[k, ..., 0] = noise.noisy_pair(lr[k, ..., 0], hr[k, ..., 0], sigma,
                                                        config.acquisition.factors, rng)
    return lr, hr

  def _cut_recording_failures(self, visit, entry_index):
    try:
      return self.cut_patches(visit, entry_index)
    except Exception as error:  # noqa: BLE001  (any failure of a visit is reported alike)
      path = self.entries[int(entry_index)]["path"]
      message = (str(error) if isinstance(error, InputError) else
                 f"{path}: cannot make training patches ({type(error).__name__}: {error})")
      with self._failure_lock:
        self._failure = self._failure or message
      raise

  def dataset(self) -> tf.data.Dataset:
    config = self.config
    shape = [config.patches_per_volume] + [config.patch_size] * 3 + [1]

    def cut(visit, entry_index):
      lr, hr = tf.numpy_function(self._cut_recording_failures, [visit, entry_index],
                                 [tf.float32, tf.float32], stateful=False)
      return tf.ensure_shape(lr, shape), tf.ensure_shape(hr, shape)

    patches = self.visits().map(cut, num_parallel_calls=config.parallel_volumes,
                                deterministic=True).unbatch()
    if config.shuffle_patches > 1:
      patches = patches.shuffle(config.shuffle_patches, seed=config.seed)
    return patches.batch(config.batch_size, drop_remainder=True).prefetch(2)

  @contextlib.contextmanager
  def reporting_input_errors(self):
    """Turns the TensorFlow error around an unusable volume back into its InputError (any
    other tf.data error into one naming the pipeline)."""
    try:
      yield
    except tf.errors.OpError as error:
      if self._failure is not None:
        raise InputError(self._failure) from None
      first = (error.message.strip().splitlines() or [type(error).__name__])[0]
      raise InputError(f"the training data pipeline failed ({first})") from None


def volume_pairs(manifest_path, split, config: PipelineConfig, limit=0, log=None):
  """Yields (entry, lr, hr) of the split's volumes in manifest order, one at a time (the
  first `limit` only, when > 0); lr and hr are [D, H, W] float32."""
  store = config.store(log)
  entries = manifest.split_entries(manifest_path, split)
  for entry in entries[:limit] if limit else entries:
    pair = store.pair(entry["path"])
    yield entry, np.array(pair[LR]), np.array(pair[HR])
