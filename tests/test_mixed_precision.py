"""Mixed precision: every layer but the last computes in the half type and the output is
float32, and each layer's result is its own float32 computation up to the rounding of that
layer's arithmetic, whichever kernels the CPU runs (oneDNN's on AVX-512 machines, Eigen's,
which accumulate in the half type, elsewhere)."""
import math

import keras
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

from mdcsrn_tf.models import build_model

# small members of each family; random weights everywhere (the identity start of the
# mDCSRNs would leave most products zero)
MODELS = {"b2u4": {"identity_init": False}, "fsrcnn": {}, "srresnet": {"blocks": 2},
          "critic": {"patch_size": 16}}


def float_info(dtype):
  return ml_dtypes.finfo(tf.as_dtype(dtype).as_numpy_dtype)


def as_float32(tensor):
  return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


def magnitude(layer, given):
  """M = sum |w| |x| + |b| for each output of a layer with weights: a float32 copy of it
  with |weights| applied to |inputs|."""
  assert layer.get_config()["activation"] == "linear", layer.name  # else M is no bound
  twin = type(layer).from_config(layer.get_config())
  twin.build(given.shape)
  twin.set_weights([np.abs(w) for w in layer.get_weights()])
  return as_float32(twin(np.abs(given)))


def local_error_bound(layer, given, exact, dtype):
  """How far rounding in `dtype` may move each output of `layer` from its float32 value
  `exact`, for the same inputs `given`, under the standard model of floating-point
  arithmetic: each operation's result is exact times (1 + d), |d| <= u = 2^-p for a p-bit
  significand (2^-8 bfloat16, 2^-11 float16, 2^-24 float32), or flushed to zero below the
  type's smallest normal.

  - Conv3D and Dense sum K products: rounding the weights to the half type, the sum to the
    output, and the bias add cost u * M each, M = sum |w| |x| + |b|. The accumulation adds
    K * 2^-24 * M where it runs in float32 (oneDNN); kernels that keep the accumulator in
    the half type (Eigen's) add rounding errors of random sign that grow like sqrt(K)
    instead, within 2 * sqrt(K) * u * M (Higham and Mary's probabilistic bound, SIAM J. Sci.
    Comput. 41(5), 2019, with lambda = 2), which also covers the float32 term.
  - BatchNormalization and GroupNormalization compute in float32 and round once; PReLU and
    LeakyReLU round their slope and the product; Add rounds the sum: 2u |y| covers each.
  - ELU forms exp(x) - 1: exp(x) <= 1 is rounded first, u more on top of 2u |y|.
  """
  info = float_info(dtype)
  u, tiny = float(info.eps) / 2, float(info.smallest_normal)
  if hasattr(layer, "kernel"):
    fan_in = math.prod(layer.kernel.shape[:-1])
    return (3 + 2 * math.sqrt(fan_in)) * u * magnitude(layer, given) + 4 * tiny
  bound = 2 * u * np.abs(exact) + 2 * tiny
  if isinstance(layer, keras.layers.ELU):
    bound += u * np.exp(np.minimum(given, 0))
  return bound


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", MODELS)
def test_mixed_precision_layers_differ_from_float32_only_by_their_own_rounding(name, policy):
  keras.utils.set_random_seed(0)
  reference = build_model(name, **MODELS[name])
  mixed = build_model(name, policy=policy, **MODELS[name])
  assert keras.mixed_precision.global_policy().name == "float32"  # restored
  mixed.set_weights(reference.get_weights())
  x = np.random.default_rng(5).random((2, 16, 16, 16, 1), dtype=np.float32)
  layers = mixed.layers[1:]
  outputs = keras.Model(mixed.input, [layer.output for layer in layers])(x, training=False)
  # the policy holds: the half type everywhere, float32 out of the last layer
  half = policy.split("_")[1]
  assert [keras.backend.standardize_dtype(output.dtype) for output in outputs] == (
      [half] * (len(layers) - 1) + ["float32"])
  assert keras.backend.standardize_dtype(mixed(x, training=False).dtype) == "float32"
  # each layer against its float32 twin, both given what the mixed layer was given
  recorded = {id(mixed.input): x}
  recorded.update({id(layer.output): as_float32(out) for layer, out in zip(layers, outputs)})
  for layer in layers:
    given = ([recorded[id(t)] for t in layer.input] if isinstance(layer.input, list)
             else recorded[id(layer.input)])
    twin = reference.get_layer(layer.name)
    exact = as_float32(twin(given, training=False))
    error = np.abs(recorded[id(layer.output)] - exact)
    bound = local_error_bound(twin, given, exact, layer.compute_dtype)
    assert np.all(error <= bound), (layer.name, float(np.max(error / bound)))
