"""Exported generators: `PATH.weights.h5` (Keras `save_weights`) plus a model card `PATH.json`.

The card says which network the weights belong to ({"model": "b4u4", ...} and whatever the
trainer adds: step, loss, data), so `load_generator(PATH)` can rebuild it by name with
`models.build_model` before loading. Either file name or the bare PATH may be given. Every
problem with the files is an `InputError` naming them.

The card also records the SHA-256 of the weights file it was written with: a few flipped
bytes in an HDF5 file still load, as NaN or garbage weights, so `load_generator` compares
the checksum first and refuses a file that is not the one the card describes.
"""
import hashlib
import json
import os
import warnings

from mdcsrn_tf.data.nifti import write_atomically, write_text_atomically
from mdcsrn_tf.errors import InputError

WEIGHTS_SUFFIX = ".weights.h5"
CARD_SUFFIX = ".json"
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
SHIPPED = {"l1": "b4u4_l1", "gan": "b4u4_gan"}
CHECKSUM_KEY = "weights_sha256"


def base_path(path) -> str:
  """PATH without `.weights.h5` or `.json`: the name both files share."""
  path = os.fspath(path)
  for suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX):
    if path.endswith(suffix):
      return path[:-len(suffix)]
  return path


def save_generator(model, path, card: dict) -> str:
  """Writes PATH.weights.h5 and PATH.json (with the weights' SHA-256) atomically; returns
  PATH (the shared base)."""
  if "model" not in card:
    raise ValueError(f"model card needs a 'model' entry, got {sorted(card)}")
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
  card = {**card, CHECKSUM_KEY: file_sha256(base + WEIGHTS_SUFFIX)}
  write_text_atomically(base + CARD_SUFFIX, json.dumps(card, indent=2, sort_keys=True) + "\n")
  return base


def file_sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as file:
    for block in iter(lambda: file.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def verify_checksum(weights_path, card: dict):
  """InputError unless the weights file is the one the card's checksum describes (cards
  written before checksums have none and pass)."""
  expected = card.get(CHECKSUM_KEY)
  if expected is None:
    return
  actual = file_sha256(weights_path)
  if actual != expected:
    raise InputError(f"{weights_path}: SHA-256 {actual[:12]}... is not the {str(expected)[:12]}... "
                     "its model card records: the file is corrupted or not the one the card "
                     "describes")


def read_card(path) -> dict:
  """The model card of PATH, or InputError when it is missing or unreadable."""
  card_path = base_path(path) + CARD_SUFFIX
  try:
    with open(card_path, encoding="utf-8") as file:
      card = json.load(file)
  except FileNotFoundError:
    raise InputError(f"{card_path}: no model card beside the weights (pass the model name)") from None
  except (OSError, ValueError) as error:
    raise InputError(f"{card_path}: unreadable model card ({error})") from None
  if not isinstance(card, dict) or not isinstance(card.get("model"), str):
    raise InputError(f"{card_path}: model card has no 'model' name")
  return card


def load_generator(path, model_name=None):
  """Builds the generator named by PATH.json (or `model_name`) and loads PATH.weights.h5,
  after checking it against the card's checksum."""
  from mdcsrn_tf import models  # TensorFlow loads only once weights are really needed

  base = base_path(path)
  weights_path = base + WEIGHTS_SUFFIX
  if not os.path.isfile(weights_path):
    raise InputError(f"{weights_path}: no such weights file")
  card = read_card(base) if (model_name is None or os.path.exists(base + CARD_SUFFIX)) else {}
  verify_checksum(weights_path, card)
  card_name = card.get("model")
  if model_name is not None and card_name is not None and model_name != card_name:
    raise InputError(f"{weights_path}: weights are for model {card_name}, not {model_name}")
  name = model_name or card_name
  if name not in models.GENERATOR_NAMES:
    raise InputError(f"{weights_path}: unknown generator {name!r} "
                     f"(one of {', '.join(models.GENERATOR_NAMES)})")
  model = models.build_model(name)
  try:
    with warnings.catch_warnings():
      # Keras only warns when a file lacks some layers and leaves them freshly initialised:
      # for a generator that is a wrong file, not a usable model.
      warnings.filterwarnings("error", category=UserWarning, module=r"keras\.")
      model.load_weights(weights_path)
  except (ValueError, OSError, KeyError, UserWarning) as error:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise InputError(f"{weights_path}: cannot load weights into {name} ({first_line})") from None
  return model


def default_weights(kind="l1") -> str:
  """Base path of the shipped b4u4 weights: kind "l1" (pre-trained) or "gan"."""
  if kind not in SHIPPED:
    raise ValueError(f"kind must be one of {sorted(SHIPPED)}, got {kind!r}")
  base = os.path.join(SHIPPED_DIR, SHIPPED[kind])
  if not os.path.isfile(base + WEIGHTS_SUFFIX):
    raise InputError(f"no shipped {kind} weights in this install ({base}{WEIGHTS_SUFFIX} is "
                     "missing); train or download some and pass --weights PATH.weights.h5")
  return base


def shipped() -> dict:
  """{kind: base path} of the shipped weights present in this install."""
  return {kind: os.path.join(SHIPPED_DIR, name) for kind, name in SHIPPED.items()
          if os.path.isfile(os.path.join(SHIPPED_DIR, name) + WEIGHTS_SUFFIX)}


def network_input(card: dict) -> str:
  """The lr_mode a model card's network was trained on ("linear" for older cards)."""
  return card.get("lr_mode", "linear")


def common_network_input(cards) -> str:
  """The network input (lr_mode) that every model card names ("linear" when none does);
  ValueError when they differ, since one evaluation feeds all models the same input."""
  modes = {network_input(card) for card in cards}
  if len(modes) > 1:
    raise ValueError(f"the models were trained on different inputs: {sorted(modes)}")
  return modes.pop() if modes else "linear"


# The bar shipped weights must clear on the held-out volume (issue 7).
REQUIRED_GAIN_DB = 1.0  # PSNR above the bicubic baseline
GAN_TOLERANCE_DB = 1.0  # PSNR of GAN weights below the L1 weights'


def quality_shortfalls(whole: dict, l1_psnr=None) -> list:
  """How held-out whole-volume metrics ({method: metrics}) miss the bar, one phrase each;
  `l1_psnr` is the shipped L1 weights' PSNR when these are GAN weights."""
  model, cubic = whole["model"], whole["cubic"]
  shortfalls = []
  if model["psnr"] < cubic["psnr"] + REQUIRED_GAIN_DB:
    shortfalls.append(f"held-out PSNR {model['psnr']:.2f} dB, less than {REQUIRED_GAIN_DB} dB "
                      f"above bicubic {cubic['psnr']:.2f} dB")
  if model["ssim"] <= cubic["ssim"]:
    shortfalls.append(f"held-out SSIM {model['ssim']:.4f}, not above bicubic {cubic['ssim']:.4f}")
  if l1_psnr is not None and model["psnr"] < l1_psnr - GAN_TOLERANCE_DB:
    shortfalls.append(f"held-out PSNR {model['psnr']:.2f} dB, more than {GAN_TOLERANCE_DB} dB "
                      f"below the L1 weights' {l1_psnr:.2f} dB")
  return shortfalls
