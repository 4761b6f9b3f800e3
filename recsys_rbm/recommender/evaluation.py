"""The evaluation harness: every model, the same splits, the same metrics, in one run.

For each split and each model, :func:`evaluate` builds a fresh model from its factory and

1. **fits** it on ``split.train`` (with ``split.validation`` for early stopping) — timed;
2. **predicts** every test pair — timed; RMSE and MAE over all test pairs, and over the *warm*
   ones (user and item both seen in training) for comparison; cold pairs (user or item unseen in
   training, counted from the split, not the model) get whatever fallback the model documents;
3. **ranks** (optional) the whole catalogue for every test user — timed: candidates are the
   items the user has not rated in training or validation (both were shown to the model; neither
   is in test); relevant items are the test ratings ``≥ threshold``; metrics at ``k`` as defined
   in :mod:`recsys_rbm.recommender.metrics`.

A model that does not predict ratings (an implicit-feedback ranker) may return NaN from
``predict``; its rating metrics are then ``None``. Results are aggregated per model as mean and
sample standard deviation (``ddof = 1``; 0 for a single split) over splits. The report is plain
data: :meth:`EvaluationReport.to_dict` for a command-line table, :meth:`EvaluationReport.to_json`
for files (written atomically). Nothing here prints.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np

from recsys_rbm.data.ratings import Ratings
from recsys_rbm.io.atomic import atomic_write_text
from recsys_rbm.recommender.metrics import RankingAccumulator, RankingResult, mae, rmse
from recsys_rbm.recommender.protocol import Recommender

ModelFactory = Callable[[], Recommender]  # a fresh, unfitted model per split

REPORT_FORMAT = 1  # version of the JSON layout written by EvaluationReport.to_json
SCORE_BUDGET = 1 << 24  # most score-matrix entries held at once while ranking (128 MiB of float64)


class SplitLike(Protocol):
    """What the harness needs of a split (:class:`recsys_rbm.recommender.splits.Split` is one)."""

    name: str
    train: Ratings
    validation: Ratings
    test: Ratings


@dataclass(frozen=True)
class ProgressEvent:
    """Where the harness is, for a progress display: ``stage`` is ``"fit"``, ``"predict"``, ``"rank"`` or ``"done"``."""

    model: str
    split: str
    stage: str
    split_index: int  # 0-based position of the split
    n_splits: int
    model_index: int  # 0-based position of the model
    n_models: int
    fold: FoldResult | None = None  # set when stage == "done"


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class FoldResult:
    """One model on one split."""

    model: str
    split: str
    fit_seconds: float
    predict_seconds: float  # all test pairs
    rank_seconds: float | None  # the whole catalogue for every test user; None when not ranked
    rmse: float | None  # all test pairs; None if the model predicts no ratings
    mae: float | None
    rmse_warm: float | None  # test pairs whose user and item were both seen in training
    mae_warm: float | None
    n_test: int
    n_cold: int  # test pairs with an unseen user or item
    ranking: RankingResult | None

    def metrics(self) -> dict[str, float | None]:
        """Flat numbers that are aggregated over splits (ranking ones prefixed by their name, e.g. ``ndcg``)."""
        values: dict[str, float | None] = {
            "rmse": self.rmse,
            "mae": self.mae,
            "rmse_warm": self.rmse_warm,
            "mae_warm": self.mae_warm,
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "rank_seconds": self.rank_seconds,
        }
        if self.ranking is not None:
            for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
                values[name] = getattr(self.ranking, name)
        return values

    def to_dict(self) -> dict[str, Any]:
        """Plain data; a NaN ranking average (no user with a relevant item) becomes ``None``."""
        data = asdict(self)
        if self.ranking is not None:
            data["ranking"] = {
                name: None if isinstance(value, float) and math.isnan(value) else value
                for name, value in self.ranking.to_dict().items()
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoldResult:
        values = dict(data)
        ranking = values.pop("ranking")
        if ranking is not None:
            ranking = RankingResult(**{name: math.nan if value is None else value for name, value in ranking.items()})
        return cls(**values, ranking=ranking)


@dataclass(frozen=True)
class Summary:
    """Mean ± sample std over the splits where the metric exists (``n`` of them)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Summary | None:
        present = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
        if present.size == 0:
            return None
        std = float(present.std(ddof=1)) if present.size > 1 else 0.0
        return cls(float(present.mean()), std, int(present.size))


@dataclass
class EvaluationReport:
    """Every fold result of an :func:`evaluate` run, the split facts, and per-model summaries."""

    k: int
    threshold: float
    folds: list[FoldResult]
    splits: list[dict[str, Any]]  # per split: name, sizes, cold-pair counts (the same for every model)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    notes: dict[str, Any] = field(default_factory=dict)  # free-form context: dataset, seed, versions, configs
    complete: bool = True  # False: the run was interrupted and ``folds`` holds only those that finished

    @property
    def models(self) -> list[str]:
        """Model names in the order they were evaluated."""
        return list(dict.fromkeys(fold.model for fold in self.folds))

    def results_for(self, model: str) -> list[FoldResult]:
        return [fold for fold in self.folds if fold.model == model]

    def summary(self) -> dict[str, dict[str, Summary | None]]:
        """``{model: {metric: Summary or None}}``, mean ± std over splits."""
        table: dict[str, dict[str, Summary | None]] = {}
        for model in self.models:
            results = [fold.metrics() for fold in self.results_for(model)]
            names = list(dict.fromkeys(name for result in results for name in result))
            table[model] = {name: Summary.of([result.get(name) for result in results]) for name in names}
        return table

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: configuration, splits, per-fold results and per-model summaries.

        ``summary`` is a list of rows ``{"model": name, "rmse": {"mean", "std", "n"} | None, ...}``
        in evaluation order, ready for a table. ``complete`` is false for the report of an
        interrupted run, which holds the folds that finished.
        """
        summary_rows = [
            {"model": model, **{name: None if s is None else asdict(s) for name, s in metrics.items()}}
            for model, metrics in self.summary().items()
        ]
        return {
            "format": REPORT_FORMAT,
            "created": self.created,
            "k": self.k,
            "threshold": self.threshold,
            "models": self.models,
            "splits": self.splits,
            "summary": summary_rows,
            "folds": [fold.to_dict() for fold in self.folds],
            "notes": self.notes,
            "complete": self.complete,
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as indented JSON, atomically (a temporary file renamed into place)."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_json_default) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if data.get("format") != REPORT_FORMAT:
            raise ValueError(f"unsupported evaluation report format {data.get('format')!r}")
        return cls(
            k=int(data["k"]),
            threshold=float(data["threshold"]),
            folds=[FoldResult.from_dict(fold) for fold in data["folds"]],
            splits=list(data["splits"]),
            created=str(data["created"]),
            notes=dict(data.get("notes", {})),
            complete=bool(data.get("complete", True)),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> Self:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# ---------------------------------------------------------------------------------------------


def concatenate(first: Ratings, second: Ratings) -> Ratings:
    """The triples of both rating sets (same id maps and scale) as one :class:`Ratings`."""
    if first.n_users != second.n_users or first.n_items != second.n_items:
        raise ValueError("the rating sets do not share an id space")
    timestamps = None
    if first.timestamps is not None and second.timestamps is not None:
        timestamps = np.concatenate([first.timestamps, second.timestamps])
    return Ratings(
        np.concatenate([first.users, second.users]),
        np.concatenate([first.items, second.items]),
        np.concatenate([first.levels, second.levels]),
        first.user_ids,
        first.item_ids,
        first.rating_values,
        timestamps,
    )


class TrainOnValidationToo:
    """Wrap a model that has no use for a validation set so that it trains on ``train ∪ validation``.

    Models without early stopping (the baselines, surprise's SVD …) would otherwise simply lose
    the held-out part; wrapped, they see exactly the data the split's base file holds, as in
    published results, while a model that early-stops still gets its validation set. Delegates
    ``predict`` and ``score_items``; exposes the wrapped model as ``.model``.
    """

    def __init__(self, model: Recommender) -> None:
        self.model = model
        self.name = model.name

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        self.model.fit(train if validation is None or len(validation) == 0 else concatenate(train, validation), None)
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.model.predict_indices(users, items)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        return self.model.score_items(users)


def _csr_by_user(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr (n_users+1,), items grouped by user)."""
    order = np.argsort(users, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    return indptr, items[order]


def _gather_rows(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For CSR rows ``rows``: (position of each entry's row within ``rows``, the entries), vectorised."""
    starts, stops = indptr[rows], indptr[rows + 1]
    lengths = stops - starts
    owner = np.repeat(np.arange(rows.shape[0]), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, values[np.repeat(starts, lengths) + offsets]


def rank_users(
    model: Recommender,
    seen: Ratings,
    test: Ratings,
    *,
    k: int = 10,
    threshold: float = 4.0,
    batch_size: int | None = None,
) -> RankingResult:
    """Rank the whole catalogue for every user with a ``test`` rating and score the top-k lists.

    Each batch is one ``model.score_items`` call, ``(B,) -> (B, n_items)``; items in ``seen``
    (what the model was shown: training, and validation when there is one) are set to ``-inf``
    and are never candidates. Relevant: test ratings ``≥ threshold``. ``batch_size`` defaults to
    as many users as fit :data:`SCORE_BUDGET` score entries.
    """
    n_items = test.n_items
    users = np.unique(test.users)
    relevant = test.values >= threshold
    accumulator = RankingAccumulator(k, n_items, test.users[relevant], test.items[relevant])
    if batch_size is None:
        batch_size = max(1, SCORE_BUDGET // max(n_items, 1))
    indptr, seen_items = _csr_by_user(seen.users, seen.items, seen.n_users)
    for start in range(0, users.shape[0], batch_size):
        batch = users[start : start + batch_size]
        scores = np.array(model.score_items(batch), dtype=np.float64)  # (B, n_items), a writable copy
        if scores.shape != (batch.shape[0], n_items):
            raise ValueError(f"{model.name}.score_items returned {scores.shape}, expected {(batch.shape[0], n_items)}")
        owner, items = _gather_rows(indptr, seen_items, batch)
        scores[owner, items] = -np.inf
        accumulator.add(batch, scores)
    return accumulator.result()


def _cold_pairs(train: Ratings, test: Ratings) -> np.ndarray:
    seen_users = np.bincount(train.users, minlength=train.n_users) > 0
    seen_items = np.bincount(train.items, minlength=train.n_items) > 0
    return ~(seen_users[test.users] & seen_items[test.items])


def _fit_data(split: SplitLike) -> Ratings:
    """What a model may have learned from: training plus validation."""
    validation = split.validation
    return split.train if validation is None or len(validation) == 0 else concatenate(split.train, validation)


def split_facts(split: SplitLike) -> dict[str, Any]:
    """Sizes and cold-test counts of a split (from the split alone, the same for every model)."""
    cold = _cold_pairs(split.train, split.test)
    seen_users = np.bincount(split.train.users, minlength=split.train.n_users) > 0
    seen_items = np.bincount(split.train.items, minlength=split.train.n_items) > 0
    validation = split.validation
    return {
        "name": split.name,
        "train": len(split.train),
        "validation": 0 if validation is None else len(validation),
        "test": len(split.test),
        "test_users": int(np.unique(split.test.users).shape[0]),
        "cold_test_ratings": int(cold.sum()),
        "cold_test_user_ratings": int((~seen_users[split.test.users]).sum()),
        "cold_test_item_ratings": int((~seen_items[split.test.items]).sum()),
    }


def evaluate_split(
    model: Recommender,
    split: SplitLike,
    *,
    k: int = 10,
    threshold: float = 4.0,
    rank: bool = True,
    batch_size: int | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> FoldResult:
    """Fit ``model`` on one split and measure it (see the module docstring)."""
    if len(split.test) == 0:
        raise ValueError(f"split {split.name!r} has no test ratings")

    def stage(name: str) -> None:
        if on_stage is not None:
            on_stage(name)

    stage("fit")
    validation = split.validation if split.validation is not None and len(split.validation) else None
    started = time.perf_counter()
    model.fit(split.train, validation)
    fit_seconds = time.perf_counter() - started

    stage("predict")
    test = split.test
    started = time.perf_counter()
    predicted = np.asarray(model.predict_indices(test.users, test.items), dtype=np.float64)
    predict_seconds = time.perf_counter() - started
    if predicted.shape != (len(test),):
        raise ValueError(f"{model.name}.predict returned shape {predicted.shape}, expected {(len(test),)}")
    actual = test.values
    cold = _cold_pairs(split.train, test)
    predicts = bool(np.isfinite(predicted).all())
    warm = ~cold
    accuracy: dict[str, float | None] = {
        "rmse": rmse(predicted, actual) if predicts else None,
        "mae": mae(predicted, actual) if predicts else None,
        "rmse_warm": rmse(predicted[warm], actual[warm]) if predicts and warm.any() else None,
        "mae_warm": mae(predicted[warm], actual[warm]) if predicts and warm.any() else None,
    }

    ranking: RankingResult | None = None
    rank_seconds: float | None = None
    if rank:
        stage("rank")
        started = time.perf_counter()
        ranking = rank_users(model, _fit_data(split), test, k=k, threshold=threshold, batch_size=batch_size)
        rank_seconds = time.perf_counter() - started

    return FoldResult(
        model=model.name,
        split=split.name,
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        rank_seconds=rank_seconds,
        n_test=len(test),
        n_cold=int(cold.sum()),
        ranking=ranking,
        **accuracy,
    )


def evaluate(
    models: Mapping[str, ModelFactory],
    splits: Sequence[SplitLike],
    k: int = 10,
    threshold: float = 4.0,
    progress: ProgressCallback | None = None,
    *,
    rank: bool | Collection[str] = True,
    batch_size: int | None = None,
    notes: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Run every model on every split and collect an :class:`EvaluationReport`.

    Parameters
    ----------
    models : ``{display name: factory}``; each factory returns a fresh unfitted model, called once
        per split, so no model carries state from one split to the next. The display name (not the
        model's ``name`` attribute) labels the results.
    splits : the splits, each with ``name``, ``train``, ``validation`` (may be empty) and ``test``.
    k, threshold : ranking list length and relevance threshold (``rating ≥ threshold``).
    progress : called with a :class:`ProgressEvent` before each stage and when a fold is done.
    rank : ``True`` ranks for every model, ``False`` for none, or the display names to rank for
        (ranking a model that scores items slowly can dominate a run).
    batch_size : users per ``score_items`` call (default: by memory budget).
    notes : context stored in the report (dataset, seed, configurations).
    """
    if not models:
        raise ValueError("no models to evaluate")
    if not splits:
        raise ValueError("no splits to evaluate on")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    folds: list[FoldResult] = []
    names = list(models)
    for split_index, split in enumerate(splits):
        for model_index, name in enumerate(names):

            def emit(
                stage: str,
                fold: FoldResult | None = None,
                *,
                _position: tuple[str, str, int, int] = (name, split.name, split_index, model_index),
            ) -> None:
                if progress is not None:
                    model_name, split_name, si, mi = _position
                    progress(ProgressEvent(model_name, split_name, stage, si, len(splits), mi, len(names), fold))

            ranks = rank if isinstance(rank, bool) else name in rank
            model = models[name]()
            result = evaluate_split(
                model, split, k=k, threshold=threshold, rank=ranks, batch_size=batch_size, on_stage=emit
            )
            result = replace(result, model=name)
            folds.append(result)
            emit("done", result)
    return EvaluationReport(
        k=k,
        threshold=float(threshold),
        folds=folds,
        splits=[split_facts(split) for split in splits],
        notes=dict(notes or {}),
    )
