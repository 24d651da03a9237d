"""`mdcsrn-sr` end to end: NIfTI geometry kept, input untouched, --scale, signals, the shipped
weights (where outputs go and how they are written: test_predict_outputs.py)."""
import dataclasses
import hashlib
import shutil
import signal
import subprocess
import sys
import textwrap

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf import weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import consistency, inference, predict, weights_choice
from mdcsrn_tf.weights import card as cards
from mdcsrn_tf.weights.card import ModelCard
from mdcsrn_tf.models import build_model
from conftest import run_predict

SHAPE = (20, 26, 17)
AFFINE = np.array([[0.0, -0.7, 0.0, 90.0], [0.0, 0.0, 0.7, -120.0], [0.7, 0.0, 0.0, -80.0],
                   [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture
def scan(write_nifti):
  rng = np.random.default_rng(3)
  return write_nifti((rng.random(SHAPE) * 900).astype(np.int16), "scan.nii.gz", affine=AFFINE)


def sha256(path):
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_cli_keeps_geometry_and_intensity_range_and_leaves_input_alone(tmp_path, scan,
                                                                      generator_weights):
  before = sha256(scan)
  out = tmp_path / "sr.nii.gz"
  result = run_predict(scan, out, "--weights", generator_weights, "--tile", "12", "--batch", "2")
  assert result.returncode == 0, result.stderr
  assert sha256(scan) == before
  source, written = nib.load(scan), nib.load(out)
  assert written.shape == SHAPE
  np.testing.assert_allclose(written.affine, source.affine)
  np.testing.assert_allclose(written.header.get_zooms(), source.header.get_zooms())
  # the same numbers as the library: normalise, tiled SR, de-normalise
  volume = source.get_fdata(dtype=np.float32)
  model, _ = weights.load_generator(generator_weights)
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
  model, _ = weights.load_generator(generator_weights)
  out = predict.super_resolve_file(lowres, tmp_path / "sr.nii.gz", model, tile=16,
                                   scale=[2, 2, 1], progress=False)
  written = nib.load(out)
  assert written.shape == SHAPE
  np.testing.assert_allclose(written.header.get_zooms(), (0.7, 0.7, 0.7))
  np.testing.assert_allclose(written.affine, AFFINE)

  def extent(image):  # world span of the grid: n voxels of its voxel size per axis
    return np.abs(image.affine[:3, :3]) @ np.array(image.shape)

  np.testing.assert_allclose(extent(written), extent(nib.load(lowres)))
  # --target_voxel 0.7 picks the same grid from the 1.4 x 1.4 x 0.7 mm voxels
  assert predict.hr_grid((10, 13, 17), (1.4, 1.4, 0.7), target_voxel=0.7) == (SHAPE, (2, 2, 1))


def test_target_voxel_reads_the_headers_unit(tmp_path, write_nifti, generator_weights):
  """The same 1.4 x 1.4 x 0.7 mm voxels stored in microns and in metres: --target_voxel 0.7
  (mm) gives the same grid; a header whose unit code names no unit is refused."""
  small = np.random.default_rng(4).random((10, 13, 17)).astype(np.float32) * 100
  for unit, per_mm in (("micron", 1000.0), ("meter", 1e-3)):
    in_unit = np.diag([per_mm] * 3 + [1.0]) @ AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0])
    image = nib.Nifti1Image(small, in_unit)
    image.header.set_xyzt_units(xyz=unit)
    path = tmp_path / f"{unit}.nii.gz"
    image.to_filename(path)
    _, _, hr_shape, factors = predict.check_input(path, target_voxel=0.7)
    assert hr_shape == SHAPE and factors == (2, 2, 1), unit
  image.header["xyzt_units"] = 6
  image.to_filename(tmp_path / "six.nii.gz")
  with pytest.raises(InputError, match=r"six\.nii\.gz: header's spatial unit \(xyzt_units "
                                       r"code 6\)"):
    predict.check_input(tmp_path / "six.nii.gz", target_voxel=0.7)


def test_negative_intensities_are_mapped_by_their_range_and_restored(tmp_path, colin27_crop,
                                                                     generator_weights):
  """A z-scored head (mean 0, std 1, the background strongly negative): the network sees it
  on [0, 1] by its range, as a magnitude image, and the output comes back in the input's
  range instead of being clipped to 0."""
  head = nib.load(colin27_crop(tmp_path / "head.nii.gz"))
  voxels = head.get_fdata(dtype=np.float32)
  z_scored = (voxels - voxels.mean()) / voxels.std()
  path = tmp_path / "z.nii.gz"
  nib.Nifti1Image(z_scored, head.affine).to_filename(path)
  result = run_predict(path, tmp_path / "sr.nii.gz", "--weights", generator_weights, "--tile", "12")
  assert result.returncode == 0, result.stderr
  written = nib.load(tmp_path / "sr.nii.gz").get_fdata(dtype=np.float32)
  low, spread = z_scored.min(), z_scored.max() - z_scored.min()
  expected = inference.super_resolve(weights.load_generator(generator_weights)[0],
                                     (z_scored - low) / spread, tile=12, margin=3,
                                     progress=False) * spread + low
  np.testing.assert_allclose(written, expected, atol=1e-3 * spread)
  assert written.min() < 0 and (written < 0).mean() > 0.1  # the background kept below 0


def test_scale_interpolates_as_the_weights_were_trained(tmp_path, write_nifti):
  """Weights whose card's acquisition places zero-filled get a Fourier-interpolated input."""
  keras.utils.set_random_seed(6)
  base = weights.save_generator(build_model("b2u4", identity_init=False), tmp_path / "zf",
                                ModelCard("b2u4", acquisition=Acquisition(placement="zero_filled")))
  model, card = weights_choice.load_model(base)
  assert card.acquisition.placement == "zero_filled"
  assert weights_choice.load_model(tmp_path / "zf.weights.h5", "b2u4")[1].acquisition == card.acquisition
  small = (np.random.default_rng(7).random((10, 13, 17)) * 100 + 50).astype(np.float32)
  lowres = write_nifti(small, "lowres.nii.gz", affine=AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0]))
  out = predict.super_resolve_file(lowres, tmp_path / "sr.nii.gz", model, tile=16,
                                       scale=[2, 2, 1], progress=False,
                                       acquisition=card.acquisition)
  fourier = np.abs(np.fft.ifftn(np.fft.ifftshift(np.pad(
      np.fft.fftshift(np.fft.fftn(small, axes=(0, 1)), axes=(0, 1)),
      [(5, 5), (7, 6), (0, 0)]), axes=(0, 1)), axes=(0, 1))) * 4
  expected = inference.super_resolve(model, fourier / fourier.max(), tile=16,
                                     progress=False) * fourier.max()
  np.testing.assert_allclose(nib.load(out).get_fdata(dtype=np.float32), expected, rtol=1e-4,
                             atol=1e-3)


def oblique(zooms, origin):
  """An affine a qform can hold: 30 degrees about z, then the voxel size."""
  cos, sin = np.cos(np.pi / 6), np.sin(np.pi / 6)
  affine = np.eye(4)
  affine[:3, :3] = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]) @ np.diag(zooms)
  affine[:3, 3] = origin
  return affine


@pytest.mark.parametrize("forms", ["qform", "sform", "both"])
def test_scale_keeps_the_header_coherent(tmp_path, colin27_crop, generator_weights, forms):
  """qform and sform keep their codes, and both matrices and pixdim get the HR voxel."""
  crop = nib.load(colin27_crop(tmp_path / "crop.nii.gz", shape=(16, 20, 12)))
  header = crop.header.copy()  # Colin27 has an sform (code 4) and no qform
  if forms != "sform":
    header.set_qform(oblique(header.get_zooms(), crop.affine[:3, 3]), code=1)
  if forms == "qform":
    header.set_sform(None, code=0)
  source = tmp_path / f"{forms}.nii.gz"
  nib.Nifti1Image(np.asarray(crop.dataobj), None, header).to_filename(source)
  before = nib.load(source).header
  out = predict.super_resolve_file(source, tmp_path / "sr.nii.gz",
                                       weights.load_generator(generator_weights)[0], tile=16,
                                       scale=[2, 2, 1], progress=False)
  after = nib.load(out).header
  np.testing.assert_allclose(after.get_zooms(), np.multiply(before.get_zooms(), [0.5, 0.5, 1]),
                             rtol=1e-6)
  hr_to_input = np.diag([0.5, 0.5, 1.0, 1.0])
  present = ("qform", "sform") if forms == "both" else (forms,)
  for form in ("qform", "sform"):
    matrix, code = getattr(before, f"get_{form}")(coded=True)
    new_matrix, new_code = getattr(after, f"get_{form}")(coded=True)
    assert new_code == code and bool(code) == (form in present), form
    if code:
      np.testing.assert_allclose(new_matrix, matrix @ hr_to_input, atol=1e-4)
      np.testing.assert_allclose(np.linalg.norm(new_matrix[:3, :3], axis=0), after.get_zooms(),
                                 rtol=1e-5)


SIGTERM_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    import nibabel as nib
    from mdcsrn_tf.infer import __main__ as command

    write = nib.Nifti1Image.to_filename

    def write_then_terminated(image, path, **kwargs):
      write(image, path, **kwargs)  # the hidden temporary file holds the whole output now
      print(sorted(os.listdir(os.path.dirname(path))), flush=True)
      os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` arriving at this moment

    nib.Nifti1Image.to_filename = write_then_terminated
    sys.argv = ["mdcsrn-sr", *sys.argv[1:]]
    command.run()
    """)


def run_interrupted(script, tmp_path, scan, generator_weights):
  """(mdcsrn-sr run by `script` into an empty folder, that folder)."""
  out = tmp_path / "out"
  out.mkdir()
  result = subprocess.run([sys.executable, "-c", script, str(scan), str(out / "sr.nii.gz"),
                           "--weights", generator_weights],
                          capture_output=True, text=True, timeout=300)
  return result, out


def test_sigterm_removes_the_temporary_output_and_exits_143(tmp_path, scan, generator_weights):
  result, out = run_interrupted(SIGTERM_DURING_WRITE, tmp_path, scan, generator_weights)
  assert result.returncode == 128 + signal.SIGTERM, result.stderr
  assert ".sr.nii.gz." in result.stdout and ".tmp.nii.gz" in result.stdout  # it was there
  assert not list(out.iterdir())


SIGINT_DURING_LONG_CALL = textwrap.dedent("""
    import os, signal, sys, time
    import nibabel as nib
    from mdcsrn_tf.infer import __main__ as command

    write = nib.Nifti1Image.to_filename

    def write_then_interrupted_in_a_long_call(image, path, **kwargs):
      write(image, path, **kwargs)
      print(sorted(os.listdir(os.path.dirname(path))), flush=True)
      # the main thread sits in one long call that runs no Python, as in a TensorFlow op:
      # Ctrl-C reaches another thread, and Python's handler waits for the main thread
      signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(600)

    nib.Nifti1Image.to_filename = write_then_interrupted_in_a_long_call
    sys.argv = ["mdcsrn-sr", *sys.argv[1:]]
    command.run()
    """)


def test_sigint_is_answered_while_the_main_thread_is_busy(tmp_path, scan, generator_weights):
  # answered within the 300 s timeout, not after the script's 600 s sleep
  result, out = run_interrupted(SIGINT_DURING_LONG_CALL, tmp_path, scan, generator_weights)
  assert result.returncode == 128 + signal.SIGINT, result.stderr
  assert result.stderr.splitlines()[-1] == "stopped by SIGINT"
  assert "Traceback" not in result.stderr
  assert ".sr.nii.gz." in result.stdout  # the temporary output was there, and is removed
  assert not list(out.iterdir())


def test_missing_shipped_weights_is_one_clear_error(monkeypatch, tmp_path):
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  with pytest.raises(weights.InputError, match="--weights"):
    weights.default_weights("l1")


def test_shipped_l1_weights_are_the_default(tmp_path, scan):
  result = run_predict(scan, tmp_path / "out.nii.gz", "--tile", "32")
  assert result.returncode == 0, result.stderr
  # uniform noise is no head, whatever else the default's training domain finds odd in it
  lines = result.stderr.splitlines()
  assert lines and all(line.startswith(f"warning: {scan}: ") for line in lines)
  assert ["a", "head"] in [line.split(": ")[2].split(" ")[:2] for line in lines]
  volume = nib.load(scan).get_fdata(dtype=np.float32)
  shipped, card = weights.load_generator(weights.shipped()["l1"])
  expected = inference.super_resolve(shipped, volume / volume.max(), tile=32, margin=3,
                                     progress=False, keep_band=consistency.band_kept_by(card))
  np.testing.assert_allclose(nib.load(tmp_path / "out.nii.gz").get_fdata(dtype=np.float32),
                             expected * volume.max(), rtol=1e-4, atol=1e-3)


def test_a_cards_warning_is_printed_before_the_output(tmp_path, scan, generator_weights):
  warned = str(tmp_path / "warned")
  for suffix in (weights.WEIGHTS_SUFFIX, weights.CARD_SUFFIX):
    shutil.copy(generator_weights + suffix, warned + suffix)
  card = weights.read_card(warned)
  cards.write(warned, dataclasses.replace(card, warning="below the bar on Colin27"))
  result = run_predict(scan, tmp_path / "out.nii.gz", "--weights", warned, "--tile", "12")
  assert result.returncode == 0, result.stderr
  assert result.stderr.splitlines() == ["warning: below the bar on Colin27"]


def test_weights_shipped_with_the_package_are_named_by_their_name(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # no file of that name here
  for name in weights.shipped_names():
    model, card = weights_choice.load_model(name)
    assert weights.shipped_name(card.shipped_set, card.model, card.shipped_as) == name
    assert weights_choice.trained_settings(weights_choice.weights_to_use(name)) == (
        card.acquisition, card.keeps_measured_band)
