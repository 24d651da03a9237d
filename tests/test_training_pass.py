"""The generators' training pass (train/training_pass.py) computes what the Keras model
computes in training mode: the loss, every gradient and the updated BatchNorm statistics,
and one training step through it lands on the weights one through the model lands on."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mdcsrn_tf.models import build_model
from mdcsrn_tf.train import losses, steps, training_pass

SHAPE = (2, 13, 11, 10, 1)  # odd edges: 'same' padding on every side, a batch of two
SMALL = {"b2u4": {"identity_init": False},  # both rewrites: BN-ELU units, split 1x1x1 convs
         "srresnet": {"blocks": 1, "width": 8, "outer_kernel": 3}}  # BN alone, then PReLU/Add


def networks(name, seed):
  """(float32 network, float64 copy with the same weights), gamma and beta away from the
  identity they start at so that the affine part of BatchNorm is exercised."""
  keras.utils.set_random_seed(seed)
  model = build_model(name, **SMALL[name])
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
      layer.beta.assign(rng.normal(0, 0.5, layer.beta.shape))
  exact = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
      {**layer.get_config(), "dtype": "float64"}))
  exact.set_weights(model.get_weights())
  return model, exact


def batch(dtype):
  """A real-valued (lr, hr) pair that float32 holds exactly."""
  rng = np.random.default_rng(3)
  lr = rng.random(SHAPE).astype(np.float32)
  return tf.cast(lr, dtype), tf.cast(lr + 0.1 * rng.standard_normal(SHAPE).astype(np.float32),
                                     dtype)


def flat(values):
  return np.concatenate([np.asarray(v, np.float64).ravel() for v in values])


def loss_gradients_statistics(model, forward, dtype):
  """The L1 loss, all its gradients and all the BN moving statistics after the call, as three
  float64 vectors."""
  lr, hr = batch(dtype)
  with tf.GradientTape() as tape:
    loss = losses.l1_loss(hr, tf.cast(forward(lr), dtype), 2)
  gradients = tape.gradient(loss, model.trainable_variables)
  statistics = [v for v in model.non_trainable_variables if "moving" in v.path]
  return flat([loss]), flat(gradients), flat([v.numpy() for v in statistics])


def relative_error(value, expected):
  return np.abs(value - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("name", list(SMALL))
def test_loss_gradients_and_statistics_are_the_models_to_float_round_off(name):
  """Against the float64 Keras model with the same weights, the float32 training pass's loss,
  gradients (all variables' together) and moving statistics are each off by at most 8x the
  float32 Keras model's own error, or 2e-6 of their largest value (32 float32 roundings;
  the model's own error is 1e-7 to 1e-6 here): the fused kernel sums the same products in
  another order, so its error is float32's, while a wrong variance (Bessel's correction
  left in: 3.5e-4 of it), scale, offset or kernel slice is off by orders more. The float64
  model is the reference because the two float32 computations have the same kind of error
  and only a third one tells how large it is. Gradients are compared together: a bias
  before BatchNorm has a gradient of zero in exact arithmetic, all round-off either way."""
  model, exact = networks(name, 4)
  truth = loss_gradients_statistics(exact, lambda x: exact(x, training=True), tf.float64)
  model_copy, _ = networks(name, 4)
  keras_figures = loss_gradients_statistics(
      model_copy, lambda x: model_copy(x, training=True), tf.float32)
  fused = tf.function(training_pass.training_pass(model), autograph=False)
  got = loss_gradients_statistics(model, fused, tf.float32)
  assert got[1].size == truth[1].size > 100 and got[2].size == truth[2].size > 10
  for expected, keras_value, value in zip(truth, keras_figures, got):
    assert relative_error(value, expected) <= max(8 * relative_error(keras_value, expected),
                                                  2e-6)


def test_the_moving_variance_averages_the_biased_batch_variance():
  """Keras averages the biased batch variance into the moving one, where the fused kernel
  returns it with Bessel's correction (n / (n - 1): 3.5e-4 more for these 2860 voxels). With
  momentum 0 the moving statistics after one call are the batch's own."""
  model, _ = networks("b2u4", 5)
  norm = model.get_layer("block0_unit0_bn")
  norm.momentum = 0.0
  lr, _ = batch(tf.float32)
  tf.function(training_pass.training_pass(model), autograph=False)(lr)
  features = model.get_layer("first_conv")(lr).numpy().astype(np.float64)
  features = features.reshape(-1, features.shape[-1])
  np.testing.assert_allclose(norm.moving_mean.numpy(), features.mean(axis=0),
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(norm.moving_variance.numpy(), features.var(axis=0), rtol=2e-5)


def test_a_training_step_through_the_pass_lands_on_the_models_weights():
  """One distributed L1 step with SGD at rate 1 (the update is the gradient itself, so the
  weights after it carry the gradients' round-off unamplified, unlike Adam's first step,
  which divides by the gradient's size) through the pass and through the Keras model, from
  the same weights and batch: the loss and the weights after it are as near the float64
  model's step as the bound of the test above asks."""
  model, exact = networks("b2u4", 6)
  model_copy, _ = networks("b2u4", 6)
  lr, hr = batch(tf.float32)
  strategy = tf.distribute.get_strategy()

  def stepped(network, forward, x, y):
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.build(network.trainable_variables)
    step = steps.distributed_step(strategy, steps.generator_l1_step, generator=network,
                                  optimizer=optimizer, global_batch_size=2, forward=forward)
    loss = float(step(x, y)["l1"])
    return flat([loss]), flat([w.numpy() for w in network.weights])

  truth = stepped(exact, None, *batch(tf.float64))
  through_model = stepped(model_copy, None, lr, hr)
  through_pass = stepped(model, training_pass.training_pass(model), lr, hr)
  for expected, keras_value, value in zip(truth, through_model, through_pass):
    assert relative_error(value, expected) <= max(8 * relative_error(keras_value, expected),
                                                  2e-6)
