"""Where datasets live: ``--data-dir``, else ``$RBM_REC_DATA``, else ``data/`` in the working folder."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

ENVIRONMENT_VARIABLE = "RBM_REC_DATA"
DEFAULT_DATA_DIR = Path("data")


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory to use: the explicit argument, then ``$RBM_REC_DATA``, then ``data/``.

    A path that exists but is no folder (a file, a link loop) is a one-line :class:`DataError`
    naming where it came from, instead of a failed download into it.
    """
    if data_dir is not None and str(data_dir) != "":
        return _checked_folder(Path(data_dir).expanduser(), "--data-dir")
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        return _checked_folder(Path(from_environment).expanduser(), f"{ENVIRONMENT_VARIABLE}=")
    return _checked_folder(DEFAULT_DATA_DIR, "the default data folder")


def _checked_folder(folder: Path, origin: str) -> Path:
    """``folder`` when it is a folder or does not exist yet (a download makes it); else one line naming ``origin``."""
    from recsys_rbm.errors import DataError

    shown = f"{origin}{folder}" if origin.endswith("=") else f"{origin} {folder}"
    advice = "point --data-dir or RBM_REC_DATA at the folder that holds the datasets (or should)"
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        if folder.is_symlink():
            raise DataError(
                f"{shown} is a symbolic link to {os.readlink(folder)}, which does not exist; {advice}"
            ) from None
        return folder
    except OSError as error:
        reason = "is a symbolic link loop" if error.errno == errno.ELOOP else f"cannot be used ({error.strerror})"
        raise DataError(f"{shown} {reason}; {advice}") from None
    if stat.S_ISDIR(mode):
        return folder
    raise DataError(f"{shown} is a file, not a folder; {advice}")


def dataset_files(data_dir: str | Path | None, folders: tuple[str, ...]) -> list[tuple[str, Path]]:
    """The files a run may read of the datasets in ``folders`` (e.g. ``ml-100k``), each folder's files and its
    zip, as ("the dataset file", path) pairs: what no output of the run may be."""
    directory = resolve_data_dir(data_dir)
    found: list[tuple[str, Path]] = []
    for name in folders:
        candidates = [directory / f"{name}.zip"]
        with contextlib.suppress(OSError):
            candidates += sorted((directory / name).iterdir())
        found += [("the dataset file", path) for path in candidates if path.is_file()]
    return found


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
