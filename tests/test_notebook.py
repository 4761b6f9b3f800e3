"""The two notebooks: committed with their outputs, and executable from top to bottom on the real data.

The stored outputs come from the full settings; the tests execute a copy with
``RBM_REC_NOTEBOOK_QUICK=1``, which each notebook reads to shrink its training to seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COURSE = NOTEBOOKS / "mnist_exercise.ipynb"
WALKTHROUGH = NOTEBOOKS / "recommender_walkthrough.ipynb"
DATA = os.environ.get("RBM_REC_DATA", "")
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
HAVE_MNIST = bool(DATA) and all((Path(DATA) / "mnist" / name).is_file() for name in MNIST_FILES)
HAVE_ML100K = bool(DATA) and (Path(DATA) / "ml-100k" / "u.data").is_file()


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the code cells printed."""
    return "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )


def images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.mark.parametrize("path", [COURSE, WALKTHROUGH], ids=lambda p: p.stem)
def test_notebook_is_committed_with_the_outputs_of_one_clean_run(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "run it top to bottom once"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert images(notebook) >= 3
    assert "QUICK" in code[0].source  # the tests' switch to small settings


def test_course_notebook_has_an_exercise_with_an_answer_after_each_section() -> None:
    notebook = nbformat.read(COURSE, as_version=4)
    questions = [i for i, cell in enumerate(notebook.cells) if cell.source.startswith("**Exercise")]
    assert len(questions) == 5
    for index in questions:
        assert notebook.cells[index + 1].source.startswith("# Answer")
    text = " ".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "CD versus PCD" in text and "Fewer features" in text and "What the free energy says" in text


def execute_quickly(path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run a copy of the notebook with small settings in ``folder`` (the committed file is not touched)."""
    monkeypatch.setenv("RBM_REC_DATA", str(Path(DATA).resolve()))
    monkeypatch.setenv("RBM_REC_NOTEBOOK_QUICK", "1")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_MNIST, reason="real MNIST not found: set RBM_REC_DATA to a folder with mnist/*.gz")
def test_course_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute_quickly(COURSE, tmp_path, monkeypatch)
    written = sorted(p.name for p in (tmp_path / "mnist-figures").iterdir())
    assert written == [
        "cd-pcd.png",
        "cd-samples.png",
        "data.png",
        "fewer-features.png",
        "filters.png",
        "samples.png",
        "training-curves.png",
        "typical.png",
    ]
    text = printed(notebook)
    assert "stochastic binarization (seed 0)" in text and "test log-likelihood" in text
    assert "same as the library's" in text and "log Z exact" in text and "largest share" in text


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_ML100K, reason="real ml-100k not found: set RBM_REC_DATA to a folder with ml-100k/")
def test_recommender_walkthrough_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute_quickly(WALKTHROUGH, tmp_path, monkeypatch)
    text = printed(notebook)
    assert "100,000 ratings by 943 users of 1,682 movies" in text and "best epoch" in text
    tables = [o for cell in notebook.cells for o in getattr(cell, "outputs", []) if "text/html" in o.get("data", {})]
    assert len(tables) >= 4  # baselines, recommend, explain, new user, anomalies
    assert images(notebook) >= 2
