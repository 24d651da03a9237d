"""The tables from the shipped weights' model cards: each network's row from its own card's
held-out figures, the baselines' from the first card, mean (std) over the heads, and the
in-mask figures over the heads that have a mask (their own n, the mean alone for one)."""
import numpy as np
import pytest

from mdcsrn_tf import metrics, weights
from mdcsrn_tf.evaluate import tables
from mdcsrn_tf.models import build_model
from mdcsrn_tf.weights.card import ModelCard


def figures(psnr, masked_psnr=None):
  """Every registry figure of one method on one head, PSNR as given, the rest 0.5."""
  values = {metric.name: 0.5 for metric in metrics.REGISTRY}
  values.update(psnr=psnr, seconds=1.0)
  if masked_psnr is not None:
    values.update({metric.masked_name: 0.5 for metric in metrics.REGISTRY},
                  psnr_mask=masked_psnr)
  return values


@pytest.fixture
def shipped_b2u4(tmp_path, monkeypatch):
  """A package whose only shipped network is b2u4, its card scored on two heads, the first
  with a mask."""
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  per_volume = {"head_a": {"model": figures(40.0, 44.0), "cubic": figures(38.0, 41.0)},
                "head_b": {"model": figures(35.0), "cubic": figures(34.0)}}
  weights.save_generator(build_model("b2u4"), tmp_path / "b2u4_l1",
                         ModelCard("b2u4", held_out={"per_volume": per_volume}))
  return per_volume


def test_rows_come_from_the_cards_with_the_spread_over_the_heads(shipped_b2u4):
  rows = {row["method"]: row for row in tables.card_rows(["cubic", "b2u4", "fsrcnn"])}
  network = rows[tables.LABELS["b2u4"]]
  assert network["psnr"] == pytest.approx((37.5, np.std([40.0, 35.0], ddof=1)))
  assert network["psnr_mask"][0] == pytest.approx(44.0) and network["psnr_mask"][1] is None
  assert (network["n"], network["n_mask"]) == (2, 1)
  trainable = sum(int(np.prod(w.shape)) for w in build_model("b2u4").trainable_weights)
  assert network["params"] == trainable
  assert network["note"] == "shipped weights b2u4_l1 (CPU budget)"
  assert rows[tables.LABELS["cubic"]]["psnr"] == pytest.approx((36.0, np.std([38, 34], ddof=1)))
  assert rows[tables.LABELS["fsrcnn"]]["psnr"] is None  # no weights: no invented figure

  table = tables.markdown(list(rows.values())).splitlines()
  header = [cell.strip() for cell in table[0].strip("|").split("|")]
  b2u4 = [cell.strip() for cell in table[3].strip("|").split("|")]
  column = dict(zip(header, b2u4))
  # mean (std) over both heads; inside the mask one head: the mean alone
  assert column["PSNR"] == f"37.50 ({np.std([40.0, 35.0], ddof=1):.2f})"
  assert column["PSNR in mask"] == "44.00"
  assert (column["n"], column["n in mask"]) == ("2", "1")


def test_without_shipped_weights_there_is_no_card_to_read(tmp_path, monkeypatch):
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  with pytest.raises(ValueError, match="no shipped weights"):
    tables.card_rows(["cubic", "b4u4"])
