"""The generators as an ONNX graph, written layer by layer with the `onnx` helper API: the
one converter, read by `mdcsrn-export --format onnx` (export/onnx_graph.py) and by the
inference engines outside TensorFlow (infer/engines.py).

The graph takes windows `lr`, float32 [N, D, H, W, 1] of any spatial size (the Keras
model's own layout), and returns `sr` of the same shape; tiling, the division by the
volume's maximum and the merging of tiles stay with the caller, as in `mdcsrn-sr`
(docs/serving.md). Inside, one Transpose puts the windows channels-first, the layout every
ONNX convolution and normalisation expects, and one puts them back.

The generators use seven Keras layers (Conv3D, BatchNormalization, ELU, PReLU,
Concatenate, Add and the input), each of which is one ONNX operator of opset 17, with the
inference-mode batch normalisation of the moving statistics. Writing them directly keeps
the export to the `onnx` package alone: converters that go through a TensorFlow graph pin
older TensorFlow, NumPy or protobuf releases than this project's, and the graph they write
depends on their pattern matching, where this one is the model's layers, one for one.
Any other layer is refused with its name.
"""
import numpy as np

OPSET = 17
IR_VERSION = 8  # the IR of opset 17: read by every ONNX Runtime and OpenVINO since 2022
INPUT_NAME = "lr"
OUTPUT_NAME = "sr"
SPATIAL_DIMENSIONS = ("depth", "height", "width")


class UnsupportedLayer(ValueError):
  """A layer this writer has no ONNX operator for."""


def _same_padding(kernel_size, dilation_rate):
  """ONNX pads [begin..., end...] of TensorFlow's "same" at stride 1: the odd voxel, when
  there is one, goes at the end."""
  totals = [d * (k - 1) for k, d in zip(kernel_size, dilation_rate)]
  begins = [t // 2 for t in totals]
  return begins + [t - b for t, b in zip(totals, begins)]


class _Graph:
  """Nodes and initialisers collected in evaluation order."""

  def __init__(self):
    self.nodes, self.initialisers = [], []

  def constant(self, name, array):
    from onnx import numpy_helper

    self.initialisers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
    return name

  def node(self, op_type, inputs, output, **attributes):
    from onnx import helper

    self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output,
                                       **attributes))
    return output


def _conv(graph, layer, source, name):
  if (layer.data_format != "channels_last" or tuple(layer.strides) != (1, 1, 1)
      or layer.groups != 1 or layer.activation.__name__ != "linear"):
    raise UnsupportedLayer(f"{layer.name}: only stride-1 linear Conv3D is exported")
  kernel = np.transpose(np.asarray(layer.kernel, np.float32), (4, 3, 0, 1, 2))
  inputs = [source, graph.constant(f"{name}.kernel", kernel)]
  if layer.use_bias:
    inputs.append(graph.constant(f"{name}.bias", layer.bias))
  pads = (_same_padding(layer.kernel_size, layer.dilation_rate) if layer.padding == "same"
          else [0] * 6)
  return graph.node("Conv", inputs, name, kernel_shape=list(layer.kernel_size), pads=pads,
                    dilations=list(layer.dilation_rate), strides=[1, 1, 1])


def _batch_norm(graph, layer, source, name):
  if layer.axis not in (-1, 4):
    raise UnsupportedLayer(f"{layer.name}: only channel-axis BatchNormalization is exported")
  channels = layer.moving_mean.shape[0]
  gamma = layer.gamma if layer.scale else np.ones(channels)
  beta = layer.beta if layer.center else np.zeros(channels)
  inputs = [source] + [graph.constant(f"{name}.{part}", value) for part, value in
                       (("scale", gamma), ("bias", beta), ("mean", layer.moving_mean),
                        ("var", layer.moving_variance))]
  return graph.node("BatchNormalization", inputs, name, epsilon=float(layer.epsilon))


def _prelu(graph, layer, source, name):
  if list(layer.shared_axes or []) != [1, 2, 3]:
    raise UnsupportedLayer(f"{layer.name}: only PReLU shared over space is exported")
  slopes = np.asarray(layer.alpha, np.float32).reshape(-1, 1, 1, 1)  # [C, 1, 1, 1]
  return graph.node("PRelu", [source, graph.constant(f"{name}.slope", slopes)], name)


def _layer_node(graph, layer, sources, name):
  """The ONNX output name of one Keras layer call on channels-first `sources`."""
  from keras import layers

  if isinstance(layer, layers.Conv3D):
    return _conv(graph, layer, sources[0], name)
  if isinstance(layer, layers.BatchNormalization):
    return _batch_norm(graph, layer, sources[0], name)
  if isinstance(layer, layers.ELU):
    return graph.node("Elu", sources, name, alpha=float(layer.alpha))
  if isinstance(layer, layers.PReLU):
    return _prelu(graph, layer, sources[0], name)
  if isinstance(layer, layers.Concatenate) and layer.axis in (-1, 4):
    return graph.node("Concat", sources, name, axis=1)
  if isinstance(layer, layers.Add):
    return graph.node("Sum", sources, name)
  raise UnsupportedLayer(f"layer {layer.name} ({type(layer).__name__}) has no ONNX export")


def onnx_model(model):
  """The onnx.ModelProto of a Keras functional generator with one input and one output
  (UnsupportedLayer for a layer the writer does not know)."""
  from onnx import TensorProto, checker, helper

  if len(model.inputs) != 1 or len(model.outputs) != 1:
    raise UnsupportedLayer("the ONNX export handles models with one input and one output")
  graph = _Graph()
  names = {id(model.inputs[0]): graph.node("Transpose", [INPUT_NAME], "lr_channels_first",
                                           perm=[0, 4, 1, 2, 3])}

  def visit(tensor):  # depth first from the output: every tensor after its sources
    if id(tensor) not in names:
      layer, node_index, _ = tensor._keras_history
      node = layer._inbound_nodes[node_index]
      sources = [visit(source) for source in node.input_tensors]
      names[id(tensor)] = _layer_node(graph, layer, sources, layer.name)
    return names[id(tensor)]

  graph.node("Transpose", [visit(model.outputs[0])], OUTPUT_NAME, perm=[0, 2, 3, 4, 1])
  shape = ["batch", *SPATIAL_DIMENSIONS, 1]
  onnx_graph = helper.make_graph(
      graph.nodes, model.name,
      [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, shape)],
      [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, shape)],
      initializer=graph.initialisers)
  proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                            ir_version=IR_VERSION, producer_name="mdcsrn-tf",
                            doc_string="windows [N, D, H, W, 1] divided by the volume's "
                                       "maximum in, their super-resolution out")
  checker.check_model(proto, full_check=True)
  return proto
