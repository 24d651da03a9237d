"""Losses of mDCSRN-GAN (Chen et al. 2018, eq. 3-5; docs/paper.md#losses), as pure functions.

Shapes: patches are [B, D, H, W, 1] float32, critic scores are [B, 1] (or [B]). Every loss
is a per-sample value averaged with `tf.nn.compute_average_loss`: with `global_batch_size`
None that is the mean over the batch; under a tf.distribute strategy pass the global batch
so that summing the replicas' losses gives the mean over the global batch.

- pre-training: L1, the mean absolute difference over the patch (eq. 4);
- generator in the GAN phase: L1 + lambda * (-D(G(LR))), lambda = 0.001 (eq. 3, 5);
- critic: WGAN-GP (Gulrajani et al. 2017), D(fake) - D(real) + gp_weight * penalty, with
  the penalty on random interpolates between real and generated patches.
"""
import tensorflow as tf

ADVERSARIAL_WEIGHT = 1e-3  # lambda of eq. 5
GRADIENT_PENALTY_WEIGHT = 10.0  # WGAN-GP's default; the paper does not restate it
GRADIENT_NORM_EPSILON = 1e-12  # inside the square root: a finite gradient at a zero gradient


def _average(per_sample, global_batch_size):
  return tf.nn.compute_average_loss(per_sample, global_batch_size=global_batch_size)


def _per_sample_mean(x):
  return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def _scores(score):
  """[B, 1] or [B] critic scores as [B] float32."""
  return tf.reshape(tf.cast(score, tf.float32), [-1])


def l1_loss(hr, sr, global_batch_size=None):
  """Mean |HR - SR| over each patch, then over the batch (eq. 4). hr, sr: [B, D, H, W, 1]."""
  difference = tf.abs(tf.cast(hr, tf.float32) - tf.cast(sr, tf.float32))
  return _average(_per_sample_mean(difference), global_batch_size)


def generator_adversarial_loss(fake_score, global_batch_size=None):
  """-mean D(G(LR)) (WGAN generator loss, eq. 3). fake_score: [B, 1]."""
  return _average(-_scores(fake_score), global_batch_size)


def generator_loss(hr, sr, fake_score, adversarial_weight=ADVERSARIAL_WEIGHT,
                   global_batch_size=None):
  """The GAN-phase generator loss L1 + lambda * (-D(G(LR))) (eq. 5); returns (total, l1,
  adversarial), each a scalar."""
  l1 = l1_loss(hr, sr, global_batch_size)
  adversarial = generator_adversarial_loss(fake_score, global_batch_size)
  return l1 + adversarial_weight * adversarial, l1, adversarial


def critic_wasserstein_loss(real_score, fake_score, global_batch_size=None):
  """mean D(fake) - mean D(real): the critic minimises it, so its negation estimates the
  Wasserstein distance. real_score, fake_score: [B, 1]."""
  return _average(_scores(fake_score) - _scores(real_score), global_batch_size)


def interpolate(real, fake, alpha):
  """x_hat = alpha * real + (1 - alpha) * fake; alpha [B, 1, 1, 1, 1], one per sample."""
  return alpha * real + (1.0 - alpha) * fake


def gradient_penalty(critic, real, fake, alpha, global_batch_size=None,
                     epsilon=GRADIENT_NORM_EPSILON):
  """WGAN-GP's penalty mean((sqrt(||grad_x D(x_hat)||^2 + eps) - 1)^2).

  real, fake: [B, D, H, W, 1]; alpha: [B, 1, 1, 1, 1] drawn by the caller uniformly in
  [0, 1), one per sample. The norm runs over all axes but the batch. The gradient of the
  summed scores gives each sample's own gradient, since the critic (layer norm, no batch
  statistics) couples no two samples. Differentiable with respect to the critic's weights.
  """
  x_hat = interpolate(tf.cast(real, tf.float32), tf.cast(fake, tf.float32), alpha)
  with tf.GradientTape() as tape:
    tape.watch(x_hat)
    score = tf.reduce_sum(_scores(critic(x_hat, training=True)))
  gradient = tape.gradient(score, x_hat)
  squared_norm = tf.reduce_sum(tf.reshape(tf.square(gradient), [tf.shape(gradient)[0], -1]),
                               axis=1)
  penalty = tf.square(tf.sqrt(squared_norm + epsilon) - 1.0)
  return _average(penalty, global_batch_size)


def critic_loss(critic, real, fake, alpha, gp_weight=GRADIENT_PENALTY_WEIGHT,
                global_batch_size=None):
  """WGAN-GP critic loss D(fake) - D(real) + gp_weight * penalty; returns (total, wasserstein
  loss, penalty, mean D(real), mean D(fake)), each a scalar."""
  real_score = critic(real, training=True)
  fake_score = critic(fake, training=True)
  wasserstein = critic_wasserstein_loss(real_score, fake_score, global_batch_size)
  penalty = gradient_penalty(critic, real, fake, alpha, global_batch_size)
  mean_real = _average(_scores(real_score), global_batch_size)
  mean_fake = _average(_scores(fake_score), global_batch_size)
  return wasserstein + gp_weight * penalty, wasserstein, penalty, mean_real, mean_fake
