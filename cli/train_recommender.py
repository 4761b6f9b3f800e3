"""Train the RBM recommender on a split and save its best epoch: what every ``train`` recommender command shares.

``train movielens`` and ``train ratings`` each read their data and make a split, then call
:func:`train_and_save`: the progress display (one line per epoch), each new best epoch saved at
once to the run's own file (see :class:`recsys_rbm.io.outputs.RunOutput`; Ctrl-C keeps the best so
far), the test metrics, the final checkpoint moved into place, and the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from recsys_rbm_cli.common import console, fail, plural, progress_bar
from recsys_rbm_cli.movielens_options import describe_schedule

if TYPE_CHECKING:
    from recsys_rbm.errors import OutputError
    from recsys_rbm.io.outputs import RunOutput
    from recsys_rbm.recommender.model import RBMRecommender
    from recsys_rbm.recommender.splits import Split
    from recsys_rbm.train.distributed import Parallel


def checkpoint_path(output: Path | None, default: Path) -> Path:
    """Where to save: ``output`` (``.safetensors`` added when missing), else ``default``."""
    from recsys_rbm.io.checkpoint_files import tensor_path

    return tensor_path(output if output is not None else default)


def train_and_save(
    model: RBMRecommender,
    split: Split,
    run: RunOutput | None,
    metadata: dict[str, Any],
    parallel: Parallel | None = None,
    *,
    source: str = "the ratings",
    validation_fraction: float = 0.05,
) -> None:
    """Fit ``model`` on ``split`` (early stopping on its validation part), saving each best epoch to the run's
    own file and moving it onto ``run.target`` at the end (see :class:`recsys_rbm.io.outputs.RunOutput`).

    ``metadata`` (what the data was: ``{"dataset": ..., "movies": ...}``) goes into every
    checkpoint with the split, the metrics so far and whether training completed. The data is
    checked first (:func:`recsys_rbm.recommender.adequacy.check_trainable`: ``source`` names it in
    the messages), then the memory the model needs; a validation measure that is not a number ends
    the run with one line. Under torchrun (``parallel``) every process trains its share; only the
    one holding ``run`` (rank 0; the others get ``None``) saves, evaluates and sums up.
    """
    from recsys_rbm_cli.processes import describe

    from recsys_rbm.io.resources import check_recommender_memory
    from recsys_rbm.io.signals import deferred_interrupts
    from recsys_rbm.recommender.adequacy import check_measured, check_trainable

    train = split.train
    settings = model.config.for_data(train.n_users if model.config.mode == "user" else train.n_items)  # as fit will
    check_trainable(split, settings, source, validation_fraction)
    check_recommender_memory(settings, split.train.n_users, split.train.n_items, split.train.n_levels)
    console.print(
        f"Training {model.name} with {settings.hidden} hidden units on {model.device}{describe(parallel)}: "
        f"batches of {settings.batch_size} cases, learning rate {settings.learning_rate:g}, "
        f"{describe_schedule(settings)}; at most {settings.epochs} epochs, stopping after {settings.patience} "
        f"epochs without improvement (not before {settings.patience_updates} updates).",
        highlight=False,
    )

    saved: dict[str, Any] = {}  # the last checkpoint written: epoch, its validation measures

    def save(metrics: dict[str, Any], complete: bool) -> None:
        extra = {**metadata, **run_metadata(split, metrics, complete)}
        try:
            with deferred_interrupts():  # the checkpoint and the record of it, whole, before Ctrl-C takes effect
                model.save(run.partial, extra_metadata=extra)
                record = model.best_record
                saved.update(epoch=model.best_epoch, measures={} if record is None else dict(record.measures))
        except OSError as error:
            raise save_failed(run, saved, error) from None

    bar = progress_bar(transient=True, lines=False)  # every epoch prints its own line

    def on_epoch(record: Any) -> None:
        check_measured(record.measures, model.validation_measure, record.epoch, source)
        if record.is_best and run is not None:  # saved before it is reported as saved
            save({"validation": dict(record.measures)}, complete=False)
        marker = "  [green]best, saved[/]" if record.is_best else ""
        bar.console.print(
            f"epoch {record.epoch:>3}  CD-{record.cd_steps}  {describe_measures(record.measures)}"
            f"  {record.seconds:.1f} s{marker}",
            highlight=False,
        )
        best = "" if model.best_epoch is None else f"best {describe_best(model)}"
        bar.update(task, completed=record.epoch, note=best)

    task = bar.add_task("epochs", total=settings.epochs, note="")
    try:  # an interruption anywhere before the commit keeps the best epoch saved so far, and says where
        with bar:
            model.fit(split.train, split.validation, progress=on_epoch, parallel=parallel)
        if run is None:
            return
        metrics = evaluate_on_test(model, split)
        if len(split.test):
            model.add_to_profiles(split.test)  # measured; from now on the users' lists know these ratings too
        save(metrics, complete=True)
        run.commit()
    except KeyboardInterrupt as interrupt:
        if run is None:
            raise
        raise interrupted(run, saved, interrupt) from None
    print_summary(model, split, metrics, run)


MEASURE_NAMES = {
    "train_rmse": "train RMSE",
    "validation_rmse": "validation RMSE",
    "validation_ndcg": "validation NDCG@10",
}


def describe_measures(measures: dict[str, float | None]) -> str:
    """``train RMSE 0.8534  validation RMSE 1.0031  validation NDCG@10 0.1869``: what an epoch measured."""
    return "  ".join(
        f"{MEASURE_NAMES.get(name, name)} {value:.4f}" for name, value in measures.items() if value is not None
    )


def describe_best(model: Any) -> str:
    """``validation NDCG@10 0.1913 (epoch 75)``: the kept epoch by the measure early stopping watches."""
    if model.best_measure is None:
        return f"epoch {model.best_epoch}"
    return f"{MEASURE_NAMES[model.validation_measure]} {model.best_measure:.4f} (epoch {model.best_epoch})"


def interrupted(run: RunOutput, saved: dict[str, Any], interrupt: KeyboardInterrupt) -> typer.Exit:
    """The one line for an interrupted run, after placing or keeping its best model so far."""
    from recsys_rbm_cli.processes import again_flag

    from recsys_rbm.io.signals import exit_code_of

    where = run.settle()
    code = exit_code_of(interrupt)
    if where is None:
        state = "left unchanged" if run.existed else "not created"
        return fail(
            f"interrupted before an epoch improved on validation; nothing was saved and {run.target} was {state}; "
            "run the command again",
            code,
        )
    best = f"epoch {saved['epoch']}, {describe_measures(saved['measures']) or 'no validation'}, no test metrics"
    if run.placed:
        return fail(
            f"interrupted; kept the best model so far in {run.target} ({best}), marked unfinished "
            f"(complete: false); run the command again{again_flag(run)} to train it fully",
            code,
        )
    return fail(
        f"interrupted; {run.target} was left unchanged, and the best model so far ({best}) was kept in {where}; "
        "use that file with --model, or delete it",
        code,
    )


def save_failed(run: RunOutput, saved: dict[str, Any], error: OSError) -> OutputError:
    """The one line for a save the file system refused (a full disk): what survived, where, and what to do.

    The run's file is placed or kept first (:meth:`RunOutput.settle`), so the line can say where
    the best model so far is; the target, if it existed, is never touched by a failed save.
    """
    from recsys_rbm.errors import OutputError

    run.settle()
    return OutputError(run.unsaved_message(error, f"the best model so far (epoch {saved.get('epoch')})"))


def run_metadata(split: Split, metrics: dict[str, Any], complete: bool) -> dict[str, Any]:
    """The checkpoint's record of this run besides the model's own fields: the split, the metrics, whether complete."""
    return {
        "split": {**split.summary(), "description": split.description},
        "metrics": metrics,
        "complete": complete,  # false while training: the best epoch so far, saved mid-run
    }


def evaluate_on_test(model: Any, split: Split) -> dict[str, Any]:
    """The kept epoch's validation measures, the same baseline's on validation, and the test metrics.

    Test metrics, when the split has a test set: RMSE and MAE (all pairs and warm pairs) when the
    data has ratings; ranking at k = 10 (relevant: rated at least the like threshold; candidates:
    every item not seen in training or validation) for every model.
    """
    from recsys_rbm.recommender.config import like_threshold
    from recsys_rbm.recommender.evaluation import concatenate, rank_users
    from recsys_rbm.recommender.metrics import mae, rmse

    record = model.best_record
    metrics: dict[str, Any] = {"validation": {} if record is None else dict(record.measures)}
    metrics["baseline"] = validation_baseline(model, split)
    test = split.test
    if len(test) == 0:
        return metrics
    metrics["test_ratings"] = len(test)
    metrics["test_cold_ratings"] = split.cold.n_cold
    if not split.train.is_implicit:
        predicted = model.predict_indices(test.users, test.items)
        warm = split.cold.warm
        metrics |= {
            "test_rmse": rmse(predicted, test.values),
            "test_mae": mae(predicted, test.values),
            "test_rmse_warm": rmse(predicted[warm], test.values[warm]) if warm.any() else None,
        }
    seen = split.train if len(split.validation) == 0 else concatenate(split.train, split.validation)
    threshold = like_threshold(split.train.rating_values, model.config.like_threshold)
    ranking = rank_users(model, seen, test, k=10, threshold=threshold)
    metrics["test_ranking"] = {
        "k": 10,
        "threshold": threshold,
        "ndcg": ranking.ndcg,
        "precision": ranking.precision,
        "recall": ranking.recall,
        "coverage": ranking.coverage,
        "users": ranking.n_users_evaluated,
    }
    return metrics


def validation_baseline(model: Any, split: Split) -> dict[str, Any] | None:
    """The simple baseline of the model's job on the same validation data: the user+item biases' RMSE for the
    ratings model, most-popular's NDCG@10 for the joint model (None without validation data)."""
    from recsys_rbm.recommender.baselines import BiasBaseline, MostPopular
    from recsys_rbm.recommender.config import like_threshold
    from recsys_rbm.recommender.evaluation import rank_users
    from recsys_rbm.recommender.metrics import rmse

    validation = split.validation
    if len(validation) == 0:
        return None
    if model.validation_measure == "validation_rmse":
        biases = BiasBaseline().fit(split.train)
        value = rmse(biases.predict_indices(validation.users, validation.items), validation.values)
        return {"name": "user+item biases", "measure": "validation_rmse", "value": value}
    threshold = like_threshold(split.train.rating_values, model.config.like_threshold)
    popular = MostPopular().fit(split.train)
    value = rank_users(popular, split.train, validation, k=10, threshold=threshold).ndcg
    return {"name": "most popular", "measure": "validation_ndcg", "value": value}


def training_warnings(model: Any, metrics: dict[str, Any]) -> list[str]:
    """What the summary must not hide: a model no better than the simple baseline, or one still improving."""
    warnings = []
    baseline = metrics.get("baseline")
    measure = model.validation_measure
    value = metrics.get("validation", {}).get(measure)
    if baseline is not None and value is not None:
        worse = value > baseline["value"] if measure == "validation_rmse" else value < baseline["value"]
        if worse:
            warnings.append(
                f"the model is worse than the {baseline['name']} baseline on validation "
                f"({MEASURE_NAMES[measure]} {value:.4f} against {baseline['value']:.4f}); train longer "
                "(--epochs) or change the settings before using it"
            )
    history = model.history
    if history and model.best_epoch == len(history) and len(history) >= model.config.epochs:
        warnings.append(
            f"the validation measure was still improving at the last epoch ({len(history)}); "
            "more --epochs would likely give a better model"
        )
    return warnings


def describe_time(epoch_seconds: list[float], best_epoch: int | None) -> str:
    """``2.45 s per epoch, 245.3 s in all, best epoch after 120.1 s``: the epochs' own seconds (updates and
    measurements), as the summary and ``info`` both print them (no best epoch where none was kept)."""
    total = sum(epoch_seconds)
    text = f"{total / max(len(epoch_seconds), 1):.2f} s per epoch, {total:.1f} s in all"
    if best_epoch is None:  # a model kept at its last epoch (MNIST)
        return text
    return f"{text}, best epoch after {sum(epoch_seconds[:best_epoch]):.1f} s"


def describe_parts(counts: dict[str, int]) -> str:
    """Which ratings trained the model and which were held out, in one line (``info`` shows the same)."""
    held = [f"{counts['validation']:,} for early stopping"] if counts.get("validation") else []
    held += [f"{counts['held_out']:,} to measure it"] if counts.get("held_out") else []
    total = sum(counts.values())
    kept = f"; held out {' and '.join(held)}" if held else "; none held out"
    return f"trained on {counts.get('trained', 0):,}{kept}; all {total:,} are in the users' profiles"


def print_summary(model: Any, split: Split, metrics: dict[str, Any], run: RunOutput) -> None:
    from recsys_rbm_cli.common import error_console
    from recsys_rbm_cli.processes import kept_previous_line
    from rich.markup import escape
    from rich.table import Table

    history = model.history
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()
    stopped = " (early stopping)" if len(history) < model.config.epochs else ""
    table.add_row("best epoch", f"{model.best_epoch} of {len(history)}{stopped}")
    table.add_row("ratings", describe_parts(model.scorer.state.part_counts()))
    if metrics.get("validation"):
        table.add_row("validation", describe_measures(metrics["validation"]))
    baseline = metrics.get("baseline")
    if baseline is not None:
        table.add_row("baseline", f"{baseline['name']}: {MEASURE_NAMES[baseline['measure']]} {baseline['value']:.4f}")
    cold = metrics.get("test_cold_ratings", 0)
    note = f"; {cold:,} cold, predicted by the fallback" if cold else ""
    if "test_rmse" in metrics:
        table.add_row(
            "test RMSE / MAE",
            f"{metrics['test_rmse']:.4f} / {metrics['test_mae']:.4f} on {metrics['test_ratings']:,} {split.name} "
            f"test ratings{note}",
        )
    ranking = metrics.get("test_ranking")
    if ranking is not None:
        table.add_row(
            "test ranking",
            f"NDCG@10 {ranking['ndcg']:.4f}, P@10 {ranking['precision']:.4f}, coverage@10 {ranking['coverage']:.4f} "
            f"over {plural(ranking['users'], 'user')} (relevant: rated ≥ {ranking['threshold']:g})",
        )
    if "test_ratings" not in metrics:
        table.add_row("test", f"none: split {split.name} has no test set")
    table.add_row("time", describe_time([record.seconds for record in history], model.best_epoch))
    kept = kept_previous_line(run)
    table.add_row("saved", escape(str(run.target) + (f"; {kept}" if kept else "")))
    console.print(table, highlight=False)
    for warning in training_warnings(model, metrics):
        error_console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
