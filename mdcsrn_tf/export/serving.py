"""The SavedModel's Python front end: a NIfTI file through an exported SavedModel, checked
as mdcsrn-sr checks its inputs, against the training domain of the model card the export
carries (export/saved_model.CARD), before the serving signature runs
(docs/serving.md#the-python-front-end).

  from mdcsrn_tf.export import serving
  served = serving.Served("serving/mdcsrn/1")  # its card read and checked first
  served.super_resolve_file("scan.nii.gz", "scan_sr.nii.gz")  # the input's findings
  served.super_resolve_file("scan_2x2x1mm.nii.gz", "scan_sr.nii.gz", scale=(2, 2, 1))

A coarser scan goes onto the HR grid first, as mdcsrn-sr's `--scale`/`--target_voxel` put
it (predict.load_input: the card's acquisition, and only by the factors it was trained
for), and the output is written on that grid with the input's orientation.

Each way the input lies outside the domain is one `warning:` line (infer/trust.py), or with
`strict` an InputError and nothing written; an export without a card (from before exports
carried one, or of weights without one) is not checked, as mdcsrn-sr does not check weights
without a domain. The signature checks the layout, finite voxels and the intensity range
itself; a client that calls it without this module (TF Serving, saved_model_cli) gets no
domain check.
"""
import os

from mdcsrn_tf import destinations
from mdcsrn_tf.acquisition import PAPER
from mdcsrn_tf.data import nifti
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.export.saved_model import (CARD, LAYOUT_ERROR, NO_RANGE_ERROR,
                                          NOT_FINITE_ERROR, NOT_FINITE_OUTPUT_ERROR)
from mdcsrn_tf.infer import predict, trust
from mdcsrn_tf.weights import card as cards

# The signature's own checks (export/saved_model.py), each failing with its text
CHECKS = (NOT_FINITE_OUTPUT_ERROR, NOT_FINITE_ERROR, NO_RANGE_ERROR, LAYOUT_ERROR)


def card_of(folder):
  """The model card an export carries (InputError naming it when it is outside the schema),
  or None where it carries none."""
  path = os.path.join(os.fspath(folder), CARD)
  return cards.read(path[:-len(cards.SUFFIX)]) if os.path.isfile(path) else None


class Served:
  """An exported SavedModel, loaded once, with the model card it carries."""

  def __init__(self, folder):
    self.folder = os.fspath(folder)
    if not os.path.isfile(os.path.join(self.folder, "saved_model.pb")):
      raise InputError(f"{self.folder}: not a SavedModel (no saved_model.pb)")
    self.card = card_of(self.folder)  # before TensorFlow loads: a bad card is one line
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    self.signature = tf.saved_model.load(self.folder).signatures["serving_default"]

  @property
  def acquisition(self):
    """The acquisition the export's weights were trained for (the paper's without a card)."""
    return self.card.acquisition if self.card else PAPER

  def findings(self, path, scale=None, target_voxel=None) -> list:
    """What the input's sidecar would record of the training domain, for a NIfTI file on
    the HR grid or placed on it by `scale` (factors per axis) or `target_voxel` (mm):
    InputError for a file or grid change mdcsrn-sr refuses (predict.check_input), then
    its findings against the card's domain (infer/trust.py), or that it was not checked."""
    volume, image, _, factors = predict.check_input(
        path, scale, target_voxel, self.acquisition, f"the SavedModel {self.folder}",
        keep_band=bool(self.card and self.card.keeps_measured_band))
    trained = self.card.training_domain if self.card else {}
    found = trust.findings(path, volume, image, factors, trained, self.acquisition)
    return trust.recorded({path: found}, trained)[path]

  def __call__(self, volume):
    """The signature's output of a float32 volume [D, H, W] on the HR grid; InputError
    naming the export when one of the signature's checks fails (a layout, NaN voxels, no
    positive voxel in the input; NaN or Inf voxels in the network's output)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:
      return self.signature(volume=tf.constant(volume, tf.float32))["sr"].numpy()
    except tf.errors.InvalidArgumentError as error:
      message = " ".join(error.message.split())
      failed = next((check.rsplit(";", 1)[0] for check in CHECKS if check in message),
                    message[:200])
      raise InputError(f"the SavedModel {self.folder}: {failed}") from None

  def super_resolve_file(self, input_path, output_path, scale=None, target_voxel=None,
                         strict=False, overwrite=False, log=None) -> list:
    """Writes the super-resolution of one NIfTI file (on the HR grid, or placed on it by
    `scale`/`target_voxel` as in `findings`) to `output_path` (atomic, never over the
    input, an existing file only with `overwrite`), after warning of each way it lies
    outside the card's training domain (to `log`, default stderr) or, with `strict`,
    refusing it; returns what its sidecar would record of the domain."""
    nifti.check_output_path(output_path, inputs=[input_path])
    destinations.refuse_existing([output_path], overwrite)
    recorded = self.findings(input_path, scale, target_voxel)
    outside = [] if recorded == [trust.UNCHECKED] else recorded
    trust.announce({input_path: outside}, strict, f"the SavedModel {self.folder}", log)
    volume, image, to_input = predict.load_input(input_path, scale, target_voxel,
                                                 self.acquisition)
    try:
      sr = self(volume)
    except InputError as error:
      raise InputError(f"{input_path}: {error}; nothing written") from None
    nifti.save_volume(sr, output_path, image, to_reference=to_input, inputs=[input_path])
    return recorded
