"""The networks: parameter counts, shapes, receptive fields, the critic, ops (mixed precision:
test_mixed_precision.py)."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mdcsrn_tf import paper
from mdcsrn_tf.models import (GENERATOR_NAMES, MODEL_NAMES, analysis,
                              baselines, build_model, mdcsrn)
from mdcsrn_tf.models import __main__ as models_cli


def trainable_count(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def predict(model, x):
  return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("name, trainable, with_bn_stats", [
    ("b1u8", 306_753, 308_161), ("b2u4", 199_809, 200_705),
    ("b3u4", 304_385, 305_729), ("b4u4", 412_033, 413_825)])
def test_mdcsrn_parameter_counts_are_table_1s(name, trainable, with_bn_stats):
  model = build_model(name)
  assert trainable_count(model) == trainable
  assert model.count_params() == with_bn_stats
  assert round(trainable / 1e6, 3) == paper.TABLES[name].parameters / 1e6


@pytest.mark.parametrize("name, trainable", [("fsrcnn", 65_065), ("srresnet", 1_977_281)])
def test_baseline_parameter_counts_within_3_percent_of_table_2(name, trainable):
  count = trainable_count(build_model(name))
  assert count == trainable
  assert abs(count / paper.TABLES[name].parameters - 1) < 0.03


def test_fsrcnn_count_by_hand():
  convs = (5**3 * 1 * 56 + 56) + (56 * 12 + 12) + 4 * (27 * 12 * 12 + 12) + (12 * 56 + 56) \
      + (9**3 * 56 * 1 + 1)
  prelu_slopes = 56 + 12 + 4 * 12 + 56
  assert trainable_count(baselines.fsrcnn()) == convs + prelu_slopes == 65_065


def test_unknown_name_is_a_value_error_listing_the_names():
  with pytest.raises(ValueError) as error:
    build_model("b5u5")
  for name in MODEL_NAMES:
    assert name in str(error.value)
  assert set(MODEL_NAMES) == {"b1u8", "b2u4", "b3u4", "b4u4", "fsrcnn", "srresnet", "critic"}


@pytest.mark.parametrize("name", ["b1u8", "b2u4", "fsrcnn", "srresnet"])
def test_generator_output_shape_equals_input_shape(name):
  x = np.random.default_rng(0).random((1, 23, 37, 19, 1), dtype=np.float32)
  y = build_model(name)(x, training=False)
  assert tuple(y.shape) == x.shape
  assert y.dtype == tf.float32


def test_receptive_field_radii_follow_from_the_layers():
  radii = {name: analysis.receptive_field_radius(build_model(name)) for name in GENERATOR_NAMES}
  # 3x3x3 convolutions add 1 each, 1x1x1 none; FSRCNN 5^3 (+2), four 3^3, 9^3 (+4);
  # SRResNet 9^3 (+4), 8 blocks of two 3^3, one 3^3, 9^3 (+4).
  assert radii == {"b1u8": 9, "b2u4": 9, "b3u4": 13, "b4u4": 17, "fsrcnn": 10, "srresnet": 25}
  assert analysis.receptive_field_radius(baselines.srresnet(blocks=2, width=8)) == 13
  assert math.isinf(analysis.receptive_field_radius(build_model("critic", patch_size=16)))


# Small members of each family keep the volumes (> 2 radii) cheap on two cores. The
# mDCSRNs start from random weights everywhere: the identity start would hide the layers.
EMPIRICAL_MODELS = {
    "b1u8": lambda: build_model("b1u8", identity_init=False),
    "b2u4": lambda: build_model("b2u4", identity_init=False),
    "mdcsrn_b3u1": lambda: mdcsrn.mdcsrn(3, 1, identity_init=False),
    "fsrcnn": lambda: build_model("fsrcnn"),
    "srresnet_b2w8": lambda: baselines.srresnet(blocks=2, width=8),
}


@pytest.mark.parametrize("name", ["b1u8", "b4u4"])
def test_untrained_mdcsrn_is_the_identity_unless_asked_for_random_weights(name):
  x = np.random.default_rng(4).random((2, 12, 13, 14, 1), dtype=np.float32)
  keras.utils.set_random_seed(0)
  identity = build_model(name)
  np.testing.assert_allclose(predict(identity, x), x, atol=1e-6)
  # in training mode too: BatchNorm's batch statistics do not reach the output yet
  np.testing.assert_allclose(keras.ops.convert_to_numpy(identity(x, training=True)), x,
                             atol=1e-6)
  keras.utils.set_random_seed(0)
  random = build_model(name, identity_init=False)
  assert trainable_count(random) == trainable_count(identity)
  assert np.abs(predict(random, x) - x).mean() > 0.05


@pytest.mark.parametrize("name", EMPIRICAL_MODELS)
def test_translation_equivariance_away_from_borders(name):
  model = EMPIRICAL_MODELS[name]()
  r = analysis.receptive_field_radius(model)
  shift = (2, 1, 3)
  n = 2 * r + 2 * max(shift)
  x = np.random.default_rng(1).random((1, n, n + 1, n + 2, 1), dtype=np.float32)
  shifted = np.roll(x, shift, axis=(1, 2, 3))
  y, y_shifted = predict(model, np.concatenate([x, shifted]))
  expected = np.roll(y, shift, axis=(0, 1, 2))
  # voxels whose receptive field lies inside both volumes, clear of the roll's seam
  inside = tuple(slice(r + s, size - r) for s, size in zip(shift, y.shape[:3]))
  assert expected[inside].size > 0
  np.testing.assert_allclose(y_shifted[inside], expected[inside], rtol=1e-5, atol=1e-5)
  # at the border the zero padding breaks the equivariance: the test can tell
  assert not np.allclose(y_shifted, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", EMPIRICAL_MODELS)
def test_an_impulse_reaches_exactly_the_receptive_field_radius(name):
  model = EMPIRICAL_MODELS[name]()
  r = analysis.receptive_field_radius(model)
  n = 2 * r + 5
  x = np.zeros((2, n, n, n, 1), np.float32)
  c = n // 2
  x[1, c, c, c, 0] = 1.0
  y0, y1 = predict(model, x)
  changed = np.abs(y1 - y0)[..., 0] > 0
  zs, ys, xs = np.nonzero(changed)
  distance = np.maximum.reduce([np.abs(zs - c), np.abs(ys - c), np.abs(xs - c)])
  assert distance.max() == r
  # along each axis the impulse reaches both ends of the radius
  for axis in range(3):
    for sign in (-1, 1):
      at = [c, c, c]
      at[axis] += sign * r
      assert changed[tuple(at)], (axis, sign)


def test_critic_scores_each_sample_with_an_unbounded_float32_score():
  critic = build_model("critic", patch_size=16)
  x = np.random.default_rng(2).random((3, 16, 16, 16, 1), dtype=np.float32)
  scores = critic(x, training=True)
  assert tuple(scores.shape) == (3, 1) and scores.dtype == tf.float32
  score_layer = critic.get_layer("score")
  assert score_layer.activation is keras.activations.linear
  kernel, bias = score_layer.get_weights()
  score_layer.set_weights([kernel * 1e4, bias])
  scores = predict(critic, x)
  assert np.abs(scores).max() > 1.0  # no sigmoid: a large kernel leaves [0, 1]


def test_critic_samples_are_independent_also_in_the_gradient_penalty():
  critic = build_model("critic", patch_size=16)
  rng = np.random.default_rng(3)
  x = rng.random((2, 16, 16, 16, 1), dtype=np.float32)
  other = x.copy()
  other[1] = 3.0 * rng.random((16, 16, 16, 1), dtype=np.float32)

  def score_and_gradient(batch):
    batch = tf.constant(batch)
    with tf.GradientTape() as tape:
      tape.watch(batch)
      scores = critic(batch, training=True)
      total = tf.reduce_sum(scores)
    return scores.numpy(), tape.gradient(total, batch).numpy()

  s, g = score_and_gradient(x)
  s_other, g_other = score_and_gradient(other)
  assert s[1, 0] != s_other[1, 0]
  np.testing.assert_allclose(s_other[0], s[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(g_other[0], g[0], rtol=1e-5, atol=1e-8)


def test_critic_layer_norm_normalises_each_sample_over_space_and_channels():
  critic = build_model("critic", patch_size=16)
  norm = critic.get_layer("conv1_ln")
  assert isinstance(norm, keras.layers.GroupNormalization) and norm.groups == 1
  x = np.random.default_rng(4).normal(3.0, 5.0, (2, 8, 8, 8, 64)).astype(np.float32)
  x[1] *= 10
  y = keras.ops.convert_to_numpy(norm(x))  # gamma 1, beta 0 at initialisation
  np.testing.assert_allclose(y.mean(axis=(1, 2, 3, 4)), 0.0, atol=1e-4)
  np.testing.assert_allclose(y.std(axis=(1, 2, 3, 4)), 1.0, atol=1e-3)
  assert np.abs(y.mean(axis=(1, 2, 3))).max() > 1e-2  # not per channel


def test_critic_patch_size_must_be_a_multiple_of_16():
  with pytest.raises(ValueError, match="multiple of 16"):
    build_model("critic", patch_size=24)


def test_ops_per_voxel_matches_a_hand_count():
  # mDCSRN b1u1: first conv 3^3 1->32, BN-ELU-conv 3^3 32->16, 1x1x1 reconstruction 80->1
  first = 2 * 27 * 1 * 32 + 32
  unit = 2 * 32 + 32 + 2 * 27 * 32 * 16 + 16  # BN 2/element, ELU 1/element, conv, bias
  reconstruction = 2 * (32 + 48) + 1
  model = mdcsrn.mdcsrn(1, 1)
  assert analysis.ops_per_voxel(model) == first + unit + reconstruction == 29_681
  assert analysis.ops_per_voxel(model, (5, 6, 7)) == 29_681  # any size, 'same' padding
  # FSRCNN: convolutions, biases, and one FLOP per PReLU element
  fsrcnn_weights = 125 * 56 + 56 * 12 + 4 * 27 * 144 + 12 * 56 + 729 * 56
  fsrcnn_elements = 56 + 12 + 4 * 12 + 56
  expected = 2 * fsrcnn_weights + (fsrcnn_elements + 1) + fsrcnn_elements
  assert analysis.ops_per_voxel(build_model("fsrcnn")) == expected == 129_785


def test_ops_per_voxel_of_the_paper_models_are_about_half_the_papers_figure():
  for name in GENERATOR_NAMES:
    ratio = paper.TABLES[name].ops / analysis.ops_per_voxel(build_model(name))
    assert 2.0 < ratio < 2.05, (name, ratio)


def test_analysis_refuses_a_layer_it_cannot_count():
  inputs = keras.Input((None, None, None, 1))
  model = keras.Model(inputs, keras.layers.MaxPooling3D(name="pool")(inputs))
  with pytest.raises(TypeError, match="pool"):
    analysis.ops_per_voxel(model)


def _profiled_flops_by_op_type(model, input_shape):
  function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
      tf.TensorSpec(input_shape, tf.float32))
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  profile = tf.compat.v1.profiler.profile(function.graph, cmd="graph", options=options)
  by_name, stack = {}, [profile]
  while stack:
    node = stack.pop()
    by_name[node.name] = node.float_ops
    stack.extend(node.children)
  totals = {}
  for op in function.graph.get_operations():
    totals[op.type] = totals.get(op.type, 0) + by_name.get(op.name, 0)
  return totals


@pytest.mark.parametrize("name, spatial", [("mdcsrn_b2u2", (5, 6, 7)), ("critic", (16,) * 3)])
def test_multiply_adds_agree_with_tensorflows_profiler(name, spatial):
  model = mdcsrn.mdcsrn(2, 2) if name == "mdcsrn_b2u2" else build_model("critic", patch_size=16)
  profiled = _profiled_flops_by_op_type(model, (1, *spatial, 1))
  costs = analysis.layer_costs(model, spatial)
  assert profiled["Conv3D"] == sum(2 * c.macs for c in costs if c.kind == "conv") > 0
  assert profiled.get("MatMul", 0) == sum(2 * c.macs for c in costs if c.kind == "dense")


def test_summary_prints_every_requested_model(capsys):
  models_cli.main(models_cli.SummaryOptions(), ["b4u4", "fsrcnn"])
  out = capsys.readouterr().out
  assert "412,033" in out and "413,825" in out and "0.412M" in out and "1.672M" in out
  assert "822,785" in out and "65,065" in out and " 17" in out
