"""Volumes with nothing to super-resolve, and HR volumes with nothing in the removed band.

A volume without contrast (constant, or spread over no more than 1/4096 of its largest
magnitude: data/intensity.py says why) or without a positive voxel is refused by every
command that reads volumes, in one `error:` line naming the file (prepare: after the line
saying it skipped it), exit status 2, before TensorFlow loads and with nothing written;
the real volumes, the bundled ones and a template with small negative values among them,
all pass. Sharpness and band fidelity of an HR volume whose removed band holds round-off
only are NaN (the metrics' floor, metrics.EMPTY_BAND), and shown as nan in the tables and
null in summary.json; a real volume's are finite.
"""
import json
import os
import shlex

import nibabel as nib
import numpy as np
import pytest

from bad_input_world import build_world
from command_cases import assert_refused, run_in_subprocess, tree_state, words
from mdcsrn_tf import metrics
from mdcsrn_tf.acquisition import PAPER
from mdcsrn_tf.data import intensity, samples
from mdcsrn_tf.errors import InputError, one_line

HEADS = {"constant": np.full((20, 21, 22), 100.0), "zeros": np.zeros((20, 21, 22)),
         # spread 0.2 about 1000: below 1000 / 4096 = 0.244, a 12-bit scanner's step
         "nearly": 1000 + 0.2 * (np.indices((20, 21, 22)).sum(axis=0) % 2),
         "negative": -1 - np.indices((20, 21, 22)).sum(axis=0)}
CONSTANT = ": constant volume (every voxel is 100); nothing to super-resolve"
CASES = [  # (command, the error line after "error: ", the lines before it)
    ("predict {constant} {out}/sr.nii.gz", "{constant}" + CONSTANT, []),
    ("predict {zeros} {out}/sr.nii.gz --weights {weights}",
     "{zeros}: no positive voxel (max 0); nothing to super-resolve", []),
    ("predict {scan} {nearly} --out_dir {out}",
     "{nearly}: no contrast: every voxel lies within 0.2 of 1000.2, not more than 1/4096 of "
     "its magnitude (a 12-bit scanner's smallest step); nothing to super-resolve", []),
    ("predict {odd_constant_quoted} {out}/sr.nii.gz",
     "{odd_constant_shown}: constant volume *", []),
    ("bids {flat_bids} {out}/d participant",
     "{flat_bids}/sub-01/anat/sub-01_T1w.nii.gz: constant volume *", []),
    ("evaluate --volumes={scan},{negative} --out_dir={out}/eval",
     "{negative}: no positive voxel (max -1); nothing to super-resolve", []),
    ("evaluate --volumes={constant} --weights=net={weights} --out_dir={out}/eval",
     "{constant}" + CONSTANT, []),
    ("prepare --src={constant_dir} --out={out}/d", "{constant_dir}: none of the 1 volumes is usable",
     ["skipped: {dir}" + CONSTANT]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, colin27_crop, bids_tree):
  """(root, {name: path}) of bad_input_world's files, the HEADS volumes on a Colin27 crop's
  grid, one of them under a name holding a newline, a folder and a BIDS dataset holding one."""
  root = tmp_path_factory.mktemp("degenerate_world")
  paths = build_world(root, colin27_crop, bids_tree)
  affine = nib.load(paths["scan"]).affine
  odd = str(root / "odd\nconstant\x1b[1m.nii.gz")
  paths.update(odd_constant=odd, odd_constant_quoted=shlex.quote(odd),
               odd_constant_shown=one_line(odd), constant_dir=str(root / "constant_dir"),
               flat_bids=str(root / "flat_bids"))
  anat = os.path.join(paths["flat_bids"], "sub-01", "anat")
  os.makedirs(anat)
  with open(os.path.join(paths["flat_bids"], "dataset_description.json"), "w",
            encoding="utf-8") as file:
    json.dump({"Name": "flat", "BIDSVersion": "1.9.0"}, file)
  for name, path in {**{name: str(root / f"{name}.nii.gz") for name in HEADS},
                     "odd": odd, "dir": os.path.join(paths["constant_dir"], "constant.nii.gz"),
                     "bids": os.path.join(anat, "sub-01_T1w.nii.gz")}.items():
    paths.setdefault(name, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.Nifti1Image(HEADS.get(name, HEADS["constant"]).astype(np.float32),
                    affine).to_filename(path)
  return root, paths


@pytest.mark.parametrize("command, message, earlier", CASES, ids=[case[0] for case in CASES])
def test_a_volume_without_contrast_is_refused_before_tensorflow_naming_it(
    world, tmp_path_factory, command, message, earlier):
  root, paths = world
  paths = {**paths, "out": str(tmp_path_factory.mktemp("out"))}
  before = tree_state(root), tree_state(paths["out"])
  tool, *args = words(command, paths)
  status, lines, _, loaded = run_in_subprocess(tool, args)
  assert lines[:-1] == [line.format(**paths) for line in earlier]
  assert_refused(status, lines[-1:], message, paths)
  assert not loaded, "TensorFlow loaded before the volume was refused"
  assert (tree_state(root), tree_state(paths["out"])) == before


@pytest.mark.parametrize("spread, refused", [
    (0.0, True), (intensity.CONTRAST, True), (2 * intensity.CONTRAST, False),
    (-0.005, False)])  # a template's interpolated negative values, -0.5% of its maximum
def test_contrast_is_the_spread_against_the_largest_magnitude(spread, refused):
  volume = np.ones((8, 8, 8))
  volume[0, 0, 0] = 1 - spread if spread >= 0 else spread
  if refused:
    with pytest.raises(InputError, match="^v: (constant volume|no contrast)"):
      intensity.check_contrast(volume, "v")
  else:  # mapped by its maximum, or by its range with negative voxels
    assert intensity.intensity_of(volume, "v") == intensity.Intensity(
        volume.max() - min(volume.min(), 0), min(volume.min(), 0))


def test_every_bundled_sample_has_contrast(sample):
  from mdcsrn_tf.data import nifti  # pylint: disable=import-outside-toplevel

  lowest = {}
  for name in samples.SAMPLES:
    volume, _ = nifti.load_volume(sample(name))
    intensity.check_contrast(volume, name)  # raises for one without
    lowest[name] = float(volume.min() / volume.max())
  assert -0.01 < lowest["conte_core2_2mm"] < -0.001  # small interpolated negative values


def empty_band(volume, acquisition=PAPER):
  """`volume` with its removed band and the band's mirror (-k) zeroed in k-space, so that
  it stays real: a volume with nothing in the band, up to round-off."""
  band = acquisition.removed_band(volume.shape)
  band |= np.roll(np.flip(band), 1, axis=(0, 1, 2))
  spectrum = np.fft.fftn(np.asarray(volume, np.float64))
  spectrum[band] = 0
  return np.real(np.fft.ifftn(spectrum))


@pytest.fixture(scope="module")
def crops(colin27):
  """(a Colin27 crop, the same with an empty band, as NIfTI stores it: float32)."""
  crop = np.asarray(colin27.dataobj, np.float64)[60:97, 80:125, 60:89]
  return crop, empty_band(crop).astype(np.float32)


def test_round_off_in_an_empty_band_stays_below_the_floor(crops):
  _, flat = crops
  band, _, _, total = metrics.band_energies(flat, flat)
  float32_rounding = (np.finfo(np.float32).eps / 2)**2  # of the energy, at most
  assert 0 < band <= float32_rounding * total < metrics.EMPTY_BAND * flat.size * total


def test_band_figures_are_nan_for_an_empty_band_and_finite_for_a_real_one(crops):
  real, flat = crops
  for hr, defined in ((real, True), (flat, False)):
    sr = hr * 1.01 + 0.5  # any output: the figures' undefinedness is HR's
    figures = metrics.quality(hr, sr, PAPER)
    for name in ("sharpness", "band_fidelity"):
      assert np.isfinite(figures[name]) == defined, (name, figures[name])
    assert np.isfinite(figures["psnr"])


def test_evaluate_shows_nan_band_figures_as_nan_and_null(crops, tmp_path, colin27):
  _, flat = crops
  path = str(tmp_path / "flat_band.nii.gz")
  nib.Nifti1Image(flat, colin27.affine).to_filename(path)
  status, lines, stdout, _ = run_in_subprocess("evaluate", [
      f"--volumes={path}", "--baselines=zero_filled,cubic", f"--out_dir={tmp_path}/eval"])
  assert status == 0, lines
  rows = [line.split() for line in stdout.splitlines() if line.startswith("flat_band ")]
  assert [row[1] for row in rows] == ["zero_filled", "cubic"]
  for row in rows:  # subject, method, SSIM, PSNR, NRMSE, sharpness, band fidelity
    assert row[5:7] == ["nan", "nan"] and all(np.isfinite(float(v)) for v in row[2:5]), row
  summary = json.loads((tmp_path / "eval" / "summary.json").read_text())["summary"]
  for method in ("zero_filled", "cubic"):
    assert summary[method]["sharpness"]["mean"] is None
    assert summary[method]["band_fidelity"]["mean"] is None
    assert summary[method]["psnr"]["mean"] > 20
