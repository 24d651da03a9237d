"""Operations and receptive fields, computed from a model's layers (docs/models.md).

One walk over the functional graph follows, for every tensor of one sample, its spatial
shape, channels, receptive-field radius (in input voxels, per axis) and jump (input voxels
between neighbouring positions), and charges each layer its floating-point operations:

- Conv3D, Dense: 2 FLOPs per multiply-add (a multiply-add counts as two operations, as
  TensorFlow's profiler counts Conv3D), plus 1 per output element for the bias;
- BatchNormalization (inference, folded to y = a x + b): 2 per element;
- layer norm (GroupNormalization, LayerNormalization): 7 per element (mean: 1 add;
  variance: subtract, square, add; normalise: 1 multiply; scale and offset: 2);
- activations (ELU, ReLU, LeakyReLU, PReLU): 1 per element;
- Add: 1 per output element per extra input; Concatenate, Flatten: none.

A layer the walk does not know raises TypeError, so no layer is silently left uncounted.
"""
import dataclasses
import math

import numpy as np
from keras import layers

BATCH_NORM_FLOPS = 2  # per element
LAYER_NORM_FLOPS = 7  # per element
ACTIVATIONS = (layers.ELU, layers.ReLU, layers.LeakyReLU, layers.PReLU, layers.Activation)


def trainable_parameters(model) -> int:
  """What the paper's #parm counts: trainable weights only (not BatchNorm's moving
  statistics)."""
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@dataclasses.dataclass(frozen=True)
class LayerCost:
  """One layer's cost for one sample: multiply-adds and all FLOPs (2 per multiply-add)."""
  name: str
  kind: str  # "conv", "dense", "norm", "activation", "add", "free"
  macs: int
  flops: int


@dataclasses.dataclass(frozen=True)
class _Tensor:
  spatial: tuple | None  # (D, H, W) of one sample; None once flattened
  channels: int
  radius: tuple  # per axis, in input voxels; math.inf where every input voxel counts
  jump: tuple  # per axis, input voxels between neighbouring positions

  @property
  def elements(self) -> int:
    return int(np.prod(self.spatial or (), dtype=np.int64)) * self.channels


def _conv(layer, x: _Tensor, channels: int):
  kernel, strides, dilation = layer.kernel_size, layer.strides, layer.dilation_rate
  if layer.padding == "same":
    spatial = tuple(-(-n // s) for n, s in zip(x.spatial, strides))
  else:
    spatial = tuple((n - (k - 1) * d - 1) // s + 1
                    for n, k, d, s in zip(x.spatial, kernel, dilation, strides))
  # the farther side of the kernel: (k - 1) / 2 for the odd kernels used here
  radius = tuple(r + (k // 2) * d * j for r, k, d, j in zip(x.radius, kernel, dilation, x.jump))
  out = _Tensor(spatial, channels, radius, tuple(j * s for j, s in zip(x.jump, strides)))
  macs = out.elements * int(np.prod(kernel)) * x.channels // layer.groups
  return out, "conv", macs, 2 * macs + (out.elements if layer.use_bias else 0)


def _layer(layer, inputs: list, channels: int):
  """(output tensor, kind, multiply-adds, FLOPs) of one layer applied to `inputs`."""
  x = inputs[0]
  if isinstance(layer, layers.Conv3D):
    return _conv(layer, x, channels)
  if isinstance(layer, layers.Dense):
    if x.spatial is None:  # on a flattened sample: every input voxel reaches every unit
      out = _Tensor(None, channels, (math.inf,) * 3, x.jump)
    else:
      out = dataclasses.replace(x, channels=channels)
    macs = out.elements * x.channels
    return out, "dense", macs, 2 * macs + (out.elements if layer.use_bias else 0)
  if isinstance(layer, layers.Flatten):
    return _Tensor(None, x.elements, (math.inf,) * 3, x.jump), "free", 0, 0
  if isinstance(layer, layers.BatchNormalization):  # inference: per channel and voxel
    return x, "norm", 0, BATCH_NORM_FLOPS * x.elements
  if isinstance(layer, (layers.GroupNormalization, layers.LayerNormalization)):
    axes = {a % 5 for a in np.atleast_1d(layer.axis)}
    spans_space = isinstance(layer, layers.GroupNormalization) or bool(axes & {1, 2, 3})
    out = dataclasses.replace(x, radius=(math.inf,) * 3) if spans_space else x
    return out, "norm", 0, LAYER_NORM_FLOPS * x.elements
  if isinstance(layer, ACTIVATIONS):
    return x, "activation", 0, x.elements
  if isinstance(layer, (layers.Add, layers.Concatenate)):
    if len({t.spatial for t in inputs}) != 1:
      raise ValueError(f"{layer.name}: inputs on different grids")
    out = _Tensor(x.spatial, channels, tuple(map(max, zip(*(t.radius for t in inputs)))),
                  tuple(map(max, zip(*(t.jump for t in inputs)))))
    if isinstance(layer, layers.Add):
      return out, "add", 0, (len(inputs) - 1) * out.elements
    return out, "free", 0, 0
  raise TypeError(f"analysis cannot count layer {layer.name!r} of type {type(layer).__name__}")


def _default_spatial(model):
  shape = tuple(model.inputs[0].shape[1:4])
  return shape if None not in shape else (1, 1, 1)


def _walk(model, spatial_shape=None):
  """(list of LayerCost in graph order, _Tensor of the model's output) for one sample."""
  if len(model.inputs) != 1 or len(model.outputs) != 1:
    raise ValueError("analysis handles models with one input and one output")
  spatial = tuple(spatial_shape or _default_spatial(model))
  tensors, costs = {}, []

  def visit(tensor):
    if id(tensor) not in tensors:
      layer, node_index, _ = tensor._keras_history
      if isinstance(layer, layers.InputLayer):
        tensors[id(tensor)] = _Tensor(spatial, tensor.shape[-1], (0, 0, 0), (1, 1, 1))
      else:
        node = layer._inbound_nodes[node_index]
        if len(node.output_tensors) != 1:
          raise TypeError(f"analysis cannot count multi-output layer {layer.name!r}")
        inputs = [visit(t) for t in node.input_tensors]
        out, kind, macs, flops = _layer(layer, inputs, tensor.shape[-1])
        costs.append(LayerCost(layer.name, kind, int(macs), int(flops)))
        tensors[id(tensor)] = out
    return tensors[id(tensor)]

  return costs, visit(model.outputs[0])


def layer_costs(model, spatial_shape=None) -> list:
  """Each layer's LayerCost for one sample of spatial shape (D, H, W); the default is the
  model's input shape where it is fixed, else (1, 1, 1)."""
  return _walk(model, spatial_shape)[0]


def flops(model, spatial_shape=None) -> int:
  """Floating-point operations of one forward pass over one sample (2 per multiply-add)."""
  return sum(c.flops for c in layer_costs(model, spatial_shape))


def ops_per_voxel(model, spatial_shape=None) -> float:
  """FLOPs per voxel of the input grid: for the generators, whose output grid is the input
  grid, FLOPs per output voxel, the same for any input size ('same' padding); for the
  critic, FLOPs per voxel of its patch."""
  spatial = tuple(spatial_shape or _default_spatial(model))
  return flops(model, spatial) / int(np.prod(spatial))


def receptive_field_radius(model):
  """How many input voxels on each side of a voxel can change an output voxel (the largest
  over the three axes); math.inf when every input voxel can (the critic)."""
  return max(_walk(model)[1].radius)
