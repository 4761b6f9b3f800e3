"""``rbm-rec train ratings PATH``: train the RBM recommender on anyone's ratings table and save the best epoch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import train_app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import OverwriteOption, console, one_line_errors, plural
from recsys_rbm_cli.movielens_options import (
    BatchSizeOption,
    CdScheduleOption,
    ConditionalOption,
    ConfigOption,
    DeviceOption,
    EpochsOption,
    HiddenOption,
    LearningRateOption,
    ModelKindOption,
    ModeOption,
    PatienceOption,
    SeedOption,
    recommender_config,
)
from recsys_rbm_cli.train_recommender import checkpoint_path, train_and_save

if TYPE_CHECKING:
    from recsys_rbm.data.movies import Movies
    from recsys_rbm.data.tables import RatingsTable

VALIDATION_FRACTION = 0.05  # of the training part, held out for early stopping (as train movielens --split random)


class Duplicates(StrEnum):
    error = "error"
    last = "last"


_EXAMPLES = {
    "user id": "userId, user_id, user",
    "item id": "movieId, itemId, item, movie",
    "rating": "rating, score, stars; none: implicit feedback",
    "time": "timestamp, time, date; optional",
}


def _column(flag: str, role: str) -> Any:
    """A column-naming option."""
    return typer.Option(flag, help=f"The {role} column (default: recognised by name, e.g. {_EXAMPLES[role]}).")


@train_app.command("ratings", cls=RbmRecCommand)
@one_line_errors
def train_ratings(
    path: Annotated[
        Path,
        typer.Argument(
            help="Ratings table: CSV, TSV (delimiter sniffed; a header line naming the columns) or Parquet; "
            "MovieLens's u.data and ratings.dat are recognised without a header.",
            show_default=False,
        ),
    ],
    user_col: Annotated[str | None, _column("--user-col", "user id")] = None,
    item_col: Annotated[str | None, _column("--item-col", "item id")] = None,
    rating_col: Annotated[str | None, _column("--rating-col", "rating")] = None,
    time_col: Annotated[str | None, _column("--time-col", "time")] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="Item table with titles (and genres where present): an id column (the --item-col name, or movieId, "
            "itemId, item or id), a title column, optionally genres ('Action|Comedy'). The checkpoint carries them, "
            "so recommend and similar show titles.",
            show_default=False,
        ),
    ] = None,
    items_id_col: Annotated[
        str | None,
        typer.Option(
            "--items-id-col",
            help="The item id column of --items (default: the --item-col name when --items has that column, else "
            "recognised by name: movieId, itemId, item or id).",
            show_default=False,
        ),
    ] = None,
    implicit: Annotated[
        bool,
        typer.Option(
            "--implicit", help="Implicit feedback: every row is an interaction (a 1), whatever its rating column."
        ),
    ] = False,
    scale: Annotated[
        str | None,
        typer.Option(
            "--scale",
            help="The rating scale, LOW:HIGH[:STEP] or a list: 1:5, 0.5:5:0.5, 1,2,3,4,5. Ratings off it are "
            "errors. Default: inferred from the data (and shown).",
            show_default=False,
        ),
    ] = None,
    duplicates: Annotated[
        Duplicates,
        typer.Option(
            "--duplicates",
            help="A (user, item) pair rated twice: error names every such line; last keeps the last one.",
            case_sensitive=False,
        ),
    ] = Duplicates.error,
    test_fraction: Annotated[
        float,
        typer.Option(
            "--test-fraction",
            min=0.0,
            max=0.9,
            help="Hold out this seeded random share of the ratings to measure the model (test RMSE, NDCG@10 and "
            "more in the summary). Default 0: every rating trains the model but the 5% early stopping needs. "
            "Held-out ratings join the users' profiles after the measurement, so recommend never lists them.",
        ),
    ] = 0.0,
    model_kind: ModelKindOption = None,
    mode: ModeOption = None,
    hidden: HiddenOption = None,
    epochs: EpochsOption = None,
    cd_schedule: CdScheduleOption = None,
    conditional: ConditionalOption = None,
    batch_size: BatchSizeOption = None,
    learning_rate: LearningRateOption = None,
    patience: PatienceOption = None,
    seed: SeedOption = None,
    device: DeviceOption = "auto",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Checkpoint path (one .safetensors file holding the settings, metrics, what was read, titles).",
            show_default="ratings-<file name>.safetensors in the models folder ($RBM_REC_MODELS, else "
            "~/.local/share/rbm-rec/models)",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:
    """Train the RBM recommender on your own ratings table and save its best epoch.

    Reads the table (columns picked by name), shows what it read (ratings, users, items, the rating
    scale, implicit or not), holds out a seeded random 5% of the ratings for early stopping (and,
    with --test-fraction, a share to measure the model), then trains and saves exactly as 'rbm-rec
    train movielens' does (an existing --output is replaced only with --overwrite). The saved model
    knows every rating of the table: held-out ones join the users' profiles once training is done.
    A table without a rating column (or with --implicit) is implicit feedback: each row is one
    interaction; a count column (plays, clicks) is not a rating, so leave it unnamed. Every bad
    row is reported as file:line in one line.

    Under torchrun (torchrun --nproc-per-node N -m recsys_rbm_cli train ratings ...) each process trains on
    its share of every batch, as 'train movielens' does.

    Example: rbm-rec train ratings my-ratings.csv --user-col customer --item-col product --scale 1:5
    """
    from dataclasses import replace

    from recsys_rbm_cli.processes import training_run

    from recsys_rbm.data.tables import read_items_table, read_ratings_table
    from recsys_rbm.recommender.adequacy import check_rating_column
    from recsys_rbm.recommender.model import RBMRecommender
    from recsys_rbm.recommender.splits import full_split, random_split

    settings = recommender_config(
        config,
        cd_schedule=cd_schedule,
        kind=model_kind,
        mode=mode,
        hidden=hidden,
        epochs=epochs,
        conditional=conditional,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
    )
    from recsys_rbm.data.paths import models_dir
    from recsys_rbm.io.outputs import check_distinct

    target = checkpoint_path(output, models_dir() / f"ratings-{path.stem}.safetensors")
    check_distinct({"--output": target}, {"the ratings table": path, "--items": items, "--config": config})
    model = RBMRecommender(settings)  # resolves the device: a missing GPU is reported before any work
    with training_run(device, target, overwrite, default=output is None) as (
        run,
        parallel,
    ):  # output checked, locked before any work
        if parallel is not None:
            model = RBMRecommender(replace(settings, device=str(parallel.device)))  # cuda:LOCAL_RANK on GPUs
        table = read_ratings_table(
            path,
            user_col=user_col,
            item_col=item_col,
            rating_col=rating_col,
            time_col=time_col,
            implicit=implicit,
            scale=scale,
            duplicates=duplicates.value,
        )
        check_rating_column(table, implicit)
        show_table(table)
        movies = None
        if items is not None:
            movies = read_items_table(
                items,
                like=table.ratings.item_ids,
                id_col=items_id_col,
                prefer_id=table.columns.get("item"),
                id_option="--items-id-col",
            )
        if movies is not None:
            known = int(movies.contains(table.ratings.item_ids.raw_ids).sum())
            console.print(
                f"Items {items}: titles for {known:,} of the {plural(table.ratings.n_items, 'item')} rated.",
                highlight=False,
            )
        if test_fraction > 0:
            split = random_split(
                table.ratings,
                0,
                test_fraction=test_fraction,
                validation_fraction=VALIDATION_FRACTION,
                seed=settings.seed,
            )
        else:
            split = full_split(table.ratings, VALIDATION_FRACTION, settings.seed)
        console.print(
            f"Split {split.name}: {split.description}; {len(split.train):,} training, "
            f"{len(split.validation):,} validation, {len(split.test):,} test ratings.",
            highlight=False,
        )
        train_and_save(
            model,
            split,
            run,
            checkpoint_metadata(table, movies),
            parallel,
            source=str(path),
            validation_fraction=VALIDATION_FRACTION,
        )


def show_table(table: RatingsTable) -> None:
    """What was read, in a few lines: source, counts, id types, columns, the scale, anything dropped or ignored."""
    r = table.ratings
    used = ", ".join(f"{role} {name!r}" for role, name in table.columns.items() if name is not None)
    console.print(
        f"Read {table.source} ({table.format}): {plural(len(r), 'rating')} by {plural(r.n_users, 'user')} of "
        f"{plural(r.n_items, 'item')} "
        f"({r.user_ids.id_type} user ids, {r.item_ids.id_type} item ids); columns {used}.",
        highlight=False,
    )
    kind = "implicit feedback" if r.is_implicit else "explicit ratings"
    console.print(f"Ratings: {kind}, {r.scale.describe()}.", highlight=False)
    if table.dropped_repeats:
        console.print(f"Dropped {table.dropped_repeats:,} repeated (user, item) rows.", highlight=False)
    for note in table.notes:
        console.print(f"Note: {note}.", highlight=False)


def checkpoint_metadata(table: RatingsTable, movies: Movies | None) -> dict[str, Any]:
    """What the checkpoint's metadata records of the data (the split, metrics and model fields are added by the run)."""
    metadata: dict[str, Any] = {"dataset": {"name": f"ratings:{Path(table.source).name}", **table.summary()}}
    if movies is not None:
        metadata["movies"] = movies.to_dict()  # titles, years, genres: recommend needs no data folder
    return metadata
