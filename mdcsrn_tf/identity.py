"""Which file a path is, beyond its name: its resolved path (symbolic links and `..`
followed) and its content (SHA-256). Whether a volume was seen in training is decided by
them: the same resolved path, or the same bytes under another name or at another path
(data/manifest.py, weights/seen.py).

Hashing reads a whole file, so a file is hashed at most once per process: the digest is
kept keyed by the file's device, inode, size and modification time, so that a file
rewritten since is hashed again. A file modified within RACY_SECONDS of its hashing is not
kept (its next change could share the modification time, the coarse clock's tick: git's
"racily clean" problem). Most pairs of files are told apart without hashing them: files of
different sizes differ, and of two files of one size a fingerprint of a few sampled blocks
(FINGERPRINT_BLOCKS of 64 KiB spread over the file) tells most apart; only files that agree
on both are hashed whole.
"""
import hashlib
import os
import time
import typing

FINGERPRINT_BLOCKS, BLOCK = 8, 1 << 16
RACY_SECONDS = 2.0
_DIGESTS, _FINGERPRINTS = {}, {}  # {(device, inode, size, mtime): hex digest}


def resolved(path) -> str:
  """The absolute path with every symbolic link and `..` resolved."""
  return os.path.realpath(os.fspath(path))


def read_sha256(path) -> str:
  """The SHA-256 of the file's bytes, read now (no cache: a checksum that verifies a file)."""
  digest = hashlib.sha256()
  with open(path, "rb") as file:
    for block in iter(lambda: file.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _fingerprint(path) -> str:
  size = os.path.getsize(path)
  digest = hashlib.sha256(str(size).encode())
  with open(path, "rb") as file:
    for index in range(FINGERPRINT_BLOCKS):
      file.seek(max(size - BLOCK, 0) * index // (FINGERPRINT_BLOCKS - 1))
      digest.update(file.read(BLOCK))
  return digest.hexdigest()


def _cached(cache, compute, path) -> str:
  status = os.stat(path)
  key = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
  if key not in cache:
    value = compute(path)
    if time.time() - status.st_mtime_ns / 1e9 <= RACY_SECONDS:
      return value
    cache[key] = value
  return cache[key]


def content_sha256(path) -> str:
  """The SHA-256 of the file's bytes, hashed once per process (module docstring)."""
  return _cached(_DIGESTS, read_sha256, path)


def fingerprint(path) -> str:
  """A digest of the size and FINGERPRINT_BLOCKS sampled blocks: files that differ in it
  differ; files that agree may still differ elsewhere."""
  return _cached(_FINGERPRINTS, _fingerprint, path)


def size(path):
  """The file's size in bytes, None for a file that cannot be read."""
  try:
    return os.path.getsize(path)
  except OSError:
    return None


class Match(typing.NamedTuple):
  """Two paths found to be one file: `how` says why, for a message."""
  first: int
  second: int
  how: str


def one_path(real) -> str:
  """Why two paths are one file: they resolve to `real`."""
  return f"both are {real}"


def same_bytes(digest) -> str:
  """Why two files are one: their bytes, whose SHA-256 is `digest`, are the same."""
  return f"byte-identical, SHA-256 {digest[:16]}..."


def same_content(a, b) -> str:
  """"" when the files differ; otherwise why they are one: the same resolved path, or the
  same bytes (with their SHA-256)."""
  if resolved(a) == resolved(b):
    return one_path(resolved(a))
  if size(a) is None or size(a) != size(b) or fingerprint(a) != fingerprint(b):
    return ""
  digest = content_sha256(a)
  return same_bytes(digest) if digest == content_sha256(b) else ""


def first_shared_file(paths, groups) -> Match | None:
  """The first pair (in the order of the second's index) of `paths` in different `groups`
  that are one file: the same resolved path, or the same content; None when there is none.
  Only files whose size a file of another group shares are read, and only those whose
  sampled blocks agree too are hashed whole."""
  real = [resolved(path) for path in paths]
  found, by_path, by_size = [], {}, {}
  for index, path in enumerate(paths):
    earlier = by_path.setdefault(real[index], index)
    if groups[earlier] != groups[index]:
      found.append(Match(earlier, index, one_path(real[index])))
    by_size.setdefault(size(path), []).append(index)
  for length, members in by_size.items():
    if length is None or len({groups[i] for i in members}) < 2:
      continue
    by_print = {}
    for index in members:
      by_print.setdefault(fingerprint(paths[index]), []).append(index)
    for bucket in by_print.values():
      if len({groups[i] for i in bucket}) < 2:
        continue
      by_digest = {}
      for index in bucket:
        digest = content_sha256(paths[index])
        earlier = by_digest.setdefault(digest, index)
        if groups[earlier] != groups[index] and real[earlier] != real[index]:
          found.append(Match(earlier, index, same_bytes(digest)))
  return min(found, key=lambda match: (match.second, match.first)) if found else None
