"""What a generator's builder arguments make, known without Keras: which arguments each
builder takes, the parameters they give and the widest activation, so that arguments read
from a file (a model card) are checked before anything is built.

The bounds keep every generator one that could run on any machine, so that a card asking
for more is refused as the card's fault, rather than running out of memory later in a way
that blames the user's flags:

- MAX_PARAMETERS, 2^28: 1 GiB of float32 weights, 4 GiB in training with Adam's two moments
  and the gradient, within any GPU's memory and a laptop's; 136 times the paper's largest
  generator (3D SRResNet, 1,977,281 trainable parameters).
- MAX_CHANNELS, 2^14 float32 channels in the widest activation: one window of the smallest
  tile inference plans (16 voxels and the paper's margin of 3 on each side, 22^3 voxels)
  then holds 22^3 x 2^14 x 4 B = 0.65 GiB in that one tensor; 39 times b4u4's widest
  (416 channels, its reconstruction layer's input).
"""
import math

from mdcsrn_tf.models import MDCSRN_VARIANTS

MAX_PARAMETERS = 2**28
MAX_CHANNELS = 2**14

# each builder's arguments besides its name, and their types; every integer is >= 1
ARGUMENTS = {
    "mdcsrn": {"growth_rate": int, "identity_init": bool},
    "fsrcnn": {"d": int, "s": int, "m": int, "first_kernel": int, "last_kernel": int},
    "srresnet": {"blocks": int, "width": int, "outer_kernel": int},
}
DEFAULTS = {
    "mdcsrn": {"growth_rate": 16},
    "fsrcnn": {"d": 56, "s": 12, "m": 4, "first_kernel": 5, "last_kernel": 9},
    "srresnet": {"blocks": 8, "width": 64, "outer_kernel": 9},
}


def builder_of(name) -> str:
  """The builder a generator's name uses: "mdcsrn" for b1u8 ... b4u4, else the name."""
  return "mdcsrn" if name in MDCSRN_VARIANTS else name


def _conv(kernel, channels_in, channels_out) -> int:
  """A 3D convolution's weights and biases."""
  return kernel**3 * channels_in * channels_out + channels_out


def _mdcsrn(blocks, units, growth_rate) -> tuple:
  width = 2 * growth_rate
  block_out = width + units * growth_rate
  parameters = _conv(3, 1, width)
  for block in range(blocks):
    if block:
      parameters += _conv(1, width + block * block_out, width)  # the compressor
    for unit in range(units):
      channels = width + unit * growth_rate
      parameters += 4 * channels + _conv(3, channels, growth_rate)  # BatchNorm, Conv3D
  widest = width + blocks * block_out  # the reconstruction layer's input
  return parameters + _conv(1, widest, 1), widest


def _fsrcnn(d, s, m, first_kernel, last_kernel) -> tuple:
  parameters = (_conv(first_kernel, 1, d) + d + _conv(1, d, s) + s
                + m * (_conv(3, s, s) + s) + _conv(1, s, d) + d + _conv(last_kernel, d, 1))
  return parameters, max(d, s)


def _srresnet(blocks, width, outer_kernel) -> tuple:
  residual = 2 * (_conv(3, width, width) + 4 * width) + width  # two Conv-BN, one PReLU
  parameters = (_conv(outer_kernel, 1, width) + width + blocks * residual
                + _conv(3, width, width) + 4 * width + _conv(outer_kernel, width, 1))
  return parameters, width


def size(name, arguments: dict) -> tuple:
  """(parameters, channels of the widest activation) of generator `name` built with
  `arguments` (checked by check_arguments): every weight Keras' count_params counts,
  BatchNorm's moving statistics included."""
  builder = builder_of(name)
  values = {**DEFAULTS[builder], **arguments}
  if builder == "mdcsrn":
    return _mdcsrn(*MDCSRN_VARIANTS[name], values["growth_rate"])
  counted = {key: values[key] for key in ARGUMENTS[builder]}
  return (_fsrcnn if builder == "fsrcnn" else _srresnet)(**counted)


def check_arguments(name, arguments) -> tuple | None:
  """None when generator `name` can be built with `arguments` within the bounds above;
  else (the argument at fault, or None for all of them, what is wrong)."""
  if not isinstance(arguments, dict):
    return None, f"expected an object of {name}'s builder arguments"
  kinds = ARGUMENTS[builder_of(name)]
  for key, value in arguments.items():
    if key not in kinds:
      return key, f"{name} takes no such argument (it takes {', '.join(kinds)})"
    if kinds[key] is bool and not isinstance(value, bool):
      return key, "expected true or false"
    # every integer argument adds at least its value in parameters, so one above
    # MAX_PARAMETERS is too large alone (and the arithmetic below stays small)
    if kinds[key] is int and (isinstance(value, bool) or not isinstance(value, int)
                              or not 1 <= value <= MAX_PARAMETERS):
      return key, f"expected an integer from 1 to {MAX_PARAMETERS:,}"
  parameters, widest = size(name, arguments)
  if parameters > MAX_PARAMETERS:
    return None, (f"{name} with these arguments has {parameters:.3g} parameters, more than "
                  f"the {MAX_PARAMETERS:,} (2^{int(math.log2(MAX_PARAMETERS))}) a generator "
                  "that runs on any machine may have")
  if widest > MAX_CHANNELS:
    return None, (f"{name} with these arguments has an activation of {widest:,} channels "
                  f"per voxel, more than the {MAX_CHANNELS:,} a generator that runs on any "
                  "machine may have")
  return None
