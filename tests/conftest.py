"""Shared fixtures: small real MRI volumes and temporary NIfTI files."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import mdcsrn_tf  # noqa: F401,E402  (sets TensorFlow's environment before TF loads)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def write_nifti(tmp_path):
  """Writes an array as NIfTI under tmp_path and returns the path."""

  def write(array, name="volume.nii.gz", affine=None, dtype=None):
    array = np.asarray(array)
    image = nib.Nifti1Image(array.astype(dtype or array.dtype),
                            np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine)
    path = tmp_path / name
    image.to_filename(path)
    return path

  return write
