"""The generators' inference pass, evaluated from the Keras graph with two rewrites that keep
its arithmetic but cut the memory traffic and the memory it needs (docs/performance.md).

On a CPU every element-wise pass of mDCSRN runs at the speed of memory, not of the vector
units: the convolutions reach the matmul peak, while concatenating, normalising and ELU of
a unit's input cost a full read and write of all its channels each.

- **Fused BN-ELU.** A BatchNormalization whose only consumer is an ELU (mDCSRN's BN-ELU-Conv
  units) is one affine map per channel; with the concatenation that feeds it, the map and
  the ELU are compiled by XLA into one pass, instead of four (concatenate, multiply, add,
  ELU). The convolutions stay on TensorFlow's oneDNN kernels, much faster on a CPU than
  XLA's. BN cannot fold into a convolution here: it comes after it, before an ELU.
- **Split 1x1x1 convolutions.** A 1x1x1 convolution over a concatenation that nothing else
  reads is the sum of 1x1x1 convolutions over its parts, the kernel split along its input
  channels, so the concatenation is never copied: b4u4's reconstruction reads 416 channels
  and its compressors 128 to 320, and their copies were the largest tensors of the pass.

Everything else calls the Keras layer itself, and every layer keeps its dtype policy, so
the output is the model's to float round-off (tests/test_forward.py).
"""
import dataclasses

import tensorflow as tf
from keras import layers


def _producer(tensor):
  layer, node_index, _ = tensor._keras_history
  return layer, layer._inbound_nodes[node_index]


def _consumers(model) -> dict:
  """{id(Keras tensor): number of layer calls that read it}."""
  counts = {}
  for layer in model.layers:
    for node in layer._inbound_nodes:
      for tensor in node.input_tensors:
        counts[id(tensor)] = counts.get(id(tensor), 0) + 1
  return counts


def _affine_elu_ops(parts, scale, offset, norm_dtype, elu_dtype):
  """ELU(concat(parts) * scale + offset) with Keras' casts: BN computes in its variables'
  dtype (float32 under a mixed policy) and returns its compute dtype; ELU runs in its own."""
  x = tf.concat(parts, -1) if len(parts) > 1 else parts[0]
  normalised = tf.cast(tf.cast(x, scale.dtype) * scale + offset, norm_dtype)
  return tf.nn.elu(tf.cast(normalised, elu_dtype))


# one XLA kernel, one pass over memory
_affine_elu_xla = tf.function(_affine_elu_ops, jit_compile=True, reduce_retracing=True)


def _fusable_norm(layer, node, consumers):
  """(the BatchNormalization an ELU layer reads, its call) if the pair can be fused, else
  None."""
  if not isinstance(layer, layers.ELU) or float(layer.alpha) != 1.0:
    return None
  source = node.input_tensors[0]
  norm, norm_node = _producer(source)
  if (isinstance(norm, layers.BatchNormalization) and consumers[id(source)] == 1
      and norm.axis in (-1, 4)):
    return norm, norm_node
  return None


def _splittable(layer, node, consumers) -> bool:
  """Whether a layer is a 1x1x1 convolution over a concatenation nothing else reads."""
  if not isinstance(layer, layers.Conv3D) or layer.data_format != "channels_last":
    return False
  if (tuple(layer.kernel_size) != (1, 1, 1) or tuple(layer.strides) != (1, 1, 1)
      or layer.groups != 1):
    return False
  source = node.input_tensors[0]
  concatenate, _ = _producer(source)
  return (isinstance(concatenate, layers.Concatenate) and concatenate.axis in (-1, 4)
          and consumers[id(source)] == 1)


@dataclasses.dataclass(frozen=True)
class _Step:
  """One operation of the rewritten pass: `kind` "layer" (call `layer` on `inputs`),
  "norm_elu" (`layer` is the ELU, `norm` its BatchNormalization, `inputs` the parts of its
  input) or "split_conv" (`layer` is the 1x1x1 convolution, `inputs` the parts)."""
  kind: str
  layer: object
  inputs: tuple
  output: object
  norm: object = None


def _parts(tensor, consumers) -> tuple:
  """The inputs of the channel Concatenate that produced `tensor` when nothing else reads
  it (it is then never computed), else (tensor,)."""
  layer, node = _producer(tensor)
  if (isinstance(layer, layers.Concatenate) and layer.axis in (-1, 4)
      and consumers[id(tensor)] == 1):
    return tuple(node.input_tensors)
  return (tensor,)


def _plan(model) -> list:
  """The rewritten pass as steps in evaluation order (each tensor computed on first use,
  depth first from the output)."""
  if len(model.inputs) != 1 or len(model.outputs) != 1:
    raise ValueError("the inference pass handles models with one input and one output")
  consumers = _consumers(model)
  steps, done = [], {id(model.inputs[0])}

  def visit(tensor):
    if id(tensor) in done:
      return
    layer, node = _producer(tensor)
    fusable = _fusable_norm(layer, node, consumers)
    if fusable is not None:
      norm, norm_node = fusable
      step = _Step("norm_elu", layer, _parts(norm_node.input_tensors[0], consumers), tensor,
                   norm)
    elif _splittable(layer, node, consumers):
      step = _Step("split_conv", layer, _parts(node.input_tensors[0], consumers), tensor)
    else:
      step = _Step("layer", layer, tuple(node.input_tensors), tensor)
    for source in step.inputs:
      visit(source)
    steps.append(step)
    done.add(id(tensor))

  visit(model.outputs[0])
  return steps


def _norm_elu(step, parts, xla):
  norm = step.norm  # the folded map of tf.nn.batch_normalization, which Keras calls
  dtype = tf.as_dtype(norm.moving_variance.dtype)
  scale = tf.math.rsqrt(tf.cast(norm.moving_variance, dtype) + norm.epsilon)
  if norm.scale:
    scale *= tf.cast(norm.gamma, dtype)
  offset = -tf.cast(norm.moving_mean, dtype) * scale
  if norm.center:
    offset += tf.cast(norm.beta, dtype)
  fused = _affine_elu_xla if xla else _affine_elu_ops
  return fused(list(parts), scale, offset, tf.as_dtype(norm.compute_dtype),
               tf.as_dtype(step.layer.compute_dtype))


def _split_conv(conv, parts):
  dtype = tf.as_dtype(conv.compute_dtype)
  kernel = tf.cast(conv.kernel, dtype)
  output, start = None, 0
  for part in parts:
    channels = part.shape[-1]
    term = tf.nn.conv3d(tf.cast(part, dtype), kernel[:, :, :, start:start + channels],
                        [1] * 5, "VALID")
    start += channels
    output = term if output is None else output + term
  if conv.use_bias:
    output = tf.nn.bias_add(output, tf.cast(conv.bias, dtype))
  return conv.activation(output) if conv.activation is not None else output


def inference_pass(model, xla=True):
  """`run(windows)`: model(windows, training=False) of a Keras functional model with one
  input and one output, rewritten as the module docstring says; call it inside a
  tf.function (the XLA kernels compile once per window shape). `xla=False` leaves the
  BN-ELU pairs to plain TensorFlow ops, for graphs that must run without XLA (the
  SavedModel: TF Serving may be built without it)."""
  steps = _plan(model)

  def run(windows):
    values = {id(model.inputs[0]): windows}
    for step in steps:
      inputs = [values[id(t)] for t in step.inputs]
      if step.kind == "norm_elu":
        output = _norm_elu(step, inputs, xla)
      elif step.kind == "split_conv":
        output = _split_conv(step.layer, inputs)
      else:
        output = step.layer(inputs[0] if len(inputs) == 1 else inputs, training=False)
      values[id(step.output)] = output
    return values[id(model.outputs[0])]

  return run


def activation_bytes_per_voxel(model) -> int:
  """Bytes per window voxel of the tensors alive at once in the rewritten pass, at its
  peak, walking its steps in order: a tensor lives from the step that makes it to the last
  step that reads it. A step also holds a temporary as large as its output while it runs
  (a split convolution's next term; the concatenation XLA may build for a fused BN-ELU; the
  intermediate results of an element-wise layer such as PReLU), except a convolution or a
  concatenation called as it is, which write their output directly."""
  steps = _plan(model)
  last_read = {}
  for index, step in enumerate(steps):
    for tensor in step.inputs:
      last_read[id(tensor)] = index

  def size(tensor):
    return int(tensor.shape[-1]) * tf.as_dtype(tensor.dtype).size

  live = {id(model.inputs[0]): size(model.inputs[0])}
  peak = 0
  for index, step in enumerate(steps):
    direct = step.kind == "layer" and isinstance(step.layer, (layers.Conv3D, layers.Concatenate))
    transient = 0 if direct or len(step.inputs) == 1 and step.kind != "layer" else size(
        step.output)
    peak = max(peak, sum(live.values()) + size(step.output) + transient)
    live[id(step.output)] = size(step.output)
    for tensor in step.inputs:
      if last_read[id(tensor)] == index:
        live.pop(id(tensor), None)
  return peak
