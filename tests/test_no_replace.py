"""No file replaced unasked: every path a command writes follows destinations.py's rule. One
row per refused case, in the form of test_bad_input.py (one `error:` line, exit status 2,
every file and link as it was); then what `--overwrite` does with a link (the link is
replaced, never the file it points to). The commands run in this process."""
import os

import pytest

from command_cases import check_refused_in_process, run_in_process
from mdcsrn_tf import files
from output_world import build_world

REPLACE = "exists already; pass --overwrite to replace, or "
RAW = "the derivatives must not be written into the raw dataset's own folders *"
CASES = [
    # mdcsrn-sr's report, like its outputs: a file or a link there needs --overwrite
    ("predict {scan} {out}/sr.nii.gz --report {taken_report}",
     "{taken_report}: " + REPLACE + "choose another --report"),
    ("predict {scan} {out}/sr.nii.gz --report {link_report}",
     "{link_report}: " + REPLACE + "choose another --report"),
    ("predict {scan} --out_dir {out}/sr --report {link_report}",
     "{link_report}: " + REPLACE + "choose another --report"),
    # BIDS: the raw dataset's folders by their resolved paths, and never written through a link
    ("bids {bids} {to_sub01}/derivatives participant", "{to_sub01}/derivatives: " + RAW),
    ("bids {bids} {to_sub01} participant", "{to_sub01}: " + RAW),
    ("bids {bids} {to_bids} participant", "{to_bids}: " + RAW),
    ("bids {to_bids} {bids}/sub-02/derivatives participant", "{bids}/sub-02/derivatives: " + RAW),
    ("bids {bids} {derivs_link} participant --participant_label 01",
     "{derivs_link}/sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.nii.gz: a symbolic link "
     "leads it out of {derivs_link} (to {bids}/sub-01/ses-a/anat/*); the derivatives are "
     "written inside OUTPUT_DIR only"),
    ("bids {bids} {foreign} participant", "{foreign}/sub-01.html: exists already, and "
     "{foreign} holds no dataset_description.json: not a derivatives folder of this pipeline "
     "to resume; choose a new folder"),
    # exports: a file, a link or a SavedModel there needs --overwrite; another folder never
    ("export --weights {weights} --format=onnx --out {onnx_taken}",
     "{onnx_taken}: " + REPLACE + "choose a new file"),
    ("export --weights {weights} --format=onnx --out {onnx_link}",
     "{onnx_link}: " + REPLACE + "choose a new file"),
    ("export --weights {weights} --out {saved_model}",
     "{saved_model}: " + REPLACE + "choose a new folder (e.g. the next version)"),
    ("export --weights {weights} --out {notes}",
     "{notes}: a folder that holds no SavedModel; choose a new folder"),
    ("export --weights {weights} --out {notes} --overwrite",
     "{notes}: a folder that holds no SavedModel; choose a new folder"),
    ("release --weights={weights} --out={released}",
     "{released}/b2u4_l1.weights.h5: " + REPLACE + "choose another --out"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, colin27_crop, bids_tree, generator_weights):
  root = tmp_path_factory.mktemp("outputs")
  return root, build_world(root, colin27_crop, bids_tree, generator_weights)


@pytest.mark.parametrize("command, message", CASES, ids=[case[0] for case in CASES])
def test_an_output_already_there_is_one_error_line_and_changes_nothing(
    world, tmp_path, monkeypatch, capsys, command, message):
  check_refused_in_process(*world, tmp_path, command, message, monkeypatch, capsys)


def test_overwrite_replaces_a_report_link_never_the_page_it_points_to(world, tmp_path,
                                                                      monkeypatch, capsys):
  _, paths = world
  page, before = paths["page"], open(paths["page"], encoding="utf-8").read()
  report = tmp_path / "qc.html"
  os.symlink(page, report)
  status, lines, _ = run_in_process(
      "predict", [paths["scan"], str(tmp_path / "sr.nii.gz"), "--weights", paths["weights"],
                  "--report", str(report), "--overwrite", "--tile=32"], monkeypatch, capsys)
  assert status == 0, lines
  assert not report.is_symlink() and "<!DOCTYPE html>" in report.read_text(encoding="utf-8")
  assert open(page, encoding="utf-8").read() == before


def test_overwrite_replaces_an_onnx_link_never_its_target(world, tmp_path, monkeypatch, capsys):
  _, paths = world
  page, before = paths["page"], open(paths["page"], encoding="utf-8").read()
  out = tmp_path / "net.onnx"
  os.symlink(page, out)
  status, lines, _ = run_in_process("export", ["--weights", paths["weights"], "--format=onnx",
                                               "--out", str(out), "--overwrite"],
                                    monkeypatch, capsys)
  assert status == 0, lines
  assert not out.is_symlink() and out.stat().st_size > 1000
  assert open(page, encoding="utf-8").read() == before


@pytest.mark.parametrize("kind", ["folder", "link to a folder"])
def test_a_folder_replaced_with_overwrite_is_swapped_whole_and_a_link_never_followed(
    tmp_path, kind):
  kept = tmp_path / "kept"
  kept.mkdir()
  (kept / "saved_model.pb").write_text("old", encoding="utf-8")
  target = tmp_path / "serving" / "1"
  target.parent.mkdir()
  if kind == "folder":
    os.rename(kept, target)
  else:
    os.symlink(kept, target)

  def write(folder):
    with open(os.path.join(folder, "saved_model.pb"), "w", encoding="utf-8") as file:
      file.write("new")

  files.write_folder_atomically(target, write, replace=True)
  assert not target.is_symlink() and (target / "saved_model.pb").read_text() == "new"
  assert sorted(os.listdir(target.parent)) == ["1"]  # nothing set aside is left
  assert kind == "folder" or (kept / "saved_model.pb").read_text() == "old"
