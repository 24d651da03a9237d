"""The files test_no_replace.py's and test_messages.py's cases refer to: a real Colin27 crop,
a user's page, files and symbolic links already where outputs would go (a report, an ONNX
file, released weights, a SavedModel, a folder of notes, a splits table, a broken link), a
real BIDS dataset with links into it and derivatives folders that are not this pipeline's,
and one whose participant folders include one with an invalid BIDS label."""
import os
import shutil


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as file:
    file.write(text)
  return str(path)


def build_world(root, colin27_crop, bids_tree, generator):
  """{name: path} of everything the cases refer to, made under ROOT."""
  (root / "in").mkdir()
  paths = {"root": str(root), "weights": generator,
           "scan": str(colin27_crop(root / "in" / "scan.nii.gz")),
           "page": _write(root / "mine" / "page.html", "<p>the user's own page</p>\n"),
           "taken_report": _write(root / "taken" / "qc.html", "<p>an earlier report</p>\n"),
           "link_report": str(root / "linked" / "qc.html"),
           "bids": bids_tree(root / "bids"),
           "to_sub01": str(root / "to_sub01"), "to_bids": str(root / "to_bids"),
           "derivs_link": str(root / "derivs_link"),
           "foreign": _write(root / "foreign" / "sub-01.html", "<p>not ours</p>\n"),
           "onnx_taken": _write(root / "exports" / "net.onnx", "not an ONNX file\n"),
           "onnx_link": str(root / "exports" / "link.onnx"),
           "notes": _write(root / "exports" / "notes" / "readme.txt", "notes\n"),
           "saved_model": _write(root / "exports" / "serving" / "1" / "saved_model.pb", ""),
           "released": _write(root / "released" / "b2u4_l1.weights.h5", "the user's\n"),
           "splits_only": _write(root / "splits_only" / "splits.tsv", "the user's table\n"),
           "broken": str(root / "broken")}
  os.symlink(root / "nowhere", paths["broken"])
  for name in ("foreign", "notes", "saved_model", "released", "splits_only"):
    paths[name] = os.path.dirname(paths[name])
  os.makedirs(os.path.dirname(paths["link_report"]))
  os.symlink(paths["page"], paths["link_report"])
  os.symlink(paths["page"], paths["onnx_link"])
  os.symlink(os.path.join(paths["bids"], "sub-01"), paths["to_sub01"])
  os.symlink(paths["bids"], paths["to_bids"])
  os.makedirs(paths["derivs_link"])
  os.symlink(os.path.join(paths["bids"], "sub-01"), os.path.join(paths["derivs_link"], "sub-01"))
  # a participant folder whose label is not letters and digits (a backup, say)
  paths["odd_bids"] = bids_tree(root / "odd_bids")
  shutil.copytree(os.path.join(paths["odd_bids"], "sub-01"),
                  os.path.join(paths["odd_bids"], "sub-01_old"))
  for folder, _, names in os.walk(os.path.join(paths["odd_bids"], "sub-01_old")):
    for name in names:
      os.rename(os.path.join(folder, name),
                os.path.join(folder, name.replace("sub-01_", "sub-01_old_")))
  return paths
