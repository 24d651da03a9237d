"""The mDCSRN generator (Chen et al. 2018, sec. 2.2-2.3; wiring fixed in NOTES.md).

A first 3x3x3 convolution to 2k channels, then `blocks` densely connected blocks of
`units` BN-ELU-Conv units each. Every block but the first starts with a 1x1x1
compressor to 2k channels over the concatenation of the first layer's output and all
earlier block outputs; a 1x1x1 reconstruction layer reads the concatenation of all of
them. Input and output share the HR grid: the LR input was already interpolated.
"""
import keras
from keras import layers

VARIANTS = {"b1u8": (1, 8), "b2u4": (2, 4), "b3u4": (3, 4), "b4u4": (4, 4)}


def _concat(tensors, name):
  return tensors[0] if len(tensors) == 1 else layers.Concatenate(name=name)(tensors)


def _dense_block(x, units, growth_rate, name):
  features = [x]
  for unit in range(units):
    y = _concat(features, f"{name}_unit{unit}_in")
    y = layers.BatchNormalization(name=f"{name}_unit{unit}_bn")(y)
    y = layers.ELU(name=f"{name}_unit{unit}_elu")(y)
    y = layers.Conv3D(growth_rate, 3, padding="same", name=f"{name}_unit{unit}_conv")(y)
    features.append(y)
  return _concat(features, f"{name}_out")


def mdcsrn(blocks=4, units=4, growth_rate=16, name=None) -> keras.Model:
  """mDCSRN bBuU; `blocks=1, units=8` is DCSRN. Input and output (B, D, H, W, 1)."""
  if blocks < 1 or units < 1 or growth_rate < 1:
    raise ValueError(f"blocks, units and growth_rate must be >= 1, got {blocks}, {units}, {growth_rate}")
  width = 2 * growth_rate
  inputs = keras.Input((None, None, None, 1), name="lr")
  first = layers.Conv3D(width, 3, padding="same", name="first_conv")(inputs)
  block_inputs_so_far = [first]
  x = first
  for block in range(blocks):
    if block > 0:
      x = layers.Conv3D(width, 1, name=f"block{block}_compressor")(
          _concat(block_inputs_so_far, f"block{block}_compressor_in"))
    x = _dense_block(x, units, growth_rate, name=f"block{block}")
    block_inputs_so_far.append(x)
  # float32 output so that losses and metrics stay exact under mixed precision.
  sr = layers.Conv3D(1, 1, dtype="float32", name="reconstruction")(
      _concat(block_inputs_so_far, "reconstruction_in"))
  return keras.Model(inputs, sr, name=name or f"mdcsrn_b{blocks}u{units}")
