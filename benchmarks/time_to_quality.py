"""Time to quality: how soon the default ``rbm-rec train ratings`` reaches its best validation NDCG@10.

Run:  RBM_REC_DATA=../shared/data python benchmarks/time_to_quality.py [--datasets ml-100k,filmtrust,lastfm-2k,coat]
      [--synthetic 400000] [--seed 0] [--skip-peers] [--threads 1] [--json results.json]

For each dataset found under the data folder (``--data-dir``, else ``$RBM_REC_DATA``, else ``data/``; read
by :data:`datasets.READERS`) and, with ``--synthetic N``, a generated long-tailed table of ``N`` ratings by
3,000 users of 3,600 items (:func:`~recsys_rbm.recommender.synthetic.long_tailed_ratings`), it trains the
RBM exactly as ``rbm-rec train ratings FILE`` does by default: the whole table, a seeded 5% held out as the
validation slice (:func:`~recsys_rbm.recommender.splits.full_split`), ``RBMRecommender`` with its own
defaults (the joint model, early stopping on validation NDCG@10). From the per-epoch records it reads:

- **best**: the best validation NDCG@10, and the epoch and wall seconds (since ``fit`` was called, setup
  included) at which it was first reached;
- **1%**: the first epoch, and its wall seconds, whose validation NDCG@10 is within 1% of that best
  (``ndcg ≥ 0.99 · best``);
- **stop**: the epoch at which early stopping ended training, and the whole ``fit`` in seconds.

Beside them, fitted on the same training rows in the same run, and scored on the same validation slice
(liked validation items relevant, training items never candidates, as the RBM's early stopping scores it):

- **EASE**, λ chosen by validation NDCG@10 from :data:`datasets.EASE_LAMBDAS` and refitted on training and
  validation together, as ``benchmarks/datasets.py`` does; ``EASE s`` is that whole fit (ten λ and the
  refit), ``1 λ s`` one fit at the chosen λ;
- **ALS** (implicit's, 64 factors, 15 iterations; ``benchmarks/peers.py``), fitted on the training rows.

The figures are wall seconds on whatever else the machine is doing: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import EASE_FULL_ITEMS, EASE_LAMBDAS, READERS, chosen_datasets
from peers import ImplicitALSAdapter, importable

from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.baselines import EASE
from recsys_rbm.recommender.config import like_threshold
from recsys_rbm.recommender.metrics import RankingAccumulator
from recsys_rbm.recommender.model import VALIDATION_FRACTION, RBMRecommender
from recsys_rbm.recommender.splits import full_split
from recsys_rbm.recommender.synthetic import long_tailed_ratings
from recsys_rbm.train.trainer import EpochRecord

TOLERANCE = 0.01  # "near": within 1% of the best validation NDCG@10
SYNTHETIC_USERS, SYNTHETIC_ITEMS = 3_000, 3_600


# --- the curve -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeToQuality:
    """What one validation curve says about how fast training got good."""

    best_ndcg: float  # the best validation NDCG@10 of any epoch
    best_epoch: int  # the first epoch (1-based) that reached it
    best_seconds: float  # wall seconds at the end of that epoch
    near_epoch: int  # the first epoch within the tolerance of the best
    near_seconds: float
    stopped_epoch: int  # the last epoch trained


def time_to_quality(
    epochs: list[int], ndcg: list[float], seconds: list[float], tolerance: float = TOLERANCE
) -> TimeToQuality:
    """Read a curve: ``ndcg[i]`` measured at the end of epoch ``epochs[i]``, ``seconds[i]`` after training began.

    ``near`` is the first epoch with ``ndcg ≥ (1 − tolerance) · best``; ``best`` the first with ``ndcg = best``.
    """
    if not epochs or not len(epochs) == len(ndcg) == len(seconds):
        raise ValueError("need one NDCG and one time per epoch, and at least one epoch")
    values = np.asarray(ndcg, dtype=np.float64)
    best = float(values.max())
    first_best = int(np.argmax(values >= best))
    first_near = int(np.argmax(values >= (1.0 - tolerance) * best))
    return TimeToQuality(
        best_ndcg=best,
        best_epoch=epochs[first_best],
        best_seconds=seconds[first_best],
        near_epoch=epochs[first_near],
        near_seconds=seconds[first_near],
        stopped_epoch=epochs[-1],
    )


# --- the models --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One dataset's figures."""

    dataset: str
    ratings: int
    users: int
    items: int
    rbm: TimeToQuality
    rbm_fit_seconds: float
    rbm_kept_epoch: int | None  # the epoch the model keeps (the trainer's best)
    ease_seconds: float | None = None  # λ search and refit
    ease_one_seconds: float | None = None  # one fit at the chosen λ
    ease_lambda: float | None = None
    ease_ndcg: float | None = None  # validation NDCG@10 at the chosen λ (fitted on the training rows)
    als_seconds: float | None = None
    als_ndcg: float | None = None


def train_rbm(train: Ratings, validation: Ratings, seed: int) -> tuple[TimeToQuality, float, int | None]:
    """The default RBM on ``train``, early-stopped on ``validation``: its curve read, ``fit``'s seconds, kept epoch."""
    model = RBMRecommender(seed=seed)
    records: list[EpochRecord] = []
    seconds: list[float] = []
    started = time.perf_counter()

    def on_epoch(record: EpochRecord) -> None:
        seconds.append(time.perf_counter() - started)
        records.append(record)
        ndcg = record.measures.get("validation_ndcg")
        print(f"  epoch {record.epoch:>3}  validation NDCG@10 {ndcg:.4f}  {seconds[-1]:6.1f} s", flush=True)

    model.fit(train, validation, progress=on_epoch)
    curve = time_to_quality(
        [r.epoch for r in records], [float(r.measures["validation_ndcg"] or 0.0) for r in records], seconds
    )
    return curve, float(model.fit_seconds or 0.0), model.best_epoch


def validation_ndcg(scores_of: Any, train: Ratings, validation: Ratings) -> float:
    """NDCG@10 on the validation slice as the RBM's early stopping measures it: each user with a liked validation
    item is ranked over every item they have no training row for; their liked validation items are relevant."""
    liked = validation.values >= like_threshold(train.rating_values)
    users = np.unique(validation.users[liked])
    accumulator = RankingAccumulator(10, train.n_items, validation.users[liked], validation.items[liked])
    row = np.full(train.n_users, -1)
    row[users] = np.arange(users.shape[0])
    owner = row[train.users]  # each training row's place among the ranked users, -1 for the others
    step = max(1, (1 << 22) // max(train.n_items, 1))
    for start in range(0, users.shape[0], step):
        batch = users[start : start + step]
        scores = np.array(scores_of(batch), dtype=np.float64)  # (B, n_items)
        seen = (owner >= start) & (owner < start + batch.shape[0])
        scores[owner[seen] - start, train.items[seen]] = -np.inf
        accumulator.add(batch, scores)
    return float(accumulator.result().ndcg)


def fit_ease(train: Ratings, validation: Ratings) -> dict[str, float]:
    min_users = 1 if train.n_items <= EASE_FULL_ITEMS else 2
    started = time.perf_counter()
    model = EASE(lambdas=EASE_LAMBDAS, min_users=min_users).fit(train, validation)
    seconds = time.perf_counter() - started
    chosen = float(model.chosen_lambda or EASE_LAMBDAS[0])
    started = time.perf_counter()
    EASE(lambdas=(chosen,), min_users=min_users).fit(train, validation)
    return {
        "ease_seconds": seconds,
        "ease_one_seconds": time.perf_counter() - started,
        "ease_lambda": chosen,
        "ease_ndcg": model.validation_ndcg.get(chosen, float("nan")),
    }


def fit_als(train: Ratings, validation: Ratings, seed: int) -> dict[str, float]:
    started = time.perf_counter()
    model = ImplicitALSAdapter(seed=seed).fit(train)
    seconds = time.perf_counter() - started
    return {"als_seconds": seconds, "als_ndcg": validation_ndcg(model.score_items, train, validation)}


def run_dataset(name: str, ratings: Ratings, seed: int, peers: bool) -> Row:
    split = full_split(ratings, VALIDATION_FRACTION, seed)  # as `rbm-rec train ratings` splits the table
    print(
        f"{name}: {len(ratings):,} rows, {ratings.n_users:,} users × {ratings.n_items:,} items; "
        f"{len(split.train):,} training, {len(split.validation):,} validation",
        flush=True,
    )
    curve, fit_seconds, kept = train_rbm(split.train, split.validation, seed)
    row = Row(name, len(ratings), ratings.n_users, ratings.n_items, curve, fit_seconds, kept)
    if peers:
        figures = fit_ease(split.train, split.validation)
        if importable("implicit.als"):
            figures |= fit_als(split.train, split.validation, seed)
        else:
            print("  implicit is not installed: no ALS (pip install implicit)", flush=True)
        for key, value in figures.items():
            setattr(row, key, value)
    return row


# --- the table ------------------------------------------------------------------------------------------------


HEADER = (
    f"{'dataset':<16}{'ratings':>9}{'best':>8}{'ep':>5}{'s':>7}{'1%':>5}{'s':>7}{'stop':>6}{'fit s':>8}"
    f"{'1% ÷ fit':>10}  {'EASE':>7}{'λ':>6}{'EASE s':>8}{'1 λ s':>7}  {'ALS':>7}{'ALS s':>7}"
)


def render_row(r: Row) -> str:
    def cell(value: float | None, form: str, width: int) -> str:
        return f"{'—' if value is None else format(value, form):>{width}}"

    c = r.rbm
    return (
        f"{r.dataset:<16}{r.ratings:>9,}{c.best_ndcg:>8.4f}{c.best_epoch:>5}{c.best_seconds:>7.1f}"
        f"{c.near_epoch:>5}{c.near_seconds:>7.1f}{c.stopped_epoch:>6}{r.rbm_fit_seconds:>8.1f}"
        f"{c.near_seconds / r.rbm_fit_seconds:>10.2f}  "
        f"{cell(r.ease_ndcg, '.4f', 7)}{cell(r.ease_lambda, 'g', 6)}{cell(r.ease_seconds, '.1f', 8)}"
        f"{cell(r.ease_one_seconds, '.2f', 7)}  {cell(r.als_ndcg, '.4f', 7)}{cell(r.als_seconds, '.1f', 7)}"
    )


def render(rows: list[Row]) -> str:
    lines = [
        "RBM (default `train ratings`): best validation NDCG@10, the first epoch and wall seconds reaching it,",
        "the first within 1% of it, the epoch training stopped, the whole fit; EASE and ALS on the same slice",
        HEADER,
        "-" * len(HEADER),
    ]
    return "\n".join(lines + [render_row(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $RBM_REC_DATA, then data/)")
    parser.add_argument("--datasets", default=",".join(READERS), help=f"a subset of {','.join(READERS)}; '' for none")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        help=f"also a generated table of this many ratings ({SYNTHETIC_USERS:,} users × {SYNTHETIC_ITEMS:,} items)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the split's and the models' seed")
    parser.add_argument("--skip-peers", action="store_true", help="the RBM only: no EASE, no ALS")
    parser.add_argument("--threads", type=int, default=0, help="torch's CPU threads (default: torch's own choice)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    loaders = chosen_datasets(parser, args.data_dir, args.datasets)
    if args.synthetic:
        n = args.synthetic
        loaders[f"synthetic {n // 1000}k"] = lambda: long_tailed_ratings(
            SYNTHETIC_USERS, SYNTHETIC_ITEMS, n, seed=args.seed
        )
    started = time.perf_counter()
    rows = []
    for name, load in loaders.items():
        rows.append(run_dataset(name, load(), args.seed, not args.skip_peers))
        print(f"{HEADER}\n{render_row(rows[-1])}", flush=True)  # each row as it is done
    print()
    print(render(rows))
    threads = f"torch on {torch.get_num_threads()} of {os.cpu_count()} CPU threads"
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {threads}")
    if args.json:
        payload = [asdict(row) for row in rows]
        Path(args.json).write_text(json.dumps(payload, indent=1), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
