"""The files test_held_out_identity.py's cases refer to: a training volume and its
validation partner (real Colin27 crops), the training volume again under other names (a
byte-identical copy elsewhere, a symbolic link, a path through `..`), manifests that put
one file in two splits, test splits made of those, and weights whose model card records
the training volumes' identities, or (an older card) only their names."""
import dataclasses
import json
import os
import shutil
import time

from mdcsrn_tf import weights
from mdcsrn_tf.weights import card as cards
from mdcsrn_tf.weights import seen

OLD = time.time() - 3600  # files older than the hash cache's racy window


def _manifest(path, entries):
  with open(path, "w", encoding="utf-8") as file:
    json.dump({"subjects": entries}, file)
  return str(path)


def _weights_with(generator, base, dataset, subjects):
  """A copy of `generator`'s weights whose card names `dataset` and `subjects`."""
  shutil.copy(generator + weights.WEIGHTS_SUFFIX, str(base) + weights.WEIGHTS_SUFFIX)
  card = dataclasses.replace(weights.read_card(generator), dataset=dataset, subjects=subjects)
  cards.write(base, card)
  return str(base)


def build_world(root, colin27_crop, generator):
  """{name: path} of everything the cases refer to, made under ROOT."""
  for folder in ("train", "copies", "links", "test", "nii"):
    (root / folder).mkdir()
  paths = {"root": str(root),
           "t1": str(colin27_crop(root / "train" / "t1.nii.gz")),
           "v1": str(colin27_crop(root / "train" / "v1.nii.gz", start=(60, 80, 60))),
           "other": str(colin27_crop(root / "test" / "other.nii.gz", start=(80, 100, 80))),
           "copy": str(root / "copies" / "renamed.nii.gz"),
           "link": str(root / "links" / "t1_link.nii.gz"),
           "dotted": str(root / "links" / ".." / "train" / "t1.nii.gz")}
  shutil.copy(paths["t1"], paths["copy"])
  os.symlink(paths["t1"], paths["link"])
  for name in ("nii_a", "nii_b"):  # one shape, uncompressed: one size, other bytes
    paths[name] = str(colin27_crop(root / "nii" / f"{name}.nii",
                                   start=(70, 90, 70 if name == "nii_a" else 71)))
  for name in ("t1", "v1", "other", "copy", "nii_a", "nii_b"):
    os.utime(paths[name], (OLD, OLD))
  train = {"name": "t1", "subject": "t1", "path": paths["t1"], "split": "train"}
  validation = {"name": "v1", "subject": "v1", "path": paths["v1"], "split": "validation"}
  paths["training"] = _manifest(root / "train" / "manifest.json", [train, validation])
  test = {"split": "test"}
  for name, entries in {
      "same_path": [train, {**train, **test, "name": "t1_again", "subject": "t1_again"}],
      "via_link": [train, {**test, "name": "linked", "path": paths["link"]}],
      "via_dots": [train, {**validation, "name": "dotted", "path": paths["dotted"]}],
      "copied": [validation, train, {**test, "name": "renamed", "path": paths["copy"]}],
      "relative": [train, {**test, "name": "rel", "path": "t1.nii.gz"}],
      "one_size": [{**train, "path": paths["nii_a"]}, {**test, "name": "b", "path": paths["nii_b"]}],
      "copy_test": [{**test, "name": "renamed", "path": paths["copy"]}],
      "link_test": [{**test, "name": "linked", "path": paths["link"]}],
      "other_test": [{**test, "name": "other", "path": paths["other"]},
                     {**test, "name": "renamed", "path": paths["copy"]}]}.items():
    folder = root / ("train" if name == "relative" else "test")
    paths[name] = _manifest(folder / f"{name}.json", entries)
  names = {"train": ["t1"], "validation": ["v1"]}
  records = {split: seen.volume_records(names[split], [entry])
             for split, entry in (("train", train), ("validation", validation))}
  paths["recorded"] = _weights_with(generator, root / "recorded", paths["training"],
                                    {**names, seen.FILES: records})
  paths["names_only"] = _weights_with(generator, root / "names_only", paths["training"], names)
  paths["names_lost"] = _weights_with(generator, root / "names_lost",
                                      str(root / "moved.json"), names)
  return paths
