"""The tf.function training steps on real MRI patches: L1 and critic updates, and one
mirrored step against one single-device step."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from nibabel.testing import data_path
from scipy import ndimage

import keras
import tensorflow as tf

from mdcsrn_tf import models
from mdcsrn_tf.train import steps
from mdcsrn_tf.data.nifti import load_volume

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANATOMICAL = os.path.join(data_path, "anatomical.nii")  # a real 33x41x25 T1 head


def real_patches(path, count, size=16, seed=0):
  """(lr, hr) float32 [count, size, size, size, 1] cut from a real head normalised to max 1.
  A 3x3 in-plane box blur stands in for the k-space degradation: these tests check the
  training steps, not the data."""
  hr_volume, _ = load_volume(path)
  hr_volume = hr_volume / hr_volume.max()
  lr_volume = ndimage.uniform_filter(hr_volume, size=(3, 3, 1), mode="wrap")
  rng = np.random.default_rng(seed)
  lr, hr = [], []
  for _ in range(count):
    corner = [rng.integers(0, n - size + 1) for n in hr_volume.shape]
    window = tuple(slice(c, c + size) for c in corner)
    lr.append(lr_volume[window])
    hr.append(hr_volume[window])
  return np.stack(lr)[..., None], np.stack(hr)[..., None]


def test_l1_then_critic_steps_separate_real_from_generated():
  keras.utils.set_random_seed(2)
  generator = models.build_model("b1u8", identity_init=False)  # far from HR, much to learn
  critic = models.build_model("critic", patch_size=16)
  generator_optimizer, critic_optimizer = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-4)
  generator_optimizer.build(generator.trainable_variables)
  critic_optimizer.build(critic.trainable_variables)
  lr, hr = real_patches(ANATOMICAL, 40, seed=0)
  l1 = [float(steps.generator_l1_step(generator, generator_optimizer, lr[i:i + 2],
                                            hr[i:i + 2], 2)["l1"]) for i in range(0, 30, 2)]
  assert np.mean(l1[-5:]) < 0.5 * np.mean(l1[:3])
  for i in range(0, 24, 2):  # the warm-up: critic only
    values = steps.critic_step(generator, critic, critic_optimizer, lr[i:i + 2],
                                     hr[i:i + 2], 10.0, 2)
    assert np.isfinite(float(values["gradient_penalty"]))
    np.testing.assert_allclose(float(values["wasserstein"]),
                               float(values["d_real"]) - float(values["d_fake"]), rtol=1e-5)
  held_out_lr, held_out_hr = real_patches(ANATOMICAL, 8, seed=1)
  d_real = critic(held_out_hr).numpy()
  d_fake = critic(generator(held_out_lr, training=False)).numpy()
  assert np.mean(d_real) > np.mean(d_fake)
  before = [v.numpy() for v in critic.trainable_variables]
  values = steps.generator_gan_step(generator, critic, generator_optimizer, lr[:2], hr[:2],
                                          1e-3, 2)
  assert np.isfinite(float(values["generator_loss"]))
  assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, critic.trainable_variables))


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import mdcsrn_tf
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from mdcsrn_tf import models
    from mdcsrn_tf.train import steps

    patches = np.load(sys.argv[1])
    lr, hr = patches["lr"], patches["hr"]

    def one_step(strategy_name):
      strategy = steps.make_strategy(strategy_name)
      keras.utils.set_random_seed(1)
      with strategy.scope():
        generator = models.build_model("fsrcnn", d=16, s=8, m=2)
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(generator.trainable_variables)
      initial = [v.numpy() for v in generator.trainable_variables]
      step = steps.distributed_step(strategy, steps.generator_l1_step,
                                          generator=generator, optimizer=optimizer,
                                          global_batch_size=4)
      batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((lr, hr)))
      l1 = float(step(*next(iter(batches)))["l1"])
      final = [v.numpy() for v in generator.trainable_variables]
      change = max(float(np.max(np.abs(a - b))) for a, b in zip(initial, final))
      return strategy.num_replicas_in_sync, l1, final, change

    replicas_1, l1_1, weights_1, change_1 = one_step("default")
    replicas_2, l1_2, weights_2, _ = one_step("mirrored")
    print(json.dumps({"replicas": [replicas_1, replicas_2], "l1": [l1_1, l1_2],
                      "max_difference": max(float(np.max(np.abs(a - b)))
                                            for a, b in zip(weights_1, weights_2)),
                      "max_change": change_1}))
""")


def test_mirrored_step_equals_single_device_step(tmp_path):
  lr, hr = real_patches(ANATOMICAL, 4)
  np.savez(tmp_path / "patches.npz", lr=lr, hr=hr)
  result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "patches.npz")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["replicas"] == [1, 2]  # the batch of 4 really was split over two devices
  assert report["l1"][0] == pytest.approx(report["l1"][1], rel=1e-5)
  assert report["max_change"] > 1e-3  # the step moved the weights (Adam: about the lr)
  assert report["max_difference"] < 1e-5


def test_jit_needs_the_default_strategy():
  with pytest.raises(ValueError, match="default strategy"):
    steps.distributed_step(tf.distribute.OneDeviceStrategy("/cpu:0"),
                                 steps.generator_l1_step, jit_compile=True)
