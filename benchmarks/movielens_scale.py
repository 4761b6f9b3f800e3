"""Training cost at MovieLens-25M scale: seconds per epoch and peak memory on generated data.

Run:  python benchmarks/movielens_scale.py [--ratings 25000000] [--device cpu] [--max-cases 20000]

Generates a long-tailed ratings set with the shape of MovieLens 25M (162,000 users, 59,000
movies, 25 million half-star ratings; ``recsys_rbm.recommender.synthetic``), trains the
user-based RBM for one epoch (or on the first ``--max-cases`` users of it, scaled up to a full
epoch, when a full CPU epoch would take too long) and prints seconds per epoch and the peak
resident memory. A dense users × movies × levels tensor would need 162,000 × 59,000 × 10 floats
(382 GB); the point is that memory follows the number of ratings. ``--ratings`` at several sizes
shows the growth.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.synthetic import long_tailed_ratings


def peak_memory_gb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_000)
    parser.add_argument("--movies", type=int, default=59_000)
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--max-cases", type=int, default=0, help="train on this many users only (0: all)")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    started = time.perf_counter()
    ratings = long_tailed_ratings(args.users, args.movies, args.ratings)
    generated = time.perf_counter() - started
    print(
        f"generated {len(ratings):,} ratings of {ratings.n_users:,} users × {ratings.n_items:,} movies, "
        f"K = {ratings.n_levels}, in {generated:.1f} s; peak memory so far {peak_memory_gb():.2f} GB"
    )

    train = ratings
    fraction = 1.0
    if args.max_cases and args.max_cases < ratings.n_users:
        keep = ratings.users < args.max_cases
        train = ratings.subset(keep)
        fraction = len(train) / len(ratings)
        print(f"timing on the first {args.max_cases:,} users ({len(train):,} ratings, {fraction:.1%} of them)")

    config = RecommenderConfig(mode="user", n_hidden=args.hidden, epochs=1, device=args.device, monitor_ratings=10_000)
    model = RBMRecommender(config)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    per_epoch = seconds / fraction
    print(
        f"one epoch (CD-1, {args.hidden} hidden, user-based) on {config.device}: {seconds:.1f} s for "
        f"{len(train):,} ratings → {per_epoch:.1f} s per full epoch "
        f"({len(train) / seconds / 1e6:.2f} M ratings/s)"
    )
    print(
        f"peak memory: {peak_memory_gb():.2f} GB (a dense users × movies × levels float32 tensor: "
        f"{args.users * args.movies * ratings.n_levels * 4 / 1e9:,.0f} GB)"
    )
    rated_per_user = np.bincount(ratings.users, minlength=ratings.n_users)
    print(f"ratings per user: median {int(np.median(rated_per_user))}, max {int(rated_per_user.max())}")


if __name__ == "__main__":
    main()
