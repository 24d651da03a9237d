"""Which weights a command runs: the ones the user named (a path, or shipped weights by
name), else the shipped defaults; their acquisition, read from the card before the model
loads; and the model itself, with the card's warning when they miss the project's bar."""
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


def trained_acquisition(weights_path, model_name=None) -> Acquisition:
  """The acquisition the weights' card names (the paper's for weights without a card),
  read before the model loads."""
  card = _card(weights_path, model_name)
  return PAPER if card is None else card.acquisition


def keeps_measured_band(weights_path, model_name=None) -> bool:
  """Whether the weights' card asks for the measured-band projection (infer/consistency.py;
  False for weights without a card), read before the model loads."""
  card = _card(weights_path, model_name)
  return card is not None and card.keeps_measured_band


def load_model(weights_path=None, model_name=None, gan=False, allow_unverified=False):
  """(generator, its model card); a warning on stderr when the card says the weights do not
  meet the project's quality bar."""
  from mdcsrn_tf import weights

  model, card = weights.load_generator(weights_to_use(weights_path, gan), model_name,
                                       allow_unverified)
  if card.warning:
    print(f"warning: {one_line(card.warning)}", file=sys.stderr)
  return model, card
