"""Consistent messages across the commands. An output folder (`--out_dir`, OUTPUT_DIR,
`--out`) that exists as a file, a link to one or a broken link is refused in the same words
by every command, before TensorFlow loads (each row a fresh process: that is what is under
test); `mdcsrn-export --weights` takes the shipped names as mdcsrn-sr does; `mdcsrn-bids`
names a participant folder whose label is not a BIDS label and goes on with the others."""
import json
import os

import pytest

from command_cases import assert_refused, run_in_process, run_in_subprocess, tree_state, words
from mdcsrn_tf import weights
from output_world import build_world

NOT_A_FOLDER = "exists and is not a folder"
CASES = [
    ("predict {scan} --out_dir {onnx_link}", "--out_dir {onnx_link}: " + NOT_A_FOLDER),
    ("predict {scan} --out_dir {broken}", "--out_dir {broken}: " + NOT_A_FOLDER),
    ("evaluate --volumes={scan} --out_dir={scan}", "--out_dir {scan}: " + NOT_A_FOLDER),
    ("evaluate --volumes={scan} --weights=net={weights} --out_dir={page}",
     "--out_dir {page}: " + NOT_A_FOLDER),
    ("bids {bids} {scan} participant", "OUTPUT_DIR {scan}: " + NOT_A_FOLDER),
    ("bids {bids} {broken} participant --participant_label 01", "OUTPUT_DIR {broken}: "
     + NOT_A_FOLDER),
    ("release --weights={weights} --out={scan}", "--out {scan}: " + NOT_A_FOLDER),
    ("prepare --src={root}/in --out={page}", "--out {page}: " + NOT_A_FOLDER),
    ("demo --out={scan}", "--out {scan}: " + NOT_A_FOLDER),
    # the rule of every other output, with prepare's own flag
    ("prepare --src={root}/in --out={splits_only}",
     "{splits_only}/splits.tsv: exists already; pass --replace to replace, or choose another "
     "--out"),
    # one resolver of --weights for every command
    ("export --weights=b5u4_l1 --out={out}/serving/1",
     "b5u4_l1.weights.h5: no such weights file here, and no shipped weights named b5u4_l1 "
     "(shipped: b1u8_l1, *)"),
    ("release --weights=b5u4_gan --out={out}/released",
     "b5u4_gan.weights.h5: no such weights file here, and no shipped weights named b5u4_gan *"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, colin27_crop, bids_tree, generator_weights):
  root = tmp_path_factory.mktemp("messages")
  return root, build_world(root, colin27_crop, bids_tree, generator_weights)


@pytest.mark.parametrize("command, message", CASES, ids=[case[0] for case in CASES])
def test_one_wording_before_tensorflow_loads(world, tmp_path, command, message):
  root, paths = world
  paths = {**paths, "out": str(tmp_path)}
  before = tree_state(root), tree_state(tmp_path)
  tool, *args = words(command, paths)
  status, lines, _, loaded = run_in_subprocess(tool, args)
  assert_refused(status, lines, message, paths)
  assert not loaded, "TensorFlow loaded"
  assert (tree_state(root), tree_state(tmp_path)) == before


def test_export_takes_the_name_of_shipped_weights(tmp_path, monkeypatch, capsys):
  onnx = pytest.importorskip("onnx")
  out = tmp_path / "b2u4.onnx"
  status, lines, _ = run_in_process("export", ["--weights=b2u4_l1", "--format=onnx",
                                               f"--out={out}"], monkeypatch, capsys)
  assert status == 0, lines
  properties = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
  shipped = weights.shipped_path("b2u4_l1")
  assert properties["model"] == "b2u4"
  assert properties["weights_sha256"] == weights.read_card(shipped).weights_sha256


def test_bids_names_a_folder_with_an_invalid_label_and_goes_on(world, tmp_path, monkeypatch,
                                                               capsys):
  _, paths = world
  out = tmp_path / "derivatives"
  status, lines, _ = run_in_process(
      "bids", [paths["odd_bids"], str(out), "participant", "--session_label", "a",
               "--noreport", "--weights", paths["weights"], "--tile=32"], monkeypatch, capsys)
  assert status == 0, lines
  assert lines == [f"warning: {paths['odd_bids']}: folder sub-01_old skipped: 01_old is not "
                   "a BIDS label (letters and digits only); the other folders go on"]
  written = sorted(os.path.relpath(os.path.join(folder, name), out)
                   for folder, _, names in os.walk(out) for name in names)
  assert written == ["dataset_description.json",
                     "sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.json",
                     "sub-01/ses-a/anat/sub-01_ses-a_desc-mdcsrn_T1w.nii.gz"]
  assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] == (
      "derivative")


@pytest.mark.parametrize("name, shown", [("sub-02\nnew", "sub-02\\nnew"),
                                         ("sub-03\x1b[31m", "sub-03\\x1b[31m")])
def test_a_skipped_folder_is_named_on_one_line_with_its_control_characters_escaped(
    tmp_path, name, shown):
  from mdcsrn_tf.bids import layout  # pylint: disable=import-outside-toplevel

  (tmp_path / "dataset_description.json").write_text("{}", encoding="utf-8")
  (tmp_path / "sub-01" / "anat").mkdir(parents=True)
  (tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz").write_bytes(b"")
  (tmp_path / name).mkdir()
  lines = []
  assert list(layout.find_t1w(tmp_path, warn=lines.append)) == ["01"]
  assert lines == [f"warning: {tmp_path}: folder {shown} skipped: {shown[4:]} is not a BIDS "
                   "label (letters and digits only); the other folders go on"]


def test_no_warning_shows_a_name_by_its_repr():
  """Names reach warnings as errors.one_line writes them (escaped, unquoted), never by
  repr(), whose quoting and escapes differ from every other message's."""
  package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "mdcsrn_tf")
  found = []
  for folder, _, names in os.walk(package):
    for name in (n for n in names if n.endswith(".py")):
      text = open(os.path.join(folder, name), encoding="utf-8").read()
      for call in text.split("warning: ")[1:]:
        statement = call.split(")\n")[0]
        if "!r}" in statement or "repr(" in statement:
          found.append(f"{name}: {statement[:60]}")
  assert found == []
