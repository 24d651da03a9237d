"""The rewritten inference pass (infer/forward.py) computes what the Keras model computes, and
its memory estimate follows the tensors it keeps alive."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mdcsrn_tf.infer import forward
from mdcsrn_tf.models import build_model, mdcsrn

SHAPE = (2, 19, 22, 17, 1)  # odd edges: 'same' padding on every side, a batch of two


def randomise_norms(model, seed):
  """BatchNormalization statistics and affine parameters far from the identity they start
  at, so that the folded scale and offset are really exercised."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      channels = layer.moving_mean.shape
      layer.moving_mean.assign(rng.normal(0, 0.5, channels))
      layer.moving_variance.assign(rng.uniform(0.2, 3.0, channels))
      layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
      layer.beta.assign(rng.normal(0, 0.5, channels))
  return model


def float64_network(name, seed):
  """The generator with every layer in float64, the reconstruction too (the models declare
  it float32 for mixed precision), BN statistics randomised."""
  keras.utils.set_random_seed(seed)
  model = build_model(name, identity_init=False)
  exact = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
      {**layer.get_config(), "dtype": "float64"}))
  exact.set_weights(model.get_weights())
  return randomise_norms(exact, seed)


def volume(dtype):
  """Random voxels that float32 holds exactly (the models' input layer is float32)."""
  return tf.cast(tf.constant(np.random.default_rng(5).random(SHAPE), tf.float32), dtype)


def test_the_mdcsrn_pass_fuses_every_unit_and_splits_every_1x1_convolution():
  model = build_model("b4u4", identity_init=False)
  kinds = [step.kind for step in forward._plan(model)]
  # 16 BN-ELU-Conv units; 3 compressors and the reconstruction read concatenations
  assert kinds.count("norm_elu") == 16 and kinds.count("split_conv") == 4
  assert not [s for s in forward._plan(model) if isinstance(s.layer, (
      keras.layers.BatchNormalization))]
  for name in ("fsrcnn", "srresnet"):  # neither pattern: every layer is called as it is
    assert {s.kind for s in forward._plan(build_model(name))} == {"layer"}


def test_rewritten_pass_equals_the_model_in_float64():
  """In float64 the two differ only in the order of additions and where XLA fuses a
  multiply and an add: each of the 13 layers of b2u4 on the path adds a relative error of
  at most K * 2^-53 for its widest sum (K = 27 * 80 products), about 2.4e-13 in all, far
  below 1e-10; a wrong scale, offset, kernel slice or cast is off by orders more."""
  model = float64_network("b2u4", 6)
  x = volume(tf.float64)
  expected = model(x, training=False).numpy()
  got = tf.function(forward.inference_pass(model))(x).numpy()
  assert got.dtype == np.float64
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
  # the plain-op variant the SavedModel uses computes the same
  plain = tf.function(forward.inference_pass(model, xla=False))(x).numpy()
  np.testing.assert_allclose(plain, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_rewritten_pass_is_as_accurate_as_the_model_in_every_precision(policy):
  """Against the float64 network with the same weights, the rewritten pass's error in
  float32 or a half type stays within twice the Keras model's own error in that precision
  (it rounds at the same places, only summing in another order)."""
  exact = float64_network("b2u4", 8)
  model = build_model("b2u4", policy=policy, identity_init=False)
  model.set_weights(exact.get_weights())
  truth = exact(volume(tf.float64), training=False).numpy()
  keras_error = np.abs(model(volume(tf.float32), training=False).numpy() - truth).max()
  got = tf.function(forward.inference_pass(model))(volume(tf.float32)).numpy()
  assert got.dtype == np.float32  # the reconstruction layer computes in float32
  assert np.abs(got - truth).max() <= 2 * keras_error


def test_activation_bytes_follow_the_live_tensors_of_a_small_network():
  """mDCSRN b1u2 with growth 4: the steps, in order, are first conv (8 channels), fused
  BN-ELU (8), conv (4), fused BN-ELU over first + f1 (12), conv (4), the block's
  concatenation (16), and the split reconstruction (1). The peak is the second fused BN-ELU:
  first (8) and f1 (4) are alive while it writes 12 channels, with a temporary of 12 for the
  concatenation of its two parts: 36 float32 channels = 144 bytes per voxel (the block's
  concatenation, written directly, peaks at 8 + 4 + 4 + 16 = 32)."""
  model = mdcsrn.mdcsrn(blocks=1, units=2, growth_rate=4, identity_init=False)
  steps = forward._plan(model)
  assert [(s.kind, int(s.output.shape[-1])) for s in steps] == [
      ("layer", 8), ("norm_elu", 8), ("layer", 4), ("norm_elu", 12), ("layer", 4),
      ("layer", 16), ("split_conv", 1)]
  assert forward.activation_bytes_per_voxel(model) == 4 * (8 + 4 + 12 + 12)


def test_activation_bytes_halve_under_a_mixed_policy():
  """Every tensor of b4u4 but the input and the float32 output is float16 under
  mixed_float16, so the peak (inside the network, with neither alive) halves exactly."""
  full = forward.activation_bytes_per_voxel(build_model("b4u4"))
  half = forward.activation_bytes_per_voxel(build_model("b4u4", policy="mixed_float16"))
  assert half * 2 == full
