"""``rbm-rec evaluate movielens``: the RBM against the baselines on the same splits, mean ± std over folds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import evaluate_app
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
    ModelKindOption,
    ModeOption,
    PatienceOption,
    SeedOption,
    recommender_config,
)

from recsys_rbm.io.limits import MAX_RANDOM_FOLDS, MAX_RANK_K

if TYPE_CHECKING:
    from recsys_rbm.recommender.evaluation import EvaluationReport

CANONICAL = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
FOLDS = (*CANONICAL, "random")
MODELS = ("rbm", "ease", "global-mean", "biases", "most-popular")
EASE_MAX_ITEMS = 30_000  # EASE inverts an items × items matrix: beyond this it is left out unless asked for
VALIDATION_FRACTION = 0.05  # of each training part, for the RBM's early stopping; the baselines train on it too
THRESHOLD = 4.0  # a test rating this high or higher is relevant for the ranking metrics


def _choices(values: list[str] | None, allowed: tuple[str, ...], option: str) -> list[str]:
    """Repeated and/or comma-separated choices, in order, without duplicates; an unknown one, or an option given
    but naming nothing, exits 2."""
    chosen: list[str] = []
    for value in values or []:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in allowed:
                raise fail(
                    f"unknown {option} value {part.strip()!r}; use {', '.join(allowed)} "
                    "(see 'rbm-rec evaluate movielens --help')",
                    code=2,
                )
            if name not in chosen:
                chosen.append(name)
    if values and not chosen:  # --folds "" or --models ",": given, yet naming nothing
        raise fail(
            f"{option} {','.join(values)!r} names no value; use {', '.join(allowed)}, or leave {option} out for its "
            "default (see 'rbm-rec evaluate movielens --help')",
            code=2,
        )
    return chosen


@evaluate_app.command("movielens", cls=RbmRecCommand)
@one_line_errors
def evaluate_movielens(
    dataset: DatasetOption = Dataset.ml_100k,
    folds: Annotated[
        list[str] | None,
        typer.Option(
            "--folds",
            help="Splits to evaluate on, comma-separated or repeated: u1 to u5, ua, ub (ml-100k's own files) or random "
            "(--random-folds seeded random 90/10 splits, the AutoRec protocol).",
            show_default="u1,u2,u3,u4,u5 for ml-100k, else random",
        ),
    ] = None,
    random_folds: Annotated[
        int, typer.Option("--random-folds", min=1, max=MAX_RANDOM_FOLDS, help="How many random splits 'random' means.")
    ] = 5,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help="Models, comma-separated or repeated: rbm (the --model-kind RBM; without it both, the joint model "
            "shown ranking and the ratings model shown rating), ease (Steck 2019, its λ chosen "
            "on validation), global-mean, biases (damped user + item biases), most-popular.",
            show_default="all",
        ),
    ] = None,
    k: Annotated[
        int, typer.Option("--k", min=1, max=MAX_RANK_K, help="Length of the ranked lists (NDCG@k, P@k and the rest).")
    ] = 10,
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
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json-out",
            help="Where the numbers go as JSON (every fold, the summaries, the settings); written atomically.",
            show_default="runs/evaluate-movielens-<dataset>.json",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:
    """Evaluate the RBM recommender against the baselines on the same splits in one run.

    Every model is fitted on each split's training ratings (the RBM stops early on a 5% validation
    carve-out; the baselines train on it as well), then measured on the split's test ratings:
    RMSE and MAE of the predicted ratings, and, ranking every movie the user has not rated,
    NDCG@k, precision@k, recall@k, MAP@k and hit rate@k (relevant: a test rating of 4 or more) and
    catalogue coverage. The table shows mean ± standard deviation over the folds with fit,
    predict and ranking seconds; cold pairs are test ratings whose user or movie has no training
    rating (they get each model's fallback).

    Example: rbm-rec evaluate movielens --folds u1,u2,u3,u4,u5 --models rbm,biases --k 10
    """
    from recsys_rbm_cli.mnist_options import download_progress
    from recsys_rbm_cli.movielens_options import read_config_table
    from recsys_rbm_cli.train_recommender import describe_measures

    from recsys_rbm.data.movielens import load_movielens
    from recsys_rbm.data.paths import dataset_files
    from recsys_rbm.io.outputs import RunOutput, check_distinct
    from recsys_rbm.io.resources import check_recommender_memory
    from recsys_rbm.recommender.baselines import EASE, BiasBaseline, GlobalMean, MostPopular
    from recsys_rbm.recommender.config import KINDS
    from recsys_rbm.recommender.evaluation import TrainOnValidationToo, evaluate
    from recsys_rbm.recommender.model import RBMRecommender
    from recsys_rbm.recommender.splits import canonical_split, random_splits

    fold_names = _choices(folds, FOLDS, "--folds") or (
        ["u1", "u2", "u3", "u4", "u5"] if dataset is Dataset.ml_100k else ["random"]
    )
    model_names = _choices(models, MODELS, "--models") or list(MODELS)
    options = {
        "mode": mode,
        "hidden": hidden,
        "epochs": epochs,
        "conditional": conditional,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "patience": patience,
        "seed": seed,
        "device": device,
    }
    settings = recommender_config(config, cd_schedule=cd_schedule, kind=model_kind, **options)
    target = json_out if json_out is not None else Path("runs") / f"evaluate-movielens-{dataset.value}.json"
    check_distinct({"--json-out": target}, [("--config", config), *dataset_files(data_dir, (dataset.value,))])
    table = read_config_table(config) if config is not None else {}
    if model_kind is None and "kind" not in table and "model" not in table:  # the ranker and the rater
        rbms = [recommender_config(config, cd_schedule=cd_schedule, kind=kind, **options) for kind in KINDS]
    else:
        rbms = [settings]
    rbm_names = [RBMRecommender(rbm).name for rbm in rbms]  # also reports a missing GPU before any work
    with RunOutput(target, overwrite=overwrite, option="--json-out") as run:  # checked and locked before any work
        downloads, on_download = download_progress(console)
        try:  # the display starts with the first download only (entering it with `with` would start it now)
            data = load_movielens(dataset.value, data_dir, progress=on_download)
        finally:
            if downloads.live.is_started:  # stopping an unstarted display would print an empty line
                downloads.stop()
        if "rbm" in model_names:
            for rbm in rbms:
                cases = data.ratings.n_users if rbm.mode == "user" else data.ratings.n_items
                shape = (data.ratings.n_users, data.ratings.n_items, data.ratings.n_levels)
                check_recommender_memory(rbm.for_data(cases), *shape)
        splits = []
        for name in fold_names:
            if name == "random":
                splits += random_splits(
                    data.ratings, random_folds, validation_fraction=VALIDATION_FRACTION, seed=settings.seed
                )
            else:
                splits.append(canonical_split(name, data, validation_fraction=VALIDATION_FRACTION, seed=settings.seed))

        bar = progress_bar(transient=True)
        task = bar.add_task("evaluating", total=len(splits) * len(model_names), note="")

        class Watched:
            """An RBM, reporting each epoch to the progress display while the harness fits it."""

            def __init__(self, rbm: Any) -> None:
                self.model = RBMRecommender(rbm)
                self.name = self.model.name

            def fit(self, train: Any, validation: Any = None) -> Watched:
                def on_epoch(record: Any) -> None:
                    bar.update(task, note=f"epoch {record.epoch}: {describe_measures(record.measures)}")

                self.model.fit(train, validation, progress=on_epoch)
                return self

            def predict_indices(self, users: Any, items: Any) -> Any:
                return self.model.predict_indices(users, items)

            def score_items(self, users: Any) -> Any:
                return self.model.score_items(users)

        factories = {
            "ease": ("EASE", lambda: EASE(like_threshold=settings.like_threshold)),
            "global-mean": ("global mean", lambda: TrainOnValidationToo(GlobalMean())),
            "biases": ("user+item biases", lambda: TrainOnValidationToo(BiasBaseline())),
            "most-popular": ("most popular", lambda: TrainOnValidationToo(MostPopular())),
        }
        if "ease" in model_names and data.ratings.n_items > EASE_MAX_ITEMS:
            if models:  # asked for by name
                raise fail(
                    f"EASE needs an items × items matrix; {data.name} has {data.ratings.n_items:,} items (at most "
                    f"{EASE_MAX_ITEMS:,} here); leave 'ease' out of --models",
                    code=2,
                )
            model_names.remove("ease")
            console.print(f"EASE left out: {data.ratings.n_items:,} items is too many for its items × items matrix.")
        chosen = {}
        for name in model_names:
            if name == "rbm":
                chosen |= {label: lambda rbm=rbm: Watched(rbm) for label, rbm in zip(rbm_names, rbms, strict=True)}
            else:
                chosen[factories[name][0]] = factories[name][1]
        # Shown with both RBMs, each is shown on the measure it is for: the joint model ranks, the ratings model rates.
        hidden = {}
        if len(rbms) == 2 and "rbm" in model_names:
            hidden = {rbm_names[0]: "accuracy", rbm_names[1]: "ranking"}
        finished: list[Any] = []  # the folds done so far, kept for an interrupted run's report
        total = len(splits) * len(chosen)

        def on_progress(event: Any) -> None:
            if event.stage == "done":
                finished.append(event.fold)
                rmse = "" if event.fold.rmse is None else f": RMSE {event.fold.rmse:.4f}"
                bar.console.print(f"{event.split} · {event.model}{rmse} ({len(finished)} of {total})", highlight=False)
                bar.update(task, advance=1, note="")
            else:
                bar.update(task, description=f"{event.split} · {event.model}: {event.stage}", note="")

        console.print(
            f"Evaluating {', '.join(chosen)} on MovieLens {data.name}, {len(splits)} split(s) "
            f"({', '.join(split.name for split in splits)}); ranking at k = {k}.",
            highlight=False,
        )
        notes = {
            "dataset": data.name,
            "fingerprint": data.fingerprint,
            "seed": settings.seed,
            "validation_fraction": VALIDATION_FRACTION,
            "rbm_config": _plain(rbms[0]),
            "rbm_configs": {name: _plain(rbm) for name, rbm in zip(rbm_names, rbms, strict=True)},
            "shown": {name: f"not in the {table} table" for name, table in hidden.items()},
            "split_descriptions": {split.name: split.description for split in splits},
            "planned": {"splits": [split.name for split in splits], "models": list(chosen)},
        }
        try:
            with bar:
                report = evaluate(chosen, splits, k=k, threshold=THRESHOLD, progress=on_progress, notes=notes)
        except KeyboardInterrupt as interrupt:
            raise interrupted(run, finished, total, splits, k, notes, interrupt, hidden) from None
        print_report(report, hidden)
        report.to_json(run.partial)
        run.commit()
    console.print(f"Wrote {target}", highlight=False)


def interrupted(
    run: Any,
    finished: list[Any],
    total: int,
    splits: list[Any],
    k: int,
    notes: dict[str, Any],
    interrupt: Any,
    hidden: dict[str, str],
) -> typer.Exit:
    """Write the folds that finished, marked ``"complete": false``, and return the one line that says where."""
    from recsys_rbm.io.signals import exit_code_of
    from recsys_rbm.recommender.evaluation import EvaluationReport, split_facts

    code = exit_code_of(interrupt)
    if not finished:
        state = "left unchanged" if run.existed else "not written"
        return fail(
            f"interrupted before the first of {total} folds finished; {run.target} was {state}; run the command again",
            code,
        )
    done = {fold.split for fold in finished}
    report = EvaluationReport(
        k=k,
        threshold=THRESHOLD,
        folds=finished,
        splits=[split_facts(split) for split in splits if split.name in done],
        notes=notes,
        complete=False,
    )
    print_report(report, hidden)
    report.to_json(run.partial)
    where = run.settle()
    kept = "" if run.placed else f" ({run.target} was left unchanged)"
    return fail(
        f'interrupted after {len(finished)} of {total} folds; wrote those to {where} marked "complete": false{kept}; '
        "run the command again for the rest",
        code,
    )


def _plain(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(config)


def _cell(summary: Any, digits: int) -> str:
    if summary is None:
        return "—"
    if summary.n == 1:
        return f"{summary.mean:.{digits}f}"
    return f"{summary.mean:.{digits}f} ± {summary.std:.{digits}f}"


def print_report(report: EvaluationReport, hidden: dict[str, str] | None = None) -> None:
    """Two tables, accuracy and timing, then ranking: one row per model, mean ± std over folds.

    ``hidden`` leaves a model out of one table (``"accuracy"`` or ``"ranking"``): a model made to rank
    is not shown rating, and the other way round.
    """
    hidden = hidden or {}
    from rich.table import Table

    summary = report.summary()
    n_folds = len(report.splits)
    over = f"mean ± std over {n_folds} folds" if n_folds > 1 else "one fold"
    cold = [split["cold_test_ratings"] for split in report.splits]
    accuracy = Table(
        title=f"Rating prediction ({over})",
        caption=f"Cold pairs (user or movie unseen in training) per fold: {', '.join(f'{c:,}' for c in cold)}; "
        "they get each model's fallback.",
        title_justify="left",
    )
    for column in ("model", "RMSE", "MAE", "fit s", "predict s", "rank s", "cold pairs"):
        accuracy.add_column(column, justify="left" if column == "model" else "right")
    for model, metrics in summary.items():
        if hidden.get(model) == "accuracy":
            continue
        folds = report.results_for(model)
        accuracy.add_row(
            model,
            _cell(metrics.get("rmse"), 4),
            _cell(metrics.get("mae"), 4),
            _cell(metrics.get("fit_seconds"), 2),
            _cell(metrics.get("predict_seconds"), 3),
            _cell(metrics.get("rank_seconds"), 2),
            f"{sum(fold.n_cold for fold in folds) / max(len(folds), 1):,.0f}",
        )
    console.print(accuracy)
    k = report.k
    ranking = Table(
        title=f"Top-{k} ranking ({over})",
        caption=f"Relevant: test rating ≥ {report.threshold:g}; candidates: every movie the user has not rated in "
        "training or validation; averages over users with a relevant movie; coverage: share of the catalogue "
        "in any list.",
        title_justify="left",
    )
    for column in ("model", f"NDCG@{k}", f"P@{k}", f"R@{k}", f"MAP@{k}", f"HR@{k}", "coverage"):
        ranking.add_column(column, justify="left" if column == "model" else "right")
    for model, metrics in summary.items():
        if hidden.get(model) == "ranking":
            continue
        ranking.add_row(
            model,
            *(_cell(metrics.get(name), 3) for name in ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")),
        )
    console.print(ranking)
