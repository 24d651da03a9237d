"""The SavedModel's Python front end (mdcsrn_tf.export.serving) on a small real volume: the
export carries its weights' model card as it is, and the front end checks a NIfTI file
against that card's training domain before the signature runs (a warning line, or with
`strict` a refusal that writes nothing), then writes what the signature returns, which is
the Keras tiled pass, and a coarser scan goes onto the HR grid as mdcsrn-sr puts it; an
export without a card is served unchecked, and a card outside the schema is refused naming
it."""
import json
import shutil

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import weights
from mdcsrn_tf.data import intensity
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.export import saved_model, serving
from mdcsrn_tf.infer import inference, predict, trust
from mdcsrn_tf.models import build_model
from mdcsrn_tf.weights.card import ModelCard


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """(generator, its SavedModel folder, its card file): a random b2u4 whose card carries
  the tables' b4u4 card's acquisition and training domain, exported as mdcsrn-export does."""
  root = tmp_path_factory.mktemp("serving")
  keras.utils.set_random_seed(3)
  shipped = weights.read_card(weights.shipped_path("b4u4_l1"))
  card = ModelCard("b2u4", acquisition=shipped.acquisition,
                   training_domain=shipped.training_domain)
  base = weights.save_generator(build_model("b2u4", identity_init=False), root / "gen", card)
  out = saved_model.export(saved_model.ExportOptions(weights=str(base), tile="16",
                                                     out=str(root / "serving" / "1")))
  return weights.load_generator(base)[0], out, weights.base_path(base) + weights.CARD_SUFFIX


@pytest.fixture
def nibabel_head(tmp_path):
  """nibabel's anatomical.nii (a real 2 mm head, 33 x 41 x 25): sharper than the tables'
  weights' training inputs (and nothing else they would flag)."""
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel

  path = tmp_path / "anatomical.nii"
  path.write_bytes(open(f"{data_path}/anatomical.nii", "rb").read())
  return str(path)


def test_the_export_carries_its_weights_model_card_as_it_is(exported):
  _, out, card_file = exported
  carried = f"{out}/{saved_model.CARD}"
  assert open(carried, "rb").read() == open(card_file, "rb").read()
  shipped = weights.read_card(weights.shipped_path("b4u4_l1"))
  assert serving.card_of(out).training_domain == shipped.training_domain


def test_a_scan_outside_the_domain_is_warned_of_then_served_as_keras_tiles_it(
    exported, nibabel_head, tmp_path):
  model, out, _ = exported
  lines, output = [], tmp_path / "sr.nii.gz"
  recorded = serving.Served(out).super_resolve_file(nibabel_head, output, log=lines.append)
  (line,) = lines
  assert line.startswith(f"warning: {nibabel_head}: sharper or noisier than the network's "
                         "training inputs")
  assert recorded == [line[len("warning: "):]]
  source, result = nib.load(nibabel_head), nib.load(output)
  # mapped onto [0, 1] as mdcsrn-sr maps it (this head has negative voxels: by its range)
  normalised, mapping = intensity.normalise(source.get_fdata(dtype=np.float32))
  expected = intensity.denormalise(inference.super_resolve(model, normalised, tile=16, margin=3,
                                                           progress=False), mapping)
  np.testing.assert_allclose(result.get_fdata(dtype=np.float32), expected,
                             atol=1e-4 * mapping.scale)
  np.testing.assert_array_equal(result.affine, source.affine)


def test_a_coarser_scan_is_placed_on_the_hr_grid_as_mdcsrn_sr_places_it(exported, nibabel_head,
                                                                        tmp_path):
  model, out, _ = exported
  served = serving.Served(out)
  output, reference = tmp_path / "sr.nii.gz", tmp_path / "reference.nii.gz"
  served.super_resolve_file(nibabel_head, output, scale=(2, 2, 1), log=[].append)
  predict.super_resolve_file(nibabel_head, reference, model, tile=16, scale=(2, 2, 1),
                             progress=False, acquisition=served.acquisition)
  result, expected = nib.load(output), nib.load(reference)
  assert result.shape == (66, 82, 25)
  scale = float(np.ptp(nib.load(nibabel_head).get_fdata()))
  np.testing.assert_allclose(result.get_fdata(dtype=np.float32),
                             expected.get_fdata(dtype=np.float32), atol=1e-4 * scale)
  np.testing.assert_array_equal(result.affine, expected.affine)
  with pytest.raises(InputError, match=rf"^{nibabel_head}: .*3,3,1.*SavedModel {out}"):
    served.super_resolve_file(nibabel_head, tmp_path / "refused.nii.gz", scale=(3, 3, 1))
  assert not (tmp_path / "refused.nii.gz").exists()


def test_a_network_output_with_nan_voxels_is_one_error_and_no_file(nibabel_head, tmp_path):
  windows = keras.Input((None, None, None, 1))
  # 0 / 0 at the head's darkest voxels, which the mapping onto [0, 1] puts at 0
  dividing = keras.Model(windows, keras.layers.Lambda(lambda x: x / x)(windows))
  out = saved_model.export_saved_model(dividing, str(tmp_path / "nan" / "1"), tile=16)
  with pytest.raises(InputError, match=rf"^{nibabel_head}: the SavedModel {out}: network "
                                       r"output has NaN or Inf voxels \(corrupted or "
                                       r"diverged weights\); nothing written$"):
    serving.Served(out).super_resolve_file(nibabel_head, tmp_path / "sr.nii.gz")
  assert not (tmp_path / "sr.nii.gz").exists()


def test_strict_refuses_a_scan_outside_the_domain_and_writes_nothing(exported, nibabel_head,
                                                                     tmp_path):
  _, out, _ = exported
  with pytest.raises(InputError, match=rf"^{nibabel_head}: sharper or noisier .*outside the "
                                       rf"training domain of the SavedModel {out}; --strict"
                                       r"\); nothing written$"):
    serving.Served(out).super_resolve_file(nibabel_head, tmp_path / "sr.nii.gz", strict=True)
  assert not (tmp_path / "sr.nii.gz").exists()


def test_an_export_without_a_card_is_served_unchecked(exported, nibabel_head, tmp_path):
  _, out, _ = exported
  older = tmp_path / "older"
  shutil.copytree(out, older)
  (older / saved_model.CARD).unlink()
  lines = []
  recorded = serving.Served(older).super_resolve_file(nibabel_head, tmp_path / "sr.nii.gz",
                                                      log=lines.append)
  assert recorded == [trust.UNCHECKED] and lines == []
  assert (tmp_path / "sr.nii.gz").is_file()


def test_a_card_outside_the_schema_is_refused_naming_it(exported, tmp_path):
  _, out, card_file = exported
  edited = tmp_path / "edited"
  shutil.copytree(out, edited)
  fields = json.load(open(card_file, encoding="utf-8"))
  fields["training_domain"]["volumes"]["itk_kmeans_t1"]["interior_skew"] = "high"
  (edited / saved_model.CARD).write_text(json.dumps(fields), encoding="utf-8")
  with pytest.raises(InputError, match=rf"^{edited / saved_model.CARD}: model card field "
                                       r"training_domain\.volumes\.itk_kmeans_t1\.interior_skew"):
    serving.Served(edited)
