"""Test-wide settings: models that commands save by default go to a temporary folder, never the user's home."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def models_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``$RBM_REC_MODELS`` points at a session temporary folder (see ``recsys_rbm.data.paths.models_dir``)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RBM_REC_MODELS", str(tmp_path_factory.mktemp("models")))
    yield
    patch.undo()
