"""The QC report of `mdcsrn-sr --report`: a self-contained page that headless Chromium (the
Debian package; `make test` installs it) renders with the three slices of the input and of
the output visible, found in the screenshot by normalised cross-correlation with the slices
taken from the NIfTI files here."""
import os
import re
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from scipy import signal

from conftest import UNDER_CI
from mdcsrn_tf import weights
from mdcsrn_tf.infer import provenance, report

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--force-device-scale-factor=1", "--force-color-profile=srgb")
# tall enough for the whole page: the held-out table has a row per head and method, and a
# training-domain warning can stand above the slices
WINDOW = (1300, 2600)
# A slice shown as it is correlates with its panel at 0.997 (the grey scale's clipping at
# the top percentile and the zoom box's outline are the only changes); the slice six voxels
# away correlates at 0.86 at most (measured on this crop, input and output), another plane
# or the difference map far less.
MATCH = 0.95


@pytest.fixture(scope="module")
def chromium():
  path = shutil.which("chromium")
  if path is None:
    message = "chromium is not installed: apt-get install chromium (make test installs it)"
    if UNDER_CI:
      pytest.fail(f"{message}; under CI a missing browser fails the suite")
    pytest.skip(message)
  return path


@pytest.fixture(scope="module")
def reported(colin27_crop, tmp_path_factory):
  """(input, output, report) of mdcsrn-sr --report on a real Colin27 crop."""
  root = tmp_path_factory.mktemp("report")
  scan = colin27_crop(root / "scan.nii.gz")
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.infer", scan, root / "sr.nii.gz",
                           "--report", root / "qc.html"], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  return scan, root / "sr.nii.gz", root / "qc.html"


def screenshot(chromium, page, folder):
  shot = folder / "shot.png"
  subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}",
                  f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}",
                  page.as_uri()], capture_output=True, timeout=120, check=True)
  from matplotlib import image  # pylint: disable=import-outside-toplevel

  return image.imread(shot)[..., :3].mean(axis=-1)


def best_correlation(picture, template) -> float:
  """The highest normalised cross-correlation of `template` over every position in
  `picture`."""
  template = template - template.mean()
  ones = np.ones(template.shape)
  products = signal.fftconvolve(picture, template[::-1, ::-1], mode="valid")
  sums = signal.fftconvolve(picture, ones, mode="valid")
  squares = signal.fftconvolve(picture ** 2, ones, mode="valid")
  variance = squares - sums ** 2 / template.size
  # flat places (the page's white background) have no correlation to speak of, and there
  # the FFT's round-off would dominate the quotient
  textured = variance > 1e-3 * template.size
  spread = np.sqrt(np.where(textured, variance, 1.0))
  return float(np.max(np.where(textured, products / (spread * np.linalg.norm(template)), 0)))


def shown(volume, plane, index):
  """A slice as the report promises to show it: in-plane axes (p, q), p to the right and
  q upward, PIXELS_PER_MM screen pixels per mm (1 mm voxels here)."""
  picture = np.flipud(np.take(volume, index, axis=plane).T)
  return np.repeat(np.repeat(picture, report.PIXELS_PER_MM, 0), report.PIXELS_PER_MM, 1)


def test_report_is_self_contained(reported):
  page = reported[2].read_text(encoding="utf-8")
  sources = re.findall(r'src="([^"]*)"', page)
  assert len(sources) == 15 and all(s.startswith("data:image/png;base64,") for s in sources)
  assert "<script" not in page and "http" not in page and "<link" not in page


def test_chromium_renders_the_slices_of_input_and_output(chromium, reported, tmp_path):
  scan, output, page = reported
  picture = screenshot(chromium, page, tmp_path)
  assert picture.shape == (WINDOW[1], WINDOW[0])
  planes = {int(p): int(i) for p, i in
            re.findall(r'data-plane="(\d)" data-slice="(\d+)"', page.read_text("utf-8"))}
  assert sorted(planes) == [0, 1, 2]
  for path in (scan, output):
    volume = nib.load(path).get_fdata(dtype=np.float32)
    for plane, index in planes.items():
      assert best_correlation(picture, shown(volume, plane, index)) > MATCH, (path, plane)
      # a slice six voxels away is not what is shown
      other = shown(volume, plane, index + 6)
      assert best_correlation(picture, other) < MATCH, (path, plane)


def held_out_table(page) -> list:
  """[[cell, ...]] of the rows of the held-out figures' table of a report page."""
  table = page[page.index("<h3>Held-out figures"):]
  table = table[:table.index("</table>")]
  return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]


def test_the_held_out_table_shows_each_head_and_their_mean_with_its_n(reported):
  """The shipped card holds three held-out heads, one with a brain mask: a row per head and
  method, then the mean, labelled with the number of heads each of its figures covers."""
  card = weights.read_card(weights.shipped()["l1"]).held_out
  page = reported[2].read_text(encoding="utf-8")
  heading = page[page.index("<h3>Held-out figures"):].split("</h3>")[0]
  assert "3 held-out volume(s)" in heading and all(v in heading for v in card["volumes"])
  rows = held_out_table(page)
  network = {row[0]: row for row in rows if row[1] == "this network"}
  assert list(network) == [*card["volumes"], "mean (n = 3; in the mask n = 1)"]
  for volume in card["volumes"]:
    assert float(network[volume][2]) == pytest.approx(
        card["per_volume"][volume]["model"]["psnr"], rel=1e-3)
  psnr = [card["per_volume"][v]["model"]["psnr"] for v in card["volumes"]]
  mean = network["mean (n = 3; in the mask n = 1)"]
  assert float(mean[2]) == pytest.approx(np.mean(psnr), rel=1e-3)
  assert float(mean[5]) == pytest.approx(card["per_volume"]["colin27_1mm"]["model"]["psnr_mask"],
                                         rel=1e-3)  # inside the brain: Colin27 alone


def test_the_weights_table_says_their_set_and_whether_the_output_keeps_the_measured_band(
    reported):
  card = weights.read_card(weights.shipped()["l1"])
  page = reported[2].read_text(encoding="utf-8")
  table = page[page.index("<h2>Weights</h2>"):]
  rows = dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table[:table.index("</table>")]))
  assert rows["shipped set"] == card.shipped_set and rows["shipped as"] == card.shipped_as
  assert rows["output keeps the input&#x27;s measured k-space band"] == (
      "yes" if card.keeps_measured_band else "no")


def test_a_card_without_figures_per_volume_keeps_its_one_row_per_method():
  held_out = {"volume": "colin27_1mm", "whole_volume": {"model": {"psnr": 40.0, "ssim": 0.9}}}
  assert provenance.held_out_rows(held_out) == [
      ("colin27_1mm", "this network", 40.0, 0.9, None, None, None)]
