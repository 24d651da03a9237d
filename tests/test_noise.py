"""Scanner noise for training patches (data/noise.py): the NumPy degradation is the
project's own, and the noise has the statistics of a magnitude image's."""
import math

import numpy as np
import pytest

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import kspace, noise, pipeline
from mdcsrn_tf.errors import InputError
from tests.test_pipeline import HEAD, make_dataset, take

ZERO_FILLED = Acquisition(placement="zero_filled")


@pytest.mark.parametrize("shape", [(20, 18, 16), (21, 17, 15)])
def test_numpy_zero_filling_is_kspace_degrade(shape):
  volume = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
  expected = kspace.degrade(volume, ZERO_FILLED)
  # TensorFlow's complex64 FFTs against NumPy's complex128: a few float32 ulps of the
  # spectrum's scale per pass, two passes
  np.testing.assert_allclose(noise.zero_filled(volume, ZERO_FILLED.factors), expected,
                             atol=1e-5 * float(volume.max()))


def test_no_noise_leaves_the_pair_as_it_is():
  rng = np.random.default_rng(1)
  hr = np.maximum(HEAD[:16, :16, :16], 0) / HEAD.max()  # a magnitude image
  lr = noise.zero_filled(hr, ZERO_FILLED.factors)
  noisy_lr, noisy_hr = noise.noisy_pair(lr, hr, 0.0, ZERO_FILLED.factors, rng)
  np.testing.assert_array_equal(noisy_hr, hr)
  np.testing.assert_array_equal(noisy_lr, np.maximum(lr, 0))


def test_noise_is_rayleigh_without_signal_and_gaussian_in_bright_tissue():
  sigma, size = 0.01, 32
  rng = np.random.default_rng(2)
  empty = np.zeros((size,) * 3, np.float32)
  _, background = noise.noisy_pair(empty, empty, sigma, ZERO_FILLED.factors, rng)
  # Rayleigh: mean sigma sqrt(pi / 2), standard deviation sigma sqrt((4 - pi) / 2)
  standard_error = sigma * math.sqrt((4 - math.pi) / 2) / math.sqrt(background.size)
  assert abs(background.mean() - sigma * math.sqrt(math.pi / 2)) < 6 * standard_error
  bright = np.full((size,) * 3, 0.5, np.float32)
  lr = noise.zero_filled(bright, ZERO_FILLED.factors)
  noisy_lr, noisy_hr = noise.noisy_pair(lr, bright, sigma, ZERO_FILLED.factors, rng)
  # far above the noise the magnitude's noise is the real part's: Gaussian of std sigma,
  # its sample std within 6 standard errors (sigma / sqrt(2 N)) plus Rician's tiny bias
  assert abs((noisy_hr - bright).std() - sigma) < 6 * sigma / math.sqrt(2 * bright.size)
  # the LR patch keeps the kept band of that noise: a quarter of its energy (two axes
  # halved), so about half its standard deviation
  assert abs((noisy_lr - lr).std() / sigma - 0.5) < 0.02


def test_noisy_patches_are_the_clean_ones_plus_noise(tmp_path):
  manifest_path = make_dataset(tmp_path, {"head": HEAD})
  common = dict(patch_size=12, batch_size=4, seed=3, patches_per_volume=4, shuffle_patches=1,
                acquisition=ZERO_FILLED)
  clean = take(manifest_path, pipeline.PipelineConfig(**common), 2)
  noisy = take(manifest_path, pipeline.PipelineConfig(**common, noise_sigma=0.02), 2)
  differences = [(n_hr - c_hr).std() for (_, c_hr), (_, n_hr) in zip(clean, noisy)]
  assert 0 < min(differences) and max(differences) < 0.03  # sigma drawn from [0, 0.02]
  with pytest.raises(InputError, match="zero_filled"):
    pipeline.PipelineConfig(noise_sigma=0.01)  # the paper's linear placement
