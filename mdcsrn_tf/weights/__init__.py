"""Generators on disk: `PATH.weights.h5` (Keras `save_weights`) plus a model card `PATH.json`
(card.ModelCard), and the weights shipped in this folder: the default b4u4 pair of
`mdcsrn-sr` (`SHIPPED`), and one network per row of the paper's Tables 1-2, trained with
one CPU budget (`<model>_l1`, `b4u4_gan`; docs/reproducing.md).

The card says which network the weights belong to, so `load_generator(PATH)` can rebuild it
by name and arguments with `models.build_model` before loading, and returns the card with
the model: callers take the acquisition the weights were trained for from it. Either file
name or the bare PATH may be given. Every problem with the files is an `InputError` naming them.

The card also records the SHA-256 of the weights file it was written with: a few flipped
bytes in an HDF5 file still load, as NaN or garbage weights, so every load (`load_generator`,
training's --init_generator) compares the checksum first and refuses a file that is not the
one the card describes. A card without a checksum (written before checksums) is refused
too, unless the user asks for it (`allow_unverified`, the commands' --unverified_weights).
"""
import dataclasses
import os
import warnings

from mdcsrn_tf import identity
from mdcsrn_tf.acquisition import PAPER, Acquisition

from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import write_atomically
from mdcsrn_tf.weights import card as cards
from mdcsrn_tf.weights import schema
from mdcsrn_tf.weights.card import ModelCard

WEIGHTS_SUFFIX = ".weights.h5"
CARD_SUFFIX = cards.SUFFIX
SHIPPED_DIR = os.path.dirname(os.path.abspath(__file__))
SHIPPED = {"l1": "b4u4_l1", "gan": "b4u4_gan"}  # the tables' b4u4 pair
# Two shipped sets: "tables", one network per row of the paper's tables under one budget
# (names MODEL_KIND), and "heads", the default weights trained longer on whole heads (names
# heads_MODEL_KIND; docs/training.md#the-default-weights). A card's `shipped_set` says which.
SETS = schema.SET_PREFIXES  # set: the prefix of its names
# The weights a command runs when none are named, best first: the whole-head set's where
# this install has them, else the tables' b4u4.
DEFAULTS = {kind: (SETS["heads"] + name, name) for kind, name in SHIPPED.items()}
EXPORT_NAME = os.path.join("export", "generator")


def base_path(path) -> str:
  """PATH without `.weights.h5` or `.json`: the name both files share."""
  path = os.fspath(path)
  for suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX):
    if path.endswith(suffix):
      return path[:-len(suffix)]
  return path


def exported_generator(workdir) -> str:
  """Where a training run in `workdir` exports its generator (base path)."""
  return os.path.join(os.fspath(workdir), EXPORT_NAME)


def save_generator(model, path, card: ModelCard) -> str:
  """Writes PATH.weights.h5 and PATH.json (with the weights' SHA-256) atomically; returns
  PATH (the shared base)."""
  base = base_path(path)

  def write_weights(temporary):
    # Keras insists on the .weights.h5 suffix, which write_atomically's temporary name
    # lacks: save beside it under a Keras-acceptable name, then move it into place.
    keras_name = temporary + WEIGHTS_SUFFIX
    try:
      model.save_weights(keras_name)
      os.replace(keras_name, temporary)
    finally:
      if os.path.exists(keras_name):
        os.remove(keras_name)

  write_atomically(base + WEIGHTS_SUFFIX, write_weights)
  cards.write(base, dataclasses.replace(card, weights_sha256=file_sha256(base + WEIGHTS_SUFFIX)))
  return base


def file_sha256(path) -> str:
  """The SHA-256 of a weights file, read now: the checksum that verifies it."""
  return identity.read_sha256(path)


UNVERIFIED_HINT = "pass --unverified_weights to load it anyway"


def verify_checksum(weights_path, card: ModelCard | None, allow_unverified=False):
  """InputError unless the weights file is the one the card's checksum describes; a card
  without a checksum passes only with `allow_unverified` (weights without a card, loaded by
  model name, have nothing to check)."""
  if card is None:
    return
  if not card.weights_sha256:
    if allow_unverified:
      return
    raise InputError(f"{base_path(weights_path)}{CARD_SUFFIX}: model card records no SHA-256 "
                     f"of its weights, so a damaged file would load unnoticed; {UNVERIFIED_HINT}")
  actual = file_sha256(weights_path)
  if actual != card.weights_sha256:
    raise InputError(f"{weights_path}: SHA-256 {actual[:12]}... is not the "
                     f"{card.weights_sha256[:12]}... its model card records: the file is "
                     "corrupted or not the one the card describes")


def read_card(path) -> ModelCard:
  """The model card of PATH (InputError when it is missing or unreadable)."""
  return cards.read(base_path(path))


def load_generator(path, model_name=None, allow_unverified=False) -> tuple:
  """(generator, ModelCard): builds the generator named by PATH.json (or `model_name`, for
  weights without a card, which get a card of that name and the paper's acquisition) and
  loads PATH.weights.h5, after checking it against the card's checksum (verify_checksum)."""
  from mdcsrn_tf import models

  base = base_path(path)
  weights_path = base + WEIGHTS_SUFFIX
  if not os.path.isfile(weights_path):
    raise InputError(f"{weights_path}: no such weights file")
  card = read_card(base) if (model_name is None or os.path.exists(base + CARD_SUFFIX)) else None
  verify_checksum(weights_path, card, allow_unverified)
  card_name = card.model if card else None
  if model_name is not None and card_name is not None and model_name != card_name:
    raise InputError(f"{weights_path}: weights are for model {card_name}, not {model_name}")
  name = model_name or card_name
  if name not in models.GENERATOR_NAMES:
    raise InputError(f"{weights_path}: unknown generator {name!r} "
                     f"(one of {', '.join(models.GENERATOR_NAMES)})")
  card = card or ModelCard(model=name)
  try:
    model = models.build_model(name, **card.model_arguments)
  except (TypeError, ValueError) as error:
    raise InputError(f"{base + CARD_SUFFIX}: cannot build {name} with its model_arguments "
                     f"{card.model_arguments} ({error})") from None
  try:
    with warnings.catch_warnings():
      # Keras only warns when a file lacks some layers and leaves them freshly initialised:
      # for a generator that is a wrong file, not a usable model.
      warnings.filterwarnings("error", category=UserWarning, module=r"keras\.")
      model.load_weights(weights_path)
  except (ValueError, OSError, KeyError, UserWarning) as error:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise InputError(f"{weights_path}: cannot load weights into {name} ({first_line})") from None
  return model, card


def shipped_path(name):
  """Base path of the weights shipped in this install under `name` (`b4u4_l1`), or None."""
  base = os.path.join(SHIPPED_DIR, name)
  return base if os.path.isfile(base + WEIGHTS_SUFFIX) else None


def default_weights(kind="l1") -> str:
  """Base path of the default weights of `kind`, "l1" (pre-trained) or "gan": the first of
  DEFAULTS[kind] this install ships."""
  if kind not in DEFAULTS:
    raise ValueError(f"kind must be one of {sorted(DEFAULTS)}, got {kind!r}")
  base = _first_shipped(DEFAULTS[kind])
  if base is None:
    missing = os.path.join(SHIPPED_DIR, DEFAULTS[kind][-1]) + WEIGHTS_SUFFIX
    raise InputError(f"no shipped {kind} weights in this install ({missing} is "
                     "missing); train or download some and pass --weights PATH.weights.h5")
  return base


def shipped() -> dict:
  """{kind: base path} of the default weights present in this install (default_weights)."""
  found = {kind: _first_shipped(names) for kind, names in DEFAULTS.items()}
  return {kind: base for kind, base in found.items() if base}


def _first_shipped(names):
  """Base path of the first of `names` this install ships, or None."""
  return next(filter(None, map(shipped_path, names)), None)


def shipped_name(weight_set, model, kind) -> str:
  """The name `model`'s `kind` weights ship under in `weight_set` (SETS)."""
  return f"{SETS[weight_set]}{model}_{kind}"


def shipped_names() -> list:
  """The names of the weights shipped in this install (b1u8_l1, ..., b4u4_gan)."""
  return sorted(name[:-len(WEIGHTS_SUFFIX)] for name in os.listdir(SHIPPED_DIR)
                if name.endswith(WEIGHTS_SUFFIX))


def resolve(path_or_name) -> str:
  """The base path a --weights value names: a PATH (with or without a suffix) as it is, or
  the name of shipped weights (`srresnet_l1`) when no such file exists here; InputError for
  a bare name that is neither."""
  base = base_path(path_or_name)
  if os.path.exists(base + WEIGHTS_SUFFIX) or os.sep in base:
    return os.fspath(path_or_name)
  shipped_base = shipped_path(base)
  if shipped_base is None:
    raise InputError(f"{base}{WEIGHTS_SUFFIX}: no such weights file here, and no shipped "
                     f"weights named {base} (shipped: {', '.join(shipped_names())})")
  return shipped_base


def shipped_network(method, weight_set="tables"):
  """Base path of the shipped weights of a row of the paper's tables (`b1u8` ... `srresnet`
  trained with L1 as `<method>_l1`, `b4u4_gan` as is) in `weight_set`, or None when this
  install has none."""
  name = method if method.endswith("_gan") else f"{method}_l1"
  return shipped_path(SETS[weight_set] + name)


def common_acquisition(cards_of_models) -> Acquisition:
  """The acquisition every card names (the paper's when there is none); ValueError when
  they differ, since one input is shown for all of them."""
  found = {card.acquisition for card in cards_of_models}
  if len(found) > 1:
    raise ValueError("the models were trained on different acquisitions: "
                     + "; ".join(sorted(a.describe() for a in found)))
  return found.pop() if found else PAPER
