"""The shipped flagfiles: found from any working directory, nested ones relative to the file
naming them, consistent with each other and with the docs (docs/training.md)."""
import glob
import os
import re

import pytest

from mdcsrn_tf import cli, weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.evaluate.evaluation import EvaluateOptions
from mdcsrn_tf.train import __main__ as train_command
from mdcsrn_tf.train.config import TrainConfig
from mdcsrn_tf.train.run_record import RESUME_INVARIANTS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FLAGFILES = sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "flags", "**", "*.cfg"),
                                                recursive=True)
    if os.path.basename(p) != "eval.cfg")


def train_config(flagfile, *extra):
  config, _ = cli.parse(TrainConfig, ["train", f"--flagfile={flagfile}", "--dataset=d.json",
                                      "--workdir=w", "--init_generator=g", *extra])
  return config


@pytest.mark.parametrize("flagfile", TRAIN_FLAGFILES)
def test_every_training_flagfile_reads_from_another_working_directory(flagfile, tmp_path,
                                                                      monkeypatch):
  at_root = train_config(os.path.join(REPO, flagfile))
  monkeypatch.chdir(tmp_path)
  assert train_config(flagfile) == at_root
  at_root.validate()


def test_the_evaluation_flagfile_reads_from_another_working_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  options, _ = cli.parse(EvaluateOptions, ["evaluate", "--flagfile=flags/eval.cfg"])
  assert options.manifest == "data/samples/manifest.json" and options.split == "test"


def test_nested_flagfiles_are_relative_to_the_file_naming_them(tmp_path, monkeypatch):
  (tmp_path / "recipes" / "base").mkdir(parents=True)
  (tmp_path / "recipes" / "base" / "common.cfg").write_text("--model=b2u4\n--steps=7\n")
  (tmp_path / "recipes" / "mine.cfg").write_text(
      "# my run\n--flagfile=base/common.cfg\n--steps=9\n")
  (tmp_path / "elsewhere").mkdir()
  monkeypatch.chdir(tmp_path / "elsewhere")
  config = train_config("../recipes/mine.cfg", "--batch_size=4")
  assert (config.model, config.steps, config.batch_size) == ("b2u4", 9, 4)
  # the shipped per-model recipes include pretrain.cfg beside them, then name their model
  b1u8 = train_config("flags/pretrain_b1u8.cfg")
  assert b1u8.model == "b1u8" and b1u8.steps == train_config("flags/pretrain.cfg").steps


def test_a_missing_or_circular_flagfile_is_one_error_naming_it(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "loop.cfg").write_text("--flagfile=loop.cfg\n")
  (tmp_path / "lost.cfg").write_text("--flagfile=gone.cfg\n")
  with pytest.raises(InputError, match=f"^{tmp_path / 'loop.cfg'}: flagfile includes itself$"):
    train_config("loop.cfg")
  with pytest.raises(InputError, match=r"^gone\.cfg: no such flagfile \(named in "
                     + re.escape(str(tmp_path / "lost.cfg")) + r"\)$"):
    train_config("lost.cfg")


def test_recipes_chain_as_readme_lays_out_the_runs():
  assert train_config("flags/smoke_gan.cfg").model == train_config(
      "flags/smoke_pretrain.cfg").model
  gan, _ = cli.parse(TrainConfig, ["train", "--flagfile=flags/gan.cfg", "--dataset=d",
                                   "--workdir=runs/b4u4_gan"])
  assert gan.init_generator == weights.exported_generator("runs/b4u4")
  assert gan.model == train_config("flags/pretrain.cfg").model == "b4u4"
  readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
  training = open(os.path.join(REPO, "docs", "training.md"), encoding="utf-8").read()
  for text in (readme, training):
    assert "--workdir=runs/b4u4 " in text.replace("\n", " ") and "--workdir=runs/b4u4_gan" in text
    assert "runs/pretrain" not in text and "runs/gan" not in text


def test_help_and_docs_name_the_same_resume_invariants():
  help_text = cli.usage(TrainConfig, train_command.__doc__)
  training = open(os.path.join(REPO, "docs", "training.md"), encoding="utf-8").read()
  workdir_section = training[training.index("## Workdir"):]
  for name in RESUME_INVARIANTS + ("patch_size",):
    assert re.search(rf"\b{name}\b", help_text.split("flags:")[0]), name
    assert f"`--{name}`" in workdir_section, name
