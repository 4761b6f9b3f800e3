"""Imagined users against real ones: profiles sampled from the joint RBM compared with ml-100k's users, one run.

Run:  RBM_REC_DATA=../shared/data python benchmarks/imagine_profiles.py [--profiles 500]
      [--steps 1,3,10,30,100] [--cd 1,10] [--seed 0]

For each CD schedule in ``--cd`` a joint RBM (the library's defaults otherwise: early stopping on
validation NDCG@10 over 5 % of the training ratings) is trained on ml-100k's ``u1.base``, and
``--profiles`` profiles are sampled with nothing clamped (``rbm-rec imagine`` with no movie given):
one block Gibbs chain per profile from the empty profile, stopped after each number of steps in
``--steps`` (:func:`~recsys_rbm.recommender.profiles.sample_profiles`, same seed: a longer
run continues the same chains). Beside them, the same number of
profiles from **independent base rates**: each movie picked with its share of users, its rating
drawn from its own rating frequencies (a model without hidden units).

Each profile is summarised by three numbers, compared with the 943 real users of ``u1.base``: its
number of ratings, its mean rating, and the mean popularity of its movies (popularity: a movie's
number of ratings in ``u1.base``). The table prints each distribution's median and the two-sample
Kolmogorov–Smirnov distance ``D = sup_x |F_sampled(x) − F_real(x)|`` (0: the same distribution,
1: disjoint).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from recsys_rbm.data.movielens import canonical_fold, load_movielens
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.profiles import imagine
from recsys_rbm.recommender.splits import carve_validation

STATISTICS = ("ratings", "mean rating", "popularity")


def summaries(levels: np.ndarray, rating_values: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Per profile (rows of ``levels``, −1 where not picked): (ratings, mean rating, mean popularity); -> (P, 3).

    An empty profile has NaN mean rating and popularity (left out of the comparison)."""
    picked = levels >= 0
    count = picked.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rating = np.where(picked, rating_values[np.maximum(levels, 0)], 0.0).sum(1) / count
        mean_popularity = (picked * popularity).sum(1) / count
    return np.stack([count.astype(np.float64), mean_rating, mean_popularity], 1)


def real_profiles(train: Ratings) -> np.ndarray:
    """The training users' profiles as (users, items) levels, −1 where not rated."""
    levels = np.full((train.n_users, train.n_items), -1, dtype=np.int64)
    levels[train.users, train.items] = train.levels
    return levels[np.bincount(train.users, minlength=train.n_users) > 0]


def base_rate_profiles(train: Ratings, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` profiles with every movie picked independently at its share of users, rated from its own frequencies."""
    n_users = int((np.bincount(train.users, minlength=train.n_users) > 0).sum())
    counts = np.bincount(train.items * train.n_levels + train.levels, minlength=train.n_items * train.n_levels)
    counts = counts.reshape(train.n_items, train.n_levels).astype(np.float64)
    raters = counts.sum(1)
    picked = rng.random((n, train.n_items)) < raters / n_users
    cumulative = np.cumsum(counts / np.maximum(raters, 1)[:, None], 1)  # (items, K)
    drawn = (cumulative[None] < rng.random((n, train.n_items, 1))).sum(-1).clip(max=train.n_levels - 1)
    return np.where(picked, drawn, -1)


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(a[np.isfinite(a)], b[np.isfinite(b)]).statistic)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=500)
    parser.add_argument("--steps", default="1,3,10,30,100", help="Gibbs steps per profile (comma-separated)")
    parser.add_argument("--cd", default="1,10", help="CD-T of each RBM trained (comma-separated T)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    dataset = load_movielens("ml-100k")
    base, _ = canonical_fold(dataset, "u1")
    popularity = np.bincount(base.items, minlength=base.n_items).astype(np.float64)
    real = summaries(real_profiles(base), base.rating_values, popularity)
    print(f"u1.base: {len(base):,} ratings by {real.shape[0]} users; {args.profiles} profiles per model", flush=True)
    rows = [("real users of u1.base", real)]
    notes = []
    train, validation = carve_validation(base, 0.05, args.seed)
    for steps_t in (int(t) for t in args.cd.split(",")):
        config = RecommenderConfig(kind="joint", cd_schedule=((0, steps_t),), seed=args.seed, device="cpu")
        fit_started = time.perf_counter()
        model = RBMRecommender(config).fit(train, validation)
        fit_seconds = time.perf_counter() - fit_started
        timings = []
        for steps in (int(s) for s in args.steps.split(",")):
            sample_started = time.perf_counter()
            with torch.no_grad():
                levels = imagine(model.scorer, [], [], n=args.profiles, steps=steps, seed=args.seed)
            timings.append(f"{steps} steps {time.perf_counter() - sample_started:.1f} s")
            rows.append(
                (f"joint RBM, CD-{steps_t}, {steps} Gibbs steps", summaries(levels, base.rating_values, popularity))
            )
        notes.append(
            f"joint RBM, CD-{steps_t}: fit {fit_seconds:.0f} s (best epoch {model.best_epoch}, validation NDCG@10 "
            f"{model.best_measure:.4f}); sampling {args.profiles} profiles: {', '.join(timings)}"
        )
    rng = np.random.default_rng(args.seed)
    independent = base_rate_profiles(base, args.profiles, rng)
    rows.append(("independent base rates", summaries(independent, base.rating_values, popularity)))

    print("\nSampled profiles against the real users of ml-100k u1.base: median, and KS distance D to the real users")
    print(f"{'profiles':<36}" + "".join(f"{name + ' (median)':>24}{'D':>7}" for name in STATISTICS))
    for name, stats in rows:
        cells = ""
        for column in range(len(STATISTICS)):
            median = np.nanmedian(stats[:, column])
            distance = "" if stats is real else f"{ks_distance(stats[:, column], real[:, column]):.3f}"
            cells += f"{median:>24.2f}{distance:>7}"
        print(f"{name:<36}{cells}")
    for note in notes:
        print(f"  {note}")
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
