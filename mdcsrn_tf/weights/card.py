"""A model card: the one typed record that travels with a generator's weights, PATH.json
beside PATH.weights.h5. It is written and read here and nowhere else.

Training writes the card when it exports a generator, with the whole resolved training
configuration; `python -m mdcsrn_tf.release` adds the held-out metrics and a note (it refuses
weights below the project's bar; a `warning` of cards released before that is still printed
by `mdcsrn-sr` whenever it uses them).
"""
import dataclasses
import os

from mdcsrn_tf import acquisition as acquisitions
from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import json_text, read_json, write_text_atomically
from mdcsrn_tf.weights import schema

SUFFIX = ".json"


@dataclasses.dataclass(frozen=True)
class ModelCard:
  """What a generator's weights are and how they were made.

  Attributes:
    model: the generator's name (models.GENERATOR_NAMES), which rebuilds the network.
    model_arguments: the arguments models.build_model built it with, besides the name.
    acquisition: how the inputs it was trained on were made (acquisition.Acquisition).
    weights_sha256: SHA-256 of the weights file the card describes ("": not recorded).
    training: the whole resolved training configuration (train.config.TrainConfig as a
      mapping); empty for weights that did not come out of this project's training.
    resumed_from_step: the step the last training invocation started from.
    wall_seconds: training wall time over all invocations.
    machine: the machine training ran on (hardware.machine()).
    replicas: devices each training step ran on.
    dataset: the data set manifest training read.
    subjects: {split: [volume names]} of the training and validation splits.
    keeps_measured_band: outputs keep their input's k-space inside the band the acquisition
      kept, the network giving only the removed band (infer/consistency.py; training's
      --keep_measured_band); False for the network's output as it is, and for older cards.
    training_domain: what the network inputs it trained on look like (data/domain.py: each
      training volume's voxel size, head size, intensities and spectrum), against which
      every command checks its input; empty for cards from before it (not checked).
    validation: the last validation's mean metrics.
    held_out: metrics on the held-out test subject, measured when the weights are shipped.
    shipped_as: "l1" or "gan" for the package's shipped weights, else "".
    shipped_set: the shipped set the weights belong to (weights.SETS): "tables", one row of
      the paper's tables under one budget, or "heads", the defaults trained on whole heads;
      "" for weights not shipped, and for the tables' cards from before the field.
    note: how the weights were made, where it matters to a user.
    warning: a shortfall that mdcsrn-sr prints whenever the weights are used ("": none).
  """
  model: str
  model_arguments: dict = dataclasses.field(default_factory=dict)
  acquisition: Acquisition = PAPER
  weights_sha256: str = ""
  training: dict = dataclasses.field(default_factory=dict)
  resumed_from_step: int = 0
  wall_seconds: float = 0.0
  machine: dict = dataclasses.field(default_factory=dict)
  replicas: int = 1
  dataset: str = ""
  subjects: dict = dataclasses.field(default_factory=dict)
  keeps_measured_band: bool = False
  training_domain: dict = dataclasses.field(default_factory=dict)
  validation: dict = dataclasses.field(default_factory=dict)
  held_out: dict = dataclasses.field(default_factory=dict)
  shipped_as: str = ""
  shipped_set: str = ""
  note: str = ""
  warning: str = ""

  @property
  def steps(self) -> int:
    """The training steps the weights had (0 when unknown)."""
    return int(self.training.get("steps", 0))

  @property
  def phase(self) -> str:
    return self.training.get("phase", "")


def path_of(base) -> str:
  return os.fspath(base) + SUFFIX


def write(base, card: ModelCard):
  """Writes BASE.json atomically."""
  text = json_text(dataclasses.asdict(card), indent=2, sort_keys=True) + "\n"
  write_text_atomically(path_of(base), text)


def read(base) -> ModelCard:
  """The card BASE.json; InputError, naming the card and the field, when it is missing,
  unreadable or outside the schema (weights/schema.py: every field's type and bounds, a
  known generator with arguments that can run, a usable acquisition). Fields this version
  does not know are left out, so older cards still read; a card written before the
  acquisition was recorded gets the one its `lr_mode` and training settings describe."""
  path = path_of(base)
  fields = read_json(path, "model card", "for weights without one, pass the model name",
                     max_bytes=schema.MAX_BYTES, max_depth=schema.MAX_DEPTH)
  schema.check(fields, path)
  known = {field.name for field in dataclasses.fields(ModelCard)}
  values = {name: value for name, value in fields.items() if name in known}
  values["weights_sha256"] = fields.get("weights_sha256", "").lower()
  training = fields.get("training", {})
  values["acquisition"] = acquisitions.from_record(
      fields if "acquisition" in fields else {**training, "lr_mode": fields.get("lr_mode")},
      where=f"{path}: model card field acquisition" if "acquisition" in fields else path)
  if values.get("keeps_measured_band") and not values["acquisition"].band_is_measured:
    raise InputError(f"{path}: model card field keeps_measured_band: "
                     f"{values['acquisition'].describe()} gives no measured band to keep")
  return ModelCard(**values)
