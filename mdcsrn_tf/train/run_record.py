"""A training run's record in its workdir, and what it lets a rerun do: WORKDIR/config.json
(the resolved TrainConfig, the acquisition, the data set's volumes) and WORKDIR/flags.cfg
are written when a run starts; a rerun is checked against them before anything in WORKDIR
changes or TensorFlow loads (docs/training.md#workdir)."""
import dataclasses
import json
import os
import re

from mdcsrn_tf import acquisition as acquisitions
from mdcsrn_tf import cli, weights
from mdcsrn_tf.data import manifest
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.files import json_text, read_json, write_text_atomically
from mdcsrn_tf.train.config import TrainConfig

RUN_RECORD = "config.json"  # the resolved config of the run in WORKDIR
FLAGFILE = "flags.cfg"
# Settings a resumed run must share with the checkpoints it continues: they shape the
# checkpoint (networks, optimisers, loss scaling, the critic's input), the data it learns
# (and so does the acquisition, compared as a whole) or the validation PSNR that the best
# checkpoint so far was chosen by.
RESUME_INVARIANTS = ("model", "phase", "precision", "lr_decay", "validation_subjects",
                     "validation_tile", "validation_margin", "keep_measured_band")
CHECKPOINT_INDEX = re.compile(r"ckpt-(\d+)\.index$")  # tf.train.CheckpointManager's names


def read_run_record(workdir) -> dict | None:
  """The settings WORKDIR's run was started with, or None when it holds no run record."""
  return read_json(os.path.join(workdir, RUN_RECORD), "run record", missing_ok=True)


def newest_checkpoint_step(workdir) -> int:
  """The step of WORKDIR's newest checkpoint, from its file name (0 without one): known
  before TensorFlow loads."""
  folder = os.path.join(workdir, "checkpoints")
  names = os.listdir(folder) if os.path.isdir(folder) else []
  return max((int(match.group(1)) for match in map(CHECKPOINT_INDEX.match, names) if match),
             default=0)


def check_resumable(config: TrainConfig):
  """InputError when WORKDIR holds a run that `config` cannot continue (another model,
  phase, precision, acquisition, validation, other training or validation volumes, a step
  beyond --steps): checked before anything is written into WORKDIR."""
  earlier = read_run_record(config.workdir)
  if earlier is None:
    return
  current = json.loads(json.dumps(dataclasses.asdict(config)))
  names = RESUME_INVARIANTS + (("patch_size",) if config.phase == "gan" else ())
  for name in names:
    if name in earlier and earlier[name] != current[name]:
      raise InputError(
          f"{config.workdir}: holds a run with --{name}={_flag_value(earlier[name])}, this one "
          f"asks for --{name}={_flag_value(current[name])}; resume with the same setting or "
          "choose another --workdir")
  reached = newest_checkpoint_step(config.workdir)
  if reached > config.steps:
    raise InputError(f"{config.workdir}: holds a run at step {reached}, beyond --steps="
                     f"{config.steps}; give --steps of at least {reached}, or another --workdir")
  volumes = manifest.volume_names(config.dataset)
  for split, names in earlier.get("volumes", volumes).items():  # older records: not kept
    added = sorted(set(volumes[split]) - set(names))
    removed = sorted(set(names) - set(volumes[split]))
    if added or removed:
      raise InputError(
          f"{config.workdir}: holds a run on other {split} volumes ({len(added)} added, "
          f"{len(removed)} removed, e.g. {(added or removed)[0]}); resume with the same data "
          "set (its files may move) or choose another --workdir")
  before = acquisitions.from_record(earlier, where=os.path.join(config.workdir, RUN_RECORD))
  if before != config.acquisition:
    raise InputError(
        f"{config.workdir}: holds a run of {before.describe()}, this one asks for "
        f"{config.acquisition.describe()}; resume with the same acquisition or choose "
        "another --workdir")


def check_init_generator(config: TrainConfig):
  """InputError, before TensorFlow loads, when --init_generator holds another network than
  --model (a workdir's run record or an export's model card says which), or weights that are
  not the ones their card describes."""
  path = config.init_generator
  if not path or read_run_record(config.workdir) is not None:  # resuming: not read
    return
  if os.path.isdir(path):
    record = read_run_record(path)
    model = record.get("model") if isinstance(record, dict) else None
  elif os.path.exists(weights.base_path(path) + weights.CARD_SUFFIX):
    card = weights.read_card(path)
    weights_path = weights.base_path(path) + weights.WEIGHTS_SUFFIX
    if os.path.isfile(weights_path):
      weights.verify_checksum(weights_path, card, config.unverified_weights)
    model = card.model
  else:
    return  # the loop says what is wrong with it
  if model and model != config.model:
    raise InputError(f"{path}: holds a {model} generator, this run trains --model="
                     f"{config.model}; pass --model={model} (or another --init_generator)")


def finished_card(config: TrainConfig):
  """The model card of WORKDIR's export when it is the end of this very run (exported after
  config.steps steps of the run WORKDIR's config.json records), else None."""
  export = weights.exported_generator(config.workdir)
  if (read_run_record(config.workdir) is None
      or not os.path.exists(weights.base_path(export) + weights.CARD_SUFFIX)):
    return None
  card = weights.read_card(export)
  return card if card.steps == config.steps else None


def write_run_record(config: TrainConfig):
  """WORKDIR/flags.cfg (the run's flags, to repeat it) and WORKDIR/config.json."""
  os.makedirs(config.workdir, exist_ok=True)
  write_text_atomically(os.path.join(config.workdir, FLAGFILE), cli.flagfile_text(config))
  record = {**dataclasses.asdict(config), "acquisition": config.acquisition.to_dict(),
            "volumes": manifest.volume_names(config.dataset)}
  write_text_atomically(os.path.join(config.workdir, RUN_RECORD),
                        json_text(record, indent=1) + "\n")


def _flag_value(value) -> str:
  return ",".join(map(str, value)) if isinstance(value, list) else str(value)
