"""Which weights a command runs: the ones the user named (a path, or shipped weights by
name), else the shipped defaults; their acquisition and measured-band projection, read from
the card before the model loads; and the model itself, with the card's warning when they
miss the project's bar."""
import os
import sys

from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.errors import one_line


def weights_to_use(weights_path=None, gan=False):
  """The weights the user named (a path, or shipped weights by name), or the shipped b4u4
  L1 (or GAN) ones."""
  from mdcsrn_tf import weights

  if weights_path:
    return weights.resolve(weights_path)
  return weights.default_weights("gan" if gan else "l1")


def _card(weights_path, model_name=None):
  """The weights' card, or None for weights named with --model that have none."""
  from mdcsrn_tf import weights

  if model_name is not None and not os.path.exists(weights.base_path(weights_path)
                                                   + weights.CARD_SUFFIX):
    return None
  return weights.read_card(weights_path)


def trained_settings(weights_path, model_name=None) -> tuple[Acquisition, bool]:
  """(the acquisition the weights' card names, whether it asks for the measured-band
  projection: infer/consistency.py), read from one reading of the card before the model
  loads; the paper's acquisition and no projection for weights without a card."""
  card = _card(weights_path, model_name)
  if card is None:
    return PAPER, False
  return card.acquisition, card.keeps_measured_band


def load_model(weights_path=None, model_name=None, gan=False, allow_unverified=False):
  """(generator, its model card); a warning on stderr when the card says the weights do not
  meet the project's quality bar."""
  from mdcsrn_tf import weights

  model, card = weights.load_generator(weights_to_use(weights_path, gan), model_name,
                                       allow_unverified)
  if card.warning:
    print(f"warning: {one_line(card.warning)}", file=sys.stderr)
  return model, card
