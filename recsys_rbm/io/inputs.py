"""Input files: regular files only, opened without ever blocking, each problem named in plain words.

``open()`` on a named pipe (FIFO) waits for a writer, possibly forever, and reading a character
device such as ``/dev/zero`` never ends. :func:`open_regular` opens without blocking
(``O_NONBLOCK``) and refuses anything but a regular file before a byte is read.
:func:`input_problem` tells apart the ways a path can fail to be a readable file (missing, a
broken link, a link loop, a folder, a pipe or device, no permission), so that every command says
which one it is instead of "does not exist".
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from recsys_rbm.errors import DataError, RecsysRBMError


@dataclass(frozen=True)
class InputProblem:
    """Why a path is not a readable regular file: ``kind`` for callers, ``text`` to follow the path in a message."""

    kind: str  # "missing", "broken link", "link loop", "folder", "special", "unreadable", "not a folder", "other"
    text: str  # e.g. "does not exist", "is a named pipe (FIFO), not a regular file"
    advice: str  # what to do, e.g. "check the path"


def special_kind(mode: int) -> str:
    """What a non-regular, non-folder file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _special(mode: int) -> InputProblem:
    return InputProblem(
        "special",
        f"is {special_kind(mode)}, not a regular file",
        "give a regular file (reading a pipe or device could wait or run forever)",
    )


def input_problem(path: str | Path) -> InputProblem | None:
    """Why ``path`` cannot be read as a regular file, or ``None`` when it can be (as far as ``stat`` tells)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return _stat_problem(path, error)
    if stat.S_ISDIR(mode):
        return InputProblem("folder", "is a folder, not a file", "give a file path")
    if not stat.S_ISREG(mode):
        return _special(mode)
    if not os.access(path, os.R_OK):
        return InputProblem("unreadable", "cannot be read (permission denied)", "fix its permissions")
    return None


def _stat_problem(path: Path, error: OSError) -> InputProblem:
    if error.errno == errno.ENOENT:
        if path.is_symlink():
            return InputProblem(
                "broken link",
                f"is a symbolic link to {os.readlink(path)}, which does not exist",
                "fix the link or give the file itself",
            )
        return InputProblem("missing", "does not exist", "check the path")
    if error.errno == errno.ELOOP:
        return InputProblem("link loop", "is a symbolic link loop (its links lead back to themselves)", "fix the links")
    if error.errno in (errno.EACCES, errno.EPERM):
        return InputProblem("unreadable", "cannot be reached (permission denied)", "fix the folders' permissions")
    if error.errno == errno.ENOTDIR:
        return InputProblem("not a folder", "is not a path: part of it is a file, not a folder", "check the path")
    if error.errno == errno.ENAMETOOLONG:
        return InputProblem("other", "is too long a path", "check the path")
    return InputProblem("other", f"cannot be read ({error.strerror or error})", "check the path")


def require_regular(
    path: str | Path, what: str, error: type[RecsysRBMError] = DataError, advice: str | None = None
) -> None:
    """Raise ``error`` (one line: ``<what> <path> <problem>; <advice>``) unless ``path`` is a readable regular file."""
    problem = input_problem(path)
    if problem is not None:
        raise error(f"{what} {path} {problem.text}; {advice or problem.advice}")


def open_regular(path: str | Path, what: str, error: type[RecsysRBMError] = DataError) -> BinaryIO:
    """``path`` opened for binary reading, never blocking: anything but a regular file is a one-line ``error``."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as failure:
        problem = input_problem(path) or _stat_problem(Path(path), failure)
        if failure.errno == errno.EISDIR:
            problem = InputProblem("folder", "is a folder, not a file", "give a file path")
        raise error(f"{what} {path} {problem.text}; {problem.advice}") from None
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        problem = InputProblem("folder", "is a folder, not a file", "give a file path") if stat.S_ISDIR(mode) else None
        problem = problem or _special(mode)
        raise error(f"{what} {path} {problem.text}; {problem.advice}")
    os.set_blocking(handle, True)
    return os.fdopen(handle, "rb")


def read_regular_bytes(path: str | Path, what: str, error: type[RecsysRBMError] = DataError) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`); a failed read is a one-line ``error``."""
    with open_regular(path, what, error) as handle:
        try:
            return handle.read()
        except OSError as failure:
            raise error(f"{what} {path} could not be read ({failure.strerror or failure}); check the disk") from None
