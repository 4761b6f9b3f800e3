"""``rbm-rec train movielens``: train the RBM recommender on a MovieLens release and save the best epoch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import train_app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import DataDirOption, OverwriteOption, console, one_line_errors, plural
from recsys_rbm_cli.movielens_options import (
    BatchSizeOption,
    CdScheduleOption,
    ConditionalOption,
    ConfigOption,
    Dataset,
    DatasetOption,
    DeviceOption,
    EpochsOption,
    HiddenOption,
    LearningRateOption,
    ModelKindOption,
    ModeOption,
    PatienceOption,
    SeedOption,
    default_output,
    recommender_config,
)
from recsys_rbm_cli.train_recommender import checkpoint_path, train_and_save

if TYPE_CHECKING:
    from recsys_rbm.data.movielens import MovieLensDataset
    from recsys_rbm.recommender.splits import Split

VALIDATION_FRACTION = 0.05  # of the training part, held out for early stopping (as splits.py's protocols)


class SplitName(StrEnum):
    u1 = "u1"
    u2 = "u2"
    u3 = "u3"
    u4 = "u4"
    u5 = "u5"
    ua = "ua"
    ub = "ub"
    random = "random"
    full = "full"


@train_app.command("movielens", cls=RbmRecCommand)
@one_line_errors
def train_movielens(
    dataset: DatasetOption = Dataset.ml_100k,
    split: Annotated[
        SplitName,
        typer.Option(
            "--split",
            help="full: every rating trains the model for use (no test set); u1 to u5, ua, ub: ml-100k's own files "
            "(<split>.base trains, <split>.test measures it); random: a seeded random 90/10 split. Each holds out "
            "5% of its training ratings for early stopping. Whatever the split, the saved model knows every rating "
            "(held-out ones join the users' profiles after training), so recommend never lists a rated movie.",
            case_sensitive=False,
        ),
    ] = SplitName.full,
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
    data_dir: DataDirOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Checkpoint path (one .safetensors file holding the settings, metrics and movie table too).",
            show_default="movielens-<dataset>.safetensors in the models folder ($RBM_REC_MODELS, else "
            "~/.local/share/rbm-rec/models)",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:
    """Train the RBM recommender on MovieLens and save its best epoch.

    The joint model (the default) learns, per user, which movies they pick (a Bernoulli unit per
    movie) and how they rate them (a softmax unit per rated movie) through one hidden layer; the
    ratings model (--model-kind ratings) is the RBM of Salakhutdinov, Mnih & Hinton (2007) over
    ratings alone. Both train by CD-T; after every epoch the progress shows the training and
    validation measures, and each new best epoch is saved at once to a file of the run's own beside
    --output, moved into place at the end. Training stops when the validation measure (NDCG@10 for
    the joint model, RMSE for the ratings model) has not improved for --patience epochs. An existing --output is never
    replaced without --overwrite; on Ctrl-C (or SIGTERM) the best model so far goes to --output
    only if that did not exist before, else it is kept beside it as <name>.partial.safetensors.
    The summary gives the best epoch, its validation measures beside a simple baseline's, the
    split's test metrics (RMSE and MAE, NDCG@10, precision and coverage) and the seconds per epoch,
    and warns when the model is worse than the baseline or was still improving. The checkpoint
    carries the movie titles, so 'rbm-rec recommend' and 'rbm-rec similar' need no data folder.

    Under torchrun (torchrun --nproc-per-node N -m recsys_rbm_cli train movielens ...) each process trains
    on its share of every batch and the gradients are summed: the model is one process's, up to rounding.
    Rank 0 alone prints, saves and evaluates.

    Example: rbm-rec train movielens --dataset ml-100k --split u1 --model-kind ratings
    """
    from dataclasses import replace

    from recsys_rbm_cli.mnist_options import download_progress
    from recsys_rbm_cli.processes import local_rank_zero_first, training_run

    from recsys_rbm.data.movielens import load_movielens
    from recsys_rbm.recommender.model import RBMRecommender

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
    split_name = split.value
    from recsys_rbm.data.paths import dataset_files
    from recsys_rbm.io.outputs import check_distinct

    target = checkpoint_path(output, default_output(dataset.value))
    check_distinct({"--output": target}, [("--config", config), *dataset_files(data_dir, (dataset.value,))])
    model = RBMRecommender(settings)  # resolves the device: a missing GPU is reported before any work
    with training_run(device, target, overwrite, default=output is None) as (
        run,
        parallel,
    ):  # output checked, locked before any work
        if parallel is not None:
            model = RBMRecommender(replace(settings, device=str(parallel.device)))  # cuda:LOCAL_RANK on GPUs
        downloads, on_download = download_progress(console)
        try:  # the display starts with the first download only (entering it with `with` would start it now)
            with local_rank_zero_first(parallel):
                data = load_movielens(dataset.value, data_dir, progress=on_download)
        finally:
            if downloads.live.is_started:  # stopping an unstarted display would print an empty line
                downloads.stop()
        chosen = make_split(data, split_name, settings.seed)
        ratings = data.ratings
        console.print(
            f"MovieLens {data.name}: {plural(len(ratings), 'rating')} by {plural(ratings.n_users, 'user')} of "
            f"{plural(ratings.n_items, 'movie')}, ratings {', '.join(f'{v:g}' for v in ratings.rating_values)} "
            f"(K = {ratings.n_levels}).",
            highlight=False,
        )
        console.print(
            f"Split {chosen.name}: {chosen.description}; {len(chosen.train):,} training, "
            f"{len(chosen.validation):,} validation, {len(chosen.test):,} test ratings.",
            highlight=False,
        )
        train_and_save(
            model,
            chosen,
            run,
            checkpoint_metadata(data),
            parallel,
            source=f"MovieLens {data.name}",
            validation_fraction=VALIDATION_FRACTION,
        )


def make_split(data: MovieLensDataset, name: str, seed: int) -> Split:
    """The split ``name`` of the loaded release, each with a seeded validation carve-out of its training part."""
    from recsys_rbm.recommender.splits import canonical_split, full_split, random_split

    if name == "random":
        return random_split(data.ratings, 0, validation_fraction=VALIDATION_FRACTION, seed=seed)
    if name == "full":
        return full_split(data.ratings, VALIDATION_FRACTION, seed)
    return canonical_split(name, data, validation_fraction=VALIDATION_FRACTION, seed=seed)


def checkpoint_metadata(data: MovieLensDataset) -> dict[str, Any]:
    """What the checkpoint's metadata records of the data (the split, metrics and model fields are added by the run)."""
    return {
        "dataset": {
            "name": data.name,
            "fingerprint": data.fingerprint,
            "ratings": len(data.ratings),
            "users": data.ratings.n_users,
            "movies": data.ratings.n_items,
        },
        "movies": data.movies.to_dict(),  # titles, years, genres: recommend needs no data folder
    }
