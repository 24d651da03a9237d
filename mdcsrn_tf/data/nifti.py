"""Reading and writing NIfTI volumes, with every check a user's file needs.

`load_volume` returns float32 voxels (scl_slope/scl_inter applied) and the nibabel
image, whose affine and header the outputs keep. Every problem with a file is an
`InputError` whose one-line message names the file. `save_volume` writes atomically:
a temporary file in the destination folder, then a rename, so a crash never leaves
a half-written output, and it refuses to overwrite the input it was computed from.
"""
import gzip
import logging
import os
import sys
import threading
import zlib

import nibabel as nib
import numpy as np

from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.files import write_atomically

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Millimetres per spatial unit of the header's xyzt_units. "unknown" (code 0) is read as mm,
# as ITK, FSL, SPM and nibabel's own affines read it (and most templates carry it); a code
# that names no spatial unit is refused, since no size could be trusted.
MM_PER_UNIT = {"mm": 1.0, "micron": 1e-3, "meter": 1e3, "unknown": 1.0}
# The smallest edge a volume may have: the in-plane SSIM window of the metrics is 7 voxels,
# and a thinner volume is a slab or a slice, which nothing here can super-resolve or score.
MIN_EDGE = 7


def is_nifti_path(path) -> bool:
  return str(path).endswith(NIFTI_SUFFIXES)


class _HeaderNotes(logging.Handler):
  def __init__(self):
    super().__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


_NIBABEL_LOG = threading.Lock()  # its logger is global; the pipeline loads in threads


def _load_header(path):
  """(nib.load(path), what nibabel said of the header while loading it). nibabel prints
  that bare on stderr (the header it repairs, the one it cannot read); kept instead, so that
  a file it cannot load ends in one line, and one it repaired is named in a warning."""
  logger, notes = nib.imageglobals.logger, _HeaderNotes()
  with _NIBABEL_LOG:
    handlers, propagate = list(logger.handlers), logger.propagate
    for handler in handlers:
      logger.removeHandler(handler)
    logger.addHandler(notes)
    logger.propagate = False
    try:
      return nib.load(path), notes.messages
    finally:
      logger.removeHandler(notes)
      for handler in handlers:
        logger.addHandler(handler)
      logger.propagate = propagate


def open_image(path) -> nib.Nifti1Image:
  """The NIfTI image at `path`, its header checked (a 3D volume of real scalars) and its
  voxels not yet read; raises InputError on anything unusable."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise InputError(f"{path}: no such file")
  if os.path.isdir(path):
    raise InputError(f"{path}: is a folder, expected a NIfTI file")
  if not is_nifti_path(path):
    raise InputError(f"{path}: not a NIfTI file name (expected .nii or .nii.gz)")
  try:
    image, notes = _load_header(path)
  except (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError, EOFError,
          zlib.error, gzip.BadGzipFile, ValueError, OSError) as error:
    raise InputError(f"{path}: cannot read NIfTI ({_first_line(error)})") from None
  for note in notes:
    print(one_line(f"warning: {path}: NIfTI header: {note}"), file=sys.stderr)
  if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
    raise InputError(f"{path}: not a NIfTI image ({type(image).__name__})")
  _check_shape(path, image.shape)
  if np.issubdtype(image.get_data_dtype(), np.complexfloating) or image.get_data_dtype().fields:
    raise InputError(f"{path}: unsupported voxel type {image.get_data_dtype()} (need real scalars)")
  return image


def load_volume(path) -> tuple[np.ndarray, nib.Nifti1Image]:
  """Reads a 3D NIfTI volume as float32; raises InputError on anything unusable.

  A 4D file whose trailing dimensions are all 1 is accepted as 3D; a real series
  (4D with more than one volume) or a 2D image is refused.
  """
  path = os.fspath(path)
  image = open_image(path)
  try:
    voxels = np.asarray(image.get_fdata(dtype=np.float32)).reshape(image.shape[:3])
  except (nib.spatialimages.HeaderDataError, EOFError, zlib.error, gzip.BadGzipFile,
          ValueError, OSError, MemoryError) as error:
    raise InputError(f"{path}: cannot read NIfTI ({_first_line(error)})") from None
  n_bad = int(np.count_nonzero(~np.isfinite(voxels)))
  if n_bad:
    raise InputError(f"{path}: {n_bad} of {voxels.size} voxels are NaN or Inf")
  return voxels, image


def load_mask(path, volume: nib.Nifti1Image, volume_path) -> np.ndarray:
  """The non-zero voxels of the NIfTI at `path` as a boolean array, for `volume` (the image
  read from `volume_path`); InputError naming the mask when it is not on the volume's grid:
  another shape, or an affine with an entry more than 0.001 (mm) off."""
  voxels, image = load_volume(path)
  shape = volume.shape[:3]
  if voxels.shape != shape:
    raise InputError(f"{os.fspath(path)}: mask of {_size(voxels.shape)} voxels is not on the "
                     f"grid of {os.fspath(volume_path)} ({_size(shape)})")
  if not np.allclose(image.affine, volume.affine, rtol=0, atol=1e-3):
    raise InputError(f"{os.fspath(path)}: mask's affine is not the one of "
                     f"{os.fspath(volume_path)}, so it is not on its grid")
  return voxels != 0


def voxel_size_mm(image, path) -> tuple:
  """The voxel size in millimetres of the image read from `path`, by its header's spatial
  unit (MM_PER_UNIT); InputError naming the file for a unit code that names none."""
  code = int(image.header["xyzt_units"]) % 8  # the time unit lives in the higher bits
  unit = {0: "unknown", 1: "meter", 2: "mm", 3: "micron"}.get(code)
  if unit is None:
    raise InputError(f"{os.fspath(path)}: header's spatial unit (xyzt_units code {code}) is "
                     "none of metre, mm or micron; fix the header (e.g. nibabel "
                     "set_xyzt_units) before using this file")
  return tuple(float(z) * MM_PER_UNIT[unit] for z in image.header.get_zooms()[:3])


def check_size(path, shape, factor=2):
  """InputError naming the file when an edge of `shape` is below MIN_EDGE or below what the
  k-space truncation by `factor` needs (2 x factor voxels along an axis)."""
  smallest = max(MIN_EDGE, 2 * factor)
  if min(shape[:3]) < smallest:
    raise InputError(f"{os.fspath(path)}: volume of {_size(shape[:3])} voxels is too small "
                     f"(every edge must be at least {smallest} voxels)")


def _size(shape) -> str:
  return " x ".join(str(n) for n in shape)


def _check_shape(path, shape):
  if len(shape) < 3:
    raise InputError(f"{path}: {len(shape)}D image {shape}, expected a 3D volume")
  if any(n > 1 for n in shape[3:]):
    raise InputError(f"{path}: 4D series {shape}, expected one 3D volume")
  if any(n == 0 for n in shape[:3]):
    raise InputError(f"{path}: zero-size dimension in shape {shape}")


def _first_line(error) -> str:
  text = str(error).strip().splitlines()
  return text[0] if text else type(error).__name__


def check_output_path(output, inputs=()):
  """Raises InputError unless `output` can be written and is none of `inputs`."""
  output = os.fspath(output)
  if os.path.isdir(output):
    raise InputError(f"{output}: is a folder; give the output file's name")
  if not is_nifti_path(output):
    raise InputError(f"{output}: output must end in .nii or .nii.gz")
  folder = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(folder):
    raise InputError(f"{output}: output folder {folder} does not exist")
  if not os.access(folder, os.W_OK):
    raise InputError(f"{output}: output folder {folder} is not writable")
  for source in inputs:
    if os.path.abspath(output) == os.path.abspath(source) or (
        os.path.exists(output) and os.path.samefile(output, source)):
      raise InputError(f"{output}: output would overwrite its input")


def save_volume(voxels, path, reference: nib.Nifti1Image, to_reference=None, inputs=()):
  """Writes `voxels` as float32 NIfTI with `reference`'s header, atomically.

  `to_reference` (4x4) maps the output's voxel indices to the reference's when the grids
  differ (a crop, or the finer grid of `--scale`): see `moved_header`.
  """
  check_output_path(path, inputs)
  header = reference.header.copy()
  if to_reference is not None:
    header = moved_header(header, reference.affine, to_reference)
  header.set_data_dtype(np.float32)
  # affine None: the header's qform and sform stand as they are (an affine would replace
  # the sform and demote the qform to code 0)
  image = nib.Nifti1Image(np.asarray(voxels, np.float32), None, header)
  image.header["scl_slope"], image.header["scl_inter"] = 1.0, 0.0
  write_atomically(path, image.to_filename)


def moved_header(header, affine, to_reference):
  """A copy of `header` for a grid whose voxel indices map to the header's through
  `to_reference`: the qform and the sform each composed with it, their codes kept, and
  pixdim the new voxel size. A form whose code is 0 gets the image's `affine` composed
  with it, so that no stale matrix remains in the file."""
  header = header.copy()
  to_reference = np.asarray(to_reference, float)
  qform, qform_code = header.get_qform(coded=True)
  sform, sform_code = header.get_sform(coded=True)
  # set_qform also sets pixdim to the voxel size of the matrix it is given
  header.set_qform((affine if qform is None else qform) @ to_reference, code=int(qform_code))
  header.set_sform((affine if sform is None else sform) @ to_reference, code=int(sform_code))
  return header
