"""Losses against closed forms and NumPy (paper eq. 3-5, WGAN-GP)."""
import numpy as np
import pytest
import tensorflow as tf

from mdcsrn_tf.train import losses

RNG = np.random.default_rng(7)
SHAPE = (3, 4, 5, 6, 1)


def _patches():
  return RNG.normal(size=SHAPE).astype(np.float32), RNG.normal(size=SHAPE).astype(np.float32)


def _linear_critic(w, b):
  def critic(x, training=False):
    return tf.reduce_sum(w * x, axis=[1, 2, 3, 4])[:, None] + b
  return critic


def _alpha(batch):
  return tf.constant(RNG.uniform(size=(batch, 1, 1, 1, 1)), tf.float32)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
  real, fake = _patches()
  w = tf.Variable(RNG.normal(scale=0.05, size=SHAPE[1:]).astype(np.float32))
  critic = _linear_critic(w, 0.3)
  squared_norm = float(np.sum(np.square(w.numpy(), dtype=np.float64)))
  expected = (np.sqrt(squared_norm + losses.GRADIENT_NORM_EPSILON) - 1.0) ** 2
  assert abs(np.sqrt(squared_norm) - 1) > 0.1  # the test can tell a wrong norm apart
  with tf.GradientTape() as tape:
    penalty = losses.gradient_penalty(critic, real, fake, _alpha(SHAPE[0]))
  np.testing.assert_allclose(float(penalty), expected, rtol=1e-5)
  # d/dw (sqrt(|w|^2 + eps) - 1)^2 = 2 (n - 1) w / n: the penalty trains the critic.
  norm = np.sqrt(squared_norm + losses.GRADIENT_NORM_EPSILON)
  np.testing.assert_allclose(tape.gradient(penalty, w).numpy(), 2 * (norm - 1) * w.numpy() / norm,
                             rtol=1e-4, atol=1e-7)


def test_gradient_penalty_is_per_sample_with_one_alpha_each():
  # D(x) = sum(x^2) / 2 has gradient x_hat itself: every sample's norm differs.
  real, fake = _patches()
  alpha = _alpha(SHAPE[0])

  def critic(x, training=False):
    return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3, 4])[:, None]

  x_hat = alpha.numpy() * real + (1 - alpha.numpy()) * fake
  norms = np.sqrt(np.sum(np.square(x_hat.astype(np.float64)), axis=(1, 2, 3, 4)) + 1e-12)
  penalty = losses.gradient_penalty(critic, real, fake, alpha)
  np.testing.assert_allclose(float(penalty), np.mean((norms - 1) ** 2), rtol=1e-5)
  # a global batch of 6 (two replicas of 3) halves each replica's share
  np.testing.assert_allclose(float(losses.gradient_penalty(critic, real, fake, alpha, 6)),
                             np.mean((norms - 1) ** 2) / 2, rtol=1e-5)


def test_gradient_penalty_finite_at_zero_gradient():
  # without the epsilon inside the square root, d sqrt(|w|^2)/dw at w = 0 is 0/0 = NaN
  real, fake = _patches()
  w = tf.Variable(np.zeros(SHAPE[1:], np.float32))
  with tf.GradientTape() as tape:
    penalty = losses.gradient_penalty(_linear_critic(w, 0.0), real, fake, _alpha(SHAPE[0]))
  assert float(penalty) == pytest.approx(1.0, abs=1e-5)
  gradient = tape.gradient(penalty, w).numpy()
  assert np.all(np.isfinite(gradient))


def test_l1_and_wasserstein_and_generator_losses_match_numpy():
  hr, sr = _patches()
  real_score = RNG.normal(size=(SHAPE[0], 1)).astype(np.float32)
  fake_score = RNG.normal(size=(SHAPE[0], 1)).astype(np.float32)
  np.testing.assert_allclose(float(losses.l1_loss(hr, sr)), np.mean(np.abs(hr - sr)), rtol=1e-6)
  np.testing.assert_allclose(float(losses.critic_wasserstein_loss(real_score, fake_score)),
                             np.mean(fake_score) - np.mean(real_score), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(float(losses.generator_adversarial_loss(fake_score)),
                             -np.mean(fake_score), rtol=1e-6)
  total, l1, adversarial = losses.generator_loss(hr, sr, fake_score)
  np.testing.assert_allclose(float(total), np.mean(np.abs(hr - sr)) - 1e-3 * np.mean(fake_score),
                             rtol=1e-6)
  assert float(l1) == pytest.approx(np.mean(np.abs(hr - sr)), rel=1e-6)
  assert float(adversarial) == pytest.approx(-np.mean(fake_score), rel=1e-6)


def test_critic_loss_combines_its_terms():
  real, fake = _patches()
  w = tf.Variable(RNG.normal(scale=0.05, size=SHAPE[1:]).astype(np.float32))
  critic = _linear_critic(w, -0.2)
  alpha = _alpha(SHAPE[0])
  total, wasserstein, penalty, mean_real, mean_fake = losses.critic_loss(critic, real, fake, alpha)
  d_real = np.sum(w.numpy() * real, axis=(1, 2, 3, 4)) - 0.2
  d_fake = np.sum(w.numpy() * fake, axis=(1, 2, 3, 4)) - 0.2
  np.testing.assert_allclose(float(mean_real), d_real.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(mean_fake), d_fake.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(wasserstein), d_fake.mean() - d_real.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(total), float(wasserstein) + 10 * float(penalty), rtol=1e-6)
