"""Keras models of the paper, built by name: `build_model("b4u4")`.

Generators take (B, D, H, W, 1) with any D, H, W and return the same shape; the critic
takes (B, P, P, P, 1) and returns (B, 1). Every model's output layer computes in float32.
"""
import functools

import keras

from mdcsrn_tf.models import baselines, critic, mdcsrn

_BUILDERS = {
    **{name: functools.partial(mdcsrn.mdcsrn, blocks=blocks, units=units)
       for name, (blocks, units) in mdcsrn.VARIANTS.items()},
    "fsrcnn": baselines.fsrcnn,
    "srresnet": baselines.srresnet,
    "critic": critic.critic,
}
MDCSRN_NAMES = tuple(mdcsrn.VARIANTS)
GENERATOR_NAMES = (*MDCSRN_NAMES, "fsrcnn", "srresnet")
MODEL_NAMES = (*GENERATOR_NAMES, "critic")

# Table 1 and Table 2 of the paper: (#parm, #ops) as printed.
PAPER_FIGURES = {
    "b1u8": (0.307e6, 1.247e6),
    "b2u4": (0.200e6, 0.813e6),
    "b3u4": (0.304e6, 1.236e6),
    "b4u4": (0.412e6, 1.672e6),
    "fsrcnn": (0.064e6, 0.261e6),
    "srresnet": (2.005e6, 8.043e6),
}


def build_model(name: str, policy=None, **kwargs) -> keras.Model:
  """Builds a registered model by name; kwargs go to its builder (e.g. patch_size=16 for
  the critic, blocks=2 for srresnet). `policy` (e.g. "mixed_float16") is set as Keras'
  global dtype policy while the model is built and restored afterwards."""
  if name not in _BUILDERS:
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
  kwargs.setdefault("name", name)
  if policy is None:
    return _BUILDERS[name](**kwargs)
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy)
  try:
    return _BUILDERS[name](**kwargs)
  finally:
    keras.mixed_precision.set_global_policy(previous)
