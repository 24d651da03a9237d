"""`mdcsrn-sr` end to end: NIfTI geometry kept, input untouched, --scale, one-line errors."""
import gzip
import hashlib
import os
import subprocess
import sys

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import inference, predict_lib, weights
from mdcsrn_tf.models import build_model

SHAPE = (20, 26, 17)
AFFINE = np.array([[0.0, -0.7, 0.0, 90.0], [0.0, 0.0, 0.7, -120.0], [0.7, 0.0, 0.0, -80.0],
                   [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def generator_weights(tmp_path_factory):
  keras.utils.set_random_seed(5)
  random_b2u4 = build_model("b2u4", identity_init=False)
  return weights.save_generator(random_b2u4, tmp_path_factory.mktemp("w") / "b2u4",
                                {"model": "b2u4"})


@pytest.fixture
def scan(write_nifti):
  rng = np.random.default_rng(3)
  return write_nifti((rng.random(SHAPE) * 900).astype(np.int16), "scan.nii.gz", affine=AFFINE)


def sha256(path):
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "mdcsrn_tf.predict", *map(str, args)],
                        capture_output=True, text=True, timeout=300)


def test_cli_keeps_geometry_and_intensity_range_and_leaves_input_alone(tmp_path, scan,
                                                                      generator_weights):
  before = sha256(scan)
  out = tmp_path / "sr.nii.gz"
  result = run_cli(scan, out, "--weights", generator_weights, "--tile", "12", "--batch", "2")
  assert result.returncode == 0, result.stderr
  assert sha256(scan) == before
  source, written = nib.load(scan), nib.load(out)
  assert written.shape == SHAPE
  np.testing.assert_allclose(written.affine, source.affine)
  np.testing.assert_allclose(written.header.get_zooms(), source.header.get_zooms())
  # the same numbers as the library: normalise, tiled SR, de-normalise
  volume = source.get_fdata(dtype=np.float32)
  model = weights.load_generator(generator_weights)
  expected = inference.super_resolve(model, volume / volume.max(), tile=12, margin=3,
                                     progress=False) * volume.max()
  np.testing.assert_allclose(written.get_fdata(dtype=np.float32), expected, rtol=1e-4,
                             atol=1e-3)
  assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_scale_gives_hr_zooms_and_the_same_field_of_view(tmp_path, write_nifti,
                                                        generator_weights):
  lowres_affine = AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0])
  small = np.random.default_rng(4).random((10, 13, 17)).astype(np.float32) * 100
  lowres = write_nifti(small, "lowres.nii.gz", affine=lowres_affine)
  model = weights.load_generator(generator_weights)
  out = predict_lib.super_resolve_file(lowres, tmp_path / "sr.nii.gz", model, tile=16,
                                   scale=[2, 2, 1], progress=False)
  written = nib.load(out)
  assert written.shape == SHAPE
  np.testing.assert_allclose(written.header.get_zooms(), (0.7, 0.7, 0.7))
  np.testing.assert_allclose(written.affine, AFFINE)

  def extent(image):  # world span of the grid: n voxels of its voxel size per axis
    return np.abs(image.affine[:3, :3]) @ np.array(image.shape)

  np.testing.assert_allclose(extent(written), extent(nib.load(lowres)))
  # --target_voxel 0.7 picks the same grid from the 1.4 x 1.4 x 0.7 mm voxels
  assert predict_lib.hr_grid((10, 13, 17), (1.4, 1.4, 0.7), target_voxel=0.7) == (SHAPE, (2, 2, 1))


def test_scale_interpolates_as_the_weights_were_trained(tmp_path, write_nifti):
  """Weights whose card says lr_mode zero_filled get a Fourier-interpolated input."""
  keras.utils.set_random_seed(6)
  base = weights.save_generator(build_model("b2u4", identity_init=False), tmp_path / "zf",
                                {"model": "b2u4", "lr_mode": "zero_filled"})
  model, lr_mode = predict_lib.load_model(base)
  assert lr_mode == "zero_filled"
  assert predict_lib.load_model(tmp_path / "zf.weights.h5", "b2u4")[1] == "zero_filled"
  small = (np.random.default_rng(7).random((10, 13, 17)) * 100 + 50).astype(np.float32)
  lowres = write_nifti(small, "lowres.nii.gz", affine=AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0]))
  out = predict_lib.super_resolve_file(lowres, tmp_path / "sr.nii.gz", model, tile=16,
                                       scale=[2, 2, 1], progress=False, interpolation=lr_mode)
  fourier = np.abs(np.fft.ifftn(np.fft.ifftshift(np.pad(
      np.fft.fftshift(np.fft.fftn(small, axes=(0, 1)), axes=(0, 1)),
      [(5, 5), (7, 6), (0, 0)]), axes=(0, 1)), axes=(0, 1))) * 4
  expected = inference.super_resolve(model, fourier / fourier.max(), tile=16,
                                     progress=False) * fourier.max()
  np.testing.assert_allclose(nib.load(out).get_fdata(dtype=np.float32), expected, rtol=1e-4,
                             atol=1e-3)


def test_folder_input_writes_one_output_per_scan(tmp_path, write_nifti, generator_weights):
  folder = tmp_path / "in"
  folder.mkdir()
  for name in ("a.nii.gz", "b.nii"):
    nib.Nifti1Image(np.ones((4, 5, 6), np.float32), np.eye(4)).to_filename(folder / name)
  (tmp_path / "out").mkdir()
  assert predict_lib.plan_outputs([str(folder)], str(tmp_path / "out")) == [
      (str(folder / "a.nii.gz"), str(tmp_path / "out" / "a_sr.nii.gz")),
      (str(folder / "b.nii"), str(tmp_path / "out" / "b_sr.nii"))]


def bad_inputs(tmp_path, scan):
  """(name, INPUT, OUTPUT) for every kind of bad input the CLI must refuse."""
  truncated = tmp_path / "truncated.nii.gz"
  truncated.write_bytes(gzip.compress(open(scan, "rb").read())[:200])
  flat, series, nan = (tmp_path / f"{n}.nii.gz" for n in ("flat", "series", "nan"))
  nib.Nifti1Image(np.ones((8, 9), np.float32), np.eye(4)).to_filename(flat)
  nib.Nifti1Image(np.ones((4, 5, 6, 3), np.float32), np.eye(4)).to_filename(series)
  nib.Nifti1Image(np.full((4, 5, 6), np.nan, np.float32), np.eye(4)).to_filename(nan)
  out = tmp_path / "out.nii.gz"
  return [("missing", tmp_path / "absent.nii.gz", out), ("truncated", truncated, out),
          ("2D", flat, out), ("4D", series, out), ("all-NaN", nan, out),
          ("missing folder", scan, tmp_path / "nowhere" / "out.nii.gz"), ("same", scan, scan)]


def test_bad_inputs_exit_nonzero_with_one_line(tmp_path, scan, generator_weights):
  before = sha256(scan)
  for name, source, target in bad_inputs(tmp_path, scan):
    result = run_cli(source, target, "--weights", generator_weights)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, name
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
    assert "Traceback" not in result.stderr
  assert sha256(scan) == before
  assert not os.path.exists(tmp_path / "out.nii.gz")


def test_missing_shipped_weights_is_one_clear_error(monkeypatch, tmp_path):
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  with pytest.raises(weights.InputError, match="--weights"):
    weights.default_weights("l1")


@pytest.mark.skipif(not weights.shipped().get("l1"), reason="no shipped L1 weights")
def test_shipped_weights_are_the_default_and_their_warning_is_printed(tmp_path, scan):
  result = run_cli(scan, tmp_path / "out.nii.gz")
  assert result.returncode == 0, result.stderr
  assert os.path.exists(tmp_path / "out.nii.gz")
  warning = weights.read_card(weights.shipped()["l1"]).get("warning")
  assert "Traceback" not in result.stderr and "error" not in result.stderr
  if warning:  # then the progress bar over tiles
    assert result.stderr.splitlines()[0] == f"warning: {warning}"