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


MODELS_VARIABLE = "RBM_REC_MODELS"
DEFAULT_MODEL_NAME = "movielens-ml-100k.safetensors"  # what `rbm-rec train movielens` writes with its defaults


def models_dir() -> Path:
    """Where trained models live by default, whatever the working folder: ``$RBM_REC_MODELS``, else
    ``$XDG_DATA_HOME/rbm-rec/models``, else ``~/.local/share/rbm-rec/models``."""
    from_environment = os.environ.get(MODELS_VARIABLE)
    if from_environment:
        return Path(from_environment).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "rbm-rec" / "models"


def default_model() -> Path:
    """The model ``recommend``, ``similar``, ``explain`` and friends read without ``--model``: what
    ``rbm-rec train movielens`` writes with its defaults."""
    return models_dir() / DEFAULT_MODEL_NAME
