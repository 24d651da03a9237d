"""Model cards record their weights' SHA-256, and loading refuses weights that do not match."""
import hashlib
import json
import os

import keras
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.models import build_model
from mdcsrn_tf.weights.card import ModelCard


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  keras.utils.set_random_seed(11)
  model = build_model("b2u4", identity_init=False)
  base = weights.save_generator(model, tmp_path_factory.mktemp("w") / "gen",
                                ModelCard("b2u4", training={"steps": 3}))
  return model, base


def test_the_card_records_the_sha256_of_the_weights_file(saved):
  _, base = saved
  card = weights.read_card(base)
  with open(base + weights.WEIGHTS_SUFFIX, "rb") as file:
    assert card.weights_sha256 == hashlib.sha256(file.read()).hexdigest()
  assert card.steps == 3 and card.model == "b2u4"


def test_weights_that_match_their_card_load_as_saved(saved):
  model, base = saved
  for got, expected in zip(weights.load_generator(base)[0].get_weights(), model.get_weights()):
    np.testing.assert_array_equal(got, expected)


def corrupt(source_base, target_base, offset_fraction=0.5, count=64):
  """Copies weights and card, with `count` bytes of the weights file set to 0xff."""
  data = bytearray(open(source_base + weights.WEIGHTS_SUFFIX, "rb").read())
  at = int(len(data) * offset_fraction)
  data[at:at + count] = b"\xff" * count
  with open(target_base + weights.WEIGHTS_SUFFIX, "wb") as file:
    file.write(data)
  with open(source_base + weights.CARD_SUFFIX, encoding="utf-8") as file:
    card = json.load(file)
  return card


def write_card(base, card):
  with open(base + weights.CARD_SUFFIX, "w", encoding="utf-8") as file:
    json.dump(card, file)


def test_corrupted_weights_are_refused_naming_the_file(saved, tmp_path):
  _, base = saved
  target = str(tmp_path / "corrupted")
  write_card(target, corrupt(base, target))
  with pytest.raises(InputError, match=f"^{target}.weights.h5: SHA-256 .* model card"):
    weights.load_generator(target)
  with pytest.raises(InputError, match="SHA-256"):  # also when the model is named
    weights.load_generator(target, "b2u4")


def test_a_card_without_checksum_is_refused_unless_asked_for(saved, tmp_path):
  """Cards written before checksums are refused (a damaged file would load unnoticed), and
  load what the file holds when the user asks: here 64 bytes of 0xff make NaN weights,
  which the commands then refuse to write out (tests/test_bad_input.py)."""
  _, base = saved
  target = str(tmp_path / "unchecked")
  card = corrupt(base, target)
  del card["weights_sha256"]
  write_card(target, card)
  with pytest.raises(InputError, match=r"unchecked\.json: model card records no SHA-256"):
    weights.load_generator(target)
  loaded, _ = weights.load_generator(target, allow_unverified=True)
  assert any(np.isnan(w).any() for w in loaded.get_weights())


def test_weights_are_named_by_path_or_by_their_shipped_name(saved, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for name in weights.shipped_names():  # every shipped file answers to its name
    assert weights.resolve(name) == os.path.join(weights.SHIPPED_DIR, name)
  assert set(weights.shipped_names()) >= {"b4u4_l1", "b4u4_gan"}
  # a path is taken as it is, even one that does not exist, as is a file of that name here
  base = saved[1]
  assert weights.resolve(base) == base
  assert weights.resolve(os.path.join("runs", "b4u4_l1")) == os.path.join("runs", "b4u4_l1")
  (tmp_path / "b4u4_l1.weights.h5").write_bytes(b"")
  assert weights.resolve("b4u4_l1") == "b4u4_l1"
  # a bare name that is neither a file here nor shipped: refused, naming what is shipped
  with pytest.raises(InputError, match=r"b5u4_l1\.weights\.h5: no such weights file here, "
                     r"and no shipped weights named b5u4_l1 \(shipped: .*b4u4_l1"):
    weights.resolve("b5u4_l1.weights.h5")
