"""The README's demo (python -m mdcsrn_tf.demo) end to end on a crop of the held-out real volume."""
import json
import os
import subprocess
import sys

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.data import samples

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROP = 48


def test_demo_writes_volumes_png_and_metrics(tmp_path, sample):
  colin27 = sample("colin27_1mm")
  out = tmp_path / "demo"
  result = subprocess.run([sys.executable, "-m", "mdcsrn_tf.demo", f"--out={out}",
                           f"--crop={CROP}", "--tile=32"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "zero_filled" in result.stdout and "PSNR" in result.stdout

  shipped = {"l1": "mdcsrn", "gan": "mdcsrn_gan"}
  methods = {"nearest", "linear", "cubic", "zero_filled", "hr", "lr",
             *(shipped[kind] for kind in weights.shipped())}
  hr = nib.load(out / "colin27_hr.nii.gz")
  assert hr.shape == (CROP,) * 3
  original = nib.load(colin27)
  assert np.allclose(hr.header.get_zooms(), original.header.get_zooms())
  for method in methods:
    image = nib.load(out / f"colin27_{method}.nii.gz")
    assert image.shape == hr.shape and np.allclose(image.affine, hr.affine)
  # The HR volume is the original's central crop, in the original's intensities.
  starts = [(n - CROP) // 2 for n in original.shape]
  crop_to_original = np.eye(4)
  crop_to_original[:3, 3] = starts
  np.testing.assert_allclose(hr.affine, original.affine @ crop_to_original)
  for form in ("qform_code", "sform_code"):
    assert hr.header[form] == original.header[form], form
  expected = original.get_fdata()[tuple(slice(s, s + CROP) for s in starts)]
  np.testing.assert_allclose(hr.get_fdata(), expected, rtol=1e-4, atol=1e-3 * expected.max())

  figure = matplotlib.image.imread(out / "comparison.png")
  grey = figure[..., :3].mean(axis=-1)
  assert grey.shape[0] > 100 and grey.std() > 0.1  # a picture of brains, not a blank page

  results = json.loads((out / "metrics.json").read_text())
  # colin27_lr, the volume for mdcsrn-sr, is the shipped weights' network input
  lr_mode = results["lr_mode"]
  np.testing.assert_array_equal(nib.load(out / "colin27_lr.nii.gz").get_fdata(),
                                nib.load(out / f"colin27_{lr_mode}.nii.gz").get_fdata())
  scores = results["summary"]
  assert set(scores) == methods - {"hr", "lr"}
  psnr = {method: scores[method]["psnr"]["mean"] for method in scores}
  assert psnr["nearest"] < psnr["linear"] < psnr["cubic"] < psnr["zero_filled"]
