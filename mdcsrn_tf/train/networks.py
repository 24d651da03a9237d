"""A training phase's networks: the generator (and, for "gan", the critic) with their Adam
optimisers, built under the strategy and the precision policy, and the distributed step of
each network (Chen et al. 2018, sec. 3.2)."""
import dataclasses

import keras

from mdcsrn_tf import models
from mdcsrn_tf.train import schedule, steps, training_pass
from mdcsrn_tf.train.config import TrainConfig


@dataclasses.dataclass
class Networks:
  """A phase's models and optimisers (no critic while pre-training)."""
  generator: keras.Model
  generator_optimizer: keras.optimizers.Optimizer
  critic: keras.Model | None = None
  critic_optimizer: keras.optimizers.Optimizer | None = None

  def models(self):
    return [m for m in (self.generator, self.critic) if m is not None]


def _optimizer(learning_rate, config, updates, variables):
  if config.lr_decay == "cosine":
    # The schedule reads the optimiser's own iteration count, which checkpoints keep, so
    # a resumed run continues on the same curve.
    learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(updates, 1))
  optimizer = keras.optimizers.Adam(learning_rate)
  if config.precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  # Built now, before a checkpoint restores into it and before a step is traced.
  optimizer.build(variables)
  return optimizer


def build_networks(config: TrainConfig, strategy) -> Networks:
  """The generator (and critic for "gan") with their optimisers, under `strategy`, with
  the precision policy in force while the layers are built."""
  policy = None if config.precision == "float32" else config.precision
  with strategy.scope():
    generator = models.build_model(config.model, policy=policy, **model_arguments(config))
    updates = config.updates()
    networks = Networks(generator, _optimizer(
        config.generator_lr, config, updates[schedule.GENERATOR], generator.trainable_variables))
    if config.phase == "gan":
      networks.critic = models.build_model("critic", policy=policy, patch_size=config.patch_size)
      networks.critic_optimizer = _optimizer(config.critic_lr, config, updates[schedule.CRITIC],
                                             networks.critic.trainable_variables)
  return networks


def model_arguments(config: TrainConfig) -> dict:
  """The generator's arguments to models.build_model, besides its name (the card keeps them)."""
  return {"identity_init": config.identity_init} if config.model in models.MDCSRN_NAMES else {}


def step_functions(config, strategy, networks, fused=True):
  """{network name: distributed step} for the phase. `fused`: the generator runs through
  train/training_pass (the Keras model's arithmetic with less memory traffic); False calls
  the Keras model, the reference tests and benchmarks compare it with."""
  forward = training_pass.training_pass(networks.generator) if fused else None
  common = dict(jit_compile=config.jit_compile, global_batch_size=config.batch_size,
                forward=forward)
  if config.phase == "pretrain":
    return {"generator": steps.distributed_step(
        strategy, steps.generator_l1_step, generator=networks.generator,
        optimizer=networks.generator_optimizer, **common)}
  return {
      schedule.CRITIC: steps.distributed_step(
          strategy, steps.critic_step, generator=networks.generator,
          critic=networks.critic, optimizer=networks.critic_optimizer,
          gp_weight=config.gp_weight, **common),
      schedule.GENERATOR: steps.distributed_step(
          strategy, steps.generator_gan_step, generator=networks.generator,
          critic=networks.critic, optimizer=networks.generator_optimizer,
          adversarial_weight=config.adversarial_weight, **common),
  }


def network_for_step(config, step):
  if config.phase == "pretrain":
    return "generator"
  return schedule.network_for_step(step, config.critic_schedule)
