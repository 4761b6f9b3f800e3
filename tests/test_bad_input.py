"""The catalogue of bad inputs and faults: what a new user (or a crash, or a second process) throws at
the command line, and what must come back.

Every case asserts the same contract: the exit code; exactly one line on stderr, starting
``error:``, that names the problem and says what to do; no traceback anywhere; and every file that
existed before the command (in the case's own folder and in the shared data and models) is
unchanged, byte for byte, with no file added. The cases run through Typer's CliRunner in one
process; interruptions and concurrent runs use real signals and real processes at the end.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import queue
import re
import signal
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
from safetensors.numpy import load_file, save_file
from test_cli_movielens import TINY, write_tiny_100k
from typer.testing import CliRunner

import recsys_rbm.data.mnist as mnist
from recsys_rbm.checkpoint_files import read_metadata, sidecar_path

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
    install_fake_mnist(root / "mnist-data", n_train=120, n_test=24)
    return World(root, data, root / "mnist-data", root / "user.safetensors", root / "item.safetensors")


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
    args: list[str]  # {tmp}, {data}, {mnist}, {user}, {item} are filled in
    code: int
    phrase: str  # must appear in the one stderr line
    setup: Callable[[Env], None] | None = None
    mnist: bool = False  # needs the generated MNIST's checksum table


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
    from recsys_rbm.checkpoint import save_rbm
    from recsys_rbm.model import RBM
    from recsys_rbm.runtime import make_generator
    from recsys_rbm.units import BernoulliUnits

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
    from recsys_rbm.mnist_exercise import (
        EXERCISE_TRAIN_CONFIG,
        checkpoint_name,
        load_binarized_mnist,
        train_mnist_rbm,
    )

    config = dataclasses.replace(EXERCISE_TRAIN_CONFIG, epochs=1, batch_size=20)
    data = load_binarized_mnist(env.world.mnist, "stochastic", 0, download=False)
    path = env.tmp / "runs" / checkpoint_name(3, config, "stochastic")
    train_mnist_rbm(data, 3, config, "cpu", path)


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
              patched("recsys_rbm.checkpoint.save_file", raising(OSError(errno.ENOSPC, "No space left", "m"))))),
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
    Case("cd-steps-beyond-any-use", "bounds", [*TRAIN_ML, "--cd-schedule", "0:99999999999999999999"], 1,
         "cd_schedule steps k must lie in 1..1,000"),
    Case("cd-schedule-epoch-beyond-any-use", "bounds", [*TRAIN_ML, "--cd-schedule", "0:1,99999999999:3"], 1,
         "cd_schedule epochs must be at most 100,000"),
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
    Case("learning-rate-infinite", "bounds", [*TRAIN_ML, "--learning-rate", "inf"], 1,
         "learning_rate must be positive and finite, got inf"),
    Case("mnist-learning-rate-negative", "bounds", [*TRAIN_MNIST, "--learning-rate", "-1"], 1,
         "learning_rate must be positive and finite"),
    Case("more-memory-than-the-machine-has", "bounds", [*TRAIN_ML, "-o", "{tmp}/m.safetensors"], 1,
         "of memory, but only 10 bytes is available; use fewer --hidden units",
         patched("recsys_rbm.resources.available_memory", lambda: 10)),
    Case("mnist-more-memory-than-the-machine-has", "bounds", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors"], 1,
         "training an RBM with 3 hidden units needs about",
         patched("recsys_rbm.resources.available_memory", lambda: 10), mnist=True),
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
         "n_hidden must be a whole number", file("c.toml", "[recommender]\nn_hidden = 'many'\n")),
    Case("unknown-command", "usage", ["train", "imagenet"], 2, "No such command 'imagenet'"),
    Case("unknown-global-option", "usage", ["--verbose", "train"], 2, "No such option: --verbose"),
    Case("unknown-command-option", "usage", [*TRAIN_ML, "--hiden", "5"], 2, "No such option: --hiden"),
    Case("recommend-needs-one-of-user-or-ratings", "usage", ["recommend", "--model", "{user}"], 2,
         "give one of --user ID (training users), --users FILE, --all-users, or --ratings FILE"),
    Case("unknown-dataset", "usage", [*TRAIN_ML, "--dataset", "ml-2k"], 2, "'--dataset'"),
    Case("missing-mnist-offline", "usage", [*TRAIN_MNIST, "-o", "{tmp}/m.safetensors", "--data-dir", NOWHERE], 1,
         "to work offline, put the four files"),
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
        values |= {"user": str(world.user), "item": str(world.item)}
        args = [arg.format(**values) for arg in case.args]
        result = CliRunner().invoke(app, args)
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
    assert line.startswith("error: ") and case.phrase in line, line
    assert ADVICE.search(line), f"the line does not say what to do: {line}"
    assert after == before, "files changed: " + ", ".join(sorted(set(after.items()) ^ set(before.items())))


def test_the_catalogue_covers_every_category_with_at_least_60_cases() -> None:
    categories = {case.category for case in CASES}
    assert len(CASES) >= 60 and len({case.id for case in CASES}) == len(CASES)
    assert categories == {"lost work", "traceback", "bounds", "fail fast", "integrity", "strict input", "usage"}


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


def start(args: list[str], cwd: Path, preamble: str = "") -> subprocess.Popen:
    """``rbm-rec <args>`` in a new process (``python -c`` so that a test may set something up first)."""
    script = f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n{GENERATED}{preamble}\n"
    script += f"from recsys_rbm_cli.app import main\nsys.argv = ['rbm-rec', *{args!r}]\nmain()\n"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    environment.pop("RBM_REC_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
    from recsys_rbm.checkpoint_files import read_verified

    target = tmp_path / "m.safetensors"
    target.write_bytes(world.user.read_bytes())
    writer = (
        "import torch\n"
        "from safetensors.torch import load_file\n"
        "from recsys_rbm.checkpoint import save_checkpoint\n"
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
