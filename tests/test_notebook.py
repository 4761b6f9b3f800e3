"""The course exercise notebook runs from top to bottom on the real MNIST."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "mnist_exercise.ipynb"
DATA = os.environ.get("RBM_REC_DATA", "")
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
HAVE_MNIST = bool(DATA) and all((Path(DATA) / "mnist" / name).is_file() for name in MNIST_FILES)


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "clear the notebook's outputs before committing"


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_MNIST, reason="real MNIST not found: set RBM_REC_DATA to a folder with mnist/*.gz")
def test_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBM_REC_DATA", str(Path(DATA).resolve()))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    figures = sorted(p.name for p in (tmp_path / "mnist-figures").iterdir())
    assert figures == ["fewer-features.png", "filters.png", "samples.png", "training-curves.png"]
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "stochastic binarization (seed 0)" in printed and "test log-likelihood" in printed
