"""A model card is untrusted input, checked when it is read: one row per card a user could
download or edit, and per file name a terminal would act on. Every command that reads a
card (mdcsrn-sr, mdcsrn-bids, evaluate, release, export, training's --init_generator) ends
in exactly one `error:` line naming the card's path and the field, exit status 2, before
TensorFlow loads and with nothing written. The weights beside each card are real (its
checksum holds): the edit alone is at fault."""
import json

import pytest

from bad_card_world import write_card_cases
from bad_input_world import build_world
from command_cases import assert_refused, run_in_subprocess, tree_state, words
from mdcsrn_tf import weights
from mdcsrn_tf.errors import one_line
from mdcsrn_tf.models import GENERATOR_NAMES, build_model, sizes
from mdcsrn_tf.weights import schema
from test_bad_input import SMOKE

FIELD = "model card field"
TEXT = "expected one line of text (at most 4096 characters, no control characters)"
CASES = [
    ("predict {scan} {out}/sr.nii.gz --weights {sha_number}",
     "{sha_number}.json: " + FIELD + " weights_sha256: expected a SHA-256 of 64 hexadecimal "
     'digits (or "": not recorded), got 12345'),
    ("predict {scan} {out}/sr.nii.gz --weights {steps_text}",
     "{steps_text}.json: " + FIELD + " training.steps: expected an integer from 0 to "
     "9007199254740992, got '1500'"),
    ("predict {scan} {out}/sr.nii.gz --weights {warning_list}",
     "{warning_list}.json: " + FIELD + " warning: " + TEXT + ", got [[]'below the bar']"),
    ("predict {scan} {out}/sr.nii.gz --weights {figure_text}",
     "{figure_text}.json: " + FIELD + " held_out.whole_volume.model.psnr: expected a finite "
     "number * or null, got '39.4'"),
    ("predict {scan} {out}/sr.nii.gz --weights {critic_card}",
     "{critic_card}.json: " + FIELD + " model: expected one of 'b1u8', *, 'srresnet', got "
     "'critic'"),
    ("bids {bids} {out}/d participant --weights {growth_million}",
     "{growth_million}.json: " + FIELD + " model_arguments: b2u4 with these arguments has "
     "7.72e+14 parameters, more than the 268,435,456 (2^28) a generator that runs on any "
     "machine may have, got {{'growth_rate': 1000000}}"),
    ("predict {scan} {out}/sr.nii.gz --weights {growth_bool}",
     "{growth_bool}.json: " + FIELD + " model_arguments.growth_rate: expected an integer from "
     "1 to 268,435,456, got True"),
    ("export --weights {foreign_argument} --out {out}/serving/1",
     "{foreign_argument}.json: " + FIELD + " model_arguments.blocks: b2u4 takes no such "
     "argument (it takes growth_rate, identity_init), got 3"),
    ("evaluate --volumes={scan} --weights=net={factors_huge} --out_dir={out}/eval",
     "{factors_huge}.json: " + FIELD + " acquisition.factors[[]0]: expected an integer from 1 "
     "to 16383, got 1000000000000000000000000000000"),
    ("evaluate --volumes={scan} --weights=net={validation_nan} --out_dir={out}/eval",
     "{validation_nan}.json: " + FIELD + " validation.psnr: expected a finite number * or "
     "null, got nan"),
    ("release --weights={nested_deep} --out={out}/released",
     "{nested_deep}.json: unreadable model card (nested too deeply)"),
    ("export --weights {nested_9} --format=onnx --out {out}/g.onnx",
     "{nested_9}.json: model card nests lists and objects deeper than 8 levels"),
    ("predict {scan} {out}/sr.nii.gz --weights {oversized}",
     "{oversized}.json: model card larger than 4194304 bytes, more than any model card holds"),
    # the card's warning is printed whenever its weights are used: one line, or refused
    (SMOKE + " --dataset={two_heads} --workdir={out}/run --model=b2u4 --init_generator={warning_ansi}",
     "{warning_ansi}.json: " + FIELD + r" warning: " + TEXT + r", got 'below the bar\n"
     r"\x1b[31mfine\r'"),
    # names a terminal would act on: shown escaped, on one line
    ("predict {scan} {out}/sr.nii.gz --weights {odd_card_quoted}",
     "{odd_card_shown}.json: " + FIELD + " training.steps: *, got '1500'"),
    ("predict {odd_flat_quoted} {out}/sr.nii.gz", "{odd_flat_shown}: 2D image *"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, colin27_crop, bids_tree):
  """(root, {name: path}) of bad_input_world's files and the cards of bad_card_world."""
  root = tmp_path_factory.mktemp("card_world")
  return root, write_card_cases(root, build_world(root, colin27_crop, bids_tree), colin27_crop)


@pytest.mark.parametrize("command, message", CASES, ids=[case[0] for case in CASES])
def test_a_bad_card_is_one_error_line_before_tensorflow_and_changes_nothing(
    world, tmp_path_factory, command, message):
  root, paths = world
  paths = {**paths, "out": str(tmp_path_factory.mktemp("out"))}
  before = tree_state(root), tree_state(paths["out"])
  tool, *args = words(command, paths)
  status, lines, _, loaded = run_in_subprocess(tool, args)
  assert_refused(status, lines, message, paths)
  assert not loaded, "TensorFlow loaded before the card was refused"
  assert (tree_state(root), tree_state(paths["out"])) == before


def test_every_shipped_card_reads_within_the_schema():
  for name in weights.shipped_names():
    base = weights.shipped_path(name)
    with open(base + weights.CARD_SUFFIX, encoding="utf-8") as file:
      fields = json.load(file)
    schema.check(fields, base)  # raises for a field outside the schema
    card = weights.read_card(base)
    assert card.model == fields["model"] and card.weights_sha256 == fields["weights_sha256"]


@pytest.mark.parametrize("name, arguments", [
    ("b1u8", {}), ("b4u4", {"identity_init": False}), ("b3u4", {"growth_rate": 5}),
    ("fsrcnn", {}), ("fsrcnn", {"d": 7, "s": 3, "m": 2, "first_kernel": 3, "last_kernel": 5}),
    ("srresnet", {}), ("srresnet", {"blocks": 2, "width": 5, "outer_kernel": 3})])
def test_the_bounds_count_the_parameters_keras_builds(name, arguments):
  model = build_model(name, **arguments)
  parameters, widest = sizes.size(name, arguments)
  assert parameters == model.count_params()
  assert widest == max(layer.output.shape[-1] for layer in model.layers)
  assert sizes.check_arguments(name, arguments) is None


def test_every_generator_is_refused_just_past_each_bound():
  for name in GENERATOR_NAMES:
    width = {"mdcsrn": "growth_rate", "fsrcnn": "d", "srresnet": "width"}[sizes.builder_of(name)]
    within = [n for n in range(1, sizes.MAX_CHANNELS + 2) if sizes.MAX_PARAMETERS >= sizes.size(
        name, {width: n})[0] and sizes.size(name, {width: n})[1] <= sizes.MAX_CHANNELS]
    largest = within[-1]  # the size grows with the width: every smaller one is within too
    assert within == list(range(1, largest + 1))
    assert sizes.check_arguments(name, {width: largest}) is None
    assert sizes.check_arguments(name, {width: largest + 1})[0] is None  # the whole is at fault


@pytest.mark.parametrize("text, shown", [
    ("plain/path.nii.gz", "plain/path.nii.gz"),
    ("a\nb", r"a\nb"), ("a\r\n", r"a\r\n"), ("\x1b[31mred\x1b[0m", r"\x1b[31mred\x1b[0m"),
    ("tab\there", r"tab\there"), ("del\x7f", r"del\x7f"), ("c1\x85", r"c1\x85"),
    ("para\u2029graph", r"para\u2029graph"), ("\u202etxt.exe", r"\u202etxt.exe"),
    ("not utf-8 \udcff", r"not utf-8 \udcff"), ("ünïcödé 脳", "ünïcödé 脳")])
def test_one_line_escapes_what_a_terminal_would_act_on(text, shown):
  assert one_line(text) == shown
  assert len(one_line(text).splitlines()) == 1
