"""Keras models of the paper, built by name: `build_model("b4u4")`.

Generators take (B, D, H, W, 1) with any D, H, W and return the same shape; the critic
takes (B, P, P, P, 1) and returns (B, 1). Every model's output layer computes in float32.
The names are known without loading Keras (a command checks its flags before that).
"""
# mDCSRN bBuU: (dense blocks, units per block); b1u8 is the paper's DCSRN
MDCSRN_VARIANTS = {"b1u8": (1, 8), "b2u4": (2, 4), "b3u4": (3, 4), "b4u4": (4, 4)}
MDCSRN_NAMES = tuple(MDCSRN_VARIANTS)
GENERATOR_NAMES = (*MDCSRN_NAMES, "fsrcnn", "srresnet")
MODEL_NAMES = (*GENERATOR_NAMES, "critic")


def _builder(name):
  from mdcsrn_tf.models import baselines, critic, mdcsrn  # Keras: only to build a model

  if name in MDCSRN_VARIANTS:
    blocks, units = MDCSRN_VARIANTS[name]
    return lambda **kwargs: mdcsrn.mdcsrn(blocks=blocks, units=units, **kwargs)
  return {"fsrcnn": baselines.fsrcnn, "srresnet": baselines.srresnet,
          "critic": critic.critic}[name]

def build_model(name: str, policy=None, **kwargs):
  """Builds a registered model by name; kwargs go to its builder (e.g. patch_size=16 for
  the critic, blocks=2 for srresnet). `policy` (e.g. "mixed_float16") is set as Keras'
  global dtype policy while the model is built and restored afterwards."""
  if name not in MODEL_NAMES:
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
  kwargs.setdefault("name", name)
  build = _builder(name)
  if policy is None:
    return build(**kwargs)
  import keras  # pylint: disable=import-outside-toplevel

  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy)
  try:
    return build(**kwargs)
  finally:
    keras.mixed_precision.set_global_policy(previous)
