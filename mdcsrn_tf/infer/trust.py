"""Whether an input lies inside the training domain its weights' card records (data/domain.py),
checked by every command that runs a network, before the network loads: each way it lies
outside is one `warning:` line naming the file, the measured figure and the trained range,
kept for the output's sidecar and QC page; with --strict the first input outside is one
`error:` line instead, and nothing is written. The lines come once every other check has
passed, so that a run refused for another reason says that alone (docs/evaluation.md#when-not-to-trust-an-output).
Weights whose card records no domain (cards from before it, weights without a card) are not
checked.
"""
import os
import sys

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import domain, intensity, nifti
from mdcsrn_tf.errors import InputError, one_line

UNCHECKED = "not checked: the weights' model card records no training domain"


def trained_domain(weights_path, model_name=None) -> dict:
  """The training domain the weights' card records ({} for none, or weights without a card
  loaded by model name)."""
  from mdcsrn_tf import weights  # pylint: disable=import-outside-toplevel

  if model_name is not None and not os.path.exists(weights.base_path(weights_path)
                                                   + weights.CARD_SUFFIX):
    return {}
  return weights.read_card(weights_path).training_domain


def findings(path, volume, image, factors, trained: dict, acquisition: Acquisition,
             removed_band=True) -> list:
  """["PATH: how it lies outside", ...] of one input (`volume` as read, `factors` per axis
  from its grid to the network's; domain.findings' `removed_band`)."""
  if not trained.get("volumes"):
    return []
  name = os.fspath(path)
  normalised, _ = intensity.normalise(volume, name=name)
  figures = domain.profile(normalised, nifti.voxel_size_mm(image, path), acquisition,
                           scale=tuple(factors))
  return [f"{name}: {finding}" for finding in domain.findings(figures, trained, removed_band)]


def announce(found: dict, strict=False, weights_name="the weights", log=None):
  """Prints each finding of {input: [findings]} as a `warning:` line (to `log`, default
  stderr); with `strict`, InputError for the first input with any, in one line, instead."""
  outside = {path: lines for path, lines in found.items() if lines}
  if strict and outside:
    lines = next(iter(outside.values()))
    others = len(outside) - 1
    raise InputError(
        "; ".join(lines) + f" (outside the training domain of {weights_name}; --strict"
        + (f"; {others} other input(s) outside it too" if others else "")
        + "); nothing written")
  for lines in outside.values():
    for line in lines:
      (log or (lambda text: print(text, file=sys.stderr)))(f"warning: {one_line(line)}")


def screen(paths, check, weights_path, model_name, acquisition: Acquisition) -> tuple:
  """(the weights' training domain, {input: its findings}) of every path, each read by
  `check(path)` (predict.check_input: (volume, image, HR shape, factors)); `announce` says
  the findings once every other check has passed."""
  trained, found = trained_domain(weights_path, model_name), {}
  for path in paths:
    volume, image, _, factors = check(path)
    found[path] = findings(path, volume, image, factors, trained, acquisition)
  return trained, found


def recorded(found: dict, trained: dict) -> dict:
  """{input: what its output's sidecar and QC page say of the training domain}: its
  findings, or UNCHECKED for weights without a domain."""
  return {path: list(lines) if trained.get("volumes") else [UNCHECKED]
          for path, lines in found.items()}
