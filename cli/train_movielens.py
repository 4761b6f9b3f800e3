"""``rbm-rec train movielens``: train the RBM recommender on a MovieLens release and save the best epoch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import train_app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import DataDirOption, OverwriteOption, console, fail, one_line_errors, progress_bar
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
    ModeOption,
    PatienceOption,
    SeedOption,
    default_output,
    describe_schedule,
    recommender_config,
)

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
        SplitName | None,
        typer.Option(
            "--split",
            help="u1…u5, ua, ub: ml-100k's own files (<split>.base trains, <split>.test tests); random: a seeded "
            "random 90/10 split of all ratings; full: every rating trains (no test set). Each holds out 5% of "
            "its training ratings for validation (early stopping).",
            show_default="u1 for ml-100k, else random",
            case_sensitive=False,
        ),
    ] = None,
    mode: ModeOption = None,
    hidden: HiddenOption = None,
    epochs: EpochsOption = None,
    cd_schedule: CdScheduleOption = None,
    conditional: ConditionalOption = None,
    batch_size: BatchSizeOption = None,
    learning_rate: LearningRateOption = None,
    patience: PatienceOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    data_dir: DataDirOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Checkpoint path (one .safetensors file holding the settings, metrics and movie table too).",
            show_default="runs/movielens-<dataset>.safetensors",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:
    """Train the RBM recommender (Salakhutdinov, Mnih & Hinton 2007) on MovieLens and save its best epoch.

    Softmax visible units over the rated movies only, trained by CD-T with T rising; after every
    epoch the progress shows the training and validation RMSE, and each new best epoch is saved at
    once to a file of the run's own beside --output, moved into place at the end. Training stops
    when the validation RMSE has not improved for --patience epochs. An existing --output is never
    replaced without --overwrite; on Ctrl-C (or SIGTERM) the best model so far goes to --output
    only if that did not exist before, else it is kept beside it as <name>.partial.safetensors.
    The summary gives the best epoch, its validation RMSE, the RMSE and MAE on the split's test
    set, and the seconds per epoch. The checkpoint carries the movie titles, so 'rbm-rec recommend'
    and 'rbm-rec similar' need no data folder.

    Example: rbm-rec train movielens --dataset ml-100k --split u1 --mode item --hidden 100
    """
    from recsys_rbm_cli.mnist_options import download_progress

    from recsys_rbm.checkpoint_files import tensor_path
    from recsys_rbm.data.movielens import load_movielens
    from recsys_rbm.outputs import RunOutput
    from recsys_rbm.recommender.model import RBMRecommender
    from recsys_rbm.resources import check_recommender_memory
    from recsys_rbm.signals import deferred_interrupts

    settings = recommender_config(
        config,
        cd_schedule=cd_schedule,
        mode=mode,
        n_hidden=hidden,
        epochs=epochs,
        conditional=conditional,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
    )
    split_name = split.value if split is not None else ("u1" if dataset is Dataset.ml_100k else "random")
    target = tensor_path(output if output is not None else default_output(dataset.value))
    model = RBMRecommender(settings)  # resolves the device: a missing GPU is reported before any work
    with RunOutput(target, overwrite=overwrite) as run:  # checked and locked before any work
        downloads, on_download = download_progress(console)
        try:  # the display starts with the first download only (entering it with `with` would start it now)
            data = load_movielens(dataset.value, data_dir, progress=on_download)
        finally:
            if downloads.live.is_started:  # stopping an unstarted display would print an empty line
                downloads.stop()
        chosen = make_split(data, split_name, settings.seed)
        ratings = data.ratings
        check_recommender_memory(settings, ratings.n_users, ratings.n_items, ratings.n_levels)
        console.print(
            f"MovieLens {data.name}: {len(ratings):,} ratings by {ratings.n_users:,} users of {ratings.n_items:,} "
            f"movies, ratings {', '.join(f'{v:g}' for v in ratings.rating_values)} (K = {ratings.n_levels}).",
            highlight=False,
        )
        console.print(
            f"Split {chosen.name}: {chosen.description}; {len(chosen.train):,} training, "
            f"{len(chosen.validation):,} validation, {len(chosen.test):,} test ratings.",
            highlight=False,
        )
        console.print(
            f"Training {model.name} with {settings.n_hidden} hidden units on {model.device}: batches of "
            f"{settings.batch_size} cases, learning rate {settings.learning_rate:g}, {describe_schedule(settings)}; "
            f"at most {settings.epochs} epochs, stopping after {settings.patience} without improvement.",
            highlight=False,
        )

        saved: dict[str, Any] = {}  # the last checkpoint written: epoch, validation RMSE

        def save(metrics: dict[str, Any], complete: bool) -> None:
            extra = checkpoint_metadata(data, chosen, metrics, complete)
            with deferred_interrupts():  # the checkpoint and the record of it, whole, before Ctrl-C takes effect
                model.save(run.partial, extra_metadata=extra)
                saved.update(epoch=model.best_epoch, validation_rmse=model.best_validation_rmse)

        bar = progress_bar(transient=True)

        def on_epoch(record: Any) -> None:
            if record.is_best:  # saved before it is reported as saved
                save({"validation_rmse": record.validation_rmse}, complete=False)
            validation = "" if record.validation_rmse is None else f"  validation RMSE {record.validation_rmse:.4f}"
            marker = "  [green]best, saved[/]" if record.is_best else ""
            bar.console.print(
                f"epoch {record.epoch:>3}  CD-{record.cd_steps}  train RMSE {record.train_rmse:.4f}{validation}"
                f"  {record.seconds:.1f} s{marker}",
                highlight=False,
            )
            best = (
                ""
                if model.best_validation_rmse is None
                else f"best {model.best_validation_rmse:.4f} (epoch {model.best_epoch})"
            )
            bar.update(task, completed=record.epoch, note=best)

        task = bar.add_task("epochs", total=settings.epochs, note="")
        try:
            with bar:
                model.fit(chosen.train, chosen.validation, progress=on_epoch)
        except KeyboardInterrupt as interrupt:
            raise interrupted(run, saved, interrupt) from None

        metrics = evaluate_on_test(model, chosen)
        save(metrics, complete=True)
        run.commit()
    print_summary(model, chosen, metrics, target)


def interrupted(run: Any, saved: dict[str, Any], interrupt: KeyboardInterrupt) -> typer.Exit:
    """The one line for an interrupted run, after placing or keeping its best model so far."""
    from recsys_rbm.signals import exit_code_of

    where = run.settle()
    code = exit_code_of(interrupt)
    if where is None:
        state = "left unchanged" if run.existed else "not created"
        return fail(
            f"interrupted before an epoch improved on validation; nothing was saved and {run.target} was {state}; "
            "run the command again",
            code,
        )
    best = f"epoch {saved['epoch']}, validation RMSE {saved['validation_rmse']:.4f}, no test metrics"
    if run.placed:
        return fail(
            f"interrupted; kept the best model so far in {run.target} ({best}), marked unfinished "
            "(complete: false); run the command again with --overwrite to train it fully",
            code,
        )
    return fail(
        f"interrupted; {run.target} was left unchanged, and the best model so far ({best}) was kept in {where}; "
        "use that file with --model, or delete it",
        code,
    )


def make_split(data: MovieLensDataset, name: str, seed: int) -> Split:
    """The split ``name`` of the loaded release, each with a seeded validation carve-out of its training part."""
    import numpy as np

    from recsys_rbm.recommender.splits import Split, canonical_split, carve_validation, random_split

    if name == "random":
        return random_split(data.ratings, 0, validation_fraction=VALIDATION_FRACTION, seed=seed)
    if name == "full":
        train, validation = carve_validation(data.ratings, VALIDATION_FRACTION, seed)
        return Split(
            name="full",
            description=f"every rating; {VALIDATION_FRACTION:.0%} held out for validation (seed {seed}), no test set",
            train=train,
            validation=validation,
            test=data.ratings.subset(np.zeros(0, dtype=np.int64)),
            seed=seed,
        )
    return canonical_split(name, data, validation_fraction=VALIDATION_FRACTION, seed=seed)


def evaluate_on_test(model: Any, split: Split) -> dict[str, Any]:
    """Validation RMSE of the best epoch and, when the split has a test set, test RMSE and MAE (all and warm pairs)."""
    from recsys_rbm.recommender.metrics import mae, rmse

    metrics: dict[str, Any] = {"validation_rmse": model.best_validation_rmse}
    test = split.test
    if len(test) == 0:
        return metrics
    predicted = model.predict(test.users, test.items)
    cold = split.cold
    warm = cold.warm
    metrics |= {
        "test_ratings": len(test),
        "test_rmse": rmse(predicted, test.values),
        "test_mae": mae(predicted, test.values),
        "test_cold_ratings": cold.n_cold,
        "test_rmse_warm": rmse(predicted[warm], test.values[warm]) if warm.any() else None,
    }
    return metrics


def checkpoint_metadata(
    data: MovieLensDataset, split: Split, metrics: dict[str, Any], complete: bool
) -> dict[str, Any]:
    """What the checkpoint's metadata records besides the model's own fields (config, seed, history …)."""
    return {
        "dataset": {
            "name": data.name,
            "fingerprint": data.fingerprint,
            "ratings": len(data.ratings),
            "users": data.ratings.n_users,
            "movies": data.ratings.n_items,
        },
        "split": {**split.summary(), "description": split.description},
        "metrics": metrics,
        "complete": complete,  # false while training: the best epoch so far, saved mid-run
        "movies": data.movies.to_dict(),  # titles, years, genres: recommend needs no data folder
    }


def print_summary(model: Any, split: Split, metrics: dict[str, Any], target: Path) -> None:
    from rich.table import Table

    history = model.history
    seconds = sum(record.seconds for record in history)
    to_best = sum(record.seconds for record in history[: model.best_epoch or len(history)])
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()
    stopped = " (early stopping)" if len(history) < model.config.epochs else ""
    table.add_row("best epoch", f"{model.best_epoch} of {len(history)}{stopped}")
    if metrics.get("validation_rmse") is not None:
        table.add_row("validation RMSE", f"{metrics['validation_rmse']:.4f}")
    if "test_rmse" in metrics:
        cold = metrics["test_cold_ratings"]
        note = f"; {cold:,} cold, predicted by the fallback" if cold else ""
        table.add_row(
            "test RMSE / MAE",
            f"{metrics['test_rmse']:.4f} / {metrics['test_mae']:.4f} on {metrics['test_ratings']:,} {split.name} "
            f"test ratings{note}",
        )
    else:
        table.add_row("test RMSE / MAE", f"none: split {split.name} has no test set")
    table.add_row(
        "time",
        f"{seconds / max(len(history), 1):.2f} s per epoch, {seconds:.1f} s in all, best epoch after {to_best:.1f} s",
    )
    table.add_row("saved", str(target))
    console.print(table, highlight=False)
