"""The subjects an evaluation scores, loaded one at a time.

A subject is a (name, load) pair: `load()` reads the volume, crops it to a central cube when
asked and divides it by its maximum only when it is scored, so memory holds one volume
whatever the split's size. Every evaluation (the command, the notebooks' tables, the
release's held-out check and the demo) takes its subjects from here.
"""
import functools
import os

from mdcsrn_tf.data import intensity, manifest, nifti


def central_crop(volume, edge):
  """(the central cube of `edge` voxels, its start index per axis); edge 0 keeps it all."""
  if not edge:
    return volume, [0, 0, 0]
  starts = [max(0, (n - edge) // 2) for n in volume.shape]
  return volume[tuple(slice(s, s + edge) for s in starts)], starts


def read_subject(path, crop=0) -> tuple:
  """(HR divided by its maximum, that maximum, the NIfTI image, the crop's start per axis)
  of the volume at `path`, cropped to a central cube of `crop` voxels when > 0."""
  volume, image = nifti.load_volume(path)
  volume, starts = central_crop(volume, crop)
  hr, scale = intensity.normalise(volume, name=os.fspath(path))
  return hr, scale, image, starts


def _normalised_volume(path, crop=0):
  return read_subject(path, crop)[0]


def manifest_subjects(manifest_path, split, crop=0, limit=0) -> list:
  """[(volume name, load)] of a manifest split (the first `limit` when > 0); `load()` gives
  the volume, cropped to a central cube of `crop` voxels when > 0, divided by its maximum."""
  entries = manifest.split_entries(manifest_path, split)
  return [(entry["name"], functools.partial(_normalised_volume, entry["path"], crop))
          for entry in (entries[:limit] if limit else entries)]


def file_subjects(paths, crop=0) -> list:
  """[(file name, load)] of NIfTI files, as manifest_subjects."""
  return [(os.path.basename(os.fspath(path)), functools.partial(_normalised_volume, path, crop))
          for path in paths]
