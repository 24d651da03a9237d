"""The paper's baselines made 3D (Table 2): FSRCNN and SRResNet on the HR grid.

The paper "extended the 2D convolution to 3D for both FSRCNN and SRResNet" and kept
FSRCNN's hyper-parameters. The LR input is already interpolated onto the HR grid, so
neither network upsamples: FSRCNN's deconvolution becomes a 9x9x9 convolution to one
channel and SRResNet's sub-pixel layers are dropped. docs/models.md gives the counts.

PReLU slopes are one per channel (shared over space, so any D, H, W works) and start at
0.25, He et al.'s initialisation for PReLU (Keras' default, 0, would make it a ReLU).
"""
import keras
from keras import layers

PRELU_INIT = 0.25


def _prelu(x, name):
  return layers.PReLU(alpha_initializer=keras.initializers.Constant(PRELU_INIT),
                      shared_axes=[1, 2, 3], name=name)(x)


def fsrcnn(d=56, s=12, m=4, first_kernel=5, last_kernel=9, name="fsrcnn") -> keras.Model:
  """3D FSRCNN(d, s, m) (Dong et al. 2016): feature extraction (first_kernel^3, d),
  shrinking (1^3, s), m mapping layers (3^3, s), expanding (1^3, d), each followed by a
  PReLU, then a last_kernel^3 convolution to one channel in place of the deconvolution.
  Defaults: 65,065 parameters (Table 2: 0.064M)."""
  if min(d, s, m, first_kernel, last_kernel) < 1:
    raise ValueError(f"d, s, m and the kernel sizes must be >= 1, got {d}, {s}, {m}, "
                     f"{first_kernel}, {last_kernel}")
  inputs = keras.Input((None, None, None, 1), name="lr")
  x = layers.Conv3D(d, first_kernel, padding="same", name="extract_conv")(inputs)
  x = _prelu(x, "extract_prelu")
  x = layers.Conv3D(s, 1, name="shrink_conv")(x)
  x = _prelu(x, "shrink_prelu")
  for i in range(m):
    x = layers.Conv3D(s, 3, padding="same", name=f"map{i}_conv")(x)
    x = _prelu(x, f"map{i}_prelu")
  x = layers.Conv3D(d, 1, name="expand_conv")(x)
  x = _prelu(x, "expand_prelu")
  sr = layers.Conv3D(1, last_kernel, padding="same", dtype="float32",
                     name="reconstruction")(x)
  return keras.Model(inputs, sr, name=name)


def srresnet(blocks=8, width=64, outer_kernel=9, name="srresnet") -> keras.Model:
  """3D SRResNet (Ledig et al. 2017) without upsampling: an outer_kernel^3 convolution to
  `width` channels + PReLU; `blocks` residual blocks Conv-BN-PReLU-Conv-BN (3^3) with an
  identity skip; Conv(3^3)-BN and a long skip from the first PReLU; an outer_kernel^3
  convolution to one channel. Defaults: 1,977,281 trainable parameters (Table 2: 2.005M)."""
  if min(blocks, width, outer_kernel) < 1:
    raise ValueError(f"blocks, width and outer_kernel must be >= 1, got {blocks}, {width}, "
                     f"{outer_kernel}")
  inputs = keras.Input((None, None, None, 1), name="lr")
  x = layers.Conv3D(width, outer_kernel, padding="same", name="first_conv")(inputs)
  skip = x = _prelu(x, "first_prelu")
  for b in range(blocks):
    y = layers.Conv3D(width, 3, padding="same", name=f"res{b}_conv0")(x)
    y = layers.BatchNormalization(name=f"res{b}_bn0")(y)
    y = _prelu(y, f"res{b}_prelu")
    y = layers.Conv3D(width, 3, padding="same", name=f"res{b}_conv1")(y)
    y = layers.BatchNormalization(name=f"res{b}_bn1")(y)
    x = layers.Add(name=f"res{b}_add")([x, y])
  x = layers.Conv3D(width, 3, padding="same", name="trunk_conv")(x)
  x = layers.BatchNormalization(name="trunk_bn")(x)
  x = layers.Add(name="long_skip")([skip, x])
  sr = layers.Conv3D(1, outer_kernel, padding="same", dtype="float32",
                     name="reconstruction")(x)
  return keras.Model(inputs, sr, name=name)
