"""The notebooks that reproduce Tables 1-2 and Figure 2, executed headless in smoke mode on
the bundled real data, with a b1u8 run of the user's own beside the shipped weights."""
import os

import keras
import matplotlib.image
import nbformat
import pytest
from nbclient import NotebookClient

from mdcsrn_tf.data import dataset as datasets
from mdcsrn_tf.evaluate import scoring, tables
from mdcsrn_tf.evaluate.tables import TableSettings
from mdcsrn_tf import models, paper, weights
from mdcsrn_tf.weights.card import ModelCard

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "notebooks")
NAMES = ("table1", "table2", "figure2")


@pytest.fixture(scope="module")
def settings(tmp_path_factory, sample):
  """A checkpoints folder whose b1u8 run exported its generator (seeded Glorot weights:
  the notebooks read the export, not how it was trained), and the bundled demo manifest."""
  sample("colin27_1mm")  # the demo data set's test subject
  root = tmp_path_factory.mktemp("notebooks")
  export = weights.exported_generator(str(root / "runs" / "b1u8"))
  os.makedirs(os.path.dirname(export))
  keras.utils.set_random_seed(4)
  weights.save_generator(models.build_model("b1u8", identity_init=False), export,
                         ModelCard("b1u8"))
  datasets.prepare_samples(str(root / "samples"), log=lambda _: None)
  return TableSettings(manifest=str(root / "samples" / "manifest.json"),
                       checkpoints=str(root / "runs"))


def execute(name, parameters: dict):
  """Runs a notebook with `parameters` injected after its parameters cell, as papermill does."""
  notebook = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
  (index,) = [i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.metadata.get("tags", [])]
  source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
  notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": NOTEBOOKS}}).execute()
  return notebook


def text_outputs(notebook) -> str:
  parts = []
  for cell in notebook.cells:
    for output in cell.get("outputs", []):
      parts.append(output.get("text", ""))
      parts.append(output.get("data", {}).get("text/markdown", ""))
  return "\n".join(parts)


def test_committed_notebooks_carry_no_outputs():
  for name in NAMES:
    notebook = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
    for cell in notebook.cells:
      if cell.cell_type == "code":
        assert not cell.outputs and cell.execution_count is None, name


def expected_source(method) -> str:
  """What a row's weights column says for a network without a run of the user's own."""
  return "shipped weights" if weights.shipped_network(method) else "no checkpoint"


@pytest.mark.parametrize("name", ("table1", "table2"))
def test_table_notebook_renders_real_numbers_and_names_each_rows_weights(name, settings):
  notebook = execute(name, {"manifest": settings.manifest, "checkpoints": settings.checkpoints,
                            "smoke": True})
  text = text_outputs(notebook)
  table = [line for line in text.splitlines() if line.startswith("| ")]
  header = [cell.strip() for cell in table[0].strip("|").split("|")]
  rows = {line.split(" | ")[0].lstrip("| "): [cell.strip() for cell in line.strip("|").split("|")]
          for line in table[1:]}
  column = {label: index for index, label in enumerate(header)}
  # the bundled data set's Colin27 carries its brain mask: ours inside it, beside the rest
  # the paper has no sharpness or band fidelity: ours alone, then every figure in the mask
  assert header[10:17] == ["sharpness", "band fidelity", "SSIM in mask", "PSNR in mask",
                           "NRMSE in mask", "sharpness in mask", "band fidelity in mask"]
  for label, cells in rows.items():
    # one subject in smoke mode: n = 1 and the mean alone, never a std of 0
    scored = cells[column["PSNR"]] != "-"
    assert cells[column["n"]] == ("1" if scored else "-"), label
    assert "(" not in cells[column["PSNR"]], label
  networks = [method for method in (paper.TABLE1 if name == "table1" else paper.TABLE2)
              if method not in scoring.BASELINES]
  for method in networks:
    cells = rows[tables.LABELS[method]]
    source = cells[column["weights"]]
    if method == "b1u8":  # the fixture's run in checkpoints/b1u8
      assert source.startswith("your run") and source.endswith("b1u8"), source
      assert cells[column["paper PSNR"]] == "35.35" and cells[column["params"]] == "306,753"
    else:
      assert source.startswith(expected_source(method)), (method, source)
    assert (cells[column["PSNR"]] == "-") == source.startswith("no checkpoint"), method
  if name == "table2":
    assert rows["bicubic interpolation"][column["paper PSNR"]] == "29.07"
    assert rows["bicubic interpolation"][column["PSNR"]] != "-"


def test_figure2_notebook_writes_a_png(settings, tmp_path):
  figure = tmp_path / "figure2.png"
  notebook = execute("figure2", {"manifest": settings.manifest,
                                 "checkpoints": settings.checkpoints, "smoke": True,
                                 "figure": str(figure)})
  text = text_outputs(notebook)
  assert "nearest neighbour" in text and "HR" in text
  image = matplotlib.image.imread(figure)
  assert image[..., :3].mean(axis=-1).std() > 0.1
