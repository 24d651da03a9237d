"""The weights shipped in mdcsrn_tf/weights/ (issue 7): they load into the registered model
and reproduce, on the held-out volume's fixed crop, the metrics their model card states."""
import numpy as np
import pytest

from mdcsrn_tf import evaluate_lib, models, weights
from mdcsrn_tf.data import intensity, nifti, samples

SHIPPED = weights.shipped()


@pytest.mark.skipif(not SHIPPED, reason="no shipped weights in mdcsrn_tf/weights/")
@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_shipped_weights_reproduce_their_model_card(kind):
  card = weights.read_card(SHIPPED[kind])
  assert card["model"] == "b4u4" and card["shipped_as"] == kind
  model = weights.load_generator(SHIPPED[kind])
  assert model.count_params() == models.build_model(card["model"]).count_params()
  held_out = card["held_out"]
  # the held-out subject never trained or validated the weights
  assert held_out["subject"] not in {name.split("_")[0] for names in card["subjects"].values()
                                     for name in names}
  path = samples.find(held_out["volume"])
  if path is None:
    pytest.skip(f"{held_out['volume']} is not installed (make samples)")
  hr = intensity.normalise(nifti.load_volume(path)[0])[0]
  check = held_out["check_crop"]
  crop, starts = evaluate_lib.central_crop(hr, check["edge"])
  assert starts == check["start"]
  measured = evaluate_lib.evaluate_volume(
      crop, {"linear": None, "cubic": None, "zero_filled": None, "model": model},
      network_input=card["lr_mode"], tile=held_out["tile"], margin=held_out["margin"])
  for method, stated in check["metrics"].items():
    for metric in ("ssim", "psnr", "nrmse"):
      assert measured[method][metric] == pytest.approx(stated[metric], abs=1e-3), (method, metric)
  whole = held_out["whole_volume"]
  beats_bicubic = whole["model"]["psnr"] - whole["cubic"]["psnr"] >= 1.0
  assert beats_bicubic != ("warning" in card)  # weights below the bar say so wherever used


@pytest.mark.skipif(not {"l1", "gan"} <= set(SHIPPED), reason="needs both shipped weights")
def test_gan_weights_come_from_the_shipped_l1_weights():
  gan = weights.read_card(SHIPPED["gan"])
  l1 = weights.read_card(SHIPPED["l1"])
  assert gan["phase"] == "gan" and l1["phase"] == "pretrain"
  psnr_gan = gan["held_out"]["whole_volume"]["model"]["psnr"]
  psnr_l1 = l1["held_out"]["whole_volume"]["model"]["psnr"]
  assert np.isfinite(psnr_gan) and psnr_gan >= psnr_l1 - 1.0  # the GAN keeps PSNR
