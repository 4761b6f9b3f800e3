"""One protocol on every dataset the data folder holds: the default RBM beside EASE, ALS and most popular.

Run:  RBM_REC_DATA=../shared/data python benchmarks/datasets.py [--datasets ml-100k,filmtrust,lastfm-2k,coat]
      [--table my-ratings.csv] [--seeds 0,1,2] [--skip-peers] [--json results.json]

Datasets: every one of :data:`READERS` found under the data folder (``--data-dir``, else
``$RBM_REC_DATA``, else ``data/``), and any table given with ``--table`` (read as ``rbm-rec train
ratings`` reads it; its columns recognised by name, or named with ``--user-col`` …).

The protocol, the same for every dataset and model:

- a random 80/20 split by rating, with seeds 0, 1 and 2; 5% of the training rows (seeded) are the
  validation slice that the RBM stops early on and that EASE chooses its λ on;
- relevant items: test ratings ≥ 4 (``--relevant``), or any test interaction for implicit data;
- candidates: every item the user has no training row for (validation rows are training rows);
- binary-gain NDCG@10, P@10, recall@10 and coverage@10 (the share of the catalogue that appears in
  some list), as :mod:`recsys_rbm.recommender.metrics` defines them.

Models, each fitted on the same training rows:

- **RBM**: the joint model exactly as ``rbm-rec train ratings`` trains it by default (its own
  defaults, early stopping on the validation slice, which then joins the users' profiles);
- **EASE** (Steck 2019), λ chosen by validation NDCG@10 from :data:`EASE_LAMBDAS`, then refitted
  on all training rows; on a catalogue of more than :data:`EASE_FULL_ITEMS` items only the items
  with at least two users are modelled (the others are never recommended), as the printout says;
- **ALS** (implicit's ``AlternatingLeastSquares``, 64 factors), when implicit is installed;
- **most popular**.

For explicit ratings it also prints RMSE: the ratings RBM (the rater) beside the user+item
biases and, when scikit-surprise is installed, BaselineOnly, SVD and KNNBaseline. Every table
gives the mean ± sample standard deviation over the seeds and the mean fit seconds; the summary
puts each dataset's NDCG@10 side by side with the RBM's ratio to EASE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from peers import peer_factories

from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.baselines import EASE, BiasBaseline, MostPopular
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.evaluation import (
    EvaluationReport,
    ModelFactory,
    ProgressEvent,
    TrainOnValidationToo,
    evaluate,
)
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.splits import Split, random_split

EASE_LAMBDAS = (10.0, 30.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 3000.0)
EASE_FULL_ITEMS = 10_000  # larger catalogues: EASE models the items with at least two users
TEST_FRACTION, VALIDATION_FRACTION = 0.2, 0.05
RBM, RBM_RATER, EASE_NAME, ALS, POPULAR = "RBM", "RBM ratings (rater)", "EASE", "ALS (implicit)", "most popular"
RANKERS = (RBM, EASE_NAME, ALS, POPULAR)


# --- reading each dataset's own layout --------------------------------------------------------------


def _table(frame: Any, **options: Any) -> Ratings:
    from recsys_rbm.data.tables import read_ratings_table

    return read_ratings_table(frame, **options).ratings


def read_movielens_100k(folder: Path) -> Ratings:
    from recsys_rbm.data.movielens import load_movielens

    return load_movielens("ml-100k", folder.parent, download=False).ratings


def read_space_separated(folder: Path) -> Ratings:
    """``user item rating`` lines, space separated, no header (repeated pairs: the last one is kept)."""
    import polars as pl

    frame = pl.read_csv(folder / "ratings.txt", separator=" ", has_header=False, new_columns=["user", "item", "rating"])
    return _table(frame, duplicates="last")


def read_play_counts(folder: Path) -> Ratings:
    """``userID artistID weight`` with a header, tab separated: each (user, artist) row is one interaction
    (the count column is not a rating), as ``train ratings FILE --item-col artistID`` reads it."""
    return _table(folder / "user_artists.dat", item_col="artistID")


def read_dense_matrices(folder: Path) -> Ratings:
    """Two dense user × item matrices (0 = unrated), train and test, as one table of every rating."""
    import polars as pl

    users, items, values = [], [], []
    for name in ("train.ascii", "test.ascii"):
        matrix = np.loadtxt(folder / name, dtype=np.int64)
        rows, columns = np.nonzero(matrix)
        users.append(rows)
        items.append(columns)
        values.append(matrix[rows, columns])
    columns = {"user": users, "item": items, "rating": values}
    frame = pl.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()})
    return _table(frame, duplicates="last")  # a pair in both files keeps its test rating


@dataclass(frozen=True)
class Reader:
    folder: str
    marker: str  # the file whose presence says the dataset is there
    read: Callable[[Path], Ratings]


READERS = {
    "ml-100k": Reader("ml-100k", "u.data", read_movielens_100k),
    "filmtrust": Reader("filmtrust", "ratings.txt", read_space_separated),
    "lastfm-2k": Reader("lastfm-2k", "user_artists.dat", read_play_counts),
    "coat": Reader("coat", "train.ascii", read_dense_matrices),
}


def found_datasets(data_dir: Path, wanted: list[str]) -> dict[str, Callable[[], Ratings]]:
    out = {}
    for name in wanted:
        reader = READERS[name]
        folder = data_dir / reader.folder
        if (folder / reader.marker).is_file():
            out[name] = lambda reader=reader, folder=folder: reader.read(folder)
        else:
            print(f"{name}: not under {data_dir} ({folder / reader.marker} is missing); skipped", flush=True)
    return out


# --- the models ------------------------------------------------------------------------------------------


def chosen_datasets(
    parser: argparse.ArgumentParser, data_dir: str | None, names: str
) -> dict[str, Callable[[], Ratings]]:
    """The loaders of the comma-separated ``names`` found under ``data_dir`` (else ``$RBM_REC_DATA``, else
    ``data/``); an unknown name is a usage error."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(READERS))
    if unknown:
        parser.error(f"unknown datasets {unknown}; choose from {', '.join(READERS)}")
    return found_datasets(Path(data_dir or os.environ.get("RBM_REC_DATA") or "data"), wanted)


def factories(ratings: Ratings, seed: int, peers: bool, rbm_epochs: int | None) -> dict[str, ModelFactory]:
    """The models of one dataset and seed, each built fresh for the split."""
    models: dict[str, ModelFactory] = {
        RBM: lambda: RBMRecommender(RecommenderConfig(seed=seed, epochs=rbm_epochs)),
        EASE_NAME: lambda: EASE(lambdas=EASE_LAMBDAS, min_users=1 if ratings.n_items <= EASE_FULL_ITEMS else 2),
        POPULAR: lambda: TrainOnValidationToo(MostPopular()),
    }
    if not ratings.is_implicit:
        models[RBM_RATER] = lambda: RBMRecommender(RecommenderConfig(kind="ratings", seed=seed, epochs=rbm_epochs))
        models["user+item biases"] = lambda: TrainOnValidationToo(BiasBaseline())
    if peers:
        wanted = ["als"] + ([] if ratings.is_implicit else ["baseline", "svd", "knn"])
        found, missing = peer_factories(wanted, seed)
        for message in missing:
            print(message, flush=True)
        models.update(found)
    return models


def splits_of(ratings: Ratings, seeds: list[int]) -> list[Split]:
    """The random 80/20 split of each seed (its validation slice carved from the 80%), named by its seed."""
    splits = []
    for seed in seeds:
        fractions = {"test_fraction": TEST_FRACTION, "validation_fraction": VALIDATION_FRACTION}
        split = random_split(ratings, 0, **fractions, seed=seed)
        splits.append(replace(split, name=f"seed {seed}"))
    return splits


def run_dataset(
    name: str, ratings: Ratings, seeds: list[int], relevant: float, peers: bool, rbm_epochs: int | None
) -> EvaluationReport:
    """Every model on every seed's split of one dataset, each split's models fitted on the same rows."""
    threshold = 1.0 if ratings.is_implicit else relevant
    reports = []
    for split in splits_of(ratings, seeds):
        models = factories(ratings, split.seed or 0, peers, rbm_epochs)
        rankers = [m for m in models if m in RANKERS]
        reports.append(evaluate(models, [split], k=10, threshold=threshold, progress=_progress(name), rank=rankers))
    first = reports[0]
    return EvaluationReport(
        k=first.k,
        threshold=first.threshold,
        folds=[fold for report in reports for fold in report.folds],
        splits=[split for report in reports for split in report.splits],
        created=first.created,
        notes={"dataset": name, "seeds": seeds},
    )


def _progress(dataset: str) -> Callable[[ProgressEvent], None]:
    def show(event: ProgressEvent) -> None:
        if event.stage == "done" and event.fold is not None:
            fold = event.fold
            ranking = "" if fold.ranking is None else f"NDCG@10 {fold.ranking.ndcg:.4f}  "
            accuracy = "" if fold.rmse is None else f"RMSE {fold.rmse:.4f}  "
            where = f"[{dataset} {event.split}] {event.model}"
            print(f"{where}: {ranking}{accuracy}fit {fold.fit_seconds:.1f} s", flush=True)

    return show


# --- tables ----------------------------------------------------------------------------------------------


def _pm(values: list[float], digits: int = 4) -> str:
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.{digits}f} ± {spread:.{digits}f}"


def render_dataset(name: str, ratings: Ratings, report: EvaluationReport) -> str:
    kind = "implicit" if ratings.is_implicit else f"ratings {', '.join(f'{v:g}' for v in ratings.rating_values)}"
    relevant = "any test interaction" if ratings.is_implicit else f"test rating ≥ {report.threshold:g}"
    lines = [
        f"{name}: {len(ratings):,} rows, {ratings.n_users:,} users × {ratings.n_items:,} items ({kind}); "
        f"{len(report.splits)} seeds; relevant: {relevant}",
    ]
    if ratings.n_items > EASE_FULL_ITEMS:
        lines.append(f"  EASE models the items with at least two users (more than {EASE_FULL_ITEMS:,} items)")
    header = f"  {'model':<22} {'NDCG@10':>17} {'P@10':>17} {'R@10':>7} {'cover@10':>9} {'fit s':>8}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    rows = []
    for model in report.models:
        folds = [f for f in report.folds if f.model == model and f.ranking is not None]
        if folds:
            rows.append((np.mean([f.ranking.ndcg for f in folds]), model, folds))
    for _, model, folds in sorted(rows, key=lambda row: -row[0]):
        lines.append(
            f"  {model:<22} {_pm([f.ranking.ndcg for f in folds]):>17} {_pm([f.ranking.precision for f in folds]):>17} "
            f"{np.mean([f.ranking.recall for f in folds]):>7.4f} {np.mean([f.ranking.coverage for f in folds]):>9.4f} "
            f"{np.mean([f.fit_seconds for f in folds]):>8.1f}"
        )
    raters = [m for m in report.models if m not in RANKERS]  # the rankers' RMSE is beside the point
    rated = [(m, [f for f in report.folds if f.model == m and f.rmse is not None]) for m in raters]
    rated = [(m, folds) for m, folds in rated if folds]
    if rated:
        lines += ["", f"  {'model':<22} {'RMSE':>17} {'MAE':>17} {'fit s':>8}"]
        for model, folds in sorted(rated, key=lambda row: np.mean([f.rmse for f in row[1]])):
            lines.append(
                f"  {model:<22} {_pm([f.rmse for f in folds]):>17} {_pm([f.mae for f in folds]):>17} "
                f"{np.mean([f.fit_seconds for f in folds]):>8.1f}"
            )
    return "\n".join(lines)


def render_summary(results: dict[str, EvaluationReport]) -> str:
    def mean_ndcg(report: EvaluationReport, model: str) -> float | None:
        values = [f.ranking.ndcg for f in report.folds if f.model == model and f.ranking is not None]
        return float(np.mean(values)) if values else None

    header = f"{'dataset':<14}" + "".join(f"{m:>16}" for m in RANKERS) + f"{'RBM ÷ EASE':>12}"
    lines = ["Mean NDCG@10 over the seeds", header, "-" * len(header)]
    for name, report in results.items():
        cells = [mean_ndcg(report, m) for m in RANKERS]
        ratio = cells[0] / cells[1] if cells[0] is not None and cells[1] else None
        lines.append(
            f"{name:<14}"
            + "".join(f"{'—' if c is None else f'{c:.4f}':>16}" for c in cells)
            + f"{'—' if ratio is None else f'{ratio:.3f}':>12}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $RBM_REC_DATA, then data/)")
    parser.add_argument("--datasets", default=",".join(READERS), help=f"a subset of {','.join(READERS)}")
    parser.add_argument("--table", action="append", default=[], help="also your own ratings table (repeatable)")
    parser.add_argument("--user-col", default=None)
    parser.add_argument("--item-col", default=None)
    parser.add_argument("--rating-col", default=None)
    parser.add_argument("--implicit", action="store_true", help="--table is implicit feedback")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--relevant", type=float, default=4.0, help="explicit data: relevant = test rating ≥ this")
    parser.add_argument("--skip-peers", action="store_true", help="leave implicit's and surprise's models out")
    parser.add_argument("--rbm-epochs", type=int, default=None, help="cap the RBMs' epochs (default: their own)")
    parser.add_argument("--json", default=None, help="also write every fold's figures here")
    args = parser.parse_args(argv)

    loaders = chosen_datasets(parser, args.data_dir, args.datasets)
    for path in args.table:
        options = {"user_col": args.user_col, "item_col": args.item_col, "rating_col": args.rating_col}
        loaders[Path(path).name] = lambda path=path, options=options: _table(path, implicit=args.implicit, **options)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    started = time.perf_counter()
    results, tables = {}, []
    for name, load in loaders.items():
        ratings = load()
        began = time.perf_counter()
        results[name] = run_dataset(name, ratings, seeds, args.relevant, not args.skip_peers, args.rbm_epochs)
        wall = f"\n  wall time {time.perf_counter() - began:.0f} s"
        tables.append(render_dataset(name, ratings, results[name]) + wall)
    print()
    print("\n\n".join(tables))
    print()
    print(render_summary(results))
    print(f"\ntotal {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPU threads")
    if args.json:
        payload = {name: report.to_dict() for name, report in results.items()}
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
