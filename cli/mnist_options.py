"""Options and helpers shared by the MNIST commands (``train mnist`` and ``mnist-figures``)."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from recsys_rbm.io.limits import MAX_BATCH_SIZE, MAX_CD_STEPS, MAX_EPOCHS, MAX_SEED
from recsys_rbm.train.config import TrainConfig, load_toml

DEFAULTS = TrainConfig()  # only for the defaults shown in --help; the library is the source of truth


class Binarization(StrEnum):
    stochastic = "stochastic"
    threshold = "threshold"


BinarizationOption = Annotated[
    Binarization,
    typer.Option(
        "--binarize",
        help="stochastic: each pixel is 1 with probability equal to its intensity (drawn once from the seed); "
        "threshold: 1 where the intensity is at least 0.5.",
        case_sensitive=False,
    ),
]
EpochsOption = Annotated[
    int | None,
    typer.Option(
        "--epochs",
        min=1,
        max=MAX_EPOCHS,
        help="Passes over the 50,000 training images.",
        show_default=str(DEFAULTS.epochs),
    ),
]
CdKOption = Annotated[
    int | None,
    typer.Option(
        "--cd-k",
        min=1,
        max=MAX_CD_STEPS,
        help="Gibbs steps in the negative phase (CD-k).",
        show_default=str(DEFAULTS.cd_k),
    ),
]
PcdOption = Annotated[
    bool | None,
    typer.Option(
        "--pcd/--no-pcd",
        help="Persistent chains (PCD-k) instead of chains restarted at the data.",
        show_default="--no-pcd",
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        "--batch-size", min=1, max=MAX_BATCH_SIZE, help="Images per mini-batch.", show_default=str(DEFAULTS.batch_size)
    ),
]
CentringOption = Annotated[
    bool | None,
    typer.Option(
        "--centring/--no-centring",
        help="A centred RBM: each step taken about running means of the visible and hidden units (Melchior et al. "
        "2016); the model and its checkpoint stay an ordinary RBM. Not under torchrun.",
        show_default="--no-centring",
    ),
]
LearningRateOption = Annotated[
    float | None,
    typer.Option(
        "--learning-rate", help="Step size on the batch-mean gradient.", show_default=str(DEFAULTS.learning_rate)
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option(
        "--seed",
        min=0,
        max=MAX_SEED,
        help="The one seed of the run: binarization, initialisation, batches, sampling (0 to 2**63-1).",
        show_default=str(DEFAULTS.seed),
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file whose \\[train] table holds training settings "
        "(the fields of recsys_rbm.train.config.TrainConfig); "
        "options given on the command line override it.",
        show_default=False,
    ),
]


OPTION_OF_FIELD = {  # the TrainConfig fields the MNIST commands set from options, and those options
    "epochs": "--epochs",
    "cd_k": "--cd-k",
    "persistent": "--pcd",
    "centring": "--centring",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "seed": "--seed",
}


def train_config(config_file: Path | None, defaults: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """The training settings: the TOML file's ``[train]`` table (over TrainConfig's defaults) if one is
    given, else the command's ``defaults``; then the options given on the command line (a bad one is a
    usage error naming its option: see :func:`recsys_rbm_cli.common.options_named`)."""
    from recsys_rbm_cli.common import options_named

    base = defaults or TrainConfig()
    if config_file is not None:
        base = load_toml(config_file, TrainConfig, table="train")
    given = {name: value for name, value in overrides.items() if value is not None}
    with options_named({name: OPTION_OF_FIELD[name] for name in given if name in OPTION_OF_FIELD}):
        return dataclasses.replace(base, **given)


def download_progress(console: Console):
    """A rich progress display for dataset downloads and the callback that feeds it.

    The display starts with the first download (so nothing shows when the files are present); where the
    console is not a terminal it is a line every few seconds (:class:`~recsys_rbm_cli.plain_progress.PlainProgress`).
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    if console.is_terminal:
        progress = Progress(
            TextColumn("downloading {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        )
    else:  # a file or a log: a line now and then (bytes so far / of all)
        from recsys_rbm_cli.common import PLAIN_PROGRESS_SECONDS
        from recsys_rbm_cli.plain_progress import PlainProgress

        progress = PlainProgress(console=console, every=PLAIN_PROGRESS_SECONDS, prefix="downloading ")
    tasks: dict[str, Any] = {}

    def callback(done: int, total: int | None, name: str) -> None:
        if name not in tasks:
            progress.start()
            tasks[name] = progress.add_task(name, total=total)
        progress.update(tasks[name], completed=done, total=total)

    return progress, callback
