"""(LR, HR) volume pairs, each source volume degraded once, not once per visit.

A pair is float32 [2, D, H, W]: index 0 the network input (`kspace.degrade` of HR with the
run's Acquisition), index 1 HR (the volume divided by its maximum, `intensity.normalise`).
A training run of 780 subjects visits each one every epoch; decoding a 260x311x260 NIfTI and
its 3D FFT cost about a second each, so `VolumeStore` keeps what it computed:

- on disk (`cache_dir`): one .npy file per source volume and degradation, named
  `<file stem>-<key>.npy`, where the key is a SHA-256 over the source's real path, size and
  modification time (ns), the acquisition (`Acquisition.to_dict`) and the entry format. A source
  that changes gets a new key, so a stale entry is never read (it lingers until the cache is
  cleared: docs/data.md). Entries are written to a temporary file in the cache folder and
  renamed into place, so a killed run leaves no half entry; one that cannot be read anyway
  (a disk fault) is recomputed and replaced. Entries are read memory-mapped, so a visit
  reads the pages of its patches and little else. The foreground patch corners, which depend
  on the patch size, are cached beside the pair (`<stem>-<key>.corners-<P>-<F>.npy`).
- in memory (`memory_volumes` > 0): the last N pairs used, for small data sets without a
  disk cache. Off by default: with the disk cache the operating system's page cache does
  this job without growing the process.
"""
import collections
import hashlib
import json
import os
import threading

import numpy as np

from mdcsrn_tf.data import intensity, nifti
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.files import write_atomically
from mdcsrn_tf.metrics import HEAD_LEVEL

FORMAT = 2
LR, HR = 0, 1


def default_cache_dir() -> str:
  """$MDCSRN_CACHE_DIR, else ~/.cache/mdcsrn_tf/degraded ($MDCSRN_DATA_HOME/degraded)."""
  data_home = os.environ.get("MDCSRN_DATA_HOME") or os.path.expanduser("~/.cache/mdcsrn_tf")
  return os.environ.get("MDCSRN_CACHE_DIR") or os.path.join(data_home, "degraded")


def load_normalised(path) -> np.ndarray:
  """The volume at `path` divided by its maximum (InputError for an unusable file)."""
  volume, _ = nifti.load_volume(path)
  return intensity.normalise(volume, name=os.fspath(path))[0]


def degraded_pair(path, acquisition: Acquisition) -> np.ndarray:
  """[2, D, H, W]: the network input and HR of the volume at `path`, computed now."""
  from mdcsrn_tf.data import kspace  # TensorFlow: only when a pair is really computed

  hr = load_normalised(path)
  lr = kspace.degrade(hr, acquisition)
  return np.stack([lr, hr])


def corner_stride(patch_size) -> int:
  return max(1, patch_size // 16)


def foreground_corners(hr, patch_size, min_foreground) -> np.ndarray:
  """[K, 3] int32 patch corners on a grid of stride `corner_stride` whose patch has at least
  `min_foreground` of its voxels above HEAD_LEVEL (the best corners if none has)."""
  stride = corner_stride(patch_size)
  table = np.zeros([n + 1 for n in hr.shape], np.int32)
  table[1:, 1:, 1:] = (hr > HEAD_LEVEL).cumsum(0).cumsum(1).cumsum(2)
  starts = [np.arange(0, n - patch_size + 1, stride) for n in hr.shape]
  total = 0
  for corner in np.ndindex(2, 2, 2):  # inclusion-exclusion over the box's 8 corners
    index = np.ix_(*[s + patch_size * c for s, c in zip(starts, corner)])
    total = total + (-1) ** (3 - sum(corner)) * table[index]
  fraction = total / patch_size**3
  accepted = fraction >= min(min_foreground, fraction.max())
  return np.stack([s[i] for s, i in zip(starts, np.nonzero(accepted))], axis=1).astype(np.int32)


class VolumeStore:
  """Pairs of source volumes for one Acquisition, from memory, the disk cache or computed.

  Thread-safe: tf.data calls it from several threads at once. `cache_dir` None: no disk
  cache. `log` receives one line per damaged cache entry that was replaced.
  """

  def __init__(self, acquisition: Acquisition, cache_dir=None, memory_volumes=0, log=None):
    self.acquisition = acquisition
    self.cache_dir = None if cache_dir is None else os.path.abspath(os.fspath(cache_dir))
    self._memory_volumes = memory_volumes
    self._memory = collections.OrderedDict()
    self._lock = threading.Lock()
    self._log = log or (lambda message: None)

  def entry_base(self, path) -> str:
    """CACHE_DIR/<stem>-<key>: where the cache keeps the pair of `path` (without .npy)."""
    real = os.path.realpath(os.fspath(path))
    status = os.stat(real)
    key = json.dumps([FORMAT, real, status.st_size, status.st_mtime_ns,
                      self.acquisition.to_dict()], sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    stem = os.path.basename(real).split(".")[0] or "volume"
    return os.path.join(self.cache_dir or "", f"{stem}-{digest}")

  def pair(self, path) -> np.ndarray:
    """[2, D, H, W] float32 (LR, HR) of the volume at `path`; read-only when memory-mapped."""
    with self._lock:
      if path in self._memory:
        self._memory.move_to_end(path)
        return self._memory[path]
    pair = None
    if self.cache_dir is not None:
      entry = self.entry_base(path) + ".npy"
      pair = self._read(entry, np.float32, ndim=4)
      if pair is None:
        pair = degraded_pair(path, self.acquisition)
        self._write(entry, pair)
    else:
      pair = degraded_pair(path, self.acquisition)
    if self._memory_volumes:
      with self._lock:
        self._memory[path] = pair
        while len(self._memory) > self._memory_volumes:
          self._memory.popitem(last=False)
    return pair

  def corners(self, path, hr, patch_size, min_foreground) -> np.ndarray:
    """foreground_corners of `hr` (the pair of `path`, padded to the patch), cached."""
    if self.cache_dir is None:
      return foreground_corners(hr, patch_size, min_foreground)
    entry = f"{self.entry_base(path)}.corners-{patch_size}-{min_foreground:g}.npy"
    corners = self._read(entry, np.int32, ndim=2)
    if corners is None:
      corners = foreground_corners(hr, patch_size, min_foreground)
      self._write(entry, corners)
    return corners

  def _read(self, entry, dtype, ndim):
    try:
      array = np.load(entry, mmap_mode="r")
    except FileNotFoundError:
      return None
    except (ValueError, OSError, EOFError) as error:
      self._log(f"warning: damaged cache entry {entry} ({error}); recomputing it")
      return None
    if array.ndim != ndim or array.dtype != dtype:
      self._log(f"warning: cache entry {entry} holds {array.dtype} {array.shape}; recomputing it")
      return None
    return array

  def _write(self, entry, array):
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    write_atomically(entry, lambda temporary: np.save(temporary, array))
