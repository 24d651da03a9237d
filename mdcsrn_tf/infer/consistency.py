"""Measured-band consistency: an output whose k-space, inside the band the acquisition kept,
is its input's (docs/evaluation.md#measured-band-consistency, docs/deviations.md).

A zero-filled k-space input holds the measured centre of k-space exactly (up to the
magnitude taken after the inverse FFT); only the removed band is missing. A network trained
with an L1 loss on patches also changes what was measured: on the whole heads its output
drifted by a few thousandths of the maximum in the head, enough to fall below its own input.
The projection

    output = input + real(IFFT(removed band * FFT(network output - input)))

keeps the input's kept band and takes from the network only what the acquisition removed
(both frequencies of a pair whose one half it removed: removed_pairs).
It is linear, so it commutes with the test-time augmentation's mean, and a network that
returns its input unchanged returns it unchanged here too. It runs on the whole stitched
volume (the band is a property of the volume's spectrum, not of a tile) with one forward
and one inverse complex FFT in single precision: two complex64 volumes of memory, 16 bytes
a voxel.

Weights opt in through their card (`ModelCard.keeps_measured_band`, from training's
`--keep_measured_band`); the tables' networks keep the paper's output. Only acquisitions
whose input holds the measured band (Acquisition.band_is_measured: k-space truncation read
zero-filled) can: an interpolated input's kept band is the interpolator's, not the scan's.
"""
import numpy as np
from scipy import fft

from mdcsrn_tf.acquisition import Acquisition

BYTES_PER_VOXEL = 16  # two complex64 volumes: the spectrum and its inverse


def keep_measured_band(output, network_input, acquisition: Acquisition) -> np.ndarray:
  """`output` (float32, the network's on `network_input`'s grid) with its spectrum inside
  `acquisition`'s kept band replaced by `network_input`'s; ValueError for an acquisition
  whose input does not hold the measured band."""
  if not acquisition.band_is_measured:
    raise ValueError(f"{acquisition.describe()}: the input does not hold the measured band")
  output = np.asarray(output, np.float32)
  network_input = np.asarray(network_input, np.float32)
  if output.shape != network_input.shape:
    raise ValueError(f"output {output.shape} and input {network_input.shape} differ in shape")
  spectrum = fft.fftn((output - network_input).astype(np.complex64), workers=-1,
                      overwrite_x=True)
  spectrum[~removed_pairs(acquisition, output.shape)] = 0
  restored = fft.ifftn(spectrum, workers=-1, overwrite_x=True).real
  return np.add(network_input, restored, dtype=np.float32)


def removed_pairs(acquisition: Acquisition, shape) -> np.ndarray:
  """The removed band (Acquisition.removed_band) with the mirror -k of each of its
  frequencies k: an even crop keeps -m/2 but not +m/2, and a real volume's spectrum holds
  the pair as one cosine, so the projection takes both or neither, which keeps it real and
  makes it a projection (applied twice, it changes nothing more)."""
  removed = acquisition.removed_band(shape)
  mirror = np.ix_(*((-np.arange(n)) % n for n in shape))
  return removed | removed[mirror]


def band_kept_by(card) -> Acquisition | None:
  """The acquisition whose measured band outputs of the weights `card` describes keep
  (inference.super_resolve's `keep_band`), or None for the network's output as it is."""
  return card.acquisition if card.keeps_measured_band else None


def bands_kept_by(cards: dict) -> dict:
  """{name: acquisition} of the {name: card} `cards` whose outputs keep the measured band
  (scoring.evaluate_volume's `keep_band`)."""
  return {name: card.acquisition for name, card in cards.items() if card.keeps_measured_band}
