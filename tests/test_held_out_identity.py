"""Held out by identity, not by name: a file is one volume wherever it is listed and whatever
it is called. One row per case, in the form of test_bad_input.py: a manifest that puts one
file (the same resolved path, or the same bytes) in two splits is refused in one `error:`
line naming both entries, and a release on a test volume that is a training volume of the
weights' card, under another name or at another path, is refused; nothing is written. The
commands run in this process; test_bad_input.py checks that such refusals come before
TensorFlow loads."""
import hashlib
import os

import pytest

from command_cases import check_refused_in_process
from identity_world import build_world
from mdcsrn_tf import identity, weights
from mdcsrn_tf.data import manifest
from mdcsrn_tf.evaluate import evaluation, subjects, tables
from mdcsrn_tf.weights import seen

EVALUATE = "evaluate --baselines=cubic --out_dir={out}/eval --manifest="
RELEASE = "release --out={out}/released --weights="


def shared(manifest, first, second, second_entry, how):
  """The refusal of a manifest whose entry `second` is entry `first`'s file, t1 in train."""
  return (f"{{{manifest}}}: entry {first} (t1, train split) and entry {second} "
          f"({second_entry} split) are one file ({how}); a volume belongs to one split")


def refused(test, name, card, how):
  """The refusal of a release whose test volume is the card's training volume t1."""
  return (f"{{{test}}}: test volume {name} is in the train split of {{{card}}}.json (as t1: "
          f"{how}); its figures would not be held out: *")


SAME_BYTES = "byte-identical, SHA-256 *..."
CASES = [
    (EVALUATE + "{same_path}", shared("same_path", 0, 1, "t1_again, test", "both are {t1}")),
    (EVALUATE + "{via_link}", shared("via_link", 0, 1, "linked, test", "both are {t1}")),
    (EVALUATE + "{via_dots}", shared("via_dots", 0, 1, "dotted, validation", "both are {t1}")),
    (EVALUATE + "{copied}", shared("copied", 1, 2, "renamed, test", SAME_BYTES)),
    (EVALUATE + "{relative}", shared("relative", 0, 1, "rel, test", "both are {t1}")),
    ("train --flagfile=flags/smoke_pretrain.cfg --workdir={out}/run --dataset={copied}",
     shared("copied", 1, 2, "renamed, test", SAME_BYTES)),
    # the card records each training volume's resolved path, size and SHA-256
    (RELEASE + "{recorded} --dataset={copy_test}", refused("copy", "renamed", "recorded",
                                                          SAME_BYTES)),
    (RELEASE + "{recorded} --dataset={link_test}", refused("link", "linked", "recorded",
                                                          "both are {t1}")),
    (RELEASE + "{recorded} --dataset={other_test}", refused("copy", "renamed", "recorded",
                                                           SAME_BYTES)),
    # an older card, names only: its volumes are found in its data set manifest
    (RELEASE + "{names_only} --dataset={copy_test}", refused("copy", "renamed", "names_only",
                                                            SAME_BYTES)),
    (RELEASE + "{names_only} --dataset={link_test}", refused("link", "linked", "names_only",
                                                            "both are {t1}")),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, colin27_crop, generator_weights):
  root = tmp_path_factory.mktemp("identity")
  return root, build_world(root, colin27_crop, generator_weights)


@pytest.mark.parametrize("command, message", CASES, ids=[case[0] for case in CASES])
def test_one_file_in_two_roles_is_one_error_line_and_changes_nothing(
    world, tmp_path, monkeypatch, capsys, command, message):
  monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  check_refused_in_process(*world, tmp_path, command, message, monkeypatch, capsys)


def test_files_of_one_size_with_other_bytes_are_two_files(world):
  _, paths = world
  assert [e["name"] for e in manifest.read(paths["one_size"])["test"]] == ["b"]
  assert os.path.getsize(paths["nii_a"]) == os.path.getsize(paths["nii_b"])
  card = weights.read_card(paths["recorded"])
  assert seen.TrainingVolumes(card).find(paths["other"], ("other",)) is None


def test_the_card_records_each_training_volume_by_resolved_path_size_and_sha256(world):
  _, paths = world
  (record,) = weights.read_card(paths["recorded"]).subjects[seen.FILES]["train"]
  with open(paths["t1"], "rb") as file:
    digest = hashlib.sha256(file.read()).hexdigest()
  assert record == {"name": "t1", "path": os.path.realpath(paths["t1"]),
                    "size": os.path.getsize(paths["t1"]), "sha256": digest}


def test_an_old_card_whose_data_set_is_gone_still_loads_and_matches_by_name(world):
  _, paths = world
  volumes = seen.TrainingVolumes(weights.read_card(paths["names_lost"]))
  assert volumes.find(paths["copy"], ("renamed",)) is None  # nothing left to compare
  assert volumes.find(paths["copy"], ("t1",)) == seen.Seen("train", "t1", "by name")


def test_evaluate_warns_and_the_tables_say_not_held_out_hashing_each_volume_once(
    world, monkeypatch):
  _, paths = world
  hashed = []
  read = identity.read_sha256
  monkeypatch.setattr(identity, "read_sha256", lambda path: hashed.append(path) or read(path))
  monkeypatch.setattr(identity, "_DIGESTS", {})
  monkeypatch.setattr(identity, "_FINGERPRINTS", {})
  scored = subjects.manifest_subjects(paths["other_test"], "test")
  networks = {"new": paths["recorded"], "old": paths["names_only"]}
  warnings = evaluation.seen_in_training(scored, networks)
  for method in networks:
    assert [line for line in warnings if f"of {method}'s model card" in line] == [
        f"warning: renamed is in the train split of {method}'s model card "
        f"({networks[method]}.json; as t1: byte-identical, SHA-256 "
        f"{identity.content_sha256(paths['t1'])[:16]}...): its figures are not held-out "
        "figures"]
  found = tables.seen_subjects(scored, {m: weights.read_card(p) for m, p in networks.items()})
  assert set(found) == set(networks) and all(list(f) == ["renamed"] for f in found.values())
  assert sorted(hashed) == sorted({paths["copy"], paths["t1"]})  # each file once
