"""From a manifest split to (LR, HR) tensors with tf.data (docs/data.md).

Per volume: read the NIfTI, divide by its maximum (`intensity.normalise`: HR in [0, 1], as
NOTES.md's reference figures and the metrics' data range 1), degrade the WHOLE volume in
k-space (`kspace.degrade`, `lr_mode` "linear" = the paper's crop and interpolate, or
"zero_filled"), and keep (LR, HR) in memory when `cache`. Training patches are cubes cut at
random among the corners whose patch is mostly head (at least `min_foreground` of its voxels
above FOREGROUND_LEVEL), then augmented with the 16 transforms that keep the degraded plane:
a swap of the two plane axes and flips along any axis, the same one on LR and HR. The
untouched axis never moves into the plane. Every random draw is stateless, keyed by
(seed, patch index), so a seed gives the same stream on any machine.
"""
import dataclasses
import json
import os

import numpy as np

import mdcsrn_tf  # noqa: F401  (TensorFlow's environment before it loads)
import tensorflow as tf

from mdcsrn_tf.data import intensity, kspace, nifti
from mdcsrn_tf.data.dataset import SPLITS
from mdcsrn_tf.errors import InputError

FOREGROUND_LEVEL = 0.1  # of the volume's maximum: above the background and noise of a head


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  patch_size: int = 64
  batch_size: int = 2
  lr_mode: str = "linear"  # "linear" | "zero_filled" (NOTES.md, LR generation)
  factor: int = 2
  plane_axes: tuple = (0, 1)
  seed: int = 0
  augment: bool = True
  cache: bool = True
  min_foreground: float = 0.5
  patches_per_volume: int = 8  # consecutive patches from one decoded volume
  shuffle_patches: int = 32  # shuffle buffer over those patches

  def __post_init__(self):
    if self.lr_mode not in ("linear", "zero_filled"):
      raise InputError(f"lr_mode {self.lr_mode!r}: expected linear or zero_filled")
    if len(self.plane_axes) != 2 or not set(self.plane_axes) < {0, 1, 2}:
      raise InputError(f"plane_axes {self.plane_axes!r}: expected two distinct axes of 0, 1, 2")
    if self.patch_size < 1 or self.batch_size < 1 or self.patches_per_volume < 1:
      raise InputError("patch_size, batch_size and patches_per_volume must be positive")


def load_manifest(path) -> dict:
  """{split: [entry]} for the four splits; an entry has name, subject, path, shape, zooms."""
  path = os.fspath(path)
  if os.path.isdir(path):
    path = os.path.join(path, "manifest.json")
  try:
    with open(path, encoding="utf-8") as handle:
      subjects = json.load(handle)["subjects"]
  except FileNotFoundError:
    raise InputError(f"{path}: no such manifest (python -m mdcsrn_tf.data.prepare)") from None
  except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
    raise InputError(f"{path}: not a data set manifest ({error})") from None
  return {split: [entry for entry in subjects if entry.get("split") == split]
          for split in SPLITS}


def _split_entries(manifest_path, split):
  manifest = load_manifest(manifest_path)
  if split not in manifest:
    raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
  entries = manifest[split]
  if not entries:
    raise InputError(f"{manifest_path}: split {split!r} has no volume")
  for entry in entries:
    if not os.path.isfile(entry["path"]):
      raise InputError(f"{entry['path']}: volume of {entry['name']} is missing")
  return entries


def _load_normalised(path):
  path = path.decode() if isinstance(path, bytes) else path
  volume, _ = nifti.load_volume(path)
  return intensity.normalise(volume, name=path)[0]


def _volume_pairs(entries, config):
  """Dataset of {"name", "lr", "hr"} whole volumes, normalised and degraded."""

  def load(name, path):
    hr = tf.numpy_function(_load_normalised, [path], tf.float32, stateful=False)
    hr = tf.ensure_shape(hr, [None, None, None])
    lr = kspace.degrade(hr, config.factor, tuple(config.plane_axes), config.lr_mode)
    return {"name": name, "lr": lr, "hr": hr}

  dataset = tf.data.Dataset.from_tensor_slices(
      ([entry["name"] for entry in entries], [entry["path"] for entry in entries]))
  dataset = dataset.map(load)
  return dataset.cache() if config.cache else dataset


def volume_dataset(manifest_path, split, config: PipelineConfig) -> tf.data.Dataset:
  """Finite dataset of whole volumes {"name": string, "lr", "hr": [D, H, W] float32}, in
  manifest order, HR normalised to max 1 and LR degraded per `config.lr_mode`."""
  return _volume_pairs(_split_entries(manifest_path, split), config).prefetch(1)


def corner_stride(patch_size) -> int:
  return max(1, patch_size // 16)


def foreground_corners(hr, patch_size, min_foreground) -> np.ndarray:
  """[K, 3] int32 patch corners on a grid of stride `corner_stride` whose patch has at least
  `min_foreground` of its voxels above FOREGROUND_LEVEL (the best corners if none has)."""
  stride = corner_stride(patch_size)
  table = np.zeros([n + 1 for n in hr.shape], np.int32)
  table[1:, 1:, 1:] = (hr > FOREGROUND_LEVEL).cumsum(0).cumsum(1).cumsum(2)
  starts = [np.arange(0, n - patch_size + 1, stride) for n in hr.shape]
  total = 0
  for corner in np.ndindex(2, 2, 2):  # inclusion-exclusion over the box's 8 corners
    index = np.ix_(*[s + patch_size * c for s, c in zip(starts, corner)])
    total = total + (-1) ** (3 - sum(corner)) * table[index]
  fraction = total / patch_size**3
  accepted = fraction >= min(min_foreground, fraction.max())
  return np.stack([s[i] for s, i in zip(starts, np.nonzero(accepted))], axis=1).astype(np.int32)


def _pad_to_patch(volume, patch_size):
  """Zero-pads each axis shorter than the patch, evenly on both sides."""
  missing = tf.maximum(patch_size - tf.shape(volume), 0)
  return tf.pad(volume, tf.stack([missing // 2, missing - missing // 2], axis=1))


def _with_corners(config):
  def add(item):
    lr, hr = (_pad_to_patch(item[key], config.patch_size) for key in ("lr", "hr"))
    corners = tf.numpy_function(
        lambda volume: foreground_corners(volume, config.patch_size, config.min_foreground),
        [hr], tf.int32, stateful=False)
    return {"lr": lr, "hr": hr, "corners": tf.ensure_shape(corners, [None, 3])}

  return add


def augment_pair(pair, draws, plane_axes):
  """One of the 16 plane-keeping transforms of a [P, P, P, C] stack, chosen by `draws`
  (4 uniforms in [0, 1)): swap the plane axes, then flip each axis."""
  first, second = plane_axes
  swap = [0, 1, 2, 3]
  swap[first], swap[second] = second, first
  pair = tf.cond(draws[0] < 0.5, lambda: tf.transpose(pair, swap), lambda: pair)
  for axis in range(3):
    pair = tf.cond(draws[1 + axis] < 0.5, lambda a=axis: tf.reverse(pair, [a]), lambda: pair)
  return pair


def _cut_patch(config):
  size = config.patch_size

  def cut(index, item):
    draws = tf.random.stateless_uniform([8], tf.stack([tf.constant(config.seed, tf.int64),
                                                       index]))
    corners = item["corners"]
    pick = tf.minimum(tf.cast(draws[0] * tf.cast(tf.shape(corners)[0], tf.float32), tf.int32),
                      tf.shape(corners)[0] - 1)
    # jitter within the corner grid's stride so every offset (and LR-grid parity) occurs
    jitter = tf.cast(draws[1:4] * corner_stride(size), tf.int32)
    corner = tf.minimum(corners[pick] + jitter, tf.shape(item["hr"]) - size)
    pair = tf.stack([tf.slice(item[key], corner, [size] * 3) for key in ("lr", "hr")], axis=-1)
    if config.augment:
      pair = augment_pair(pair, draws[4:], tuple(config.plane_axes))
    return pair[..., :1], pair[..., 1:]

  return cut


def patch_dataset(manifest_path, split, config: PipelineConfig) -> tf.data.Dataset:
  """Infinite dataset of (lr, hr) float32 batches [B, P, P, P, 1] from a manifest split."""
  entries = _split_entries(manifest_path, split)
  volumes = _volume_pairs(entries, config).map(_with_corners(config))
  if config.cache:
    volumes = volumes.cache()
  volumes = volumes.shuffle(len(entries), seed=config.seed).repeat()
  patches = volumes.flat_map(
      lambda item: tf.data.Dataset.from_tensors(item).repeat(config.patches_per_volume))
  patches = patches.enumerate().map(_cut_patch(config), num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=True)
  if config.shuffle_patches > 1:
    patches = patches.shuffle(config.shuffle_patches, seed=config.seed)
  return patches.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
