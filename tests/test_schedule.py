"""The GAN phase's step schedule against the paper's rules (sec. 3.2), counted exactly."""
import itertools

import pytest

from mdcsrn_tf.train import schedule
from mdcsrn_tf.train.schedule import CRITIC, GENERATOR, CriticSchedule


def _simulated(warmup, per_generator, extra_every, extra_steps):
  """The rule written as a stateful process, independently of schedule's arithmetic."""
  yield from [CRITIC] * warmup
  regular_done = 0
  while True:
    for network in [CRITIC] * per_generator + [GENERATOR]:
      yield network
      regular_done += 1
      if regular_done % extra_every == 0:
        yield from [CRITIC] * extra_steps


def test_paper_counts_over_first_20k_steps():
  # 10,000 warm-up critic steps; the next 10,000 steps are 14 periods of 500 regular + 200
  # extra steps (9,800) and 200 regular steps: 7,200 regular steps, one in 8 a generator step.
  counts = schedule.count_steps(20_000)
  assert counts == {CRITIC: 19_100, GENERATOR: 900}


def test_paper_landmarks():
  paper = CriticSchedule()
  assert {schedule.network_for_step(s) for s in range(10_007)} == {CRITIC}
  assert schedule.network_for_step(10_007) == GENERATOR
  assert schedule.network_for_step(10_015) == GENERATOR
  # regular steps 0..499 end at step 10,499 (499 % 8 = 3: critic); then 200 extra critic steps
  assert {schedule.network_for_step(s, paper) for s in range(10_500, 10_700)} == {CRITIC}
  # regular step 503 (503 % 8 = 7) is step 10,703, the first generator step after them
  assert schedule.network_for_step(10_703) == GENERATOR
  assert [schedule.network_for_step(s) for s in range(10_700, 10_703)] == [CRITIC] * 3


@pytest.mark.parametrize("numbers", [(10_000, 7, 500, 200), (3, 2, 5, 4), (0, 0, 1, 0),
                                     (7, 1, 3, 0)])
def test_matches_the_rule_step_by_step(numbers):
  rule = CriticSchedule(*numbers)
  expected = list(itertools.islice(_simulated(*numbers), 20_000))
  assert [schedule.network_for_step(s, rule) for s in range(20_000)] == expected


def test_rejects_bad_numbers():
  with pytest.raises(ValueError):
    CriticSchedule(extra_every=0)
  with pytest.raises(ValueError):
    CriticSchedule(warmup_steps=-1)
  with pytest.raises(ValueError):
    schedule.network_for_step(-1)
