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


def _native_built() -> bool:
    from recsys_rbm.accel import native

    return native.available()


@pytest.fixture(
    params=[
        pytest.param(
            "1", id="native", marks=pytest.mark.skipif(not _native_built(), reason="the native kernels are not built")
        ),
        pytest.param("0", id="torch"),
    ]
)
def row_kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each path of the row kernels: the native one (where it is built) and torch's."""
    from recsys_rbm.accel import native

    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, request.param)
    return request.param
