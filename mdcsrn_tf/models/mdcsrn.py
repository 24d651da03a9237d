"""The mDCSRN generator (Chen et al. 2018, sec. 2.2-2.3; the wiring of docs/paper.md#generator-mdcsrn).

A first 3x3x3 convolution to 2k channels, then `blocks` densely connected blocks of
`units` BN-ELU-Conv units each. Every block but the first starts with a 1x1x1
compressor to 2k channels over the concatenation of the first layer's output and all
earlier block outputs; a 1x1x1 reconstruction layer reads the concatenation of all of
them. Input and output share the HR grid: the LR input was already interpolated.

The paper does not say how the weights start. By default the untrained network is the
identity map (`identity_init`): channel 0 of the first layer is a centred delta and the
reconstruction layer reads only that channel, every other weight starts as Keras' Glorot
default. Training then starts from the interpolated input instead of from noise; started
from Glorot everywhere, a CPU-sized run spends most of its steps unlearning the noise
(docs/deviations.md).
"""
import keras
from keras import layers

def _pass_through_first_kernel(shape, dtype=None):
  """Glorot-uniform, except that output channel 0 copies the input (a centred delta)."""
  kernel = keras.initializers.GlorotUniform()(shape, dtype)
  centre = [n // 2 for n in shape[:3]]
  delta = keras.ops.scatter_update(keras.ops.zeros(shape[:-1], dtype), [[*centre, 0]],
                                   keras.ops.ones([1], dtype))
  return keras.ops.concatenate([delta[..., None], kernel[..., 1:]], axis=-1)


def _channel_0_reconstruction_kernel(shape, dtype=None):
  """A 1x1x1 kernel that reads channel 0 only."""
  return keras.ops.scatter_update(keras.ops.zeros(shape, dtype), [[0, 0, 0, 0, 0]],
                                  keras.ops.ones([1], dtype))


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


def mdcsrn(blocks=4, units=4, growth_rate=16, name=None, identity_init=True) -> keras.Model:
  """mDCSRN bBuU; `blocks=1, units=8` is DCSRN. Input and output (B, D, H, W, 1).
  `identity_init=False` starts every weight from Keras' default initialisers."""
  if blocks < 1 or units < 1 or growth_rate < 1:
    raise ValueError(f"blocks, units and growth_rate must be >= 1, got {blocks}, {units}, {growth_rate}")
  width = 2 * growth_rate
  inputs = keras.Input((None, None, None, 1), name="lr")
  first_kernel, reconstruction_kernel = (
      (_pass_through_first_kernel, _channel_0_reconstruction_kernel) if identity_init
      else ("glorot_uniform", "glorot_uniform"))
  first = layers.Conv3D(width, 3, padding="same", kernel_initializer=first_kernel,
                        name="first_conv")(inputs)
  block_inputs_so_far = [first]
  x = first
  for block in range(blocks):
    if block > 0:
      x = layers.Conv3D(width, 1, name=f"block{block}_compressor")(
          _concat(block_inputs_so_far, f"block{block}_compressor_in"))
    x = _dense_block(x, units, growth_rate, name=f"block{block}")
    block_inputs_so_far.append(x)
  # float32 output so that losses and metrics stay exact under mixed precision.
  sr = layers.Conv3D(1, 1, dtype="float32", kernel_initializer=reconstruction_kernel,
                     name="reconstruction")(
      _concat(block_inputs_so_far, "reconstruction_in"))
  return keras.Model(inputs, sr, name=name or f"mdcsrn_b{blocks}u{units}")
