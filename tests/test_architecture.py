"""The package's structure as docs/architecture.md states it: the module table matches the
real imports, nothing imports a later stage or a command, and every command's --help comes
from its options dataclass without loading TensorFlow."""
import ast
import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from mdcsrn_tf import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "mdcsrn_tf")
LAYERS = ("top", "data", "models", "weights", "infer", "bids", "train", "evaluate", "export",
          "release", "demo")
COMMANDS = ("data", "models", "train", "infer", "bids", "evaluate", "export", "release", "demo")


def module_keys() -> dict:
  """{"data/nifti": path, "weights/__init__": path, "cli": path, ...} of every module."""
  keys = {}
  for folder, _, names in os.walk(PACKAGE):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        keys[os.path.relpath(path, PACKAGE)[:-3]] = path
  return keys


MODULES = module_keys()


def resolve(dotted: str) -> str | None:
  """The module key a dotted import names: the longest prefix that is a module, or the
  package's __init__."""
  parts = dotted.split(".")[1:]
  for end in range(len(parts), -1, -1):
    key = "/".join(parts[:end])
    if key in MODULES:
      return key
    if f"{key}/__init__".lstrip("/") in MODULES:
      return f"{key}/__init__".lstrip("/")
  return None


def real_imports(key) -> set:
  tree = ast.parse(open(MODULES[key], encoding="utf-8").read())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mdcsrn_tf"):
      found.update(resolve(f"{node.module}.{alias.name}") for alias in node.names)
    elif isinstance(node, ast.Import):
      found.update(resolve(a.name) for a in node.names if a.name.startswith("mdcsrn_tf"))
  return found - {key, None}


def documented_imports() -> dict:
  text = open(os.path.join(REPO, "docs", "architecture.md"), encoding="utf-8").read()
  table = text[text.index("| module | concern | imports |"):]
  rows = {}
  for line in table.splitlines()[2:]:
    if not line.startswith("| `"):
      break
    module, _, imports = (cell.strip() for cell in line.strip("|").split("|"))
    rows[module.strip("`")] = set(re.findall(r"`([\w/]+)`", imports))
  return rows


def layer(key) -> int:
  return LAYERS.index(key.split("/")[0] if "/" in key else "top")


def test_the_module_table_lists_every_module_with_its_real_imports():
  documented = documented_imports()
  assert set(documented) == set(MODULES)
  for key in MODULES:
    assert real_imports(key) == documented[key], key


def test_nothing_imports_a_later_stage_or_a_command():
  for key in MODULES:
    for imported in real_imports(key):
      assert layer(imported) <= layer(key), f"{key} imports {imported}"
      assert not imported.endswith("__main__"), f"{key} imports the command {imported}"


def test_training_and_evaluation_never_import_each_other():
  for key in MODULES:
    stage = key.split("/")[0]
    for imported in real_imports(key):
      assert {stage, imported.split("/")[0]} != {"train", "evaluate"}, f"{key} imports {imported}"


HELP_WITHOUT_TENSORFLOW = """
import importlib, io, json, sys, contextlib
helps = {}
for name in sys.argv[1:]:
  command = importlib.import_module(f"mdcsrn_tf.{name}.__main__")
  sys.argv = [name, "--help"]
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    try:
      command.run()
    except SystemExit as exit:
      assert exit.code == 0, (name, exit.code)
  helps[name] = out.getvalue()
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "helps": helps}))
"""


@pytest.fixture(scope="module")
def helps():
  result = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TENSORFLOW, *COMMANDS], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
  return json.loads(result.stdout)


def test_every_help_answers_without_loading_tensorflow(helps):
  assert not helps["tensorflow"]
  assert set(helps["helps"]) == set(COMMANDS)


def test_help_is_made_of_the_options_dataclass_field_docs(helps):
  from mdcsrn_tf.bids.app import BidsOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.data.dataset import PrepareOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.demo import DemoOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.evaluate.evaluation import EvaluateOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.export.saved_model import ExportOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer.predict import PredictOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.models.__main__ import SummaryOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.release import ReleaseOptions  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.train.config import TrainConfig  # pylint: disable=import-outside-toplevel

  options = {"data": PrepareOptions, "models": SummaryOptions, "train": TrainConfig,
             "infer": PredictOptions, "bids": BidsOptions, "evaluate": EvaluateOptions, "export": ExportOptions,
             "release": ReleaseOptions, "demo": DemoOptions}
  for command, options_class in options.items():
    docs = cli.field_docs(options_class)
    for field in dataclasses.fields(options_class):
      assert f"  --{field.name}: {docs[field.name]}" in helps["helps"][command], (command, field)
