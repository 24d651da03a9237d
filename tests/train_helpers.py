"""What the training tests share: the smoke recipes as the train command parses them, its
command line, and a workdir's newest checkpoint step."""
import dataclasses
import os
import sys

from mdcsrn_tf import cli
from mdcsrn_tf.train.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


def smoke_config(flagfile, dataset, workdir, **overrides):
  """The TrainConfig a flagfile of flags/ gives, as the train command parses it."""
  config, _ = cli.parse(TrainConfig, ["train", f"--flagfile={os.path.join(REPO, 'flags', flagfile)}",
                                      f"--dataset={dataset}", f"--workdir={workdir}"])
  return dataclasses.replace(config, **overrides)


def train_cli(flagfile, dataset, workdir, *extra):
  """The train command's line for a flagfile of flags/, run from the repository."""
  return [PYTHON, "-m", "mdcsrn_tf.train", f"--flagfile=flags/{flagfile}", f"--dataset={dataset}",
          f"--workdir={workdir}", *extra]


def latest_step(workdir):
  """The step of WORKDIR's newest checkpoint, as TensorFlow's checkpoint state names it."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  return int(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).rsplit("-", 1)[1])
