"""Which network each training step of the GAN phase trains (Chen et al. 2018, sec. 3.2).

The paper: "For the first 10k steps, we trained the discriminator only. After then for
every 7 steps of training discriminator, we trained the generator once; and every 500
steps we train discriminator for an extra 200 step alone" (after WGAN's extra critic
iterations). Our reading (docs/deviations.md): a step is one optimiser update of one
network, counted by the global step, the same unit as "10k steps" and "550k steps".

- steps [0, warmup_steps): critic;
- after that the steps are "regular" steps in the repeating pattern of
  `critic_per_generator` critic steps then one generator step, except that after every
  `extra_every` regular steps come `extra_critic_steps` extra critic steps. The pattern's
  phase carries on across the extra steps.

With the paper's numbers the first generator step is step 10,007 and steps 10,500-10,699
are the first extra critic steps. Pure Python: O(1) per step, no TensorFlow.
"""
import dataclasses

CRITIC = "critic"
GENERATOR = "generator"


@dataclasses.dataclass(frozen=True)
class CriticSchedule:
  """The GAN phase's step pattern; the defaults are the paper's."""
  warmup_steps: int = 10_000
  critic_per_generator: int = 7
  extra_every: int = 500
  extra_critic_steps: int = 200

  def __post_init__(self):
    if self.warmup_steps < 0 or self.critic_per_generator < 0 or self.extra_critic_steps < 0:
      raise ValueError(f"schedule counts must be >= 0, got {self}")
    if self.extra_every < 1:
      raise ValueError(f"extra_every must be >= 1, got {self.extra_every}")


def network_for_step(step: int, schedule: CriticSchedule = CriticSchedule()) -> str:
  """CRITIC or GENERATOR: the network that global step `step` (0-based) trains."""
  if step < 0:
    raise ValueError(f"step must be >= 0, got {step}")
  if step < schedule.warmup_steps:
    return CRITIC
  period = schedule.extra_every + schedule.extra_critic_steps
  periods, within = divmod(step - schedule.warmup_steps, period)
  if within >= schedule.extra_every:
    return CRITIC
  regular = periods * schedule.extra_every + within
  cycle = schedule.critic_per_generator + 1
  return GENERATOR if regular % cycle == schedule.critic_per_generator else CRITIC


def count_steps(total_steps: int, schedule: CriticSchedule = CriticSchedule()) -> dict:
  """{CRITIC: n, GENERATOR: m} over steps [0, total_steps), by enumerating them."""
  counts = {CRITIC: 0, GENERATOR: 0}
  for step in range(total_steps):
    counts[network_for_step(step, schedule)] += 1
  return counts
