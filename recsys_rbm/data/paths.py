"""Where datasets live: ``--data-dir``, else ``$RBM_REC_DATA``, else ``data/`` in the working folder."""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT_VARIABLE = "RBM_REC_DATA"
DEFAULT_DATA_DIR = Path("data")


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory to use: the explicit argument, then ``$RBM_REC_DATA``, then ``data/``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        return Path(from_environment).expanduser()
    return DEFAULT_DATA_DIR
