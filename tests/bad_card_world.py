"""The model cards test_bad_card.py's cases refer to: the card of bad_input_world's real
weights, edited as a user could edit a downloaded card, each beside a copy of the weights it
describes (so its checksum still holds and only the edit is at fault), and files whose names
hold a newline and terminal escapes."""
import json
import shlex
import shutil

import nibabel as nib
import numpy as np

from mdcsrn_tf import weights
from mdcsrn_tf.errors import one_line

ODD_CARD = "odd\nname\x1b]0;x\x07"  # a newline, and a terminal's set-the-title sequence
# Past every nesting bound (the schema's 8) and past Python's recursion while parsing.
DEEP = 100_000


def _field(path, value):
  """An edit setting the field at `path` (keys from the card's top) to `value`."""
  def edit(card):
    inner = card
    for key in path[:-1]:
      inner = inner.setdefault(key, {})
    inner[path[-1]] = value
    return card
  return edit


# name: what is done to a good card (a function of its fields giving new fields, or the
# card's whole text)
CARD_EDITS = {
    "sha_number": _field(["weights_sha256"], 12345),
    "steps_text": _field(["training", "steps"], "1500"),
    "warning_list": _field(["warning"], ["below the bar"]),
    "warning_ansi": _field(["warning"], "below the bar\n\x1b[31mfine\r"),
    "figure_text": _field(["held_out", "whole_volume", "model", "psnr"], "39.4"),
    "growth_million": _field(["model_arguments", "growth_rate"], 1_000_000),
    "growth_bool": _field(["model_arguments", "growth_rate"], True),
    "foreign_argument": _field(["model_arguments", "blocks"], 3),
    "critic_card": _field(["model"], "critic"),
    "factors_huge": _field(["acquisition"], {"factors": [10**30, 2, 1],
                                             "slice_profile": "none", "placement": "linear"}),
    "validation_nan": lambda card: json.dumps(card)[:-1] + ', "validation": {"psnr": NaN}}',
    "nested_deep": lambda card: json.dumps(card)[:-1] + ', "note": ' + "[" * DEEP + "]" * DEEP + "}",
    "nested_9": lambda card: json.dumps(card)[:-1] + ', "held_out": {"x": ' + "[" * 8 + "]" * 8 + "}}",
    "oversized": lambda card: json.dumps(card)[:-1] + ', "extra": "' + "x" * (4 * 2**20) + '"}',
}


def write_card_cases(root, paths, colin27_crop):
  """Adds {name: base path} of each CARD_EDITS card (beside a copy of the weights it
  describes) to `paths`, a card with a bad field whose file name holds a newline and an ANSI
  escape, a 2D image so named, a data set to train on (`two_heads`: two other crops of
  Colin27), how a command line gives those names (`*_quoted`) and how an
  error line shows them (`*_shown`: errors.one_line)."""
  with open(paths["weights"] + weights.CARD_SUFFIX, encoding="utf-8") as file:
    good = json.load(file)
  for name, edit in {**CARD_EDITS, ODD_CARD: CARD_EDITS["steps_text"]}.items():
    base = str(root / name)
    shutil.copy(paths["weights"] + weights.WEIGHTS_SUFFIX, base + weights.WEIGHTS_SUFFIX)
    edited = edit(json.loads(json.dumps(good)))
    with open(base + weights.CARD_SUFFIX, "w", encoding="utf-8") as file:
      file.write(edited if isinstance(edited, str) else json.dumps(edited))
    paths[name] = base
  paths["odd_card"] = paths.pop(ODD_CARD)
  paths["odd_flat"] = str(root / "flat\r\nimage\x1b\x07.nii.gz")
  nib.Nifti1Image(np.ones((8, 9), np.float32), np.eye(4)).to_filename(paths["odd_flat"])
  heads = [{"name": name, "path": str(colin27_crop(root / f"{name}.nii.gz", start=start)),
            "split": split} for name, start, split in (("upper", (70, 90, 90), "train"),
                                                      ("lower", (70, 90, 40), "validation"))]
  paths["two_heads"] = str(root / "two_heads.json")
  with open(paths["two_heads"], "w", encoding="utf-8") as file:
    json.dump({"subjects": heads}, file)
  for name in ("odd_card", "odd_flat"):
    paths[f"{name}_shown"] = one_line(paths[name])
    paths[f"{name}_quoted"] = shlex.quote(paths[name])
  return paths
