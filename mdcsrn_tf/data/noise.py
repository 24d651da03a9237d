"""Scanner noise for training patches (`--noise_sigma`, data/pipeline.py).

Most of the bundled training heads are averages of many people, nearly free of noise, while
a scan of one person holds noise in every voxel. A network that only ever saw clean inputs
reads the noise left in the kept band as anatomy and extends it into the band it restores,
adding detail that is not there. A noisy patch pair is made as a scanner makes one: the HR
patch becomes the magnitude of itself plus complex Gaussian noise (Rician, as every
magnitude image: Rayleigh where there is no signal), and the LR patch changes by what that
noise changes in the degraded patch, so that the pair's own degradation, computed on the
whole volume, is kept.
"""
import numpy as np

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.errors import InputError


def check_acquisition(acquisition: Acquisition):
  """InputError unless patches of `acquisition` can be made noisy here: the zero-filled
  k-space truncation (the only degradation computed in NumPy, in the pipeline's threads)."""
  if acquisition.placement != "zero_filled" or acquisition.slice_profile != "none":
    raise InputError("--noise_sigma needs --placement=zero_filled and --slice_profile=none "
                     f"(the acquisition here: {acquisition.describe()})")


def zero_filled(volume, factors) -> np.ndarray:
  """kspace.degrade's zero-filled placement in NumPy: the magnitude of the volume's centred
  spectrum kept to n // factor along each axis (zero frequency at n // 2), float32."""
  spectrum = np.fft.fftshift(np.fft.fftn(volume))
  kept = np.zeros(volume.shape, bool)
  window = []
  for n, factor in zip(volume.shape, factors):
    small = n // factor
    begin = n // 2 - small // 2
    window.append(slice(begin, begin + small))
  kept[tuple(window)] = True
  return np.abs(np.fft.ifftn(np.fft.ifftshift(np.where(kept, spectrum, 0)))).astype(np.float32)


def noisy_pair(lr, hr, sigma, factors, rng) -> tuple:
  """(LR, HR) of a patch pair with complex Gaussian noise of standard deviation `sigma` per
  component added to HR before its magnitude; LR changes by the difference that makes in
  the patch's own degradation."""
  noise = rng.normal(0.0, sigma, (2, *hr.shape))
  noisy_hr = np.abs(hr + noise[0] + 1j * noise[1]).astype(np.float32)
  noisy_lr = lr + zero_filled(noisy_hr, factors) - zero_filled(hr, factors)
  return np.maximum(noisy_lr, 0).astype(np.float32), noisy_hr
