"""A writable home for matplotlib's settings and font cache, so that a read-only HOME costs no warning.

matplotlib keeps its configuration and font cache under ``~/.config/matplotlib`` and
``~/.cache/matplotlib`` (or ``$XDG_CONFIG_HOME`` / ``$XDG_CACHE_HOME``). Where those cannot be made
or written (a read-only home, a locked-down container) it prints a multi-line warning on every
import. :func:`ensure_config_dir`, called before matplotlib is imported, points ``MPLCONFIGDIR`` at a
fresh temporary folder in that case (removed at exit); a ``MPLCONFIGDIR`` the user set is kept.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

VARIABLE = "MPLCONFIGDIR"


def _usable(folder: Path) -> bool:
    """Whether ``folder`` exists and can be written, or could be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _default_folders() -> list[Path]:
    home = Path.home()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return [config / "matplotlib", cache / "matplotlib"]


def ensure_config_dir() -> None:
    """Set ``MPLCONFIGDIR`` to a temporary folder when matplotlib's own folders cannot be written (see above)."""
    if os.environ.get(VARIABLE):
        return
    try:
        usable = all(_usable(folder) for folder in _default_folders())
    except RuntimeError:  # no home folder at all
        usable = False
    if usable:
        return
    folder = tempfile.mkdtemp(prefix="rbm-rec-matplotlib-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ[VARIABLE] = folder
