"""The subjects an evaluation scores, loaded one at a time.

A subject is a Subject(name, load, masked, identity), its name unique among the subjects
scored together (naming.py: a manifest entry's name, or the first part of the paths that
differs): `load()` reads the volume, crops it to a central cube when asked and divides it
by its maximum only when it is scored, so memory holds one
volume whatever the split's size; it also reads the subject's mask when it has one (a
manifest entry's "mask", a --masks file: docs/evaluation.md), cropped alike. Every
evaluation (the command, the notebooks' tables, the release's held-out check and the demo)
takes its subjects from here.

A mask is checked when its subject list is made, before any scoring: on the volume's grid,
and with at least one voxel inside the crop. A mistake is one line naming the mask.
"""
import functools
import os
import typing

from mdcsrn_tf.data import intensity, manifest, naming, nifti
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import file_identity


class Subject(typing.NamedTuple):
  """One test subject: `load()` gives (HR divided by its maximum, its boolean mask or None);
  `masked` says, without reading anything, whether it has a mask; `identity`, which files
  it is as they are now (files.file_identity of the volume and the mask), so that results
  kept from an earlier run are of these files; `path`, the volume's file, and `aliases`, the
  other names it goes by (a manifest entry's name and subject id), which say whether a
  network's card lists it among its training volumes (weights/seen.py)."""
  name: str
  load: typing.Callable
  masked: bool = False
  identity: str = ""
  path: str = ""
  aliases: tuple = ()


class Volume(typing.NamedTuple):
  """A subject as read_subject gives it."""
  hr: object  # mapped onto [0, 1]
  scale: object  # intensity.Intensity: how, for the way back
  image: object  # the NIfTI image, whose geometry outputs keep
  starts: list  # the crop's start per axis
  mask: object  # boolean, on hr's grid; None without a mask file


def central_crop(volume, edge):
  """(the central cube of `edge` voxels, its start index per axis); edge 0 keeps it all."""
  if not edge:
    return volume, [0, 0, 0]
  starts = [max(0, (n - edge) // 2) for n in volume.shape]
  return volume[tuple(slice(s, s + edge) for s in starts)], starts


def read_mask(mask_path, volume_path, crop=0, volume_image=None):
  """The boolean mask of `mask_path` for the volume at `volume_path` (whose image is read
  for its header when not given), cropped as the volume; InputError naming the mask when it
  is off the volume's grid or holds no voxel inside the crop."""
  if volume_image is None:
    volume_image = nifti.open_image(volume_path)
  mask, _ = central_crop(nifti.load_mask(mask_path, volume_image, volume_path), crop)
  if not mask.any():
    where = f" inside the central {crop}^3 crop" if crop else ""
    raise InputError(f"{os.fspath(mask_path)}: mask has no non-zero voxel{where}")
  return mask


def check_volume(path, factor):
  """InputError naming the file at `path` unless it can be scored: readable, large enough
  for the k-space truncation by `factor` (nifti.check_size), with contrast and a positive
  voxel (intensity.check_contrast)."""
  volume, _ = nifti.load_volume(path)
  nifti.check_size(path, volume.shape, factor)
  intensity.check_contrast(volume, name=os.fspath(path))


def read_subject(path, crop=0, mask_path=None) -> Volume:
  """The volume at `path`, cropped to a central cube of `crop` voxels when > 0 and divided
  by its maximum, with the mask of `mask_path` (None: no mask)."""
  volume, image = nifti.load_volume(path)
  volume, starts = central_crop(volume, crop)
  hr, scale = intensity.normalise(volume, name=os.fspath(path))
  mask = None if mask_path is None else read_mask(mask_path, path, crop, image)
  return Volume(hr, scale, image, starts, mask)


def _load(path, crop, mask_path):
  volume = read_subject(path, crop, mask_path)
  return volume.hr, volume.mask


def _subject(name, path, mask_path, crop, aliases=()) -> Subject:
  if mask_path is not None:
    read_mask(mask_path, path, crop)  # now, not after hours of scoring
  identity = " ".join(file_identity(p) for p in (path, mask_path) if p is not None)
  return Subject(name, functools.partial(_load, path, crop, mask_path), mask_path is not None,
                 identity, os.fspath(path), tuple(aliases))


def manifest_subjects(manifest_path, split, crop=0, limit=0) -> list:
  """[Subject] of a manifest split (the first `limit` when > 0), each with its entry's mask
  when it names one; `load()` gives the volume, cropped to a central cube of `crop` voxels
  when > 0, divided by its maximum."""
  entries = manifest.split_entries(manifest_path, split)
  entries = entries[:limit] if limit else entries
  names = naming.unique_names([e["name"] for e in entries], [e["path"] for e in entries])
  return [_subject(name, entry["path"], entry.get("mask"), crop,
                   (entry["name"], entry["subject"]))
          for name, entry in zip(names, entries)]


def file_subjects(paths, crop=0, masks=()) -> list:
  """[Subject] of NIfTI files, named by naming.subject_names (HCP: the subject folder), with
  one mask file per path when `masks` is given; as manifest_subjects."""
  masks = tuple(masks) or (None,) * len(paths)
  return [_subject(name, path, mask, crop)
          for name, path, mask in zip(naming.subject_names(paths), paths, masks)]
