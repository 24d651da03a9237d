"""The WGAN-GP critic: SRGAN's discriminator made 3D, BatchNorm replaced by layer norm.

Conv(64, s1) LeakyReLU(0.2); Conv-LN-LeakyReLU blocks (64,s2) (128,s1) (128,s2) (256,s1)
(256,s2) (512,s1) (512,s2), all 3x3x3 'same'; Dense(1024) LeakyReLU(0.2); Dense(1) with
no sigmoid, computed in float32: a WGAN critic's score is unbounded.

"Layer norm" is WGAN-GP's (Gulrajani et al. 2017, tflib's `Layernorm(..., [1,2,3])`):
mean and variance per sample over all of D, H, W and C, with one scale and offset per
channel. Keras' GroupNormalization(groups=1) is exactly that (and computes its statistics in
float32 under mixed precision); LayerNormalization's default axis=-1 would normalise each
voxel's channel vector on its own instead. Both are per-sample, so the gradient penalty
stays per-sample: no statistic couples two samples of a batch (docs/models.md).
"""
import keras
from keras import layers

BLOCKS = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))
SLOPE = 0.2
LAYER_NORM_EPSILON = 1e-5  # tflib's and PyTorch's; Keras' default is 1e-3
DOWNSAMPLING = 16  # product of BLOCKS' strides


def layer_norm(name) -> layers.Layer:
  """WGAN-GP's layer norm: per-sample statistics over (D, H, W, C), per-channel affine."""
  return layers.GroupNormalization(groups=1, epsilon=LAYER_NORM_EPSILON, name=name)


def critic(patch_size=64, name="critic") -> keras.Model:
  """The critic on (B, P, P, P, 1) patches, P = patch_size divisible by 16; returns (B, 1)."""
  if patch_size < DOWNSAMPLING or patch_size % DOWNSAMPLING:
    raise ValueError(f"patch_size must be a positive multiple of {DOWNSAMPLING}, got {patch_size}")
  inputs = keras.Input((patch_size,) * 3 + (1,), name="patch")
  x = layers.Conv3D(64, 3, padding="same", name="conv0")(inputs)
  x = layers.LeakyReLU(SLOPE, name="conv0_lrelu")(x)
  for i, (filters, stride) in enumerate(BLOCKS, start=1):
    x = layers.Conv3D(filters, 3, strides=stride, padding="same", name=f"conv{i}")(x)
    x = layer_norm(f"conv{i}_ln")(x)
    x = layers.LeakyReLU(SLOPE, name=f"conv{i}_lrelu")(x)
  x = layers.Flatten(name="flatten")(x)
  x = layers.Dense(1024, name="dense")(x)
  x = layers.LeakyReLU(SLOPE, name="dense_lrelu")(x)
  score = layers.Dense(1, dtype="float32", name="score")(x)
  return keras.Model(inputs, score, name=name)
