"""The release: it scores weights on every test volume (or the one named), refuses a test
volume the weights trained or validated on and weights below the bar, writes to the folder
the user names, and replaces the package's shipped weights only when asked, keeping a copy
of them. The weights are the shipped b4u4 L1 ones, scored on 64^3 crops of the held-out
Colin27 around its brain's centre."""
import hashlib
import json
import shutil
import time

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import release, weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.models import build_model
from mdcsrn_tf.weights.card import ModelCard

CENTRE_START = (58, 76, 58)  # the central 64^3 of Colin27's 181 x 217 x 181 grid


def sha256(path):
  with open(path, "rb") as file:
    return hashlib.sha256(file.read()).hexdigest()


@pytest.fixture(scope="module")
def test_split(tmp_path_factory, colin27_crop, sample):
  """A manifest whose test split holds two 64^3 crops of Colin27 (the centre, and one
  shifted by 8 voxels), each with its brain mask cropped alike."""
  root = tmp_path_factory.mktemp("release")
  brain = nib.load(sample("colin27_1mm_bet"))
  entries = []
  for name, start in (("colin_centre", CENTRE_START), ("colin_shifted", (66, 76, 58))):
    path = colin27_crop(root / f"{name}.nii.gz", (64, 64, 64), start)
    mask = root / f"{name}_brain.nii.gz"
    box = tuple(slice(s, s + 64) for s in start)
    nib.Nifti1Image(np.asarray(brain.dataobj)[box], nib.load(path).affine).to_filename(mask)
    entries.append({"name": name, "subject": name, "path": str(path), "mask": str(mask),
                    "split": "test"})
  manifest = root / "manifest.json"
  manifest.write_text(json.dumps({"subjects": entries}))
  return str(manifest), entries


def options(**fields):
  return release.ReleaseOptions(**{"weights": weights.shipped()["l1"], "kind": "l1",
                                   "check_crop": 32, **fields})


def test_every_test_volume_is_scored_and_the_weights_go_to_the_named_folder(test_split,
                                                                             tmp_path):
  manifest, entries = test_split
  shipped = weights.shipped()["l1"] + weights.WEIGHTS_SUFFIX
  before = sha256(shipped)
  base = release.release(options(dataset=manifest, out=str(tmp_path / "out")), log=print)
  assert base == str(tmp_path / "out" / "b4u4_l1")
  assert sha256(shipped) == before  # the package's weights untouched
  card = json.loads((tmp_path / "out" / "b4u4_l1.json").read_text())
  assert card["weights_sha256"] == sha256(base + weights.WEIGHTS_SUFFIX)
  held_out = card["held_out"]
  assert held_out["volumes"] == [e["name"] for e in entries]
  assert held_out["dataset"] == "manifest.json"  # outside the working directory: its name
  for method in ("model", "cubic"):
    for metric in ("psnr", "ssim", "psnr_mask"):
      per_volume = [held_out["per_volume"][e["name"]][method][metric] for e in entries]
      assert held_out["whole_volume"][method][metric] == pytest.approx(np.mean(per_volume))
  # a second release into the same folder would overwrite the first: refused unless asked
  with pytest.raises(InputError, match=r"b4u4_l1\.weights\.h5: exists already \(and 1 more\); "
                                       "pass --overwrite to replace"):
    release.release(options(dataset=manifest, out=str(tmp_path / "out")))


def test_replacing_the_shipped_weights_keeps_a_copy_of_them(test_split, tmp_path, monkeypatch):
  manifest, entries = test_split
  for suffix in (weights.WEIGHTS_SUFFIX, weights.CARD_SUFFIX):
    shutil.copy2(weights.shipped()["l1"] + suffix, tmp_path / f"b4u4_l1{suffix}")
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  old = sha256(tmp_path / "b4u4_l1.weights.h5")
  base = release.release(options(weights=str(tmp_path / "b4u4_l1"), dataset=manifest,
                                 subject="colin_shifted", replace_shipped=True))
  assert base == str(tmp_path / "b4u4_l1")
  (backup,) = (tmp_path / "backups").glob("b4u4_l1-*.weights.h5")
  assert sha256(backup) == old
  held_out = weights.read_card(base).held_out
  assert held_out["volumes"] == ["colin_shifted"] and held_out["volume"] == "colin_shifted"


def test_a_test_volume_the_weights_trained_on_is_refused(test_split, tmp_path):
  manifest, entries = test_split
  seen = tmp_path / "seen.json"
  trained_on = {**entries[0], "name": "pydeface_mean_head"}  # the shipped card's validation
  seen.write_text(json.dumps({"subjects": [trained_on]}))
  with pytest.raises(InputError, match="pydeface_mean_head is in the validation split of"):
    release.release(options(dataset=str(seen), out=str(tmp_path / "out")))
  assert not (tmp_path / "out").exists()


def test_weights_below_the_bar_are_refused_and_nothing_is_written(test_split, tmp_path):
  manifest, _ = test_split
  keras.utils.set_random_seed(3)
  random = weights.save_generator(build_model("b1u8", identity_init=False), tmp_path / "random",
                                  ModelCard("b1u8"))
  with pytest.raises(InputError, match=r"below the release bar on 1 test volume.*PSNR"):
    release.release(options(weights=random, dataset=manifest, subject="colin_centre",
                            out=str(tmp_path / "out")))
  assert not (tmp_path / "out").exists()
  # a row of the paper's tables ships whatever it scores, its misses in the card's warning
  base = release.release(options(weights=random, dataset=manifest, subject="colin_centre",
                                 out=str(tmp_path / "out"), below_bar=True))
  card = weights.read_card(base)
  assert card.warning.startswith("below the project's bar: held-out whole-volume PSNR")
  assert card.warning.count(";") + 1 == len(release.quality_shortfalls(
      card.held_out["whole_volume"]))


def test_released_cards_name_no_path_of_the_machine(tmp_path):
  repository = tmp_path / "repository"
  card = ModelCard("b4u4", dataset=str(repository / "data" / "manifest.json"),
                   training={"workdir": "runs/b4u4", "cache_dir": str(tmp_path / "cache"),
                             "losses": [str(repository / "runs" / "a.json")], "steps": 5},
                   held_out={"mask": "/usr/share/mricron/templates/ch2bet.nii.gz"})
  moved = release.portable(card, root=str(repository))
  assert moved.dataset == "data/manifest.json"
  assert moved.training == {"workdir": "runs/b4u4", "cache_dir": "cache",
                            "losses": ["runs/a.json"], "steps": 5}
  assert moved.held_out == {"mask": "ch2bet.nii.gz"}  # a package's file: not on every machine
  assert moved.acquisition == card.acquisition and moved.model == "b4u4"


def test_out_and_replace_shipped_are_one_choice():
  for fields in ({}, {"out": "x", "replace_shipped": True}):
    with pytest.raises(InputError, match="give --out DIR"):
      release.ReleaseOptions(weights="w", **fields)


def test_weights_are_written_under_their_network_and_kind(tmp_path, monkeypatch):
  assert release.ReleaseOptions(weights="w", kind="gan", out=str(tmp_path)).destination(
      "srresnet") == str(tmp_path / "srresnet_gan")
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path / "package"))
  assert release.ReleaseOptions(weights="w", replace_shipped=True).destination(
      "b1u8") == str(tmp_path / "package" / "b1u8_l1")


def test_two_backups_within_one_second_keep_both_copies(tmp_path, monkeypatch):
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  frozen = time.gmtime(0)
  monkeypatch.setattr(time, "gmtime", lambda *_: frozen)
  base = str(tmp_path / "b4u4_l1")
  contents = []
  for generation in (b"first weights", b"second weights"):
    (tmp_path / "b4u4_l1.weights.h5").write_bytes(generation)
    (tmp_path / "b4u4_l1.json").write_bytes(b"card of " + generation)
    contents.append(release.keep_backup(base))
  assert contents[0] != contents[1]
  for backup, generation in zip(contents, (b"first weights", b"second weights")):
    assert open(backup + weights.WEIGHTS_SUFFIX, "rb").read() == generation
    assert open(backup + weights.CARD_SUFFIX, "rb").read() == b"card of " + generation
  assert release.keep_backup(str(tmp_path / "nothing_shipped")) is None


def test_a_backup_never_takes_the_name_of_a_stray_card(tmp_path, monkeypatch):
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  frozen = time.gmtime(0)
  monkeypatch.setattr(time, "gmtime", lambda *_: frozen)
  stamp = time.strftime("%Y%m%dT%H%M%SZ", frozen)
  stray = tmp_path / "backups" / f"b4u4_l1-{stamp}.json"
  stray.parent.mkdir()
  stray.write_bytes(b"a card whose weights were deleted")
  (tmp_path / "b4u4_l1.weights.h5").write_bytes(b"weights")
  (tmp_path / "b4u4_l1.json").write_bytes(b"card")
  backup = release.keep_backup(str(tmp_path / "b4u4_l1"))
  assert stray.read_bytes() == b"a card whose weights were deleted"
  assert open(backup + weights.WEIGHTS_SUFFIX, "rb").read() == b"weights"
  assert open(backup + weights.CARD_SUFFIX, "rb").read() == b"card"
