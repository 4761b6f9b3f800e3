"""Train the RBM recommender on a split and save its best epoch: what every ``train`` recommender command shares.

``train movielens`` and ``train ratings`` each read their data and make a split, then call
:func:`train_and_save`: the progress display (one line per epoch), each new best epoch saved at
once to the run's own file (see :class:`recsys_rbm.outputs.RunOutput`; Ctrl-C keeps the best so
far), the test metrics, the final checkpoint moved into place, and the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from recsys_rbm_cli.common import console, fail, progress_bar
from recsys_rbm_cli.movielens_options import describe_schedule

if TYPE_CHECKING:
    from recsys_rbm.outputs import RunOutput
    from recsys_rbm.recommender.model import RBMRecommender
    from recsys_rbm.recommender.splits import Split


def checkpoint_path(output: Path | None, default: Path) -> Path:
    """Where to save: ``output`` (``.safetensors`` added when missing), else ``default``."""
    from recsys_rbm.checkpoint_files import tensor_path

    return tensor_path(output if output is not None else default)


def train_and_save(model: RBMRecommender, split: Split, run: RunOutput, metadata: dict[str, Any]) -> None:
    """Fit ``model`` on ``split`` (early stopping on its validation part), saving each best epoch to the run's
    own file and moving it onto ``run.target`` at the end (see :class:`recsys_rbm.outputs.RunOutput`).

    ``metadata`` (what the data was: ``{"dataset": ..., "movies": ...}``) goes into every
    checkpoint with the split, the metrics so far and whether training completed. The memory the
    model needs is checked first.
    """
    from recsys_rbm.resources import check_recommender_memory
    from recsys_rbm.signals import deferred_interrupts

    settings = model.config
    check_recommender_memory(settings, split.train.n_users, split.train.n_items, split.train.n_levels)
    console.print(
        f"Training {model.name} with {settings.n_hidden} hidden units on {model.device}: batches of "
        f"{settings.batch_size} cases, learning rate {settings.learning_rate:g}, {describe_schedule(settings)}; "
        f"at most {settings.epochs} epochs, stopping after {settings.patience} without improvement.",
        highlight=False,
    )

    saved: dict[str, Any] = {}  # the last checkpoint written: epoch, validation RMSE

    def save(metrics: dict[str, Any], complete: bool) -> None:
        extra = {**metadata, **run_metadata(split, metrics, complete)}
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
            model.fit(split.train, split.validation, progress=on_epoch)
    except KeyboardInterrupt as interrupt:
        raise interrupted(run, saved, interrupt) from None

    metrics = evaluate_on_test(model, split)
    save(metrics, complete=True)
    run.commit()
    print_summary(model, split, metrics, run.target)


def interrupted(run: RunOutput, saved: dict[str, Any], interrupt: KeyboardInterrupt) -> typer.Exit:
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


def run_metadata(split: Split, metrics: dict[str, Any], complete: bool) -> dict[str, Any]:
    """The checkpoint's record of this run besides the model's own fields: the split, the metrics, whether complete."""
    return {
        "split": {**split.summary(), "description": split.description},
        "metrics": metrics,
        "complete": complete,  # false while training: the best epoch so far, saved mid-run
    }


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
