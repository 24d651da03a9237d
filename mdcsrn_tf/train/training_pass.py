"""The generators' training forward pass, `model(x, training=True)` with the same arithmetic
and less memory traffic (docs/performance.md#training).

On the CPU a training step of b4u4 spent about a third of its operation time outside the
convolutions: Keras' BatchNormalization in training is a dozen element-wise TensorFlow ops
forward (moments, normalise) and more backward (Mul, Sum, Mean, Tile, SquaredDifference),
each a full pass over the unit's channels, and the gradient of every concatenation is one
Slice copy per part. So this pass walks infer/forward's plan of the Keras graph with:

- **BatchNormalization on TensorFlow's fused kernel** (FusedBatchNormV3 forward, its grad op
  backward, run by oneDNN: two passes each way, instead of a dozen). The batch's mean and biased variance
  normalise as Keras' do, and the moving statistics are updated by Keras' own formula; the
  kernel returns the batch variance with Bessel's correction, which is undone for that
  update (Keras averages the biased one). Mixed precision keeps Keras' casts: BN computes
  in float32 and returns its compute dtype.
- **Split 1x1x1 convolutions** (infer/forward): a 1x1x1 convolution over a concatenation
  nothing else reads is the sum of 1x1x1 convolutions over its parts, so neither the
  concatenation nor its gradient's slices are copied.

XLA is not used: compiled for the CPU, the BN-ELU pair's reductions took longer than the
TensorFlow ops they replaced (measured, docs/performance.md#training). The variables are
the model's own, so checkpoints hold exactly what they held; tests/test_train_steps.py
compares a step through this pass with one through the Keras model from the same weights.
"""
import tensorflow as tf
from keras import layers

# The inference pass's plan and split convolution are the training pass's too: one walk of
# the Keras graph for both (the plan does not depend on training).
from mdcsrn_tf.infer.forward import _plan, _split_conv


def _fusable(norm) -> bool:
  """Whether a BatchNormalization's training call is FusedBatchNormV3's arithmetic."""
  return (isinstance(norm, layers.BatchNormalization) and norm.axis in (-1, 4)
          and norm.trainable and not norm.renorm and not norm.synchronized)


def _batch_norm(norm, x):
  """`norm(x, training=True)` on the fused kernel, the moving statistics updated as Keras
  updates them."""
  x = tf.cast(x, tf.float32)  # Keras: BN computes in result_type(x, float32)
  channels = x.shape[-1]
  gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones([channels])
  beta = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros([channels])
  # As 4D (height and width joined: the statistics are per channel over all the rest either
  # way), which TensorFlow hands to oneDNN's batch normalisation; its 5D kernel is Eigen's,
  # 2x the CPU time for the pair of passes (docs/performance.md#training).
  shape = tf.shape(x)
  y, mean, corrected, *_ = tf.raw_ops.FusedBatchNormV3(
      x=tf.reshape(x, [shape[0], shape[1], -1, channels]), scale=gamma, offset=beta,
      mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=norm.epsilon, data_format="NHWC",
      is_training=True)
  y = tf.reshape(y, shape)
  count = tf.cast(tf.size(x) // channels, tf.float32)
  variance = corrected * ((count - 1.0) / count)  # the biased variance Keras averages
  momentum = norm.momentum
  norm.moving_mean.assign(tf.cast(norm.moving_mean, tf.float32) * momentum
                          + mean * (1.0 - momentum))
  norm.moving_variance.assign(tf.cast(norm.moving_variance, tf.float32) * momentum
                              + variance * (1.0 - momentum))
  return tf.cast(y, norm.compute_dtype)


def training_pass(model):
  """`run(x)`: model(x, training=True) of a Keras functional model with one input and one
  output, computed as the module docstring says; call it inside the step's tf.function and
  gradient tape. Layers it does not rewrite are the model's own calls."""
  steps = _plan(model)

  def run(x):
    values = {id(model.inputs[0]): x}
    for step in steps:
      inputs = [values[id(t)] for t in step.inputs]
      if step.kind == "norm_elu" and _fusable(step.norm):
        joined = tf.concat([tf.cast(part, tf.float32) for part in inputs], -1) if len(
            inputs) > 1 else inputs[0]
        output = step.layer(_batch_norm(step.norm, joined))
      elif step.kind == "norm_elu":  # the pair the plan joined, as Keras calls it
        joined = tf.concat(inputs, -1) if len(inputs) > 1 else inputs[0]
        output = step.layer(step.norm(joined, training=True))
      elif step.kind == "split_conv":
        output = _split_conv(step.layer, inputs)
      elif step.kind == "layer" and _fusable(step.layer) and len(inputs) == 1:
        output = _batch_norm(step.layer, inputs[0])
      else:
        output = step.layer(inputs[0] if len(inputs) == 1 else inputs, training=True)
      values[id(step.output)] = output
    return values[id(model.outputs[0])]

  return run
