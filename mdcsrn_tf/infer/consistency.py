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
and one inverse complex FFT in single precision, in place: BYTES_PER_VOXEL beyond the
input and the network's output, which mdcsrn-sr's memory check counts (infer/grids.py).

Weights opt in through their card (`ModelCard.keeps_measured_band`, from training's
`--keep_measured_band`); the tables' networks keep the paper's output. Only acquisitions
whose input holds the measured band (Acquisition.band_is_measured: k-space truncation read
zero-filled) can: an interpolated input's kept band is the interpolator's, not the scan's.
"""
import numpy as np
from scipy import fft

from mdcsrn_tf.acquisition import Acquisition

# Peak memory of the projection beyond its two float32 volumes, per voxel: the difference and
# its complex64 spectrum, then the spectrum, its masks and the new output (measured with
# tracemalloc on a 128 x 128 x 96 volume: 12.0).
BYTES_PER_VOXEL = 12


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


def kept_pairs_along(n, factor, arange=np.arange):
  """Whether each frequency index 0..n-1 (np.fft order) of an axis truncated by `factor` and
  its mirror -k are both in the centred n // factor frequencies the crop keeps (the crop of
  data/kspace.py and Acquisition.removed_band: indices n // 2 - m // 2 ... + m after
  fftshift). An even crop keeps -m/2 but not +m/2, and a real volume holds the pair as one
  cosine: taking both or neither keeps the projection real and makes it a projection
  (applied twice, it changes nothing more). NumPy, or TensorFlow with arange=tf.range and
  a tensor `n` (the SavedModel's graph)."""
  index = arange(n)
  kept = n // factor
  first = n // 2 - kept // 2

  def inside(k):
    shifted = (k + n // 2) % n
    return (shifted >= first) & (shifted < first + kept)

  return inside(index) & inside((n - index) % n)


def removed_pairs(acquisition: Acquisition, shape) -> np.ndarray:
  """The frequencies of a volume of `shape` that the projection takes from the network:
  every one outside the kept pairs (kept_pairs_along) of some truncated axis."""
  kept = np.ones(tuple(shape), bool)
  for axis in acquisition.truncated_axes:
    kept &= kept_pairs_along(shape[axis], acquisition.factors[axis]).reshape(
        [-1 if a == axis else 1 for a in range(3)])
  return ~kept


def keep_measured_band_graph(output, network_input, acquisition: Acquisition):
  """keep_measured_band in TensorFlow ops, for [D, H, W] float32 tensors of any shape (the
  SavedModel's serving function)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  shape = tf.shape(output)
  kept = tf.ones([], tf.bool)
  for axis in acquisition.truncated_axes:
    along = kept_pairs_along(shape[axis], acquisition.factors[axis], tf.range)
    kept = tf.logical_and(kept, tf.reshape(along, [-1 if a == axis else 1 for a in range(3)]))
  removed = tf.cast(tf.logical_not(kept), tf.complex64)
  spectrum = tf.signal.fft3d(tf.complex(output - network_input, tf.zeros_like(output)))
  return network_input + tf.math.real(tf.signal.ifft3d(spectrum * removed))


def band_kept_by(card) -> Acquisition | None:
  """The acquisition whose measured band outputs of the weights `card` describes keep
  (inference.super_resolve's `keep_band`), or None for the network's output as it is."""
  return card.acquisition if card.keeps_measured_band else None


def bands_kept_by(cards: dict) -> dict:
  """{name: acquisition} of the {name: card} `cards` whose outputs keep the measured band
  (scoring.evaluate_volume's `keep_band`)."""
  bands = {name: band_kept_by(card) for name, card in cards.items()}
  return {name: band for name, band in bands.items() if band is not None}
