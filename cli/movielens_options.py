"""Options and helpers shared by the MovieLens commands (train, evaluate, recommend, similar).

Only the standard library, Typer and rich at import time: ``rbm-rec recommend`` imports this
module and must start fast (no torch, numpy or polars here).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from recsys_rbm_cli.common import DeviceOption as CommonDeviceOption
from recsys_rbm_cli.common import hidden_units_check

from recsys_rbm.errors import ConfigError
from recsys_rbm.io.limits import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_HIDDEN, MAX_SEED, MAX_TOP
from recsys_rbm.recommender.config import PRESETS, RecommenderConfig  # light: dataclasses only

DEFAULTS = RecommenderConfig()  # only for the defaults shown in --help; the library is the source of truth


def per_model(name: str) -> str:
    """A default that depends on the model, as --help shows it: ``200 (joint), 100 (ratings)``."""
    return ", ".join(f"{PRESETS[model][name]} ({model})" for model in PRESETS)


MODELS_HELP = "$RBM_REC_MODELS, else ~/.local/share/rbm-rec/models"  # recsys_rbm.data.paths.models_dir
CONFIG_TABLE = "recommender"  # the TOML table --config reads


class Dataset(StrEnum):
    """The MovieLens releases (the keys of ``recsys_rbm.data.releases.RELEASES``; a test keeps them equal)."""

    ml_100k = "ml-100k"
    ml_1m = "ml-1m"
    ml_10m = "ml-10m"
    ml_20m = "ml-20m"
    ml_25m = "ml-25m"
    ml_32m = "ml-32m"
    ml_latest_small = "ml-latest-small"


class ModelKind(StrEnum):
    joint = "joint"
    ratings = "ratings"


class Mode(StrEnum):
    user = "user"
    item = "item"


class Score(StrEnum):
    p_liked = "p_liked"
    p_interacted = "p_interacted"
    p_high = "p_high"
    expected = "expected"


def default_output(dataset: str) -> Path:
    """Where ``train movielens`` saves without --output: the models folder, whatever the working folder."""
    from recsys_rbm.data.paths import models_dir

    return models_dir() / f"movielens-{dataset}.safetensors"


def model_path(model: Path | None) -> Path:
    """The --model to read: as given, else the default model (see :func:`recsys_rbm.data.paths.default_model`)."""
    from recsys_rbm.data.paths import default_model

    return model if model is not None else default_model()


DatasetOption = Annotated[Dataset, typer.Option("--dataset", help="MovieLens release.", case_sensitive=False)]
ModelKindOption = Annotated[
    ModelKind | None,
    typer.Option(
        "--model-kind",
        help="joint: one RBM over which items each user picks and how they rate them (ranks best; implicit data "
        "too); ratings: the RBM of Salakhutdinov, Mnih & Hinton over ratings alone (rates best).",
        show_default="joint",
        case_sensitive=False,
    ),
]
ModeOption = Annotated[
    Mode | None,
    typer.Option(
        "--mode",
        help="user: each user is a case (needed to fold in new users with 'recommend --ratings'); item: each "
        "movie is a case (the ratings model's more accurate I-RBM).",
        show_default=per_model("mode"),
        case_sensitive=False,
    ),
]
HiddenOption = Annotated[
    int | None,
    typer.Option(
        "--hidden",
        min=1,
        callback=hidden_units_check(None),
        help=f"Hidden units (at most {MAX_HIDDEN:,}).",
        show_default=per_model("hidden"),
    ),
]
EpochsOption = Annotated[
    int | None,
    typer.Option(
        "--epochs",
        min=1,
        max=MAX_EPOCHS,
        help="Most passes over the training cases (early stopping may end sooner).",
        show_default=per_model("epochs"),
    ),
]
CdScheduleOption = Annotated[
    str | None,
    typer.Option(
        "--cd-schedule",
        help="Gibbs steps T of CD-T by epoch: comma-separated EPOCH:T pairs, epochs counted from 0 "
        "(T rises as training goes on), or one number for a fixed T.",
        show_default=",".join(f"{epoch}:{steps}" for epoch, steps in DEFAULTS.cd_schedule),
    ),
]
ConditionalOption = Annotated[
    bool | None,
    typer.Option(
        "--conditional/--no-conditional",
        help="The paper's conditional RBM: which units a case rated in training also feeds the hidden units "
        "(never test or validation ratings).",
        show_default=", ".join(
            f"{'--conditional' if PRESETS[m]['conditional'] else '--no-conditional'} ({m})" for m in PRESETS
        ),
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        max=MAX_BATCH_SIZE,
        help="Cases per mini-batch. Unset, at most a fifth of the training cases, so a small table still gets "
        "several updates per epoch.",
        show_default=per_model("batch_size"),
    ),
]
LearningRateOption = Annotated[
    float | None,
    typer.Option("--learning-rate", min=0.0, help="Step per mini-batch.", show_default=per_model("learning_rate")),
]
PatienceOption = Annotated[
    int | None,
    typer.Option(
        "--patience",
        min=1,
        max=MAX_EPOCHS,
        help="Stop after this many epochs without a better validation measure (NDCG@10 for the joint model, "
        "RMSE for the ratings model).",
        show_default=per_model("patience"),
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option(
        "--seed",
        min=0,
        max=MAX_SEED,
        help="The one seed: validation carve-out, initialisation, batches, sampling (0 to 2**63-1).",
        show_default=str(DEFAULTS.seed),
    ),
]
DeviceOption = CommonDeviceOption
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=f"TOML file whose \\[{CONFIG_TABLE}] table holds model settings (the fields of "
        "recsys_rbm.recommender.config.RecommenderConfig); options given on the command line override it.",
        show_default=False,
    ),
]
ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help="Checkpoint written by 'rbm-rec train movielens' or 'rbm-rec train ratings'.",
        show_default=f"movielens-ml-100k.safetensors in the models folder ({MODELS_HELP})",
    ),
]
TopOption = Annotated[int, typer.Option("--top", "-n", min=1, max=MAX_TOP, help="How many movies to list.")]
MinRatingsOption = Annotated[
    int,
    typer.Option(
        "--min-ratings",
        min=1,
        help="List only movies with at least this many training ratings (a movie rated once or twice can get an "
        "extreme prediction).",
    ),
]


def parse_cd_schedule(text: str) -> list[list[int]]:
    """``"0:1,15:3"`` -> ``[[0, 1], [15, 3]]``; ``"5"`` -> ``[[0, 5]]``. Range checks are the config's."""
    text = text.strip()
    try:
        if ":" not in text:
            return [[0, int(text)]]
        pairs = []
        for part in text.split(","):
            epoch, _, steps = part.partition(":")
            pairs.append([int(epoch), int(steps)])
        return pairs
    except ValueError:
        raise ConfigError(
            f"--cd-schedule {text!r} is not a list of EPOCH:T pairs; give pairs such as 0:1,15:3,25:5,35:9 "
            "(or one number)"
        ) from None


def read_config_table(path: Path) -> dict[str, Any]:
    """The ``[recommender]`` table of a TOML file; anything else in the file is an error (see
    :func:`recsys_rbm.train.config.config_table`)."""
    from recsys_rbm.train.config import config_table, read_toml

    return config_table(path, read_toml(path), CONFIG_TABLE, RecommenderConfig)


OPTION_OF_FIELD = {  # the RecommenderConfig fields the train and evaluate commands set from options
    "model": "--model-kind",
    "mode": "--mode",
    "n_hidden": "--hidden",
    "epochs": "--epochs",
    "conditional": "--conditional",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "patience": "--patience",
    "seed": "--seed",
    "device": "--device",
    "cd_schedule": "--cd-schedule",
}


def recommender_config(config_file: Path | None, *, cd_schedule: str | None, **options: Any) -> RecommenderConfig:
    """The model settings: defaults (device auto), then the TOML file's table, then the options given (a bad
    one is a usage error naming its option: see :func:`recsys_rbm_cli.common.options_named`)."""
    from recsys_rbm_cli.common import options_named

    from recsys_rbm.train.config import config_from_dict

    values: dict[str, Any] = {"device": "auto"}
    if config_file is not None:
        values |= read_config_table(config_file)
    given = {
        name: str(value) if isinstance(value, StrEnum) else value
        for name, value in options.items()
        if value is not None
    }
    flags = {name: OPTION_OF_FIELD[name] for name in [*given, "cd_schedule"] if name in OPTION_OF_FIELD}
    with options_named(flags if cd_schedule is not None else {k: v for k, v in flags.items() if k != "cd_schedule"}):
        if cd_schedule is not None:
            given["cd_schedule"] = parse_cd_schedule(cd_schedule)
        return config_from_dict(RecommenderConfig, values | given)


def describe_schedule(config: RecommenderConfig) -> str:
    """``CD-1 from epoch 1, CD-3 from epoch 16 …`` (1-based epochs, as the progress display counts).

    Entries past the last epoch are left out.
    """
    steps = [(first, t) for first, t in config.cd_schedule if first < config.epochs]
    return ", ".join(f"CD-{t} from epoch {first + 1}" for first, t in steps)


def score_text(score: float) -> str:
    """A ranking score as every list prints it: four decimals (``0.0500`` beside ``0.0745``, never ``0.05``)."""
    return f"{score:.4f}"


def movie_label(title: str, year: int | None) -> str:
    """``title (year)``: MovieLens titles usually end in their year already; add it only where missing."""
    if year and not title.rstrip().endswith(")"):
        return f"{title} ({year})"
    return title
