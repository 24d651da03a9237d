"""The two shipped sets (weights.SETS): the commands' defaults are the whole-head set's
weights where an install ships them, else the tables' b4u4, and release names them by set."""
import os
import shutil

import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.errors import InputError


@pytest.fixture
def install(tmp_path, monkeypatch):
  """A shipped-weights folder holding copies of the given shipped weights under new names."""
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))

  def ship(**names):  # new name: shipped name it copies
    for name, source in names.items():
      for suffix in (weights.WEIGHTS_SUFFIX, weights.CARD_SUFFIX):
        shutil.copy(os.path.join(os.path.dirname(weights.__file__), source + suffix),
                    tmp_path / (name + suffix))
    return tmp_path

  return ship


def test_the_heads_set_is_the_default_where_shipped_and_the_tables_fill_in(install):
  folder = install(b4u4_l1="b4u4_l1", b4u4_gan="b4u4_gan")
  assert weights.default_weights("l1") == os.path.join(folder, "b4u4_l1")
  install(heads_b4u4_l1="b4u4_l1")
  assert weights.default_weights("l1") == os.path.join(folder, "heads_b4u4_l1")
  assert weights.default_weights("gan") == os.path.join(folder, "b4u4_gan")
  assert weights.shipped() == {"l1": os.path.join(folder, "heads_b4u4_l1"),
                               "gan": os.path.join(folder, "b4u4_gan")}
  assert weights.shipped_network("b4u4", "heads") == os.path.join(folder, "heads_b4u4_l1")
  assert weights.shipped_network("b4u4") == os.path.join(folder, "b4u4_l1")
  assert weights.resolve("heads_b4u4_l1") == os.path.join(folder, "heads_b4u4_l1")


def test_without_any_shipped_weights_the_default_is_one_error_naming_the_file(install):
  folder = install()
  with pytest.raises(InputError, match=os.path.join(str(folder), "b4u4_gan")):
    weights.default_weights("gan")


def test_release_names_weights_by_their_set(tmp_path):
  from mdcsrn_tf.release import ReleaseOptions  # pylint: disable=import-outside-toplevel

  for weight_set, name in (("tables", "b4u4_l1"), ("heads", "heads_b4u4_l1")):
    options = ReleaseOptions(weights="b4u4_l1", weight_set=weight_set, out=str(tmp_path))
    assert options.destination("b4u4") == os.path.join(tmp_path, name)
  with pytest.raises(InputError, match="--weight_set must be one of tables, heads"):
    ReleaseOptions(weights="b4u4_l1", weight_set="mine", out=str(tmp_path))
