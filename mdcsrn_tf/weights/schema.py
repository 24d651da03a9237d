"""What a model card may hold: every field's type and bounds, checked when the card is read
(card.read), before any command does work with it. Cards are downloaded and edited by hand,
so a card is untrusted input: a violation is one InputError naming the card's path and the
field (`held_out.whole_volume.model.psnr`), never a traceback later or a value carried into
an output's provenance.

Bounds, each with its reason:
- the file: at most MAX_BYTES, lists and objects nested at most MAX_DEPTH deep (files.read_json);
- text: one line without control characters (errors.one_line leaves it as it is), at most
  MAX_TEXT characters;
- integers: at most MAX_INTEGER; figures: finite numbers, or null for one that is not
  (strict JSON's NaN and infinity);
- the generator: a known name, its builder's arguments within models/sizes' bounds (a
  generator that runs on any machine);
- the acquisition: factors of 1 to acquisition.MAX_FACTOR, its meaning then checked by the
  Acquisition record itself.
"""
import math
import re
import reprlib

from mdcsrn_tf.acquisition import MAX_FACTOR
from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.models import GENERATOR_NAMES, sizes

MAX_BYTES = 4 * 2**20  # 360 times a shipped card (11 kB); a release over 111 HCP test
#                        subjects writes about 0.2 MiB
MAX_DEPTH = 8  # a shipped card nests 5 deep (held_out.per_volume.VOLUME.METHOD.METRIC)
MAX_TEXT = 4096  # Linux's PATH_MAX: any path a card records fits
MAX_INTEGER = 2**53  # JSON readers that hold numbers as doubles keep integers exact up to here
SHIPPED_KINDS = ("", "l1", "gan")
# The shipped sets and the prefix of their names (weights.SETS); "" for weights not shipped
SET_PREFIXES = {"tables": "", "heads": "heads_"}
_SHOWN = reprlib.Repr()  # how a refused value is shown: its first characters and items
_SHOWN.maxstring = _SHOWN.maxother = 40
_SHOWN.maxlist = _SHOWN.maxdict = 4
_SHOWN.maxlevel = 2


class _Invalid(Exception):
  def __init__(self, where, problem, value):
    super().__init__()
    self.where, self.problem, self.value = where, problem, value


def _fail(where, problem, value):
  raise _Invalid(where, problem, value)


def _text(value, where):
  if not isinstance(value, str) or len(value) > MAX_TEXT or one_line(value) != value:
    _fail(where, f"expected one line of text (at most {MAX_TEXT} characters, no control "
          "characters)", value)


def _integer(low, high=MAX_INTEGER):
  def check(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
      _fail(where, f"expected an integer from {low} to {high}", value)
  return check


def _figure(value, where):
  """A measured figure: a finite number, or null where it is not defined or not finite."""
  if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                            or abs(value) > MAX_INTEGER or not math.isfinite(value)):
    _fail(where, f"expected a finite number of at most {MAX_INTEGER} in size, or null", value)


def _seconds(value, where):
  _figure(value, where)
  if value is None or value < 0:
    _fail(where, "expected a number of seconds >= 0", value)


def _one_of(choices):
  def check(value, where):
    if not isinstance(value, str) or value not in choices:
      _fail(where, f"expected one of {', '.join(repr(c) for c in choices)}", value)
  return check


def _checksum(value, where):
  if not isinstance(value, str) or not re.fullmatch(r"([0-9a-fA-F]{64})?", value):
    _fail(where, "expected a SHA-256 of 64 hexadecimal digits (or \"\": not recorded)", value)


def _list(check_item, length=None):
  def check(value, where):
    if not isinstance(value, list) or length is not None and len(value) != length:
      _fail(where, "expected a list" + (f" of {length}" if length else ""), value)
    for index, item in enumerate(value):
      check_item(item, f"{where}[{index}]")
  return check


def _mapping(check_value):
  def check(value, where):
    if not isinstance(value, dict):
      _fail(where, "expected an object", value)
    for key, item in value.items():
      _text(key, f"{where} (a key)")
      check_value(item, f"{where}.{key}")
  return check


def _record(known, rest=None):
  """An object whose `known` keys are checked by their own check, any other by `rest`
  (refused when `rest` is None)."""
  def check(value, where):
    if not isinstance(value, dict):
      _fail(where, "expected an object", value)
    for key, item in value.items():
      inner = f"{where}.{key}" if where else key
      if key in known:
        known[key](item, inner)
      elif rest is None:
        _fail(inner, f"no such field (known: {', '.join(known)})", item)
      else:
        rest(item, inner)
  return check


def _boolean(value, where):
  if not isinstance(value, bool):
    _fail(where, "expected true or false", value)


def _scalar(value, where):
  if isinstance(value, str):
    _text(value, where)
  elif not isinstance(value, bool):
    _figure(value, where)


def _json(value, where):
  """Any JSON whose text is one line and whose numbers are bounded (its depth is bounded
  when the file is read)."""
  if isinstance(value, list):
    _list(_json)(value, where)
  elif isinstance(value, dict):
    _mapping(_json)(value, where)
  else:
    _scalar(value, where)


def _flat(value, where):
  """A setting: a scalar, or a list of them (per-axis factors)."""
  (_list(_scalar) if isinstance(value, list) else _scalar)(value, where)


def _anything(value, where):  # a field this version does not read (card.read leaves it out)
  del value, where


_BY_METHOD = _mapping(_mapping(_figure))  # {method: {metric: figure}}
CARD = _record({
    "model": _one_of(GENERATOR_NAMES),
    "model_arguments": _mapping(_anything),  # each argument: check_model_arguments
    "acquisition": _record({"factors": _list(_integer(1, MAX_FACTOR), length=3),
                            "slice_profile": _text, "placement": _text}),
    "weights_sha256": _checksum,
    "training": _record({"steps": _integer(0), "phase": _text}, rest=_flat),
    "resumed_from_step": _integer(0),
    "wall_seconds": _seconds,
    "machine": _mapping(_flat),
    "replicas": _integer(1),
    "dataset": _text,
    # {split: [volume names]}, and under "files" {split: [each volume's identity]}
    "subjects": _record({"files": _mapping(_list(_record(
        {"name": _text, "path": _text, "size": _integer(0), "sha256": _checksum},
        rest=_json)))}, rest=_list(_text)),
    # data/domain.py: {"version", "volumes": {name: figures}}; later figures pass as JSON
    "training_domain": _record({"version": _integer(1), "volumes": _mapping(_record({
        "voxel_mm": _list(_figure, length=3), "extent_mm": _list(_figure, length=3),
        "head_ml": _figure, "removed_band": _figure,
        "quantiles": lambda value, where: value is None or _list(_figure)(value, where),
        "interior_skew": _figure, "upper_band": _figure}, rest=_json))}, rest=_json),
    "keeps_measured_band": _boolean,
    "validation": _mapping(_figure),
    "held_out": _record({
        "volume": _text, "volumes": _list(_text), "dataset": _text, "mask": _text,
        "normalisation": _text, "tile": _integer(1), "margin": _integer(0),
        "whole_volume": _BY_METHOD, "per_volume": _mapping(_BY_METHOD),
        "check_crop": _record({"start": _list(_integer(0), length=3), "edge": _integer(0),
                               "metrics": _BY_METHOD}, rest=_json)}, rest=_json),
    "shipped_as": _one_of(SHIPPED_KINDS),
    "shipped_set": _one_of(("", *SET_PREFIXES)),
    "note": _text,
    "warning": _text,
    "lr_mode": _anything,  # a card's from before the acquisition: Acquisition reads it
}, rest=_anything)


def check(fields, path):
  """InputError `PATH: model card field FIELD: what is wrong, got VALUE` for the first
  field of the parsed card `fields` outside the schema."""
  if not isinstance(fields, dict):
    raise InputError(f"{path}: not a model card (expected a JSON object naming its generator)")
  try:
    if "model" not in fields:
      _fail("model", "a model card names its generator", None)
    CARD(fields, "")
    fault = sizes.check_arguments(fields["model"], fields.get("model_arguments", {}))
    if fault is not None:
      argument, problem = fault
      _fail("model_arguments" + (f".{argument}" if argument else ""), problem,
            fields["model_arguments"].get(argument) if argument else fields["model_arguments"])
  except _Invalid as invalid:
    raise InputError(f"{path}: model card field {one_line(invalid.where)}: {invalid.problem}, "
                     f"got {one_line(_SHOWN.repr(invalid.value))}") from None
