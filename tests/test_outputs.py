"""Run outputs: an existing file is never replaced by accident, a second run is refused, a run's work
is moved into place whole, and leftovers of dead runs are cleaned up."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_rbm.errors import OutputError
from recsys_rbm.io.atomic import atomic_write_text, remove_stale_temporaries, temporary_name
from recsys_rbm.io.outputs import RunOutput, check_new_output, probe_writable


def dead_pid() -> int:
    """The id of a process that has just exited (not reused this quickly in practice)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_run_writes_its_own_file_and_commits_it_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "model.safetensors"
    with RunOutput(target) as run:
        assert run.partial.parent == target.parent and run.partial.name.startswith(".model.run-")
        assert (target.parent / ".model.safetensors.lock").exists()  # held while the run lasts
        atomic_write_text(run.partial, "epoch 1")
        atomic_write_text(run.partial, "epoch 2")
        assert not target.exists()  # nothing reaches the target before the end
        run.commit()
    assert target.read_text() == "epoch 2" and names(target.parent) == ["model.safetensors"]


def test_an_existing_target_is_refused_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    target.write_text("a good model")
    with pytest.raises(OutputError, match=r"model.safetensors already exists; pass --overwrite to replace it"):
        RunOutput(target).__enter__()
    assert names(tmp_path) == ["model.safetensors"]  # the lock file went with the refusal
    with RunOutput(target, overwrite=True) as run:
        atomic_write_text(run.partial, "a new model")
        run.commit()
    assert target.read_text() == "a new model"


def test_a_target_the_program_named_is_replaced_keeping_the_previous_one_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "movielens-ml-100k.safetensors"
    target.write_text("the first model")
    for new, old in (("the second model", "the first model"), ("the third model", "the second model")):
        with RunOutput(target, keep_previous=True) as run:  # no overwrite needed: running again asks for it
            atomic_write_text(run.partial, new)
            assert target.read_text() == old  # whole until the commit
            run.commit()
        assert run.kept_previous and run.previous == tmp_path / "movielens-ml-100k.previous.safetensors"
        assert target.read_text() == new and run.previous.read_text() == old  # only the one before is kept
    assert names(tmp_path) == ["movielens-ml-100k.previous.safetensors", "movielens-ml-100k.safetensors"]


def test_a_replaced_default_keeps_nothing_when_the_run_is_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    target.write_text("the good model")
    with pytest.raises(KeyboardInterrupt), RunOutput(target, keep_previous=True) as run:
        atomic_write_text(run.partial, "half trained")
        raise KeyboardInterrupt
    assert target.read_text() == "the good model" and not run.kept_previous
    assert names(tmp_path) == ["model.partial.safetensors", "model.safetensors"]  # as any interrupted run


def test_a_fresh_default_target_keeps_no_previous(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with RunOutput(target, keep_previous=True) as run:
        atomic_write_text(run.partial, "the first model")
        run.commit()
    assert not run.kept_previous and names(tmp_path) == ["model.safetensors"]


def test_a_second_run_on_the_same_path_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with RunOutput(target), pytest.raises(OutputError, match=f"another rbm-rec run \\(process {os.getpid()}\\)"):
        RunOutput(target).__enter__()
    with RunOutput(target) as run:  # released: the next run may start
        atomic_write_text(run.partial, "x")
        run.commit()


def test_the_lock_is_held_against_other_processes(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    holder = os.open(tmp_path / ".model.safetensors.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(OutputError, match="wait for it to finish, or choose another --output"):
            RunOutput(target).__enter__()
    finally:
        os.close(holder)


def test_an_interrupted_run_places_its_work_only_where_nothing_was(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.safetensors"
    with pytest.raises(KeyboardInterrupt), RunOutput(fresh) as run:
        atomic_write_text(run.partial, "best so far")
        raise KeyboardInterrupt
    assert run.placed and fresh.read_text() == "best so far"

    kept = tmp_path / "kept.safetensors"
    kept.write_text("the good model")
    for expected in ("kept.partial.safetensors", "kept.partial-2.safetensors"):
        with pytest.raises(KeyboardInterrupt), RunOutput(kept, overwrite=True) as run:
            atomic_write_text(run.partial, f"interrupted {expected}")
            raise KeyboardInterrupt
        assert not run.placed and run.settled_at == tmp_path / expected
        assert kept.read_text() == "the good model"  # untouched, even with --overwrite
        assert (tmp_path / expected).read_text() == f"interrupted {expected}"


def test_a_run_that_saved_nothing_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with pytest.raises(RuntimeError), RunOutput(target) as run:
        raise RuntimeError("failed before the first save")
    assert run.settled_at is None and names(tmp_path) == []


def test_leftovers_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path, caplog) -> None:
    target = tmp_path / "model.safetensors"
    dead, alive = dead_pid(), os.getppid()
    (tmp_path / f".model.run-{dead}.safetensors").write_text("the best epoch of a run killed with SIGKILL")
    leftovers = [
        temporary_name(target, dead),  # a save cut short
        temporary_name(tmp_path / f".model.run-{dead}.safetensors", dead),
    ]
    kept = [
        f".model.run-{alive}.safetensors",  # a live process's (pid reuse, or no lock on another machine)
        temporary_name(target, alive),
        "other.safetensors",
        ".model.safetensors.abc.tmp",  # no pid in the name: not ours to judge
        temporary_name(tmp_path / "other.safetensors", dead),  # another target's
    ]
    for name in leftovers + kept:
        (tmp_path / name).write_text("x")
    with RunOutput(target):
        pass
    assert names(tmp_path) == sorted([*kept, "model.partial.safetensors"])  # the dead run's best is kept, visible
    assert (tmp_path / "model.partial.safetensors").read_text() == "the best epoch of a run killed with SIGKILL"
    notices = [record.getMessage() for record in caplog.records if record.name == "recsys_rbm.io.outputs"]
    assert len(notices) == 1 and f"was killed (process {dead})" in notices[0]
    assert "kept what it had saved as model.partial.safetensors" in notices[0]
    assert remove_stale_temporaries(tmp_path / "other.safetensors") == [tmp_path / kept[-1]]


def test_probe_refuses_paths_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(OutputError, match=r"file is a file, not a folder; choose another --output"):
        probe_writable(tmp_path / "file" / "sub" / "model.safetensors")
    with pytest.raises(OutputError, match=r"folder.safetensors is a folder; give a file path"):
        probe_writable(tmp_path / "folder.safetensors")
    probe_writable(tmp_path / "new" / "deeper" / "model.safetensors")  # missing folders are fine ...
    assert names(tmp_path) == ["file", "folder.safetensors"]  # ... and are not made by the probe


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write: a read-only one, or for root (whom permissions do not stop)
    the kernel's /sys; skips the test where neither exists."""
    locked = tmp_path / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o555)
    if not os.access(locked, os.W_OK):
        return locked
    locked.chmod(0o755)
    if Path("/sys/kernel").is_dir():
        return Path("/sys")
    pytest.skip("no folder this process cannot write")


def test_probe_refuses_a_folder_without_write_permission(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputError, match=r"is not writable \(permission denied\); choose another --json-out"):
        probe_writable(folder / "e.json", "--json-out")


def test_check_new_output_refuses_an_existing_file_unless_overwrite(tmp_path: Path) -> None:
    figure = tmp_path / "figure.png"
    assert check_new_output(figure, overwrite=False) is False
    figure.write_bytes(b"png")
    with pytest.raises(OutputError, match=r"figure\.png already exists; pass --overwrite"):
        check_new_output(figure, overwrite=False)
    assert check_new_output(figure, overwrite=True) is True
