"""Keras models of the paper, built by name: `build_model("b4u4")`."""
from mdcsrn_tf.models import mdcsrn

GENERATOR_NAMES = tuple(mdcsrn.VARIANTS)


def build_model(name: str, **kwargs):
  """Builds a registered model by name; kwargs go to the model's builder."""
  if name in mdcsrn.VARIANTS:
    blocks, units = mdcsrn.VARIANTS[name]
    return mdcsrn.mdcsrn(blocks, units, name=name, **kwargs)
  raise ValueError(f"unknown model {name!r}; choose one of {', '.join(GENERATOR_NAMES)}")
