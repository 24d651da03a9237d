"""One training update of one network, as tf.functions (docs/paper.md#losses).

Each step takes its models and optimisers as arguments and returns a dict of scalar
losses. Build the optimisers (`optimizer.build(model.trainable_variables)`) before the
first call: these module-level tf.functions are shared by every model, and a tf.function
may create variables only in its very first trace. Losses are averaged over the *global* batch (`tf.nn.compute_average_loss`), so
that under a tf.distribute strategy the optimiser's all-reduce sum of the replicas'
gradients is the gradient of the global mean, and summing the replicas' returned values
gives the global mean too (`distributed_step`).

`forward`, when given, computes the generator's training-mode output instead of the Keras
model's call: train/training_pass's pass, the same arithmetic over the same variables.

Mixed precision: `optimizer.scale_loss` multiplies the loss by a LossScaleOptimizer's
dynamic scale (and is the identity for a plain optimiser) before the gradients are taken;
the LossScaleOptimizer unscales them in `apply_gradients` and skips a step whose scaled
gradients overflowed. Models return float32, so losses are float32 in every precision.
"""
import tensorflow as tf

from mdcsrn_tf.errors import InputError
from mdcsrn_tf.train import losses


def _update(optimizer, tape, loss, model):
  variables = model.trainable_variables
  gradients = tape.gradient(loss, variables)
  optimizer.apply_gradients(zip(gradients, variables))


def _generate(generator, forward, lr):
  return generator(lr, training=True) if forward is None else forward(lr)


@tf.function(autograph=False)  # see distributed_step
def generator_l1_step(generator, optimizer, lr, hr, global_batch_size, forward=None):
  """Pre-training: one Adam step on the L1 loss (eq. 4)."""
  with tf.GradientTape() as tape:
    sr = _generate(generator, forward, lr)
    l1 = losses.l1_loss(hr, sr, global_batch_size)
    scaled = optimizer.scale_loss(l1)
  _update(optimizer, tape, scaled, generator)
  return {"l1": l1}


@tf.function(autograph=False)  # see distributed_step
def critic_step(generator, critic, optimizer, lr, hr, gp_weight, global_batch_size,
                forward=None):
  """One WGAN-GP critic update on real HR patches against G(LR); G is not updated.

  One interpolation weight per sample, uniform in [0, 1). Returns the critic loss, the
  Wasserstein estimate -(D(fake) - D(real)), the gradient penalty and mean D(real), D(fake).
  """
  fake = _generate(generator, forward, lr)
  alpha = tf.random.uniform([tf.shape(hr)[0], 1, 1, 1, 1], dtype=tf.float32)
  with tf.GradientTape() as tape:
    total, wasserstein_loss, penalty, mean_real, mean_fake = losses.critic_loss(
        critic, hr, fake, alpha, gp_weight, global_batch_size)
    scaled = optimizer.scale_loss(total)
  _update(optimizer, tape, scaled, critic)
  return {"critic_loss": total, "wasserstein": -wasserstein_loss, "gradient_penalty": penalty,
          "d_real": mean_real, "d_fake": mean_fake}


@tf.function(autograph=False)  # see distributed_step
def generator_gan_step(generator, critic, optimizer, lr, hr, adversarial_weight,
                       global_batch_size, forward=None):
  """One generator update on L1 + lambda * (-D(G(LR))) (eq. 5); the critic is not updated."""
  with tf.GradientTape() as tape:
    sr = _generate(generator, forward, lr)
    fake_score = critic(sr, training=True)
    total, l1, adversarial = losses.generator_loss(hr, sr, fake_score, adversarial_weight,
                                                   global_batch_size)
    scaled = optimizer.scale_loss(total)
  _update(optimizer, tape, scaled, generator)
  return {"generator_loss": total, "l1": l1, "adversarial": adversarial}


def distributed_step(strategy, step, jit_compile=False, **bound):
  """A tf.function `run(lr, hr)` that runs `step(**bound, lr=..., hr=...)` on every replica
  of `strategy` and returns the replicas' values summed (each is already a share of the
  global mean).

  The replicas run the step's Python function: a nested tf.function may not hold the
  optimiser's gradient all-reduce. `jit_compile` compiles the whole step with XLA, which
  tf.distribute supports only for the default (single-device) strategy.
  """
  if jit_compile and strategy is not tf.distribute.get_strategy():
    raise ValueError("jit_compile needs the default strategy")

  def on_replica(lr, hr):
    return step.python_function(lr=lr, hr=hr, **bound)

  # No AutoGraph: nothing here branches on a tensor, and Keras 3's layers and optimisers are
  # written to trace under JAX, which has none; converting them cost 4-5 s of each trace.
  @tf.function(jit_compile=jit_compile, autograph=False)
  def run(lr, hr):
    per_replica = strategy.run(on_replica, args=(lr, hr))
    return {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()}

  return run


def make_strategy(name: str) -> tf.distribute.Strategy:
  """"default" (one device), "mirrored" (all local GPUs, or every logical CPU device when
  there is no GPU) or "multi_worker" (MultiWorkerMirroredStrategy configured by TF_CONFIG)."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"unknown strategy {name!r}")


def check_batch_split(batch_size, strategy, name):
  """InputError unless the global batch splits evenly over the strategy's replicas: a
  replica left without a sample would train its BatchNorm on nothing (NaN statistics)."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise InputError(f"--batch_size {batch_size} does not split evenly over the {replicas} "
                     f"replicas of --strategy={name}; give a multiple of {replicas}")


def is_chief(strategy) -> bool:
  """Whether this process writes summaries and exports (always, unless multi-worker)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "chief" or (
      not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)
