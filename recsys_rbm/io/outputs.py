"""Output paths of a run: checked before any work, locked while the run lasts, replaced only on purpose.

A training run may take minutes and its target may already hold a good model, so writing "the
best so far" straight to the target can lose work. :class:`RunOutput` gives a run its own file
beside the target and moves it into place at the end:

- **Before any work** (:meth:`RunOutput.__enter__`): the target's folder is probed for
  writability (a probe file is made and removed, see :func:`probe_writable`); an exclusive lock
  (``fcntl.flock`` on the hidden ``.<name>.lock`` beside the target) refuses a second run on the
  same path; an existing target is refused unless ``overwrite``; the leftovers of dead runs
  (recognised by the pid in their names, or in the lock they never removed) are dealt with:
  temporary files removed, a run file (a whole checkpoint of that run's best) kept as
  ``<stem>.partial<suffix>`` like an interrupted run's, and one notice says so.
- **During the run**: the caller saves to :attr:`RunOutput.partial`
  (``.<stem>.run-<pid><suffix>``, hidden, owned by this run), as often as it likes.
- **At the end**: :meth:`RunOutput.commit` renames it onto the target, atomically. A target the
  program named itself (``keep_previous``: the default model a command writes without ``--output``)
  may be replaced without ``overwrite``, since running the same command again asks for it: the old
  file is first kept, whole, as ``<stem>.previous<suffix>`` (replacing the one kept before), then
  the new one renamed over the target, so the target always holds a whole model.
- **On interruption or failure** (:meth:`RunOutput.settle`, also run on leaving the ``with``
  block without a commit): if the target did not exist before the run, the run's file is moved
  there (something is better than nothing); if it did, the target is left untouched and the
  run's file is kept, visible, as ``<stem>.partial<suffix>`` (``<stem>.partial-2<suffix>`` ...
  if taken), never overwriting anything.

:func:`check_new_output` does the first-step checks (no lock) for outputs written once, at the end
(figures).

:func:`check_distinct` refuses an output that is one of the run's own inputs (the same path after
links are resolved, or a hard link to it), even with ``--overwrite``: that flag is permission to
replace an old output, never to destroy what the same run reads.

The notice about a dead run's leftovers goes to the ``recsys_rbm.io.outputs`` logger (the command line
prints it as one ``note:`` line).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from recsys_rbm.errors import OutputError
from recsys_rbm.io.atomic import fsync_folder, process_is_alive, remove_stale_temporaries, temporary_name

OVERWRITE_FLAG = "--overwrite"
WRITE_FAILURES = {  # errors of a write that say the disk, not the path, is the problem
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EIO: "the device reported an input/output error",
}
log = logging.getLogger(__name__)


def same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name one file: equal once links are resolved, or the same file (a hard link)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except (OSError, ValueError):
        return False


Paths = Mapping[str, str | Path | None] | Iterable[tuple[str, str | Path | None]]


def check_distinct(outputs: Paths, inputs: Paths) -> None:
    """Refuse (one :class:`OutputError` line) an output that is one of the run's inputs, whatever ``--overwrite``.

    ``outputs`` and ``inputs`` map how the user named each path (``--output``, ``--users``, "the
    ratings table") to the path, or are (name, path) pairs (several files of one name); ``None``
    paths are skipped.
    """
    sources = list(inputs.items() if isinstance(inputs, Mapping) else inputs)
    for option, output in outputs.items() if isinstance(outputs, Mapping) else outputs:
        if output is None:
            continue
        for name, source in sources:
            if source is None or not same_file(output, source):
                continue
            same_path = os.path.realpath(output) == os.path.realpath(source)
            how = "is the same file as" if same_path else "is a hard link to"
            raise OutputError(
                f"{option} {output} {how} {name} {source}, which this command reads; choose another {option} "
                f"({OVERWRITE_FLAG} replaces an old output, never a file the same run reads)"
            )


def report_leftovers(target: Path, removed: list[Path], pids: set[int], kept: list[Path] | None = None) -> None:
    """One notice naming what dead runs left beside ``target``: the files removed, and the run files kept."""
    kept = kept or []
    if not removed and not kept:
        return
    who = ", ".join(str(pid) for pid in sorted(pids))
    done = [f"removed {', '.join(sorted(path.name for path in removed))}"] if removed else []
    if kept:
        done.append(f"kept what it had saved as {', '.join(path.name for path in kept)} (use it, or delete it)")
    log.warning(f"an earlier run on {target} was killed (process {who}) and left files behind: {'; '.join(done)}")


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its closest ancestor that exists (as anything: folder, file, broken link)."""
    while not (folder.exists() or folder.is_symlink()):
        if folder.parent == folder:
            break
        folder = folder.parent
    return folder


def probe_writable(path: str | Path, option: str = "--output", example: str = "model.safetensors") -> None:
    """Raise a one-line :class:`OutputError` now if a file cannot be written at ``path`` later.

    Catches a target that is a folder or not a regular file, a parent that is a file, and a
    folder that cannot be written (permissions, read-only or full file system), by creating and
    removing a probe file in the nearest existing folder. Nothing is left behind, not even the
    missing folders (they are made when the file is written).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file path, e.g. {path / example}")
    if path.exists() and not path.is_file():
        raise OutputError(f"{option} {path} exists but is not a regular file; choose another {option}")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise OutputError(
            f"cannot create the folder for {option} {path}: {folder} is a file, not a folder; choose another {option}"
        )
    probe = folder / f".rbm-rec-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(handle, b"probe")
        finally:
            os.close(handle)
    except OSError as error:
        raise OutputError(_unwritable(folder, path, option, error)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _unwritable(folder: Path, path: Path, option: str, error: OSError) -> str:
    reason = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
    }.get(error.errno or 0, error.strerror or str(error))
    return f"cannot write {option} {path}: folder {folder} is not writable ({reason}); choose another {option}"


def check_new_output(path: str | Path, overwrite: bool, option: str = "--output", example: str = "out") -> bool:
    """Checks for a file written once at the end of a command: writable, and not replacing a file
    unless ``overwrite``. Returns whether it exists; removes dead writers' temporaries of it."""
    path = Path(path)
    probe_writable(path, option, example)
    exists = path.exists()
    if exists and not overwrite:
        raise OutputError(_exists_message(path, option))
    removed = remove_stale_temporaries(path)
    report_leftovers(path, removed, {_writer_pid(item.name) for item in removed})
    return exists


def _exists_message(path: Path, option: str) -> str:
    return f"{path} already exists; pass {OVERWRITE_FLAG} to replace it, or choose another {option}"


def _move_without_replacing(source: Path, destination: Path) -> bool:
    """Rename ``source`` to ``destination`` unless that exists (atomically: a hard link, then unlink)."""
    try:
        os.link(source, destination)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if destination.exists():  # a file system without hard links: a check, then a rename
            return False
        os.rename(source, destination)
        return True
    os.unlink(source)
    return True


class RunOutput:
    """One run's claim on an output file; see the module docstring. Use as a context manager."""

    def __init__(
        self, target: str | Path, *, overwrite: bool = False, option: str = "--output", keep_previous: bool = False
    ) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.option = option
        self.keep_previous = keep_previous  # the program named the target: replace it, keeping the old one
        stem, suffix = _stem_and_suffix(self.target)
        self.partial = self.target.parent / f".{stem}.run-{os.getpid()}{suffix}"  # the run's own file
        self.previous = self.target.parent / f"{stem}.previous{suffix}"  # where keep_previous keeps the old target
        self.kept_previous = False  # whether commit() kept the old target there
        self.lock_path = self.target.parent / f".{self.target.name}.lock"
        self.existed = False  # whether the target existed when the run started
        self.committed = False
        self.settled_at: Path | None = None  # where settle() left the run's file, if anywhere
        self.stale_lock_pid: int | None = None  # the dead process whose lock this run found and took over
        self._lock_handle: int | None = None

    # --- start -------------------------------------------------------------------------------------
    def __enter__(self) -> RunOutput:
        probe_writable(self.target, self.option, _example(self.target))
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self.existed = self.target.exists() or self.target.is_symlink()
            if self.existed and not (self.overwrite or self.keep_previous):
                raise OutputError(_exists_message(self.target, self.option))
            if self.existed and self.keep_previous:
                self._check_previous()
            self._remove_leftovers()
        except BaseException:
            self._release_lock()
            raise
        return self

    def _acquire_lock(self) -> None:
        while True:
            handle = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(handle)
                os.close(handle)
                who = f" (process {holder})" if holder else ""
                raise OutputError(
                    f"another rbm-rec run{who} is writing {self.target}; wait for it to finish, "
                    f"or choose another {self.option}"
                ) from None
            except OSError as error:
                os.close(handle)
                raise OutputError(
                    f"cannot lock {self.lock_path} ({error.strerror}); choose an {self.option} on a local disk"
                ) from None
            # The previous holder removes the lock file before releasing it: make sure the name
            # still refers to the file locked here, else lock the new one.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.lock_path).st_ino == os.fstat(handle).st_ino:
                    break
            os.close(handle)
        # A lock file still naming a process is one its run never removed: that run was killed.
        holder = _read_pid(handle)
        if holder is not None and holder != os.getpid():
            self.stale_lock_pid = holder
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)  # while still holding it: see _acquire_lock
        os.close(self._lock_handle)
        self._lock_handle = None

    def _remove_leftovers(self) -> None:
        """Remove the temporaries of dead processes (by the pid in their names), keep their run files as
        ``.partial`` files (each is a whole checkpoint), and say so once, naming the stale lock taken over too."""
        removed = remove_stale_temporaries(self.target)
        if self.keep_previous:
            removed += remove_stale_temporaries(self.previous)
        pids = {_writer_pid(path.name) for path in removed}
        kept: list[Path] = []
        stem, suffix = _stem_and_suffix(self.target)
        run_file = re.compile(rf"^\.{re.escape(stem)}\.run-(\d+){re.escape(suffix)}$")
        run_temporary = re.compile(rf"^\.\.{re.escape(stem)}\.run-\d+{re.escape(suffix)}\.(\d+)\.[0-9a-f]+\.tmp$")
        with contextlib.suppress(OSError), os.scandir(self.target.parent) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                temporary, whole = run_temporary.match(entry.name), run_file.match(entry.name)
                match = temporary or whole
                if match is None or process_is_alive(int(match.group(1))):
                    continue
                pids.add(int(match.group(1)))
                with contextlib.suppress(FileNotFoundError):
                    if temporary:
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
                    else:
                        kept.append(self._keep(Path(entry.path)))
        if self.stale_lock_pid is not None:
            removed.append(self.lock_path)  # taken over now, removed when this run ends
            pids.add(self.stale_lock_pid)
        report_leftovers(self.target, removed, pids, kept)

    # --- end ---------------------------------------------------------------------------------------
    def commit(self) -> Path:
        """Move the run's file onto the target, atomically; returns the target."""
        if not self.partial.exists():
            raise OutputError(f"the run saved nothing to {self.partial}, so there is nothing to move to {self.target}")
        if self.existed:
            if self.keep_previous:
                self._keep_previous()
            os.replace(self.partial, self.target)  # allowed: overwrite or keep_previous, or __enter__ refused
        elif not _move_without_replacing(self.partial, self.target):
            raise OutputError(
                f"{self.target} appeared while the run was writing it; the run's result is kept in "
                f"{self._keep(self.partial)}; move it into place yourself"
            )
        fsync_folder(self.target.parent)
        self.committed = True
        return self.target

    def settle(self) -> Path | None:
        """After an interruption or failure: place or keep the run's file (see the module docstring).

        Returns where it went (the target or a ``.partial`` file), or ``None`` when nothing was saved.
        """
        if self.committed or self.settled_at is not None:
            return self.settled_at
        if not self.partial.exists():
            return None
        if not self.existed and _move_without_replacing(self.partial, self.target):
            self.settled_at = self.target
        else:
            self.settled_at = self._keep(self.partial)
        fsync_folder(self.target.parent)
        return self.settled_at

    def _check_previous(self) -> None:
        """Before any work: the old target can be kept at :attr:`previous` (nothing but a file of that name there)."""
        if (self.previous.exists() or self.previous.is_symlink()) and not self.previous.is_file():
            raise OutputError(
                f"{self.previous} is in the way: the previous {self.target.name} is kept there when it is replaced, "
                f"but that is not a file; move it away, or pass {self.option} to write elsewhere"
            )

    def _keep_previous(self) -> None:
        """The target as it is now, whole, at :attr:`previous` (replacing what was there): a hard link renamed
        into place, or a copy where the file system has no hard links."""
        import shutil

        if not (self.target.exists() and self.target.is_file()):
            return
        temporary = self.previous.parent / temporary_name(self.previous)
        try:
            os.link(self.target, temporary)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            shutil.copy2(self.target, temporary)
        try:
            os.replace(temporary, self.previous)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self.kept_previous = True

    @property
    def placed(self) -> bool:
        """Whether :meth:`settle` moved the run's file onto the target."""
        return self.settled_at == self.target

    def _keep(self, source: Path) -> Path:
        """Move a run's file to the first free ``<stem>.partial[-N]<suffix>``; returns that path."""
        stem, suffix = _stem_and_suffix(self.target)
        number = 1
        while True:
            name = f"{stem}.partial{'' if number == 1 else f'-{number}'}{suffix}"
            destination = self.target.parent / name
            if _move_without_replacing(source, destination):
                return destination
            number += 1

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if not self.committed:
                self.settle()
        finally:
            self._release_lock()
        if isinstance(error, OSError) and error.errno in WRITE_FAILURES and self._names_this_run(error.filename):
            raise OutputError(self.unsaved_message(error)) from None

    def _names_this_run(self, filename: object) -> bool:
        """Whether a failed write was one of this run's (its own file, or the target), not some other file's."""
        return filename is None or str(filename) in (str(self.partial), str(self.target))

    def unsaved_message(self, error: OSError, saved: str = "what the run had saved so far") -> str:
        """The line for a write the file system refused (a full disk): what survived, where, and what to do.

        Call after :meth:`settle`; ``saved`` words what the run's own file held (e.g. "the best model
        so far (epoch 3)").
        """
        reason = WRITE_FAILURES.get(error.errno or 0) or error.strerror or str(error)
        if self.existed:
            state = f"{self.target} was left unchanged (the old file survived)"
        elif self.placed:
            state = f"{saved} was kept in {self.target}, marked unfinished"
        else:
            state = f"{self.target} was not created"
        if self.settled_at is not None and not self.placed:
            state += f", and {saved} was kept in {self.settled_at}"
        return (
            f"{reason} while writing {self.target} ({self.option}); {state}; free some space, or choose an "
            f"{self.option} on another disk, and run the command again"
        )


def _stem_and_suffix(target: Path) -> tuple[str, str]:
    """``model.safetensors`` -> (``model``, ``.safetensors``); a name without a suffix keeps it all."""
    return (target.stem, target.suffix) if target.suffix else (target.name, "")


def _example(target: Path) -> str:
    return f"model{target.suffix}" if target.suffix else "model"


def _writer_pid(name: str) -> int:
    """The process id a temporary file's name carries (see :func:`recsys_rbm.io.atomic.temporary_name`)."""
    return int(name.rsplit(".", 3)[-3])


def _read_pid(handle: int) -> int | None:
    try:
        text = os.pread(handle, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
