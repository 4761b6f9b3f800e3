"""Atomic file writes: write a temporary file beside the target, flush it to disk, rename it into place.

Temporary files are named ``.<target name>.<pid>.<random>.tmp``: the writer's process id in the
name lets :func:`remove_stale_temporaries` delete the leftovers of a writer that died (killed,
power cut) without ever touching a file that a live process is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(target: Path, pid: int | None = None) -> str:
    """A fresh hidden name for a temporary copy of ``target``, carrying the writer's pid."""
    return f".{target.name}.{os.getpid() if pid is None else pid}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path`` atomically.

    The temporary file is flushed to disk before the rename, and the folder after it, so a crash
    leaves either the old file or the new one, never a torn mix. On any error (Ctrl-C and SIGTERM
    included) the temporary file is removed and ``path`` is left as it was; a failure of the file
    system (a full disk, an I/O error), whichever library wrote, comes out as an ``OSError`` naming
    ``path`` (see :func:`as_os_error`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:  # O_EXCL: never reuse a name another writer holds (a clash of 32 random bits is unlikely)
        temporary = target.parent / temporary_name(target)
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:
            continue
        os.close(handle)
        break
    try:
        mode = os.stat(temporary).st_mode & 0o777  # 0o666 less the umask: the usual permissions
        yield temporary
        os.chmod(temporary, mode)  # a writer that recreated the file (safetensors does) may have made it 0600
        fsync_file(temporary)
        os.replace(temporary, target)
        fsync_folder(target.parent)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        translated = as_os_error(error, target, temporary)
        if translated is not None:
            raise translated from None
        raise


_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)|\bcode: (\d+)|\[Errno (\d+)\]")


def as_os_error(error: BaseException, target: Path, temporary: Path | None = None) -> OSError | None:
    """``error`` as an ``OSError`` naming ``target``, when it is a file-system failure worth naming that way.

    An ``OSError`` without a file name, or naming the hidden ``temporary``, gets ``target``'s; an
    error of another library that carries an OS error code in its text (safetensors'
    ``IoError(Os { code: 28 ... })``, polars's ``(os error 28)``) becomes that ``OSError``. Anything
    else is ``None``: it is not about the file system.
    """
    if isinstance(error, OSError):
        if error.errno is None or error.filename not in (None, str(temporary) if temporary else None):
            return None
        return OSError(error.errno, error.strerror or os.strerror(error.errno), str(target))
    if not isinstance(error, Exception):
        return None
    match = _OS_ERROR_CODE.search(str(error))
    if match is None:
        return None
    code = int(next(group for group in match.groups() if group))
    return OSError(code, os.strerror(code), str(target))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_file(path: Path) -> None:
    """Flush a file's content to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems refuse to fsync a folder; the rename itself still happened
        pass
    finally:
        os.close(handle)


def process_is_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine). Unknown is treated as alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as error:  # EPERM: it exists but belongs to someone else
        return error.errno != errno.ESRCH
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Delete the temporary files of ``target`` (see :func:`temporary_name`) whose writer is dead.

    Returns what was removed. Files of live writers, of other targets, and names that do not
    carry a pid are left alone.
    """
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]+{re.escape(TEMPORARY_SUFFIX)}$")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or process_is_alive(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed
