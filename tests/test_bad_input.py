"""The catalogue of bad inputs and faults: what a new user (or a crash, or a second process, or an odd
terminal) throws at the command line, and what must come back.

Every case asserts the same contract: the exit code; exactly one line on stderr, starting
``error:``, that names the problem and says what to do; no traceback anywhere; no hang (a case
that runs past :data:`DEADLINE` seconds fails); and every file that existed before the command (in
the case's own folder and in the shared data and models) is unchanged, byte for byte, with no file
added but the ones the case names (the best model an interrupted or starved run keeps). The cases
run through Typer's CliRunner in one process, with the stdout encoding (``charset``) and the
environment (``COLUMNS``, ``RBM_REC_DATA`` …) each gives; interruptions at every phase raise the
exception a signal would. Real signals, real locales and concurrent runs use real processes at the end.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import errno
import fcntl
import gzip
import hashlib
import importlib
import json
import lzma
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checkpoint_tools import header, rewrite_metadata, stored_metadata, to_legacy
from mnist_fakes import fake_mnist_contents, files_for, install_fake_mnist
from movielens_fakes import generated_releases
from recsys_rbm_cli.app import app
from rich.cells import cell_len
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from test_cli_movielens import TINY, write_tiny_100k
from typer.testing import CliRunner

import recsys_rbm.data.mnist as mnist
from recsys_rbm.io.checkpoint_files import read_metadata, sidecar_path
from recsys_rbm.io.signals import HungUp, Terminated

TESTS = Path(__file__).parent
# A line says what to do when it gives an instruction, states the rule a value must follow, or points to help.
ADVICE = re.compile(
    r"\b(use|pass|give|choose|retrain|train|try|add|fix|wait|write|rate|put|copy|check|free|restore|upgrade|"
    r"rerun|run the command|delete|leave|point|must|should|save|unzip|unpack|decompress|compress|lower|name|drop|"
    r"rename|move|remove|set|read it|install|keep)\b|did you mean|see '",
    re.IGNORECASE,
)


# --- the shared world: generated MovieLens and MNIST, two tiny trained models -----------------------


@dataclass
class World:
    root: Path  # everything shared lives here; snapshotted around every case
    data: Path  # a generated ml-100k in data/ml-100k
    mnist: Path  # a generated MNIST in mnist-data/mnist
    user: Path  # a user-based recommender-rbm checkpoint
    item: Path  # an item-based one
    tiny: Path  # a user-based one of 3 users only
    implicit: Path  # one trained on implicit feedback (no ratings)


def table(rows: list[tuple[Any, ...]], header: str = "user,item,rating", separator: str = ",") -> str:
    """A ratings table as text: the header, then one line per row."""
    return header + "\n" + "".join(separator.join(str(value) for value in row) + "\n" for row in rows)


def grid(users: int, items: int, rating: Callable[[int, int], Any] = lambda u, i: 1 + (u * 7 + i * 3) % 5):
    """Every user rating every item (user ids 1.., item ids 1..), as rows for :func:`table`."""
    return [(u, i, rating(u, i)) for u in range(1, users + 1) for i in range(1, items + 1)]


GOOD_TABLE = table(grid(6, 5))  # 30 ratings of 1..5: enough to train, validate and measure
TINY_TABLE = table(grid(3, 8))  # 3 users only
IMPLICIT_TABLE = table([(u, i) for u in range(1, 7) for i in range(1, 6) if (u + i) % 3], header="user,item")


@pytest.fixture(scope="module", autouse=True)
def generated_movielens() -> Iterator[None]:
    """The tiny ml-100k is generated: it has neither the real release's rating count nor its file hashes."""
    with generated_releases():
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("world")
    data = root / "data"
    write_tiny_100k(data)
    runner = CliRunner()
    for mode in ("user", "item"):
        args = ["train", "movielens", "--data-dir", str(data), "--output", str(root / f"{mode}.safetensors")]
        result = runner.invoke(app, [*args, *TINY, "--mode", mode])
        assert result.exit_code == 0, result.output
    for name, content in (("tiny", TINY_TABLE), ("implicit", IMPLICIT_TABLE)):
        (root / f"{name}.csv").write_text(content)
        args = ["train", "ratings", str(root / f"{name}.csv"), "--output", str(root / f"{name}.safetensors")]
        result = runner.invoke(app, [*args, *TINY])
        assert result.exit_code == 0, result.output
    install_fake_mnist(root / "mnist-data", n_train=120, n_test=24)
    models = [root / f"{name}.safetensors" for name in ("user", "item", "tiny", "implicit")]
    return World(root, data, root / "mnist-data", *models)


@pytest.fixture(scope="module")
def fake_mnist_table(world: World):
    """The table of expected MD5s swapped for the generated MNIST's (verification stays on)."""
    files = files_for(fake_mnist_contents(120, 24), mirrors=("file:///nonexistent/",))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist, "MNIST", files)
        yield


def snapshot(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file (hidden ones too) under ``roots``, by path."""
    digests = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


# --- the cases ------------------------------------------------------------------------------------


@dataclass
class Env:
    """What a case's setup may use: its own folder, the shared world, and monkeypatch for faults."""

    tmp: Path
    world: World
    monkeypatch: pytest.MonkeyPatch
    cleanups: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    args: list[str]  # {tmp}, {data}, {mnist}, {user}, {item}, {tiny}, {implicit} are filled in
    code: int
    phrase: str  # must appear in the one stderr line ({tmp} and the other names filled in as in args)
    setup: Callable[[Env], None] | None = None
    mnist: bool = False  # needs the generated MNIST's checksum table
    env: dict[str, str] = field(default_factory=dict)  # environment variables, filled in like args
    charset: str = "utf-8"  # the encoding of the command's stdout and stderr
    creates: tuple[str, ...] = ()  # files (in the case's folder) the command must add: what it kept for the user


def file(relative: str, content: str | bytes = "x") -> Callable[[Env], None]:
    def make(env: Env) -> None:
        path = env.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return make


def folder(relative: str) -> Callable[[Env], None]:
    return lambda env: (env.tmp / relative).mkdir(parents=True, exist_ok=True)


def both(*setups: Callable[[Env], None]) -> Callable[[Env], None]:
    def make(env: Env) -> None:
        for setup in setups:
            setup(env)

    return make


def copied_model(relative: str, source: str = "user", change: Callable[[Path], None] | None = None):
    def make(env: Env) -> None:
        path = env.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(getattr(env.world, source).read_bytes())
        if change is not None:
            change(path)

    return make


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_title(path: Path) -> None:
    rewrite_metadata(path, lambda m: m["movies"]["titles"].__setitem__(0, "A Title Nobody Gave It"), rehash=False)


def edit_mode(path: Path) -> None:
    rewrite_metadata(path, lambda m: m.update(mode="user"), rehash=False)


def future_format(path: Path) -> None:
    save_file(load_file(str(path)), str(path), metadata={**header(path)["__metadata__"], "format_version": "3"})


def foreign_safetensors(env: Env) -> None:
    save_file({"weights": np.zeros((3, 2), dtype=np.float32)}, str(env.tmp / "foreign.safetensors"))


def legacy(relative: str, change: Callable[[Path], None] | None = None):
    def make(env: Env) -> None:
        path = to_legacy(env.world.user, env.tmp / relative)
        if change is not None:
            change(sidecar_path(path))

    return make


def legacy_pair_mixed(env: Env) -> None:
    first = to_legacy(env.world.user, env.tmp / "first.safetensors")
    second = to_legacy(env.world.item, env.tmp / "second.safetensors")
    sidecar_path(first).write_bytes(sidecar_path(second).read_bytes())


def mnist_model(env: Env) -> None:
    from recsys_rbm.io.checkpoint import save_rbm
    from recsys_rbm.rbm.model import RBM
    from recsys_rbm.rbm.units import BernoulliUnits
    from recsys_rbm.runtime import make_generator

    save_rbm(
        env.tmp / "mnist.safetensors", RBM.initialise(BernoulliUnits(12), 3, make_generator(0)), {"kind": "mnist-rbm"}
    )


def held_lock(target: str) -> Callable[[Env], None]:
    """Another process holds the run lock of ``target`` (a flock on a separate open file conflicts even in
    the same process, exactly as between processes)."""

    def make(env: Env) -> None:
        path = env.tmp / target
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT)
        os.write(handle, b"4242\n")
        fcntl.flock(handle, fcntl.LOCK_EX)
        env.cleanups.append(lambda: os.close(handle))

    return make


def unwritable(relative: str) -> Callable[[Env], None]:
    """``relative`` becomes a folder this process cannot write (read-only; as root, a link to /sys)."""

    def make(env: Env) -> None:
        path = env.tmp / relative
        path.mkdir(parents=True)
        path.chmod(0o555)
        env.cleanups.append(lambda: path.chmod(0o755))
        if os.access(path, os.W_OK):  # root: permissions do not stop it, but the kernel's /sys does
            path.chmod(0o755)
            path.rmdir()
            if not Path("/sys/kernel").is_dir():
                pytest.skip("no folder this process cannot write")
            path.symlink_to("/sys")

    return make


def patched(target: str, replacement: Any) -> Callable[[Env], None]:
    """Replace ``target`` (a dotted path to a module attribute or a class attribute) for the case."""
    return lambda env: env.monkeypatch.setattr(target, replacement)


def raising(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def matching_mnist_checkpoint(env: Env) -> None:
    """A finished model at the name mnist-figures would reuse (so --retrain would replace it)."""
    from recsys_rbm.exercise.mnist import (
        EXERCISE_TRAIN_CONFIG,
        checkpoint_name,
        load_binarized_mnist,
        train_mnist_rbm,
    )

    config = dataclasses.replace(EXERCISE_TRAIN_CONFIG, epochs=1, batch_size=20)
    data = load_binarized_mnist(env.world.mnist, "stochastic", 0, download=False)
    path = env.tmp / "runs" / checkpoint_name(3, config, "stochastic")
    train_mnist_rbm(data, 3, config, "cpu", path)


def copied_data(env: Env) -> None:
    """A copy of the shared generated ml-100k in the case's own folder (a case may point outputs into it)."""
    shutil.copytree(env.world.data, env.tmp / "data")


def fifo(relative: str) -> Callable[[Env], None]:
    """A named pipe no process writes: reading it would wait forever."""

    def make(env: Env) -> None:
        path = env.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)

    return make


def unix_socket(relative: str) -> Callable[[Env], None]:
    def make(env: Env) -> None:
        with socket.socket(socket.AF_UNIX) as bound:
            bound.bind(str(env.tmp / relative))

    return make


def symlink(relative: str, target: str) -> Callable[[Env], None]:
    """``relative`` a symbolic link to ``target`` (as written: relative to the link's folder, or absolute)."""
    return lambda env: (env.tmp / relative).symlink_to(target)


def link_loop(relative: str) -> Callable[[Env], None]:
    """``relative`` a link to a link back to it."""
    return both(symlink(relative, f"{relative}.loop"), symlink(f"{relative}.loop", relative))


def hard_link(relative: str, existing: str) -> Callable[[Env], None]:
    return lambda env: os.link(env.tmp / existing, env.tmp / relative)


def compressed(relative: str, content: str, compress: Callable[[bytes], bytes]) -> Callable[[Env], None]:
    return file(relative, compress(content.encode()))


def parquet_bytes(env: Env) -> None:
    """A Parquet file named like a CSV."""
    import polars as pl

    pl.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [4, 5]}).write_parquet(env.tmp / "r.csv")


def claiming(relative: str, metadata: dict[str, Any]) -> Callable[[Env], None]:
    """A safetensors file whose header claims the checkpoint format (with a matching digest) around ``metadata``:
    a file another program wrote in our format, correctly hashed, holding what rbm-rec never writes."""

    def make(env: Env) -> None:
        from recsys_rbm.io.checkpoint_files import header_metadata

        arrays = {"weights": np.zeros((3, 2), dtype=np.float32)}
        save_file(arrays, str(env.tmp / relative), metadata=header_metadata(metadata, arrays, "0.2.0"))

    return make


def raw_safetensors(relative: str, tensors: dict[str, Any], data: bytes, metadata: dict[str, str] | None = None):
    """A safetensors file written byte by byte, so that its header may say anything."""

    def make(env: Env) -> None:
        header_json = json.dumps({**tensors, "__metadata__": metadata or {}}).encode()
        (env.tmp / relative).write_bytes(struct.pack("<Q", len(header_json)) + header_json + data)

    return make


def appended(extra: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(path.read_bytes() + extra)


def truncated(by: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(path.read_bytes()[:-by])


def fails_after(calls: int, target: str, error: BaseException) -> Callable[[Env], None]:
    """The first ``calls`` calls of ``target`` (module.attribute) work; the next ones raise ``error``."""

    def make(env: Env) -> None:
        module, _, name = target.rpartition(".")
        real = getattr(importlib.import_module(module), name)
        count = [0]

        def sometimes(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] > calls:
                raise error
            return real(*args, **kwargs)

        env.monkeypatch.setattr(target, sometimes)

    return make


def read_only_home(env: Env) -> None:
    """HOME a folder nothing can be written in (the kernel's /proc for root, whom permissions do not stop)."""
    env.monkeypatch.setenv("HOME", "/proc/self/fdinfo")
    env.monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    env.monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    env.monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    env.monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    env.monkeypatch.delenv("RBM_REC_MODELS", raising=False)  # the default models folder is the home's


DISK_FULL = SafetensorError(
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
)
POLARS_DISK_FULL = RuntimeError("failed to write whole buffer: No space left on device (os error 28)")


TRAIN_ML = ["train", "movielens", "--data-dir", "{data}", *TINY]
TRAIN_MNIST = ["train", "mnist", "--data-dir", "{mnist}", "--hidden", "3", "--epochs", "1", "--device", "cpu"]
FIGURES = ["mnist-figures", "--data-dir", "{mnist}", "--hidden", "3", "--epochs", "1", "--batch-size", "20"]
FIGURES += ["--device", "cpu", "--ais-runs", "2", "--ais-temperatures", "10", "--sample-every", "2"]
EVALUATE = ["evaluate", "movielens", "--data-dir", "{data}", "--folds", "u1", "--models", "biases", *TINY]
RECOMMEND = ["recommend", "--user", "1", "--model"]
FOLD_IN = ["recommend", "--model", "{user}", "--ratings", "{tmp}/ratings.csv"]
NOWHERE = "{tmp}/no-data-here"  # a data folder that does not exist: output checks must fail before any loading
ALLOCATION_FAILED = RuntimeError(
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 3136000000000 bytes. Error code 12 (Cannot allocate memory)"
)

# fmt: off
CASES = [
    # --- lost work: nothing existing is replaced without --overwrite; a second run is refused ------------------
    Case("train-movielens-over-a-model", "lost work", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "m.safetensors already exists; pass --overwrite", copied_model("m.safetensors")),
    Case("train-movielens-over-another-file", "lost work", [*TRAIN_ML, "-o", "{tmp}/notes.safetensors"], 1,
         "already exists; pass --overwrite to replace it", file("notes.safetensors", "my notes")),
    Case("train-movielens-output-without-suffix", "lost work", [*TRAIN_ML, "-o", "{tmp}/m"], 1,
         "m.safetensors already exists", copied_model("m.safetensors")),
    Case("train-mnist-over-a-model", "lost work", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors", "--data-dir", NOWHERE],
         1, "already exists; pass --overwrite", copied_model("m.safetensors")),
    Case("mnist-figures-over-a-figure", "lost work", [*FIGURES, "-o", "{tmp}/figs", "--data-dir", NOWHERE], 1,
         "figs/mnist-filters-h3.png already exists; pass --overwrite", file("figs/mnist-filters-h3.png", "png")),
    Case("mnist-figures-over-the-comparison-figure", "lost work", [*FIGURES, "-o", "{tmp}/figs"], 1,
         "mnist-fewer-features.png already exists", file("figs/mnist-fewer-features.png", "png")),
    Case("mnist-figures-over-a-foreign-checkpoint", "lost work",
         [*FIGURES, "-o", "{tmp}/figs", "--checkpoint-dir", "{tmp}/runs"], 1,
         "exists and it was trained with other settings or is unfinished; pass --overwrite",
         file("runs/mnist-h3-stochastic-e1-s0.safetensors", "not this run's"), mnist=True),
    Case("mnist-figures-retrain-without-overwrite", "lost work",
         [*FIGURES, "-o", "{tmp}/figs", "--checkpoint-dir", "{tmp}/runs", "--retrain"], 1,
         "exists and --retrain would replace it; pass --overwrite", matching_mnist_checkpoint, mnist=True),
    Case("evaluate-over-a-report", "lost work", [*EVALUATE, "--json-out", "{tmp}/e.json", "--data-dir", NOWHERE], 1,
         "e.json already exists; pass --overwrite", file("e.json", '{"format": 1}')),
    Case("train-movielens-while-another-run-writes", "lost work", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "another rbm-rec run (process 4242) is writing", held_lock("m.safetensors")),
    Case("train-mnist-while-another-run-writes", "lost work", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors"], 1,
         "wait for it to finish, or choose another --output", held_lock("m.safetensors")),
    Case("evaluate-while-another-run-writes", "lost work", [*EVALUATE, "--json-out", "{tmp}/e.json"], 1,
         "is writing", held_lock("e.json")),
    Case("disk-full-while-saving-keeps-the-old-model", "lost work",
         [*TRAIN_ML, "-o", "{tmp}/m.safetensors", "--overwrite"], 1, "no space left on the device",
         both(copied_model("m.safetensors"),
              patched("recsys_rbm.io.checkpoint.save_file", raising(OSError(errno.ENOSPC, "No space left", "m"))))),
    # --- inputs that used to end in a traceback -----------------------------------------------------------------
    Case("user-id-beyond-int64", "traceback", [*RECOMMEND, "{user}", "--user", "99999999999999999999999"], 2,
         "--user '99999999999999999999999' is not a user id"),
    Case("negative-user-id", "traceback", ["recommend", "--model", "{user}", "--user", "-1"], 1, "unknown user -1"),
    Case("seed-beyond-64-bits", "traceback", [*TRAIN_ML, "--seed", "99999999999999999999"], 2,
         "Invalid value for '--seed'"),
    Case("mnist-seed-negative", "traceback", [*TRAIN_MNIST, "--seed", "-1"], 2, "'--seed'"),
    Case("mnist-figures-seed-beyond-64-bits", "traceback", [*FIGURES, "--seed", str(2**64)], 2, "'--seed'"),
    Case("seed-beyond-64-bits-in-a-config-file", "traceback", [*TRAIN_ML[:4], "--config", "{tmp}/c.toml"], 1,
         "seed must lie in 0..2**63-1", file("c.toml", "[recommender]\nseed = 99999999999999999999\n")),
    Case("a-billion-hidden-units-movielens", "traceback", [*TRAIN_ML[:2], "--hidden", "1000000000"], 2,
         "1,000,000,000 hidden units is more than the 100,000 allowed (the weights alone would take 4.0 TB"),
    Case("a-billion-hidden-units-mnist", "traceback", ["train", "mnist", "--hidden", "1000000000"], 2,
         "(with 784 visible units training would need at least 75.7 TB); use fewer"),
    Case("ten-million-hidden-units-figures", "traceback", ["mnist-figures", "--hidden", "5", "--hidden", "10000000"],
         2, "10,000,000 hidden units is more than"),
    Case("model-mode-edited-item-to-user", "traceback", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "does not match the checksum in its header", copied_model("m.safetensors", "item", edit_mode)),
    Case("torch-allocation-failure", "traceback", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "ran out of memory: one step needed about 3.1 TB more",
         patched("recsys_rbm.recommender.model.RBMRecommender.fit", raising(ALLOCATION_FAILED))),
    Case("numpy-allocation-failure", "traceback", [*RECOMMEND, "{user}"], 1, "ran out of memory",
         patched("recsys_rbm_cli.catalogue.Catalogue.of", raising(MemoryError()))),
    Case("any-other-exception", "traceback", [*RECOMMEND, "{user}"], 1,
         "unexpected error (ZeroDivisionError: division by zero); rerun with --debug (or RBM_REC_DEBUG=1)",
         patched("recsys_rbm_cli.catalogue.Catalogue.of", raising(ZeroDivisionError("division by zero")))),
    # --- garbage finite values: every number has an upper bound --------------------------------------------------
    Case("cd-steps-beyond-any-use", "bounds", [*TRAIN_ML, "--cd-schedule", "0:99999999999999999999"], 2,
         "--cd-schedule steps k must lie in 1..1,000"),
    Case("cd-schedule-epoch-beyond-any-use", "bounds", [*TRAIN_ML, "--cd-schedule", "0:1,99999999999:3"], 2,
         "--cd-schedule epochs must be at most 100,000"),
    Case("cd-steps-in-a-config-file", "bounds", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "cd_schedule steps k must lie in 1..1,000", file("c.toml", "[recommender]\ncd_schedule = [[0, 5000]]\n")),
    Case("mnist-cd-k-beyond-any-use", "bounds", [*TRAIN_MNIST, "--cd-k", "100000"], 2, "'--cd-k'"),
    Case("mnist-cd-k-in-a-config-file", "bounds", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"], 1,
         "cd_k must lie in 1..1,000", file("c.toml", "[train]\ncd_k = 100000\n")),
    Case("epochs-beyond-any-use", "bounds", [*TRAIN_ML, "--epochs", "1000000000"], 2, "'--epochs'"),
    Case("learning-rate-that-diverges", "bounds", [*TRAIN_ML, "--learning-rate", "1e6", "-o", "{tmp}/d.safetensors"], 1,
         "training diverged at epoch 1"),
    Case("ratings-model-learning-rate-that-diverges", "bounds",
         [*TRAIN_ML, "--model-kind", "ratings", "--learning-rate", "1e6", "-o", "{tmp}/d.safetensors"], 1,
         "training diverged at epoch 1"),
    Case("mnist-epochs-zero", "bounds", [*TRAIN_MNIST, "--epochs", "0"], 2, "'--epochs'"),
    Case("patience-beyond-any-use", "bounds", [*TRAIN_ML, "--patience", "1000000000"], 2, "'--patience'"),
    Case("batch-size-beyond-any-use", "bounds", [*TRAIN_MNIST, "--batch-size", "1000000000000"], 2,
         "'--batch-size'"),
    Case("batch-size-zero", "bounds", [*TRAIN_ML, "--batch-size", "0"], 2, "'--batch-size'"),
    Case("top-beyond-any-use", "bounds", [*RECOMMEND, "{user}", "--top", "1000000000"], 2, "'--top'"),
    Case("similar-top-zero", "bounds", ["similar", "--model", "{item}", "--movie", "1", "--top", "0"], 2, "'--top'"),
    Case("ranking-k-beyond-any-use", "bounds", [*EVALUATE, "--k", "1000000000"], 2, "'--k'"),
    Case("random-folds-beyond-any-use", "bounds", [*EVALUATE, "--random-folds", "100000"], 2, "'--random-folds'"),
    Case("ais-temperatures-beyond-any-use", "bounds", [*FIGURES, "--ais-temperatures", "1000000000"], 2,
         "'--ais-temperatures'"),
    Case("sample-every-beyond-any-use", "bounds", [*FIGURES, "--sample-every", "1000000000"], 2, "'--sample-every'"),
    Case("learning-rate-infinite", "bounds", [*TRAIN_ML, "--learning-rate", "inf"], 2,
         "--learning-rate must be positive and finite, got inf"),
    Case("mnist-learning-rate-negative", "bounds", [*TRAIN_MNIST, "--learning-rate", "-1"], 2,
         "--learning-rate must be positive and finite, got -1.0 (see 'rbm-rec train mnist --help')"),
    Case("mnist-learning-rate-zero", "bounds", [*TRAIN_MNIST, "--learning-rate", "0"], 2,
         "--learning-rate must be positive and finite, got 0.0"),
    Case("mnist-learning-rate-in-a-config-file", "bounds", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"], 1,
         "learning_rate must be positive and finite", file("c.toml", "[train]\nlearning_rate = -1\n")),
    Case("more-memory-than-the-machine-has", "bounds", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "of memory, but only 10 bytes is available; use fewer --hidden units",
         patched("recsys_rbm.io.resources.available_memory", lambda: 10)),
    Case("mnist-more-memory-than-the-machine-has", "bounds", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors"], 1,
         "training an RBM with 3 hidden units needs about",
         patched("recsys_rbm.io.resources.available_memory", lambda: 10), mnist=True),
    # --- outputs that used to fail late or unclearly: all checked before any work --------------------------------
    Case("output-under-a-regular-file", "fail fast", [*TRAIN_ML, "-o", "{tmp}/plain/sub/m.safetensors"], 1,
         "plain is a file, not a folder; choose another --output", file("plain", "a file")),
    Case("mnist-output-under-a-regular-file", "fail fast",
         [*TRAIN_MNIST, "-o", "{tmp}/plain/m.safetensors", "--data-dir", NOWHERE], 1, "is a file, not a folder",
         file("plain", "a file")),
    Case("output-is-a-folder", "fail fast", [*TRAIN_ML, "-o", "{tmp}/models.safetensors", "--data-dir", NOWHERE], 1,
         "models.safetensors is a folder; give a file path", folder("models.safetensors")),
    Case("output-folder-not-writable", "fail fast",
         [*TRAIN_ML, "-o", "{tmp}/locked/m.safetensors", "--data-dir", NOWHERE], 1,
         "is not writable (permission denied); choose another --output", unwritable("locked")),
    Case("mnist-output-folder-not-writable", "fail fast",
         [*TRAIN_MNIST, "-o", "{tmp}/locked/m.safetensors", "--data-dir", NOWHERE], 1, "is not writable",
         unwritable("locked")),
    Case("json-out-is-a-folder", "fail fast", [*EVALUATE, "--json-out", "{tmp}/reports", "--data-dir", NOWHERE], 1,
         "--json-out", folder("reports")),
    Case("json-out-under-a-regular-file", "fail fast",
         [*EVALUATE, "--json-out", "{tmp}/plain/e.json", "--data-dir", NOWHERE], 1,
         "plain is a file, not a folder; choose another --json-out", file("plain")),
    Case("json-out-folder-not-writable", "fail fast",
         [*EVALUATE, "--json-out", "{tmp}/locked/e.json", "--data-dir", NOWHERE], 1, "choose another --json-out",
         unwritable("locked")),
    Case("figures-folder-is-a-file", "fail fast", [*FIGURES, "-o", "{tmp}/figs", "--data-dir", NOWHERE], 1,
         "figs is a file, not a folder", file("figs")),
    Case("figures-folder-not-writable", "fail fast", [*FIGURES, "-o", "{tmp}/locked", "--data-dir", NOWHERE], 1,
         "is not writable", unwritable("locked")),
    Case("checkpoint-dir-is-a-file", "fail fast",
         [*FIGURES, "-o", "{tmp}/figs", "--checkpoint-dir", "{tmp}/runs", "--data-dir", NOWHERE], 1,
         "runs is a file, not a folder; choose another --checkpoint-dir", file("runs")),
    Case("no-gpu-for-device-cuda", "fail fast", [*TRAIN_ML[:4], "--device", "cuda", "-o", "{tmp}/m"], 1,
         "no CUDA GPU is visible; use --device cpu or auto"),
    # --- integrity of model files --------------------------------------------------------------------------------
    Case("model-bytes-flipped", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "is corrupt: its content does not match the checksum", copied_model("m.safetensors", change=flip_last_byte)),
    Case("model-title-edited", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "does not match the checksum in its header (damaged or edited)",
         copied_model("m.safetensors", change=edit_title)),
    Case("similar-on-an-edited-model", "integrity", ["similar", "--movie", "1", "--model", "{tmp}/m.safetensors"], 1,
         "does not match the checksum", copied_model("m.safetensors", "item", edit_title)),
    Case("model-truncated", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1, "retrain it",
         copied_model("m.safetensors", change=lambda p: p.write_bytes(p.read_bytes()[:-100]))),
    Case("model-empty", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "is not a safetensors model file (0 bytes, no valid header)", file("m.safetensors", b"")),
    Case("model-is-text", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1, "not a safetensors model file",
         file("m.safetensors", "hello, I am not a model\n")),
    Case("model-is-a-folder", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "is a folder, not a model file", folder("m.safetensors")),
    Case("model-missing", "integrity", [*RECOMMEND, "{tmp}/none.safetensors"], 1,
         "does not exist; train one first or pass the right --model path"),
    Case("model-of-another-kind", "integrity", [*RECOMMEND, "{tmp}/mnist.safetensors"], 1,
         "holds a 'mnist-rbm' model, but a 'recommender-rbm' model is needed here", mnist_model),
    Case("model-format-from-the-future", "integrity", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "has checkpoint format 3, but this version of recsys_rbm reads formats 1 and 2; upgrade",
         copied_model("m.safetensors", change=future_format)),
    Case("foreign-safetensors-file", "integrity", [*RECOMMEND, "{tmp}/foreign.safetensors"], 1,
         "carries no recsys_rbm metadata", foreign_safetensors),
    Case("old-model-with-a-corrupt-sidecar", "integrity", [*RECOMMEND, "{tmp}/old.safetensors"], 1,
         "metadata file", legacy("old.safetensors", lambda sidecar: sidecar.write_text("{not json"))),
    Case("old-model-without-its-sidecar", "integrity", [*RECOMMEND, "{tmp}/old.safetensors"], 1,
         "copy both files together, or retrain", legacy("old.safetensors", lambda sidecar: sidecar.unlink())),
    Case("old-model-with-another-models-sidecar", "integrity", [*RECOMMEND, "{tmp}/first.safetensors"], 1,
         "does not match its metadata file", legacy_pair_mixed),
    # --- strict file input: titles in a ratings file -------------------------------------------------------------
    Case("ratings-near-title", "strict input", FOLD_IN, 1,
         "ratings.csv:1: no movie titled 'Star Warz' (a title in a file must match",
         file("ratings.csv", "Star Warz,5\n")),
    Case("ratings-title-only-contained", "strict input", FOLD_IN, 1, "did you mean: Return of the Jedi (1983), id 2",
         file("ratings.csv", "1,5\njedi,4\n")),
    Case("ratings-line-of-random-bytes", "strict input", FOLD_IN, 1, "holds control characters, so it is not a movie",
         file("ratings.csv", b"1,5\n\x8f\x03\xe7onvent\x11\x9c,4\n")),
    Case("ratings-file-in-utf-16-without-a-byte-order-mark", "strict input", FOLD_IN, 1,
         "ratings.csv looks like UTF-16 text without a byte-order mark, not UTF-8; save it as UTF-8",
         file("ratings.csv", "Star Wars (1977),5\n".encode("utf-16-le"))),
    Case("ratings-ambiguous-title", "strict input", FOLD_IN, 1, "'heat' matches several movies",
         file("ratings.csv", "heat,4\n")),
    Case("ratings-rating-off-the-scale", "strict input", FOLD_IN, 1, "use one of 1, 2, 3, 4, 5",
         file("ratings.csv", "1,4.5\n")),
    Case("ratings-not-a-number", "strict input", FOLD_IN, 1, "rating 'five' is not a number; write one of",
         file("ratings.csv", "1,five\n")),
    Case("ratings-movie-twice", "strict input", FOLD_IN, 1, "again (first at line 1); rate each movie once",
         file("ratings.csv", "1,5\nthe star wars,3\n")),
    Case("ratings-file-is-a-folder", "strict input", FOLD_IN, 1, "is a folder, not a file; give a CSV file",
         folder("ratings.csv")),
    Case("ratings-file-missing", "strict input", FOLD_IN, 1, "ratings.csv does not exist; check the path"),
    Case("ratings-file-empty", "strict input", FOLD_IN, 1, "holds no ratings; write one 'movie,rating' line",
         file("ratings.csv", "")),
    # --- configuration files and command-line usage --------------------------------------------------------------
    Case("config-file-missing", "usage", [*TRAIN_ML, "--config", "{tmp}/none.toml"], 1,
         "does not exist; check the path, or leave out --config"),
    Case("config-file-not-toml", "usage", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1, "is not valid TOML",
         file("c.toml", "[recommender\n")),
    Case("config-unknown-field", "usage", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "unknown RecommenderConfig field(s): hidden_units; use the known ones",
         file("c.toml", "[recommender]\nhidden_units = 3\n")),
    Case("config-wrong-type", "usage", [*TRAIN_ML[:4], "--config", "{tmp}/c.toml"], 1,
         "hidden must be a whole number", file("c.toml", "[recommender]\nhidden = 'many'\n")),
    Case("unknown-command", "usage", ["train", "imagenet"], 2, "No such command 'imagenet'"),
    Case("unknown-global-option", "usage", ["--verbose", "train"], 2, "No such option: --verbose"),
    Case("unknown-command-option", "usage", [*TRAIN_ML, "--hiden", "5"], 2, "No such option: --hiden"),
    Case("recommend-needs-one-of-user-or-ratings", "usage", ["recommend", "--model", "{user}"], 2,
         "give one of --user ID (training users), --users FILE, --all-users, or --ratings FILE"),
    Case("unknown-dataset", "usage", [*TRAIN_ML, "--dataset", "ml-2k"], 2, "'--dataset'"),
    Case("missing-mnist-offline", "usage", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors", "--data-dir", NOWHERE], 1,
         "to work offline, put the four files"),
    # --- same-file outputs: an output is never one of the run's inputs, --overwrite or not ----------------------
    Case("recommend-output-is-the-users-file", "same file",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/users.csv", "--overwrite"], 1,
         "--output {tmp}/users.csv is the same file as --users {tmp}/users.csv, which this command reads; choose",
         file("users.csv", "user\n1\n")),
    Case("recommend-output-is-the-users-file-without-overwrite", "same file",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/users.csv"], 1,
         "is the same file as --users", file("users.csv", "user\n1\n")),
    Case("recommend-output-is-the-users-file-by-another-path", "same file",
         ["recommend", "-m", "{user}", "--users", "users.csv", "-o", "{tmp}/sub/../users.csv", "--overwrite"], 1,
         "is the same file as --users users.csv", both(file("users.csv", "user\n1\n"), folder("sub"))),
    Case("recommend-output-is-a-hard-link-to-the-users-file", "same file",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv", "--overwrite"], 1,
         "recs.csv is a hard link to --users", both(file("users.csv", "user\n1\n"), hard_link("recs.csv",
         "users.csv"))),
    Case("recommend-output-is-a-symbolic-link-to-the-users-file", "same file",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv", "--overwrite"], 1,
         "recs.csv is the same file as --users", both(file("users.csv", "user\n1\n"), symlink("recs.csv",
         "users.csv"))),
    Case("recommend-output-is-the-model", "same file",
         ["recommend", "-m", "{tmp}/m.csv", "--all-users", "-o", "{tmp}/m.csv", "--overwrite"], 1,
         "--output {tmp}/m.csv is the same file as the model {tmp}/m.csv", copied_model("m.csv")),
    Case("recommend-output-is-a-hard-link-to-the-model", "same file",
         ["recommend", "-m", "{tmp}/m.safetensors", "--all-users", "-o", "{tmp}/recs.jsonl", "--overwrite"], 1,
         "recs.jsonl is a hard link to the model", both(copied_model("m.safetensors"), hard_link("recs.jsonl",
         "m.safetensors"))),
    Case("info-plot-is-the-model", "same file",
         ["info", "{tmp}/m.safetensors", "--plot", "{tmp}/m.safetensors", "--overwrite"], 1,
         "--plot {tmp}/m.safetensors is the same file as the model", copied_model("m.safetensors")),
    Case("info-plot-is-the-model-named-without-its-suffix", "same file",
         ["info", "{tmp}/m", "--plot", "m.safetensors", "--overwrite"], 1,
         "--plot m.safetensors is the same file as the model {tmp}/m.safetensors", copied_model("m.safetensors")),
    Case("info-plot-is-a-hard-link-to-the-model", "same file",
         ["info", "{tmp}/m.safetensors", "--plot", "{tmp}/curve.png", "--overwrite"], 1,
         "curve.png is a hard link to the model", both(copied_model("m.safetensors"), hard_link("curve.png",
         "m.safetensors"))),
    Case("info-plot-is-a-symbolic-link-to-the-model", "same file",
         ["info", "{tmp}/m.safetensors", "--plot", "{tmp}/curve.png", "--overwrite"], 1,
         "curve.png is the same file as the model", both(copied_model("m.safetensors"), symlink("curve.png",
         "m.safetensors"))),
    Case("train-ratings-output-is-a-link-to-the-table", "same file",
         ["train", "ratings", "{tmp}/r.csv", "-o", "{tmp}/m.safetensors", "--overwrite", *TINY], 1,
         "m.safetensors is the same file as the ratings table {tmp}/r.csv",
         both(file("r.csv", GOOD_TABLE), symlink("m.safetensors", "r.csv"))),
    Case("train-ratings-output-is-a-hard-link-to-the-table", "same file",
         ["train", "ratings", "{tmp}/r.csv", "-o", "{tmp}/m.safetensors", "--overwrite", *TINY], 1,
         "m.safetensors is a hard link to the ratings table", both(file("r.csv", GOOD_TABLE),
         hard_link("m.safetensors", "r.csv"))),
    Case("train-ratings-output-is-the-items-file", "same file",
         ["train", "ratings", "{tmp}/r.csv", "--items", "{tmp}/items.csv", "-o", "{tmp}/m.safetensors", *TINY], 1,
         "is a hard link to --items {tmp}/items.csv",
         both(file("r.csv", GOOD_TABLE), file("items.csv", "item,title\n1,One\n"), hard_link("m.safetensors",
         "items.csv"))),
    Case("train-ratings-output-is-the-config-file", "same file",
         ["train", "ratings", "{tmp}/r.csv", "--config", "{tmp}/m.safetensors", "-o", "{tmp}/m", "--overwrite", *TINY],
         1, "--output {tmp}/m.safetensors is the same file as --config",
         both(file("r.csv", GOOD_TABLE), file("m.safetensors", "[recommender]\n"))),
    Case("train-movielens-output-is-the-config-file", "same file",
         [*TRAIN_ML, "--config", "{tmp}/c.toml", "-o", "{tmp}/m.safetensors", "--overwrite"], 1,
         "m.safetensors is a hard link to --config", both(file("c.toml", "[recommender]\n"),
         hard_link("m.safetensors", "c.toml"))),
    Case("train-mnist-output-is-the-config-file", "same file",
         [*TRAIN_MNIST, "--config", "{tmp}/c.toml", "-o", "{tmp}/m.safetensors", "--overwrite"], 1,
         "m.safetensors is a hard link to --config", both(file("c.toml", "[train]\n"), hard_link("m.safetensors",
         "c.toml"))),
    Case("evaluate-json-out-is-the-config-file", "same file",
         [*EVALUATE, "--config", "{tmp}/e.json", "--json-out", "{tmp}/e.json", "--overwrite"], 1,
         "--json-out {tmp}/e.json is the same file as --config", file("e.json", "[recommender]\n")),
    Case("evaluate-json-out-is-a-file-of-the-dataset", "same file",
         [*EVALUATE, "--data-dir", "{tmp}/data", "--json-out", "{tmp}/data/ml-100k/u.data", "--overwrite"], 1,
         "--json-out {tmp}/data/ml-100k/u.data is the same file as the dataset file {tmp}/data/ml-100k/u.data, "
         "which this command reads", copied_data),
    Case("train-movielens-output-is-a-hard-link-to-the-dataset", "same file",
         [*TRAIN_ML, "--data-dir", "{tmp}/data", "-o", "{tmp}/m.safetensors", "--overwrite"], 1,
         "m.safetensors is a hard link to the dataset file {tmp}/data/ml-100k/u.data",
         both(copied_data, hard_link("m.safetensors", "data/ml-100k/u.data"))),
    Case("mnist-figures-figure-is-the-config-file", "same file",
         [*FIGURES, "-o", "{tmp}/figs", "--config", "{tmp}/figs/mnist-filters-h3.png", "--overwrite"], 1,
         "mnist-filters-h3.png is the same file as --config", file("figs/mnist-filters-h3.png", "[train]\n")),
    # --- files that are not regular files: refused before a byte is read, never waited on ------------------------
    Case("model-is-a-named-pipe", "non-regular", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "m.safetensors is a named pipe (FIFO), not a regular file; give a regular file", fifo("m.safetensors")),
    Case("info-on-a-named-pipe", "non-regular", ["info", "{tmp}/m.safetensors"], 1, "is a named pipe (FIFO)",
         fifo("m.safetensors")),
    Case("similar-on-a-named-pipe", "non-regular", ["similar", "--movie", "1", "-m", "{tmp}/m.safetensors"], 1,
         "is a named pipe (FIFO)", fifo("m.safetensors")),
    Case("explain-on-a-named-pipe", "non-regular",
         ["explain", "--user", "1", "--movie", "1", "-m", "{tmp}/m.safetensors"], 1, "is a named pipe",
         fifo("m.safetensors")),
    Case("anomalies-on-a-named-pipe", "non-regular", ["anomalies", "-m", "{tmp}/m.safetensors"], 1,
         "is a named pipe", fifo("m.safetensors")),
    Case("imagine-on-a-named-pipe", "non-regular", ["imagine", "-m", "{tmp}/m.safetensors"], 1, "is a named pipe",
         fifo("m.safetensors")),
    Case("model-named-without-suffix-is-a-named-pipe", "non-regular", [*RECOMMEND, "{tmp}/mymodel"], 1,
         "model file {tmp}/mymodel is a named pipe", fifo("mymodel")),
    Case("model-is-a-character-device", "non-regular", ["info", "/dev/zero"], 1,
         "model file /dev/zero is a character device, not a regular file"),
    Case("model-is-dev-null", "non-regular", [*RECOMMEND, "/dev/null"], 1, "/dev/null is a character device"),
    Case("model-is-a-socket", "non-regular", [*RECOMMEND, "{tmp}/m.safetensors"], 1, "is a socket, not a regular file",
         unix_socket("m.safetensors")),
    Case("model-is-a-link-loop", "non-regular", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "m.safetensors is a symbolic link loop (its links lead back to themselves); fix the links",
         link_loop("m.safetensors")),
    Case("model-is-a-broken-link", "non-regular", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "m.safetensors is a symbolic link to gone.safetensors, which does not exist; fix the link",
         symlink("m.safetensors", "gone.safetensors")),
    Case("ratings-table-is-a-named-pipe", "non-regular", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "ratings file {tmp}/r.csv is a named pipe (FIFO), not a regular file", fifo("r.csv")),
    Case("ratings-table-is-a-character-device", "non-regular", ["train", "ratings", "/dev/zero", *TINY], 1,
         "ratings file /dev/zero is a character device"),
    Case("ratings-table-is-a-link-loop", "non-regular", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "r.csv is a symbolic link loop", link_loop("r.csv")),
    Case("ratings-table-is-a-broken-link", "non-regular", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "r.csv is a symbolic link to gone.csv, which does not exist; fix the link", symlink("r.csv", "gone.csv")),
    Case("ratings-table-is-a-folder", "non-regular", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "ratings file {tmp}/r.csv is a folder, not a file; give a CSV, TSV or Parquet file", folder("r.csv")),
    Case("parquet-table-is-a-named-pipe", "non-regular", ["train", "ratings", "{tmp}/r.parquet", *TINY], 1,
         "r.parquet is a named pipe", fifo("r.parquet")),
    Case("items-file-is-a-named-pipe", "non-regular",
         ["train", "ratings", "{tmp}/r.csv", "--items", "{tmp}/items.csv", *TINY], 1,
         "items file {tmp}/items.csv is a named pipe", both(file("r.csv", GOOD_TABLE), fifo("items.csv"))),
    Case("users-file-is-a-named-pipe", "non-regular",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv"], 1,
         "users file {tmp}/users.csv is a named pipe", fifo("users.csv")),
    Case("users-file-is-a-link-loop", "non-regular",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv"], 1,
         "users file {tmp}/users.csv is a symbolic link loop", link_loop("users.csv")),
    Case("fold-in-ratings-is-a-named-pipe", "non-regular", FOLD_IN, 1,
         "ratings file {tmp}/ratings.csv is a named pipe", fifo("ratings.csv")),
    Case("config-is-a-named-pipe", "non-regular", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "config file {tmp}/c.toml is a named pipe (FIFO), not a regular file", fifo("c.toml")),
    Case("config-is-a-character-device", "non-regular", [*TRAIN_ML, "--config", "/dev/zero"], 1,
         "config file /dev/zero is a character device"),
    Case("mnist-config-is-a-named-pipe", "non-regular", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"], 1,
         "config file {tmp}/c.toml is a named pipe", fifo("c.toml")),
    Case("config-is-a-folder", "non-regular", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "config file {tmp}/c.toml is a folder, not a file", folder("c.toml")),
    Case("data-folder-variable-names-a-file", "non-regular", ["train", "movielens", *TINY, "-o", "{tmp}/m"], 1,
         "RBM_REC_DATA={tmp}/r.csv is a file, not a folder; point --data-dir or RBM_REC_DATA at the folder",
         file("r.csv", GOOD_TABLE), env={"RBM_REC_DATA": "{tmp}/r.csv"}),
    Case("data-folder-option-names-a-file", "non-regular", [*TRAIN_ML, "--data-dir", "{tmp}/r.csv", "-o", "{tmp}/m"],
         1, "--data-dir {tmp}/r.csv is a file, not a folder", file("r.csv", GOOD_TABLE)),
    Case("data-folder-is-a-link-loop", "non-regular", [*TRAIN_ML, "--data-dir", "{tmp}/data", "-o", "{tmp}/m"], 1,
         "--data-dir {tmp}/data is a symbolic link loop", link_loop("data")),
    Case("mnist-data-folder-names-a-file", "non-regular", ["train", "mnist", "--hidden", "3", "-o", "{tmp}/m"], 1,
         "RBM_REC_DATA={tmp}/x is a file, not a folder", file("x"), env={"RBM_REC_DATA": "{tmp}/x"}),
    Case("evaluate-data-folder-names-a-file", "non-regular", [*EVALUATE, "--data-dir", "{tmp}/x", "--json-out",
         "{tmp}/e.json"],
         1, "--data-dir {tmp}/x is a file, not a folder", file("x")),
    # --- configuration files: nothing in one is ignored without a word -------------------------------------------
    Case("config-table-name-misspelled", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "has a table this command does not read: [recomender] (did you mean [recommender]?); rename or remove "
         "it: it reads the [recommender] table, whose fields are: kind, mode, hidden",
         file("c.toml", "[recomender]\nhidden = 3\n")),
    Case("config-keys-outside-the-table", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "hidden sit(s) outside any table; put them under a [recommender] line",
         file("c.toml", "hidden = 3\n[recommender]\nepochs = 2\n")),
    Case("config-file-empty", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "has no [recommender] table, so it sets nothing", file("c.toml", "")),
    Case("config-file-of-comments-only", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "has no [recommender] table", file("c.toml", "# hidden = 3\n")),
    Case("config-mnist-table-given-to-a-recommender-command", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"],
         1, "does not read: [train]; rename or remove it: it reads the [recommender] table", file("c.toml",
         "[train]\nepochs = 2\n")),
    Case("config-recommender-table-given-to-train-mnist", "config file", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"],
         1, "does not read: [recommender]; rename or remove it: it reads the [train] table, whose fields are: epochs",
         file("c.toml", "[recommender]\nepochs = 2\n")),
    Case("config-mnist-table-misspelled", "config file", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"], 1,
         "[trian] (did you mean [train]?)", file("c.toml", "[trian]\nepochs = 2\n")),
    Case("config-mnist-keys-outside-the-table", "config file", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"], 1,
         "epochs sit(s) outside any table; put them under a [train] line", file("c.toml", "epochs = 2\n")),
    Case("config-mnist-unknown-field", "config file", [*TRAIN_MNIST, "--config", "{tmp}/c.toml"], 1,
         "unknown TrainConfig field(s): epohcs; use the known ones", file("c.toml", "[train]\nepohcs = 2\n")),
    Case("config-extra-table-beside-the-right-one", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "does not read: [notes]", file("c.toml", "[recommender]\nepochs = 2\n[notes]\nwho = 'me'\n")),
    Case("config-nested-table", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "unknown RecommenderConfig field(s): extra", file("c.toml", "[recommender]\n[recommender.extra]\nx = 1\n")),
    Case("config-table-is-a-value", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "recommender sit(s) outside any table", file("c.toml", "recommender = 3\n")),
    Case("config-not-utf8", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "is not UTF-8 text (byte 20 is 0xe9); save it as UTF-8", file("c.toml", b"[recommender]\n# caf\xe9\n")),
    Case("config-flag-not-a-boolean", "config file", [*TRAIN_ML, "--config", "{tmp}/c.toml"], 1,
         "conditional must be true or false, got 'yes'",
         file("c.toml", "[recommender]\nconditional = 'yes'\n")),
    Case("evaluate-config-table-misspelled", "config file", [*EVALUATE, "--config", "{tmp}/c.toml"], 1,
         "(did you mean [recommender]?)", file("c.toml", "[Recommender]\nepochs = 2\n")),
    Case("train-ratings-config-table-misspelled", "config file",
         ["train", "ratings", "{tmp}/r.csv", "--config", "{tmp}/c.toml", *TINY], 1, "[recomender]",
         both(file("r.csv", GOOD_TABLE), file("c.toml", "[recomender]\n"))),
    Case("mnist-figures-config-table-misspelled", "config file", [*FIGURES, "-o", "{tmp}/f", "--config",
         "{tmp}/c.toml"],
         1, "[trains] (did you mean [train]?)", file("c.toml", "[trains]\n")),
    Case("config-like-threshold-no-rating-reaches", "config file",
         ["train", "ratings", "{tmp}/r.csv", "--config", "{tmp}/c.toml", *TINY], 1,
         "none of the 2 validation ratings held out of {tmp}/r.csv is a liked one (rated 9 or more)",
         both(file("r.csv", GOOD_TABLE), file("c.toml", "[recommender]\nlike_threshold = 9\n"))),
    # --- degenerate tables: refused with the reason, never a model chosen by NaN ---------------------------------
    Case("table-of-one-user", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "{tmp}/r.csv holds the ratings of one user only (user 7); a recommender learns what several users share: "
         "add the ratings of more users", file("r.csv", table([(7, i, 1 + i % 5) for i in range(1, 41)]))),
    Case("table-of-one-user-with-text-ids", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds the ratings of one user only (user 'alice')",
         file("r.csv", table([("alice", f"sku-{i}", 1 + i % 5) for i in range(40)]))),
    Case("table-of-one-item", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds the ratings of one item only (item 3); a recommender learns what several items share",
         file("r.csv", table([(u, 3, 1 + u % 5) for u in range(1, 41)]))),
    Case("table-of-one-item-item-based", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY, "--mode", "item"],
         1, "holds the ratings of one item only", file("r.csv", table([(u, 3, 1 + u % 5) for u in range(1, 41)]))),
    Case("table-whose-ratings-are-all-equal", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "every rating is 4 (column 'rating'), and one value says nothing about taste; pass --implicit",
         file("r.csv", table(grid(6, 5, lambda u, i: 4)))),
    Case("table-whose-ratings-are-all-equal-on-a-declared-scale", "degenerate",
         ["train", "ratings", "{tmp}/r.csv", "--scale", "1:5", *TINY], 1,
         "every rating in {tmp}/r.csv is 4: one value says nothing about taste",
         file("r.csv", table(grid(6, 5, lambda u, i: 4)))),
    Case("table-whose-ratings-are-all-equal-ratings-model", "degenerate",
         ["train", "ratings", "{tmp}/r.csv", "--model-kind", "ratings", *TINY], 1, "every rating is 5",
         file("r.csv", table(grid(6, 5, lambda u, i: 5)))),
    Case("table-too-small-to-validate", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "{tmp}/r.csv has 4 ratings, too few to hold any out for early stopping (5% of them rounds to none), so "
         "validation NDCG@10 cannot be measured; give at least 11 ratings", file("r.csv", table(grid(2, 2)))),
    Case("table-too-small-to-validate-ratings-model", "degenerate",
         ["train", "ratings", "{tmp}/r.csv", "--model-kind", "ratings", *TINY], 1,
         "so validation RMSE cannot be measured; give at least 11 ratings", file("r.csv", table(grid(2, 5)))),
    Case("table-too-small-with-a-test-share", "degenerate",
         ["train", "ratings", "{tmp}/r.csv", "--test-fraction", "0.5", *TINY], 1, "too few to hold any out",
         file("r.csv", table(grid(3, 3)))),
    Case("table-without-a-liked-validation-rating", "degenerate",
         ["train", "ratings", "{tmp}/r.csv", "--scale", "1:5", *TINY], 1,
         "none of the 2 validation ratings held out of {tmp}/r.csv is a liked one (rated 4 or more), so validation "
         "NDCG@10 cannot be measured", file("r.csv", table(grid(6, 5, lambda u, i: 1 + (u + i) % 3)))),
    Case("validation-ndcg-not-a-number", "degenerate", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "validation NDCG@10 of epoch 1 is not a number (nan), so no epoch can be chosen by it; check MovieLens",
         patched("recsys_rbm.recommender.model._ranking_sample", lambda *args, **kwargs: lambda scorer: float("nan"))),
    Case("validation-rmse-not-a-number", "degenerate",
         [*TRAIN_ML, "--model-kind", "ratings", "-o", "{tmp}/m.safetensors"], 1,
         "validation RMSE of epoch 1 is not a number (nan)",
         patched("recsys_rbm.recommender.model._rmse", lambda scorer, ratings: float("nan"))),
    Case("validation-measure-missing", "degenerate", ["train", "ratings", "{tmp}/r.csv", "-o", "{tmp}/m", *TINY], 1,
         "validation NDCG@10 of epoch 1 is not a number (None)",
         both(file("r.csv", GOOD_TABLE), patched("recsys_rbm.recommender.model._ranking_sample", lambda *a,
         **k: None))),
    Case("table-of-a-header-only", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "{tmp}/r.csv holds no ratings; add one row per rating under its header line", file("r.csv",
         "user,item,rating\n")),
    Case("table-empty", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "{tmp}/r.csv is empty; write a header line and one row per rating", file("r.csv", "")),
    Case("table-of-blank-lines", "degenerate", ["train", "ratings", "{tmp}/r.csv", *TINY], 1, "is empty",
         file("r.csv", "\n\n  \n")),
    Case("anomalies-on-a-model-of-three-users", "degenerate", ["anomalies", "-m", "{tiny}"], 1,
         "needs at least 4 users with ratings, and the model has 3; train it on the ratings of more users"),
    # --- how a file is stored: compressed, encoded, or not text at all -------------------------------------------
    Case("table-gzip-compressed-is-read", "encoding", ["train", "ratings", "{tmp}/r.csv.gz", *TINY], 1,
         "{tmp}/r.csv.gz holds the ratings of one user only",
         compressed("r.csv.gz", table([(7, i, 1 + i % 5) for i in range(1, 41)]), gzip.compress)),
    Case("table-bzip2-compressed-is-read", "encoding", ["train", "ratings", "{tmp}/r.csv.bz2", *TINY], 1,
         "holds the ratings of one item only", compressed("r.csv.bz2", table([(u, 3, 4 + u % 2) for u in range(9)]),
         bz2.compress)),
    Case("table-xz-compressed-is-read", "encoding", ["train", "ratings", "{tmp}/r.tsv.xz", *TINY], 1,
         "holds the ratings of one item only",
         compressed("r.tsv.xz", table([(u, 3, 4 + u % 2) for u in range(9)], "user\titem\trating", "\t"),
         lzma.compress)),
    Case("table-gzip-compressed-under-another-name", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "{tmp}/r.csv holds the ratings of one user only",
         compressed("r.csv", table([(7, i, 1 + i % 5) for i in range(1, 41)]), gzip.compress)),
    Case("table-gzip-damaged", "encoding", ["train", "ratings", "{tmp}/r.csv.gz", *TINY], 1,
         "ratings file {tmp}/r.csv.gz is a damaged gzip file (", file("r.csv.gz",
         gzip.compress(GOOD_TABLE.encode())[:40])),
    Case("table-in-a-zip-archive", "encoding", ["train", "ratings", "{tmp}/r.zip", *TINY], 1,
         "ratings file {tmp}/r.zip is a zip archive, not a text table; unzip it and give the file inside",
         file("r.zip", b"PK\x03\x04" + bytes(40))),
    Case("table-zstd-compressed", "encoding", ["train", "ratings", "{tmp}/r.csv.zst", *TINY], 1,
         "is zstd-compressed, not a text table; decompress it", file("r.csv.zst", b"\x28\xb5\x2f\xfd" + bytes(40))),
    Case("table-in-a-7z-archive", "encoding", ["train", "ratings", "{tmp}/r.7z", *TINY], 1, "is a 7z archive",
         file("r.7z", b"7z\xbc\xaf\x27\x1c" + bytes(40))),
    Case("table-zip-inside-gzip", "encoding", ["train", "ratings", "{tmp}/r.gz", *TINY], 1,
         "is a gzip-compressed file holds a zip archive", file("r.gz", gzip.compress(b"PK\x03\x04" + bytes(40)))),
    Case("table-parquet-named-csv", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "is a Parquet file, not a text table; give it a .parquet name", parquet_bytes),
    Case("table-parquet-named-that-is-not", "encoding", ["train", "ratings", "{tmp}/r.parquet", *TINY], 1,
         "{tmp}/r.parquet is not a readable Parquet file (", file("r.parquet", GOOD_TABLE)),
    Case("table-utf16-with-a-byte-order-mark-is-read", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds the ratings of one user only (user 7)",
         file("r.csv", table([(7, i, 1 + i % 5) for i in range(1, 41)]).encode("utf-16"))),
    Case("table-utf32-with-a-byte-order-mark-is-read", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds the ratings of one user only", file("r.csv", table([(7, i, 1 + i % 5) for i in range(1,
         41)]).encode("utf-32"))),
    Case("table-utf16-without-a-byte-order-mark", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "looks like UTF-16 text without a byte-order mark, not UTF-8; save it as UTF-8",
         file("r.csv", GOOD_TABLE.encode("utf-16-be"))),
    Case("table-of-binary-garbage", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds binary data (", file("r.csv", bytes(np.random.default_rng(5).integers(1, 256, 4000, dtype=np.uint8)))),
    Case("table-with-nul-bytes", "encoding", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds binary data (NUL bytes), not text; give a CSV, TSV or Parquet file",
         file("r.csv", GOOD_TABLE.encode() + b"\x00" * 3)),
    Case("table-space-separated-is-sniffed", "encoding", ["train", "ratings", "{tmp}/r.txt", *TINY], 1,
         "{tmp}/r.txt holds the ratings of one user only",
         file("r.txt", table([(7, i, 1 + i % 5) for i in range(1, 41)], "user item rating", " "))),
    Case("table-aligned-with-runs-of-spaces-is-sniffed", "encoding", ["train", "ratings", "{tmp}/r.txt", *TINY], 1,
         "r.txt:3: expected 3 fields like the header, found 2",
         file("r.txt", "user   item  rating\n1      2     4\n3      5\n")),
    Case("table-space-separated-without-a-header", "encoding", ["train", "ratings", "{tmp}/r.txt", *TINY], 1,
         "has no header line (its first line is data: '1 2 4'); add a first line naming the columns",
         file("r.txt", "1 2 4\n3 5 1\n")),
    Case("users-file-gzip-of-garbage", "encoding",
         ["recommend", "-m", "{user}", "--users", "{tmp}/u.gz", "-o", "{tmp}/recs.csv"], 1,
         "users file {tmp}/u.gz holds binary data", file("u.gz", gzip.compress(bytes(range(256)) * 4))),
    Case("users-file-gzip-is-read", "encoding",
         ["recommend", "-m", "{user}", "--users", "{tmp}/u.gz", "-o", "{tmp}/recs.csv"], 1,
         "{tmp}/u.gz:2: unknown user 999", file("u.gz", gzip.compress(b"user\n999\n"))),
    Case("fold-in-ratings-in-a-zip", "encoding", FOLD_IN, 1, "ratings file {tmp}/ratings.csv is a zip archive",
         file("ratings.csv", b"PK\x03\x04" + bytes(30))),
    Case("fold-in-ratings-gzip-is-read", "encoding", FOLD_IN, 1, "ratings.csv:1: rating 9 is outside the model's scale",
         file("ratings.csv", gzip.compress(b"1,9\n"))),
    Case("fold-in-ratings-utf16-with-a-byte-order-mark-is-read", "encoding", FOLD_IN, 1,
         "ratings.csv:1: rating 9 is outside", file("ratings.csv", "Star Wars (1977),9\n".encode("utf-16"))),
    Case("items-file-zip", "encoding", ["train", "ratings", "{tmp}/r.csv", "--items", "{tmp}/i.zip", *TINY], 1,
         "items file {tmp}/i.zip is a zip archive", both(file("r.csv", GOOD_TABLE), file("i.zip",
         b"PK\x03\x04" + bytes(30)))),
    # --- model files verified in full before use, by every command (info too) ------------------------------------
    Case("info-on-a-truncated-model", "model file", ["info", "{tmp}/m.safetensors"], 1,
         "m.safetensors is truncated: its header describes", copied_model("m.safetensors", change=truncated(100))),
    Case("info-on-a-model-cut-by-one-byte", "model file", ["info", "{tmp}/m.safetensors"], 1,
         "but only", copied_model("m.safetensors", change=truncated(1))),
    Case("info-on-a-model-with-a-flipped-bit", "model file", ["info", "{tmp}/m.safetensors"], 1,
         "is corrupt: its content does not match the checksum", copied_model("m.safetensors", change=flip_last_byte)),
    Case("info-on-an-edited-model", "model file", ["info", "{tmp}/m.safetensors"], 1,
         "does not match the checksum in its header (damaged or edited)", copied_model("m.safetensors",
         change=edit_title)),
    Case("info-on-an-empty-file", "model file", ["info", "{tmp}/m.safetensors"], 1,
         "is not a safetensors model file (0 bytes, no valid header)", file("m.safetensors", b"")),
    Case("info-on-a-folder", "model file", ["info", "{tmp}/m.safetensors"], 1, "is a folder, not a model file",
         folder("m.safetensors")),
    Case("info-on-a-missing-model", "model file", ["info", "{tmp}/none.safetensors"], 1,
         "model file {tmp}/none.safetensors does not exist"),
    Case("info-on-a-foreign-safetensors-file", "model file", ["info", "{tmp}/foreign.safetensors"], 1,
         "carries no recsys_rbm metadata", foreign_safetensors),
    Case("model-with-bytes-appended", "model file", [*RECOMMEND, "{tmp}/m.safetensors"], 1,
         "is corrupt: its tensors do not fill the file as its header says", copied_model("m.safetensors",
         change=appended(b"junk"))),
    Case("similar-on-a-truncated-model", "model file", ["similar", "--movie", "1", "-m", "{tmp}/m.safetensors"], 1,
         "is truncated", copied_model("m.safetensors", "item", truncated(100))),
    Case("explain-on-a-truncated-model", "model file",
         ["explain", "--user", "1", "--movie", "1", "-m", "{tmp}/m.safetensors"], 1, "is truncated",
         copied_model("m.safetensors", change=truncated(100))),
    Case("anomalies-on-a-truncated-model", "model file", ["anomalies", "-m", "{tmp}/m.safetensors"], 1, "is truncated",
         copied_model("m.safetensors", change=truncated(100))),
    Case("imagine-on-a-truncated-model", "model file", ["imagine", "-m", "{tmp}/m.safetensors"], 1, "is truncated",
         copied_model("m.safetensors", change=truncated(100))),
    Case("foreign-file-claiming-the-format-with-text-counts", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "claims to be an rbm-rec model, but its metadata field 'n_users' holds \"many\", not a whole number: it "
         "was not written by rbm-rec", claiming("f.safetensors", {"kind": "recommender-rbm", "n_users": "many"})),
    Case("recommend-on-a-foreign-file-claiming-the-format", "model file", [*RECOMMEND, "{tmp}/f.safetensors"], 1,
         "claims to be an rbm-rec model", claiming("f.safetensors", {"kind": "recommender-rbm", "n_users": "many"})),
    Case("foreign-file-claiming-the-format-with-text-ratings", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "metadata field 'rating_values' holds [\"one\", \"two\"], not a list of numbers",
         claiming("f.safetensors", {"kind": "recommender-rbm", "rating_values": ["one", "two"]})),
    Case("foreign-file-claiming-the-format-with-a-text-epoch", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "'best_epoch' holds \"two\", not a whole number or null",
         claiming("f.safetensors", {"kind": "mnist-rbm", "best_epoch": "two"})),
    Case("foreign-file-claiming-the-format-with-a-history-table", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "'history' holds {\"epoch\": 1}, not a list", claiming("f.safetensors", {"kind": "x",
         "history": {"epoch": 1}})),
    Case("foreign-file-claiming-the-format-with-a-number-kind", "model file", [*RECOMMEND, "{tmp}/f.safetensors"], 1,
         "'kind' holds 7, not text", claiming("f.safetensors", {"kind": 7})),
    Case("foreign-file-claiming-the-format-without-its-tensors", "model file", [*RECOMMEND, "{tmp}/f.safetensors"], 1,
         "is not a valid recommender model (", claiming("f.safetensors", {"kind": "recommender-rbm"})),
    Case("foreign-file-with-a-dtype-rbm-rec-never-writes", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "tensor 'w' has dtype 'BF16', which rbm-rec models never hold",
         raw_safetensors("f.safetensors", {"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, bytes(4))),
    Case("foreign-file-whose-sizes-disagree", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "tensor 'w' takes 8 bytes, not the 4 × [1] its header gives",
         raw_safetensors("f.safetensors", {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}, bytes(8))),
    Case("foreign-file-with-overlapping-tensors", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "its tensors do not fill the file as its header says",
         raw_safetensors("f.safetensors", {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                           "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(8))),
    Case("foreign-file-with-a-negative-shape", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "has a corrupt safetensors header",
         raw_safetensors("f.safetensors", {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4))),
    Case("foreign-file-claiming-format-two-as-text", "model file", ["info", "{tmp}/f.safetensors"], 1,
         "has checkpoint format two, but this version of recsys_rbm reads formats 1 and 2",
         raw_safetensors("f.safetensors", {}, b"", {"format": "recsys_rbm.io.checkpoint", "format_version": "two"})),
    Case("foreign-file-claiming-the-format-with-metadata-not-a-table", "model file", ["info", "{tmp}/f.safetensors"],
         1, "has corrupt recsys_rbm metadata; retrain it",
         raw_safetensors("f.safetensors", {}, b"", {"format": "recsys_rbm.io.checkpoint", "format_version": "2",
                                                    "metadata": "[1, 2]", "content_sha256": "0"})),
    Case("info-plot-of-a-model-without-a-curve", "model file",
         ["info", "{tmp}/mnist.safetensors", "--plot", "{tmp}/curve.png"], 1,
         "the model records no training curve to draw (no per-epoch history); retrain it", mnist_model),
    Case("info-plot-is-a-folder", "model file", ["info", "{user}", "--plot", "{tmp}/plots"], 1,
         "--plot {tmp}/plots is a folder; give a file path, e.g. {tmp}/plots/curve.png", folder("plots")),
    Case("info-plot-exists", "model file", ["info", "{user}", "--plot", "{tmp}/curve.png"], 1,
         "curve.png already exists; pass --overwrite to replace it, or choose another --plot", file("curve.png",
         "png")),
    # --- a full disk while saving: the old file survives, and the line says so -----------------------------------
    Case("disk-full-on-the-first-save", "disk full", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "no space left on the device while writing {tmp}/m.safetensors (--output); {tmp}/m.safetensors was not "
         "created; free some space, or choose an --output on another disk, and run the command again",
         patched("recsys_rbm.io.checkpoint.save_file", raising(DISK_FULL))),
    Case("disk-full-keeps-the-old-model", "disk full", [*TRAIN_ML, "-o", "{tmp}/m.safetensors", "--overwrite"], 1,
         "m.safetensors was left unchanged (the old file survived); free some space",
         both(copied_model("m.safetensors"), patched("recsys_rbm.io.checkpoint.save_file", raising(DISK_FULL)))),
    Case("disk-full-after-a-saved-epoch-keeps-both", "disk full",
         [*TRAIN_ML, "-o", "{tmp}/m.safetensors", "--overwrite"], 1,
         "m.safetensors was left unchanged (the old file survived), and the best model so far (epoch 1) was kept in "
         "{tmp}/m.partial.safetensors; free some space",
         both(copied_model("m.safetensors"), fails_after(1, "recsys_rbm.io.checkpoint.save_file", DISK_FULL)),
         creates=("m.partial.safetensors",)),
    Case("disk-full-after-a-saved-epoch-places-it", "disk full", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "the best model so far (epoch 1) was kept in {tmp}/m.safetensors, marked unfinished",
         fails_after(1, "recsys_rbm.io.checkpoint.save_file", DISK_FULL), creates=("m.safetensors",)),
    Case("disk-quota-while-saving", "disk full", ["train", "ratings", "{tmp}/r.csv", "-o", "{tmp}/m", *TINY], 1,
         "the disk quota is used up while writing {tmp}/m.safetensors",
         both(file("r.csv", GOOD_TABLE), patched("recsys_rbm.io.checkpoint.save_file", raising(OSError(errno.EDQUOT,
         "Disk quota exceeded"))))),
    Case("disk-full-while-saving-an-mnist-model", "disk full", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors"], 1,
         "no space left on the device while writing {tmp}/m.safetensors (--output); {tmp}/m.safetensors was not "
         "created",
         patched("recsys_rbm.io.checkpoint.save_file", raising(DISK_FULL)), mnist=True),
    Case("disk-full-while-writing-an-evaluation", "disk full", [*EVALUATE, "--json-out", "{tmp}/e.json"], 1,
         "no space left on the device while writing {tmp}/e.json (--json-out); {tmp}/e.json was not created",
         patched("recsys_rbm.recommender.evaluation.atomic_write_text", raising(OSError(errno.ENOSPC,
         "No space left")))),
    Case("disk-full-while-writing-every-users-lists", "disk full",
         ["recommend", "-m", "{user}", "--all-users", "-o", "{tmp}/recs.csv"], 1,
         "no space left on the device while writing {tmp}/recs.csv; free some space",
         patched("polars.DataFrame.write_csv", raising(POLARS_DISK_FULL))),
    Case("disk-full-while-writing-lists-as-parquet", "disk full",
         ["recommend", "-m", "{user}", "--all-users", "-o", "{tmp}/recs.parquet"], 1,
         "while writing {tmp}/recs.parquet",
         patched("polars.DataFrame.write_parquet", raising(POLARS_DISK_FULL))),
    Case("disk-full-while-drawing-a-curve", "disk full", ["info", "{user}", "--plot", "{tmp}/curve.png"], 1,
         "no space left on the device while writing {tmp}/curve.png",
         patched("matplotlib.figure.Figure.savefig", raising(OSError(errno.ENOSPC, "No space left on device")))),
    Case("io-error-while-saving", "disk full", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "the device reported an input/output error while writing {tmp}/m.safetensors",
         patched("recsys_rbm.io.checkpoint.save_file", raising(OSError(errno.EIO, "Input/output error")))),
    # --- interruptions at every phase: SIGINT, SIGTERM and SIGHUP, each with its exit code --------------------------
    Case("hang-up-while-loading-movielens", "interruption", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 129,
         "interrupted; every file is written whole or not at all, so run the command again",
         patched("recsys_rbm.data.movielens.load_movielens", raising(HungUp()))),
    Case("hang-up-while-reading-a-ratings-table", "interruption", ["train", "ratings", "{tmp}/r.csv", *TINY], 129,
         "interrupted", both(file("r.csv", GOOD_TABLE), patched("recsys_rbm.data.tables.read_ratings_table",
         raising(HungUp())))),
    Case("hang-up-while-training-before-a-save", "interruption", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 129,
         "interrupted before an epoch improved on validation; nothing was saved and {tmp}/m.safetensors was not "
         "created",
         patched("recsys_rbm.recommender.model.RBMRecommender.fit", raising(HungUp()))),
    Case("hang-up-while-saving-the-first-epoch", "interruption", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 129,
         "nothing was saved and {tmp}/m.safetensors was not created",
         patched("recsys_rbm.io.checkpoint.save_file", raising(HungUp()))),
    Case("hang-up-while-saving-a-later-epoch-keeps-the-old-model", "interruption",
         [*TRAIN_ML, "-o", "{tmp}/m.safetensors", "--overwrite"], 129,
         "interrupted; {tmp}/m.safetensors was left unchanged, and the best model so far (epoch 1",
         both(copied_model("m.safetensors"), fails_after(1, "recsys_rbm.io.checkpoint.save_file", HungUp())),
         creates=("m.partial.safetensors",)),
    Case("termination-while-saving-a-later-epoch", "interruption", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 143,
         "interrupted; kept the best model so far in {tmp}/m.safetensors (epoch 1",
         fails_after(1, "recsys_rbm.io.checkpoint.save_file", Terminated()), creates=("m.safetensors",)),
    Case("ctrl-c-while-measuring-on-test", "interruption",
         ["train", "ratings", "{tmp}/r.csv", "--test-fraction", "0.2", "-o", "{tmp}/m", *TINY], 130,
         "interrupted; kept the best model so far in {tmp}/m.safetensors (epoch",
         both(file("r.csv", table(grid(8, 8))),
              patched("recsys_rbm_cli.train_recommender.evaluate_on_test", raising(KeyboardInterrupt()))),
         creates=("m.safetensors",)),
    Case("hang-up-while-training-mnist", "interruption", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors"], 129,
         "interrupted before the first epoch finished; {tmp}/m.safetensors was not created",
         patched("recsys_rbm.exercise.mnist.train_mnist_rbm", raising(HungUp())), mnist=True),
    Case("termination-while-loading-mnist", "interruption", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors"], 143,
         "interrupted; every file", patched("recsys_rbm.exercise.mnist.load_binarized_mnist", raising(Terminated()))),
    Case("hang-up-while-drawing-mnist-figures", "interruption", [*FIGURES, "-o", "{tmp}/figs"], 129, "interrupted",
         patched("recsys_rbm.exercise.mnist.run_mnist_figures", raising(HungUp())), mnist=True),
    Case("hang-up-while-evaluating", "interruption", [*EVALUATE, "--json-out", "{tmp}/e.json"], 129,
         "interrupted before the first of 1 folds finished; {tmp}/e.json was not written",
         patched("recsys_rbm.recommender.evaluation.evaluate_split", raising(HungUp()))),
    Case("termination-while-writing-every-users-lists", "interruption",
         ["recommend", "-m", "{user}", "--all-users", "-o", "{tmp}/recs.csv"], 143, "interrupted; every file",
         patched("recsys_rbm.recommender.scorer.Scorer.recommend", raising(Terminated()))),
    Case("hang-up-while-writing-the-lists-file", "interruption",
         ["recommend", "-m", "{user}", "--all-users", "-o", "{tmp}/recs.jsonl"], 129, "interrupted",
         patched("polars.DataFrame.write_ndjson", raising(HungUp()))),
    Case("ctrl-c-while-drawing-a-curve", "interruption", ["info", "{user}", "--plot", "{tmp}/curve.png"], 130,
         "interrupted", patched("matplotlib.figure.Figure.savefig", raising(KeyboardInterrupt()))),
    Case("termination-while-loading-a-model", "interruption", ["similar", "--movie", "1", "-m", "{item}"], 143,
         "interrupted", patched("recsys_rbm.recommender.scorer.Scorer.load", raising(Terminated()))),
    Case("hang-up-while-verifying-a-model", "interruption", ["info", "{user}"], 129, "interrupted",
         patched("recsys_rbm.io.checkpoint_files.content_digest", raising(HungUp()))),
    Case("hang-up-while-sampling-profiles", "interruption", ["imagine", "-m", "{user}"], 129, "interrupted",
         patched("recsys_rbm.recommender.profiles.sample_profiles", raising(HungUp()))),
    Case("ctrl-c-while-scoring-anomalies", "interruption", ["anomalies", "-m", "{user}"], 130, "interrupted",
         patched("recsys_rbm.recommender.anomalies.atypicality", raising(KeyboardInterrupt()))),
    # --- the user's own terms: titles, options, files; never an inner index --------------------------------------
    Case("imagine-liked-and-disliked", "user's terms", ["imagine", "-m", "{user}", "--likes", "star wars",
         "--dislikes", "Star Wars (1977)"],
         2, "Star Wars (1977), id 1 is in both --likes and --dislikes; give each movie to one of them"),
    Case("imagine-liked-twice", "user's terms", ["imagine", "-m", "{user}", "--likes", "1", "--likes", "star wars"], 2,
         "Star Wars (1977), id 1 is given twice to --likes; give each movie once"),
    Case("imagine-disliked-twice", "user's terms", ["imagine", "-m", "{user}", "--dislikes", "heat (1995)",
         "--dislikes", "5"],
         2, "Heat (1995), id 5 is given twice to --dislikes"),
    Case("imagine-dislikes-on-an-implicit-model", "user's terms", ["imagine", "-m", "{implicit}", "--dislikes", "1"], 2,
         "--dislikes needs a model of ratings, and this model was trained on implicit feedback"),
    Case("recommend-expected-rating-of-an-implicit-model", "user's terms",
         ["recommend", "-m", "{implicit}", "--user", "1", "--score", "expected"], 2,
         "--score expected needs a model of ratings, and this model was trained on implicit feedback (which items "
         "users picked, not how they rated them); use --score p_liked or p_interacted"),
    Case("recommend-p-high-of-an-implicit-model-for-all-users", "user's terms",
         ["recommend", "-m", "{implicit}", "--all-users", "-o", "{tmp}/r.csv", "--score", "p_high"], 2,
         "--score p_high needs a model of ratings"),
    Case("explain-expected-rating-of-an-implicit-model", "user's terms",
         ["explain", "-m", "{implicit}", "--user", "1", "--movie", "1", "--score", "expected"], 2,
         "--score expected needs a model of ratings"),
    Case("evaluate-folds-empty", "user's terms", [*EVALUATE[:4], "--folds", "", "--json-out", "{tmp}/e.json"], 2,
         "--folds '' names no value; use u1, u2, u3, u4, u5, ua, ub, random, or leave --folds out for its default"),
    Case("evaluate-folds-only-commas", "user's terms", [*EVALUATE[:4], "--folds", " , ,", "--json-out", "{tmp}/e.json"],
         2, "--folds ' , ,' names no value"),
    Case("evaluate-models-empty", "user's terms", [*EVALUATE[:6], "--models", "", "--json-out", "{tmp}/e.json"], 2,
         "--models '' names no value; use rbm, ease, global-mean, biases, most-popular"),
    Case("users-file-names-an-unknown-user", "user's terms",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv"], 1,
         "{tmp}/users.csv:3: unknown user 999; known user ids range over 1..40", file("users.csv", "user\n1\n999\n")),
    Case("users-file-holds-a-name-for-integer-ids", "user's terms",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv"], 2,
         "{tmp}/users.csv:2: 'alice' is not a user id: this model's user ids are integers 1..40",
         file("users.csv", "1\nalice\n")),
    Case("users-file-lists-nobody", "user's terms",
         ["recommend", "-m", "{user}", "--users", "{tmp}/users.csv", "-o", "{tmp}/recs.csv"], 1,
         "users file {tmp}/users.csv lists no user; write one user id per line", file("users.csv", "user\n# none\n")),
    Case("fold-in-title-with-accents-twice", "user's terms", FOLD_IN, 1,
         "ratings.csv:2: Misérables, Les (1995), id 4 again (first at line 1); rate each movie once",
         file("ratings.csv", "Misérables, Les (1995),5\nles miserables,4\n")),
    Case("similar-title-unknown-names-the-near-titles", "user's terms", ["similar", "-m", "{item}", "--movie",
         "star warz"], 1,
         "no movie titled 'star warz'; did you mean: Star Wars (1977), id 1"),
    # --- stdout and stderr in encodings that cannot carry every character (ASCII, Latin-1, cp1252) ---------------
    Case("ascii-terminal-error-naming-an-accented-title", "locale", FOLD_IN, 1,
         "ratings.csv:2: Miserables, Les (1995), id 4 again (first at line 1)",
         file("ratings.csv", "Misérables, Les (1995),5\nles miserables,4\n"), charset="ascii"),
    Case("ascii-terminal-unknown-accented-title", "locale", ["similar", "-m", "{item}", "--movie", "Amélie"], 1,
         "no movie titled 'Amelie'", charset="ascii"),
    Case("ascii-terminal-unknown-user", "locale", [*RECOMMEND, "{user}", "--user", "999"], 1,
         "unknown user 999; known user ids range over 1..40", charset="ascii"),
    Case("ascii-terminal-interrupted-training", "locale", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 130,
         "interrupted before an epoch improved",
         patched("recsys_rbm.recommender.model.RBMRecommender.fit", raising(KeyboardInterrupt())), charset="ascii"),
    Case("ascii-terminal-degenerate-table", "locale", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds the ratings of one user only (user 'zoe')",
         file("r.csv", table([("zoë", i, 1 + i % 5) for i in range(1, 41)])), charset="ascii"),
    Case("ascii-terminal-missing-model-with-an-accented-name", "locale", ["info", "{tmp}/modèle.safetensors"], 1,
         "modele.safetensors does not exist", charset="ascii"),
    Case("ascii-terminal-bad-option-value", "locale", [*TRAIN_ML, "--dataset", "ml-€"], 2,
         "'--dataset'", charset="ascii"),
    Case("cp1252-terminal-unknown-title-with-a-star", "locale", ["similar", "-m", "{item}", "--movie", "★ Warz ≥ 2"], 1,
         "no movie titled '* Warz >= 2'", charset="cp1252"),
    Case("cp1252-terminal-title-it-can-carry", "locale", FOLD_IN, 1,
         "ratings.csv:2: Misérables, Les (1995), id 4 again",
         file("ratings.csv", "Misérables, Les (1995),5\nles miserables,4\n"), charset="cp1252"),
    Case("latin1-terminal-user-id-not-a-number", "locale", [*RECOMMEND, "{user}", "--user", "ü→1"], 2,
         "--user 'ü->1' is not a user id", charset="latin-1"),
    Case("ascii-terminal-same-file-output", "locale",
         ["info", "{tmp}/modèle.safetensors", "--plot", "{tmp}/modèle.safetensors", "--overwrite"], 1,
         "modele.safetensors is the same file as the model", copied_model("modèle.safetensors"), charset="ascii"),
    # --- terminals of no width, a tiny one, and a nonsense one ---------------------------------------------------
    Case("no-width-terminal-unknown-user", "terminal", [*RECOMMEND, "{user}", "--user", "99999"], 1,
         "unknown user 99999; known user ids range over 1..40 (40 of them); give one of those", env={"COLUMNS": "0"}),
    Case("no-width-terminal-unknown-title", "terminal", ["similar", "-m", "{item}", "--movie", "nothing like it"], 1,
         "no movie titled 'nothing like it'", env={"COLUMNS": "0"}),
    Case("narrow-terminal-long-error-stays-one-line", "terminal", ["info", "{tmp}/" + "long-folder-name/" * 6 + "m"], 1,
         "m.safetensors does not exist; train one first or give its path: rbm-rec info PATH", env={"COLUMNS": "20"}),
    Case("narrow-terminal-degenerate-table", "terminal", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "holds the ratings of one item only", file("r.csv", table([(u, 3, 1 + u % 5) for u in range(1, 41)])),
         env={"COLUMNS": "20"}),
    Case("one-column-terminal-usage-error", "terminal", ["recommend", "--top", "0", "-m", "{user}", "--user", "1"], 2,
         "'--top'", env={"COLUMNS": "1"}),
    Case("nonsense-width-interrupted", "terminal", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 143, "interrupted",
         patched("recsys_rbm.recommender.model.RBMRecommender.fit", raising(Terminated())), env={"COLUMNS": "wide"}),
    Case("negative-width-same-file", "terminal",
         ["recommend", "-m", "{user}", "--users", "{tmp}/u.csv", "-o", "{tmp}/u.csv", "--overwrite"], 1,
         "is the same file as --users", file("u.csv", "1\n"), env={"COLUMNS": "-5"}),
    Case("no-width-no-height-terminal", "terminal", ["explain", "-m", "{user}", "--user", "1", "--movie",
         "nothing at all"],
         1, "no movie titled 'nothing at all'", env={"COLUMNS": "0", "LINES": "0"}),
    Case("read-only-home-default-output", "terminal", ["train", "movielens", *TINY, "--data-dir", "{data}"], 1,
         "cannot write --output /proc/self/fdinfo/.local/share/rbm-rec/models/movielens-ml-100k.safetensors",
         read_only_home),
    Case("read-only-home-default-model", "terminal", ["recommend", "--user", "1"], 1,
         "movielens-ml-100k.safetensors does not exist; train one first", read_only_home),
    # --- more of each class the catalogue had: usage, bounds and strict input -------------------------------------
    Case("recommend-both-a-user-and-a-ratings-file", "usage", [*FOLD_IN, "--user", "1"], 2, "give one of --user ID"),
    Case("recommend-users-without-an-output", "usage", ["recommend", "-m", "{user}", "--users", "{tmp}/u.csv"], 2,
         "--users and --all-users write a file: add --output recs.csv", file("u.csv", "1\n")),
    Case("recommend-output-of-an-unknown-format", "usage", ["recommend", "-m", "{user}", "--all-users", "-o",
         "{tmp}/r.txt"],
         2, "--output {tmp}/r.txt has no known format; end it in .csv, .parquet, .jsonl"),
    Case("recommend-ratings-file-with-an-output", "usage", [*FOLD_IN, "-o", "{tmp}/recs.csv"], 2,
         "--output writes the lists of training users; give --user, --users or --all-users", file("ratings.csv",
         "1,5\n")),
    Case("recommend-unknown-score", "usage", [*RECOMMEND, "{user}", "--score", "best"], 2, "'--score'"),
    Case("evaluate-unknown-model", "usage", [*EVALUATE[:6], "--models", "svd", "--json-out", "{tmp}/e.json"], 2,
         "unknown --models value 'svd'; use rbm, ease"),
    Case("evaluate-unknown-fold", "usage", [*EVALUATE[:4], "--folds", "u9", "--json-out", "{tmp}/e.json"], 2,
         "unknown --folds value 'u9'"),
    Case("train-ratings-without-a-table", "usage", ["train", "ratings", *TINY], 2, "Missing argument 'PATH'"),
    Case("similar-without-a-movie", "usage", ["similar", "-m", "{item}"], 2, "Missing option '--movie'"),
    Case("default-model-previous-is-a-folder", "fail fast", TRAIN_ML, 1,
         "movielens-ml-100k.previous.safetensors is in the way: the previous movielens-ml-100k.safetensors is kept "
         "there when it is replaced, but that is not a file; move it away, or pass --output to write elsewhere",
         both(copied_model("models/movielens-ml-100k.safetensors"),
              folder("models/movielens-ml-100k.previous.safetensors")),
         env={"RBM_REC_MODELS": "{tmp}/models"}),
    Case("items-id-col-not-in-the-items-table", "strict input",
         ["train", "ratings", "{tmp}/r.csv", "--items", "{tmp}/items.csv", "--items-id-col", "code", *TINY], 1,
         "items.csv has no column 'code' (given by --items-id-col); its columns are 'sku', 'title': give "
         "--items-id-col one of them",
         both(file("r.csv", GOOD_TABLE), file("items.csv", "sku,title\n1,One\n"))),
    Case("items-table-without-an-id-column", "strict input",
         ["train", "ratings", "{tmp}/r.csv", "--item-col", "item", "--items", "{tmp}/items.csv", *TINY], 1,
         "items.csv has no item id column among 'sku', 'title'; name it movieId, itemId or id (or 'item', as in the "
         "ratings), or give --items-id-col",
         both(file("r.csv", GOOD_TABLE), file("items.csv", "sku,title\n1,One\n"))),
    Case("imagine-no-profiles-by-their-name", "bounds", ["imagine", "-m", "{user}", "--profiles", "0"], 2,
         "'--profiles'"),
    Case("imagine-no-movies-shown", "bounds", ["imagine", "-m", "{user}", "-n", "0"], 2, "'-n'"),
    Case("info-without-a-default-model", "model file", ["info"], 1,
         "models/movielens-ml-100k.safetensors does not exist; train one first or give its path: rbm-rec info PATH",
         env={"RBM_REC_MODELS": "{tmp}/models"}),
    Case("train-ratings-unknown-duplicates-policy", "usage", ["train", "ratings", "{tmp}/r.csv", "--duplicates",
         "maybe"],
         2, "'--duplicates'"),
    Case("train-ratings-scale-backwards", "usage", ["train", "ratings", "{tmp}/r.csv", "--scale", "5:1", *TINY], 1,
         "rating scale '5:1': HIGH must be above LOW", file("r.csv", GOOD_TABLE)),
    Case("train-ratings-implicit-and-a-rating-column", "usage",
         ["train", "ratings", "{tmp}/r.csv", "--implicit", "--rating-col", "rating", *TINY], 1,
         "give either a rating column (--rating-col) or --implicit, not both", file("r.csv", GOOD_TABLE)),
    Case("train-ratings-unknown-user-column", "usage", ["train", "ratings", "{tmp}/r.csv", "--user-col", "who",
         *TINY], 1,
         "has no column 'who' (given by --user-col); its columns are", file("r.csv", GOOD_TABLE)),
    Case("mnist-unknown-binarization", "usage", [*TRAIN_MNIST, "--binarize", "half"], 2, "'--binarize'"),
    Case("recommend-hidden-units-zero", "bounds", [*TRAIN_ML, "--hidden", "0"], 2, "'--hidden'"),
    Case("recommend-context-negative", "bounds", [*RECOMMEND, "{user}", "--context", "-1"], 2, "'--context'"),
    Case("imagine-no-profiles", "bounds", ["imagine", "-m", "{user}", "--n", "0"], 2, "'--n'"),
    Case("imagine-no-steps", "bounds", ["imagine", "-m", "{user}", "--steps", "0"], 2, "'--steps'"),
    Case("anomalies-too-many-reasons", "bounds", ["anomalies", "-m", "{user}", "--reasons", "101"], 2, "'--reasons'"),
    Case("recommend-min-ratings-zero", "bounds", [*RECOMMEND, "{user}", "--min-ratings", "0"], 2, "'--min-ratings'"),
    Case("evaluate-no-random-folds", "bounds", [*EVALUATE, "--random-folds", "0"], 2, "'--random-folds'"),
    Case("train-ratings-test-fraction-too-large", "bounds", ["train", "ratings", "{tmp}/r.csv", "--test-fraction",
         "0.95"],
         2, "'--test-fraction'"),
    Case("cd-schedule-not-from-epoch-zero", "bounds", [*TRAIN_ML, "--cd-schedule", "1:3"], 2,
         "--cd-schedule must start at epoch 0"),
    Case("cd-schedule-not-numbers", "bounds", [*TRAIN_ML, "--cd-schedule", "soon:3"], 2,
         "--cd-schedule 'soon:3' is not a list of EPOCH:T pairs"),
    Case("figures-one-ais-run", "bounds", [*FIGURES, "--ais-runs", "1"], 2, "'--ais-runs'"),
    Case("figures-no-diversity-chains", "bounds", [*FIGURES, "--diversity-chains", "0"], 2, "'--diversity-chains'"),
    Case("fold-in-rating-not-finite", "strict input", FOLD_IN, 1, "rating inf is outside the model's scale",
         file("ratings.csv", "1,inf\n")),
    Case("fold-in-rating-nan", "strict input", FOLD_IN, 1, "rating nan is outside the model's scale; use one of",
         file("ratings.csv", "1,nan\n")),
    Case("fold-in-line-without-a-rating", "strict input", FOLD_IN, 1,
         "ratings.csv:1: expected 'movie,rating' (a movie id or title, a comma, a rating), found 'Star Wars'",
         file("ratings.csv", "Star Wars\n")),
    Case("fold-in-unclosed-quote", "strict input", FOLD_IN, 1, "check the quotes on this line",
         file("ratings.csv", '"Star Wars,5\n')),
    Case("fold-in-header-only", "strict input", FOLD_IN, 1, "holds no ratings; write one 'movie,rating' line",
         file("ratings.csv", "movie,rating\n")),
    Case("fold-in-unknown-movie-id", "strict input", FOLD_IN, 1, "unknown movie id 9999; the model's movie ids range",
         file("ratings.csv", "9999,4\n")),
    Case("fold-in-on-an-item-based-model", "strict input", ["recommend", "-m", "{item}", "--ratings", "{tmp}/r.csv"], 1,
         "fold-in of a new user needs a user-based model", file("r.csv", "1,5\n")),
    Case("table-without-a-header", "strict input", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "has no header line (its first line is data: '1,2,4'); add a first line naming the columns",
         file("r.csv", "1,2,4\n2,3,5\n")),
    Case("table-rating-pair-twice", "strict input", ["train", "ratings", "{tmp}/r.csv", *TINY], 1,
         "r.csv:3: user 1 rated item 2 again (first at line 2)", file("r.csv", "user,item,rating\n1,2,4\n1,2,5\n")),
    Case("table-rating-off-the-declared-scale", "strict input",
         ["train", "ratings", "{tmp}/r.csv", "--scale", "1:5", *TINY], 1, "rating 9 is not on the declared scale 1:5",
         file("r.csv", "user,item,rating\n1,2,4\n2,2,9\n")),
    Case("items-file-without-titles", "strict input",
         ["train", "ratings", "{tmp}/r.csv", "--items", "{tmp}/i.csv", *TINY], 1, "has no title column",
         both(file("r.csv", GOOD_TABLE), file("i.csv", "item,price\n1,3\n"))),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> None:
    if case.mnist:
        request.getfixturevalue("fake_mnist_table")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RBM_REC_DEBUG", raising=False)
    env = Env(tmp_path, world, monkeypatch)
    try:
        if case.setup is not None:
            case.setup(env)
        before = snapshot(tmp_path, world.root)
        values = {"tmp": str(tmp_path), "data": str(world.data), "mnist": str(world.mnist)}
        values |= {"user": str(world.user), "item": str(world.item), "tiny": str(world.tiny)}
        values |= {"implicit": str(world.implicit)}
        args = [arg.format(**values) for arg in case.args]
        runner = CliRunner(charset=case.charset, env={name: value.format(**values) for name, value in case.env.items()})
        with deadline(DEADLINE):
            result = runner.invoke(app, args)
        after = snapshot(tmp_path, world.root)
    finally:
        for cleanup in env.cleanups:
            cleanup()
    assert result.exit_code == case.code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    phrase = case.phrase
    for name, value in values.items():  # the phrase names the case's paths as its arguments do
        phrase = phrase.replace(f"{{{name}}}", value)
    assert line.startswith("error: ") and phrase in line, line
    assert ADVICE.search(line), f"the line does not say what to do: {line}"
    added = {str(tmp_path / name) for name in case.creates}
    assert added <= set(after), f"expected the command to keep {sorted(added - set(after))}"
    kept = {path: digest for path, digest in after.items() if path not in added}
    assert kept == before, "files changed: " + ", ".join(sorted(set(kept.items()) ^ set(before.items())))


DEADLINE = 60  # seconds: a case still running then has hung


class Hung(BaseException):
    """Raised in a case that ran past its deadline (a read of a pipe that never ends, a lock never released)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Hung` in the block after ``seconds`` (SIGALRM; the block must not swallow it unseen)."""

    def expire(number: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_catalogue_covers_every_category_with_at_least_250_cases() -> None:
    categories = {case.category for case in CASES}
    assert len(CASES) >= 250 and len({case.id for case in CASES}) == len(CASES)
    assert categories == {
        *("lost work", "traceback", "bounds", "fail fast", "integrity", "strict input", "usage"),
        *("same file", "non-regular", "config file", "degenerate", "encoding", "model file", "disk full"),
        *("interruption", "user's terms", "locale", "terminal"),
    }
    codes = {case.code for case in CASES if case.category == "interruption"}
    assert codes == {129, 130, 143}  # SIGHUP, SIGINT and SIGTERM each take the interrupted path


def test_debug_shows_the_traceback_and_says_so(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import recsys_rbm_cli.catalogue

    monkeypatch.setattr(recsys_rbm_cli.catalogue.Catalogue, "of", raising(ZeroDivisionError("division by zero")))
    plain = CliRunner().invoke(app, ["recommend", "--user", "1", "--model", str(world.user)])
    assert "Traceback" not in plain.stderr and "rerun with --debug" in plain.stderr
    for args, env in ((["--debug"], {}), ([], {"RBM_REC_DEBUG": "1"})):
        shown = CliRunner(env=env).invoke(app, [*args, "recommend", "--user", "1", "--model", str(world.user)])
        assert shown.exit_code == 1
        assert "Traceback (most recent call last)" in shown.stderr and "ZeroDivisionError" in shown.stderr
        assert shown.stderr.strip().splitlines()[-1].startswith("error: unexpected error (ZeroDivisionError")
        assert "the traceback is above" in shown.stderr


def test_an_interrupted_evaluation_keeps_the_finished_folds(world: World, tmp_path: Path, monkeypatch) -> None:
    import recsys_rbm.recommender.evaluation as evaluation

    real = evaluation.evaluate_split
    calls: list[str] = []

    def interrupt_the_third(model, split, **kwargs):
        calls.append(split.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(model, split, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_split", interrupt_the_third)
    target = tmp_path / "e.json"
    args = ["evaluate", "movielens", "--data-dir", str(world.data), "--folds", "random", "--random-folds", "2"]
    args += ["--models", "biases,global-mean", "--json-out", str(target), *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    assert "interrupted after 2 of 4 folds; wrote those to" in result.stderr and '"complete": false' in result.stderr
    report = json.loads(target.read_text())
    assert report["complete"] is False and len(report["folds"]) == 2
    assert [split["name"] for split in report["splits"]] == ["random-1"]
    assert report["notes"]["planned"]["splits"] == ["random-1", "random-2"]


# --- real signals, real processes ------------------------------------------------------------------------------


# the generated ml-100k passes the data layer's release checks (as the generated_movielens fixture does here)
GENERATED = "from movielens_fakes import generated_releases\nreleases = generated_releases()\nreleases.__enter__()\n"


def start(
    args: list[str], cwd: Path, preamble: str = "", environment: dict[str, str] | None = None, nohup: bool = False
) -> subprocess.Popen:
    """``rbm-rec <args>`` in a new process (``python -c`` so that a test may set something up first), with
    ``environment`` added to ours; ``nohup`` starts it with SIGHUP ignored, as ``nohup`` does."""
    script = f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n{GENERATED}{preamble}\n"
    script += f"from recsys_rbm_cli.app import main\nsys.argv = ['rbm-rec', *{args!r}]\nmain()\n"
    variables = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(environment or {})}
    variables.pop("RBM_REC_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None,
    )


class Lines:
    """The stdout of a process, line by line, read on a thread so that waiting can time out."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.queue.put(line)

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.seen) < count:
            try:
                self.seen.append(self.queue.get(timeout=max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s; saw:\n{''.join(self.seen)}") from None


def wait_for_file(folder: Path, pattern: str, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {pattern} in {folder} within {timeout} s")


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """Exit code and stderr lines of a process, with its stdout drained by the reader thread."""
    code = process.wait(timeout=timeout)
    return code, process.stderr.read()


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert ADVICE.search(lines[0]), lines[0]
    return lines[0]


LONG_ML = ["--hidden", "4", "--batch-size", "10", "--device", "cpu", "--epochs", "100000", "--patience", "100000"]


def test_sigint_never_replaces_a_good_model(world: World, tmp_path: Path) -> None:
    """The issue's lost-work case: Ctrl-C in a run pointed (with --overwrite) at a good model."""
    good = tmp_path / "good.safetensors"
    good.write_bytes(world.user.read_bytes())
    before = snapshot(tmp_path)
    process = start(
        ["train", "movielens", "--data-dir", str(world.data), "-o", str(good), "--overwrite", *LONG_ML], tmp_path
    )
    Lines(process).wait_for("best, saved")
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130
    line = one_line(stderr)
    assert f"{good} was left unchanged, and the best model so far" in line and "good.partial.safetensors" in line
    after = snapshot(tmp_path)
    assert {path: digest for path, digest in after.items() if path in before} == before  # byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.partial.safetensors", "good.safetensors"]
    assert read_metadata(tmp_path / "good.partial.safetensors")["complete"] is False


def test_sigterm_is_handled_like_sigint_and_leaves_no_temporary_files(world: World, tmp_path: Path) -> None:
    target = tmp_path / "models" / "new.safetensors"
    process = start(["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML], tmp_path)
    Lines(process).wait_for("best, saved", count=2)
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process)
    assert code == 143
    assert f"interrupted; kept the best model so far in {target}" in one_line(stderr)
    assert [p.name for p in target.parent.iterdir()] == ["new.safetensors"]  # no .tmp, run file or lock
    metadata = read_metadata(target, "recommender-rbm")
    assert metadata["complete"] is False and metadata["best_epoch"] >= 2


def test_sigterm_during_mnist_training(world: World, tmp_path: Path) -> None:
    preamble = (
        "import recsys_rbm.data.mnist as mnist\n"
        "from mnist_fakes import fake_mnist_contents, files_for\n"
        "mnist.MNIST = files_for(fake_mnist_contents(120, 24), mirrors=('file:///nonexistent/',))\n"
    )
    args = ["train", "mnist", "--data-dir", str(world.mnist), "--hidden", "8", "--epochs", "100000"]
    args += ["--batch-size", "20", "--device", "cpu", "-o", "m.safetensors"]
    process = start(args, tmp_path, preamble)
    wait_for_file(tmp_path, ".m.run-*.safetensors")
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process)
    assert code == 143 and "saved the last finished epoch" in one_line(stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert read_metadata(tmp_path / "m.safetensors", "mnist-rbm")["complete"] is False


def test_sigint_during_evaluate_writes_the_finished_folds(world: World, tmp_path: Path) -> None:
    args = ["evaluate", "movielens", "--data-dir", str(world.data), "--folds", "u1", "--models"]
    args += ["global-mean,biases,rbm", "--json-out", "e.json", "--model-kind", "joint", "--mode", "user", *LONG_ML]
    process = start(args, tmp_path)
    Lines(process).wait_for("(2 of 3)")
    time.sleep(0.5)  # into the RBM's training
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130 and "interrupted after 2 of 3 folds; wrote those to e.json" in one_line(stderr)
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["complete"] is False and report["models"] == ["global mean", "user+item biases"]
    assert [p.name for p in tmp_path.iterdir()] == ["e.json"]


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(world: World, tmp_path: Path) -> None:
    target = tmp_path / "m.safetensors"
    first = start(["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML], tmp_path)
    try:
        Lines(first).wait_for("best, saved")
        second = CliRunner().invoke(
            app, ["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *TINY]
        )
        assert second.exit_code == 1
        assert f"another rbm-rec run (process {first.pid}) is writing {target}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        code, _ = finish(first)
    assert code == 143


def test_readers_never_see_a_torn_checkpoint_while_another_process_saves_it(world: World, tmp_path: Path) -> None:
    """The issue measured 70% failed reads with two files; one file replaced atomically must give none."""
    from recsys_rbm.io.checkpoint_files import read_verified

    target = tmp_path / "m.safetensors"
    target.write_bytes(world.user.read_bytes())
    writer = (
        "import torch\n"
        "from safetensors.torch import load_file\n"
        "from recsys_rbm.io.checkpoint import save_checkpoint\n"
        "from checkpoint_tools import stored_metadata\n"
        f"path = {str(target)!r}\n"
        "tensors, metadata = load_file(path), stored_metadata(__import__('pathlib').Path(path))\n"
        "for key in ('format', 'format_version', 'package_version', 'tensor_shapes'):\n"
        "    metadata.pop(key)\n"
        "for i in range(60):\n"
        "    metadata['history'] = [{'save': i}]\n"
        "    tensors['weights'] = tensors['weights'] + 1\n"
        "    save_checkpoint(path, tensors, metadata)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", writer], cwd=TESTS, env={**os.environ, "OMP_NUM_THREADS": "1"})
    reads, saves = 0, set()
    try:
        while process.poll() is None:
            _, metadata = read_verified(target, "recommender-rbm", load_file)  # the recommend path's reader
            saves.add(json.dumps(metadata["history"]))
            reads += 1
    finally:
        process.wait(timeout=60)
    assert process.returncode == 0 and reads > 20 and len(saves) > 5, (reads, len(saves))
    assert stored_metadata(target)["history"] == [{"save": 59}]


# --- hang-ups, repeated signals, signals at every phase, killed runs (real signals, real processes) ------------


def test_a_hang_up_during_training_keeps_the_best_epoch_and_leaves_no_lock(world: World, tmp_path: Path) -> None:
    """The terminal or SSH session closed: SIGHUP is an interruption like SIGINT and SIGTERM, exit 129."""
    target = tmp_path / "m.safetensors"
    process = start(["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML], tmp_path)
    Lines(process).wait_for("best, saved", count=2)
    process.send_signal(signal.SIGHUP)
    code, stderr = finish(process)
    assert code == 129
    assert f"interrupted; kept the best model so far in {target} (epoch" in one_line(stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no run file, temporary or lock
    metadata = read_metadata(target, "recommender-rbm")
    assert metadata["complete"] is False and metadata["best_epoch"] >= 2


def test_a_hang_up_under_nohup_is_ignored(world: World, tmp_path: Path) -> None:
    """``nohup rbm-rec train …`` keeps training when the terminal closes: an ignored SIGHUP stays ignored."""
    target = tmp_path / "m.safetensors"
    args = ["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML]
    process = start(args, tmp_path, nohup=True)
    lines = Lines(process)
    lines.wait_for("best, saved")
    process.send_signal(signal.SIGHUP)
    epochs = sum("epoch" in line for line in lines.seen)
    lines.wait_for("epoch", count=epochs + 2)  # it goes on training
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process)
    assert code == 143 and "interrupted; kept the best model so far" in one_line(stderr)


def test_signals_during_the_cleanup_and_the_exit_print_no_traceback(world: World, tmp_path: Path) -> None:
    """Ctrl-C pressed again and again (and SIGTERM and SIGHUP with it) while the first one's cleanup and the
    exit run: one line, the first signal's exit code, the best epoch kept, nothing left behind."""
    target = tmp_path / "m.safetensors"
    process = start(["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML], tmp_path)
    Lines(process).wait_for("best, saved")
    process.send_signal(signal.SIGINT)
    for number in [signal.SIGINT, signal.SIGTERM, signal.SIGHUP] * 20:  # over the next 0.6 s
        time.sleep(0.01)
        if process.poll() is not None:
            break
        process.send_signal(number)
    code, stderr = finish(process)
    assert code == 130, stderr
    assert "Exception ignored" not in stderr and "KeyboardInterrupt" not in stderr
    assert f"interrupted; kept the best model so far in {target}" in one_line(stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert read_metadata(target)["complete"] is False


SLOW_SAVE = """
import time
import recsys_rbm.io.checkpoint as checkpoint
real_save = checkpoint.save_file
def slow_save(*args, **kwargs):
    print("SAVING", flush=True)
    time.sleep(0.5)
    real_save(*args, **kwargs)
checkpoint.save_file = slow_save
"""


def test_a_hang_up_while_saving_lets_the_save_finish_first(world: World, tmp_path: Path) -> None:
    """The signal arrives in the middle of writing a checkpoint: the file is finished, then the run stops."""
    target = tmp_path / "m.safetensors"
    args = ["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML]
    process = start(args, tmp_path, SLOW_SAVE)
    Lines(process).wait_for("SAVING")
    process.send_signal(signal.SIGHUP)
    code, stderr = finish(process)
    assert code == 129 and f"kept the best model so far in {target} (epoch 1" in one_line(stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert read_metadata(target, "recommender-rbm")["best_epoch"] == 1  # whole, and verified on reading


def test_an_interruption_while_loading_the_data_leaves_nothing(world: World, tmp_path: Path) -> None:
    slow_load = (
        "import time\nimport recsys_rbm.data.movielens as movielens\nreal_load = movielens.load_movielens\n"
        "def slow_load(*args, **kwargs):\n    print('LOADING', flush=True)\n    time.sleep(30)\n"
        "movielens.load_movielens = slow_load\n"
    )
    args = ["train", "movielens", "--data-dir", str(world.data), "-o", "m.safetensors", *LONG_ML]
    process = start(args, tmp_path, slow_load)
    Lines(process).wait_for("LOADING")
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130 and "interrupted; every file is written whole or not at all" in one_line(stderr)
    assert list(tmp_path.iterdir()) == []  # no model, no lock


def test_a_hang_up_while_exporting_every_users_lists_writes_nothing(world: World, tmp_path: Path) -> None:
    slow_scores = (
        "import time\nfrom recsys_rbm.recommender.scorer import Scorer\n"
        "def slow(*args, **kwargs):\n    print('SCORING', flush=True)\n    time.sleep(30)\n"
        "Scorer.recommend = slow\n"
    )
    (tmp_path / "recs.csv").write_text("an old list\n")
    process = start(
        ["recommend", "-m", str(world.user), "--all-users", "-o", "recs.csv", "--overwrite"], tmp_path, slow_scores
    )
    Lines(process).wait_for("SCORING")
    process.send_signal(signal.SIGHUP)
    code, stderr = finish(process)
    assert code == 129 and "interrupted" in one_line(stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["recs.csv"] and (
        tmp_path / "recs.csv"
    ).read_text() == "an old list\n"


def test_what_a_killed_run_left_is_recognised_and_dealt_with_by_the_next_run(world: World, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the next run on the same output removes the lock and temporaries, keeps the
    killed run's best epoch as a .partial file, and says so in one notice."""
    target = tmp_path / "m.safetensors"
    process = start(["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *LONG_ML], tmp_path)
    Lines(process).wait_for("best, saved")
    process.kill()
    process.wait(timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".m.run-{process.pid}.safetensors", ".m.safetensors.lock"]
    (tmp_path / f".m.safetensors.{process.pid}.0badcafe.tmp").write_bytes(b"a save cut short")
    result = CliRunner().invoke(app, ["train", "movielens", "--data-dir", str(world.data), "-o", str(target), *TINY])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"an earlier run on {target} was killed (process {process.pid})" in notes[0]
    assert ".m.safetensors.lock" in notes[0] and "kept what it had saved as m.partial.safetensors" in notes[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.partial.safetensors", "m.safetensors"]
    assert read_metadata(tmp_path / "m.partial.safetensors")["complete"] is False


# --- locales and terminals: real processes for what an in-process run cannot change ------------------------------

LOCALES = {
    "posix-without-utf8": {"LC_ALL": "POSIX", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": ""},
    "ascii": {"PYTHONIOENCODING": "ascii"},
    "cp1252": {"PYTHONIOENCODING": "cp1252"},
    "latin-1": {"PYTHONIOENCODING": "latin-1"},
}


def run_rbm_rec(args: list[str], cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    variables = {**os.environ, "OMP_NUM_THREADS": "1", **environment}
    variables = {name: value for name, value in variables.items() if value != ""}
    variables.pop("RBM_REC_DEBUG", None)
    command = [sys.executable, "-c", "from recsys_rbm_cli.app import main; main()", *args]
    return subprocess.run(command, cwd=cwd, env=variables, capture_output=True, timeout=120)


@pytest.mark.parametrize("locale", LOCALES, ids=list(LOCALES))
def test_recommend_works_where_stdout_cannot_carry_its_symbols(world: World, tmp_path: Path, locale: str) -> None:
    result = run_rbm_rec(["recommend", "-m", str(world.user), "--user", "1", "--top", "3"], tmp_path, LOCALES[locale])
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode(errors="replace")
    encoding = "ascii" if locale in ("ascii", "posix-without-utf8") else locale
    text = result.stdout.decode(encoding)
    flat = " ".join(text.split())
    assert "Recommended for user 1" in text and ">=4*" in text and "Best rated by user 1" in text
    assert "P(picks it)*P(rates it >= 4 | picks it)" in flat or "P(picks it)·P(rates it >= 4 | picks it)" in flat
    table = [line for line in text.splitlines() if line.startswith(("+", "|"))]
    assert table and len({len(line) for line in table}) <= 2  # two tables at most, each aligned


def test_train_ratings_saves_and_sums_up_in_a_posix_locale(tmp_path: Path) -> None:
    """The issue's case: the model was saved, then the summary's '≥' ended the run with exit 1."""
    (tmp_path / "r.csv").write_text(table(grid(8, 8)))
    args = ["train", "ratings", "r.csv", "-o", "m.safetensors", "--test-fraction", "0.2", *TINY]
    result = run_rbm_rec(args, tmp_path, LOCALES["posix-without-utf8"])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    text = result.stdout.decode("ascii")
    assert "relevant: rated >= " in text and "saved" in text
    assert "Traceback" not in result.stderr.decode("ascii")
    assert read_metadata(tmp_path / "m.safetensors")["complete"] is True


def test_a_read_only_home_costs_no_warning_when_drawing(world: World, tmp_path: Path) -> None:
    environment = {"HOME": "/proc/self/fdinfo", "MPLCONFIGDIR": "", "XDG_CONFIG_HOME": "", "XDG_CACHE_HOME": ""}
    result = run_rbm_rec(["info", str(world.user), "--plot", "curve.png"], tmp_path, environment)
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode(errors="replace")
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")


# --- every command's normal output in odd encodings and terminals (in process) -------------------------------------

ODD_OUTPUTS = {
    "ascii": ("ascii", {}),
    "cp1252": ("cp1252", {}),
    "no-width": ("utf-8", {"COLUMNS": "0"}),
    "twenty-columns": ("utf-8", {"COLUMNS": "20"}),
}
EVERYDAY = {
    "recommend": ["recommend", "-m", "{user}", "--user", "1", "--top", "3"],
    "recommend-fold-in": ["recommend", "-m", "{user}", "--ratings", "{tmp}/mine.csv", "--top", "3"],
    "similar": ["similar", "-m", "{item}", "--movie", "les miserables", "--top", "3"],
    "explain": ["explain", "-m", "{user}", "--user", "1", "--movie", "Heat (1995)"],
    "anomalies": ["anomalies", "-m", "{user}", "--top", "3"],
    "imagine": ["imagine", "-m", "{user}", "--likes", "Misérables, Les (1995)", "--profiles", "2"],
    "info": ["info", "{user}"],
    "evaluate": [*EVALUATE, "--json-out", "{tmp}/e.json"],
    "train-ratings": ["train", "ratings", "{tmp}/r.csv", "-o", "{tmp}/m", *TINY],
}


def blocks_of_table_lines(text: str) -> list[list[str]]:
    """Runs of consecutive lines that are rows or rules of a drawn table (ASCII or box-drawing)."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line[:1] in ("+", "|", "┏", "┃", "┡", "│", "└"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


@pytest.mark.parametrize("output", ODD_OUTPUTS, ids=list(ODD_OUTPUTS))
@pytest.mark.parametrize("command", EVERYDAY, ids=list(EVERYDAY))
def test_every_command_prints_whole_aligned_output_in_odd_encodings_and_terminals(
    world: World, tmp_path: Path, command: str, output: str
) -> None:
    (tmp_path / "mine.csv").write_text("Star Wars (1977),5\nMisérables, Les (1995),4\n")
    (tmp_path / "r.csv").write_text(table(grid(8, 8)))
    values = {"tmp": str(tmp_path), "user": str(world.user), "item": str(world.item), "data": str(world.data)}
    charset, environment = ODD_OUTPUTS[output]
    result = CliRunner(charset=charset, env=environment).invoke(app, [a.format(**values) for a in EVERYDAY[command]])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "error:" not in result.stderr
    assert result.stdout.strip() and "\ufffd" not in result.stdout  # something shown, every character carried
    if charset == "ascii":
        assert result.stdout.isascii() and (command != "recommend" or ">=4*" in result.stdout)
    if environment:  # not a terminal, whatever COLUMNS says: every line whole, never cut to "…" nor wrapped
        assert "…" not in result.stdout and "..." not in result.stdout
    for block in blocks_of_table_lines(result.stdout):
        assert len({cell_len(line.rstrip()) for line in block}) == 1, "\n".join(block)  # columns aligned
