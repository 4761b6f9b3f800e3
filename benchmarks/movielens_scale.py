"""Training cost at MovieLens-25M scale: seconds per epoch and peak memory on generated data.

Run:  python benchmarks/movielens_scale.py [--ratings 25000000] [--device cpu] [--max-cases 20000]
      [--models ratings,joint]

Generates a long-tailed ratings set with the shape of MovieLens 25M (162,000 users, 59,000
movies, 25 million half-star ratings; ``recsys_rbm.recommender.synthetic``), then trains each
model for one epoch, user-based, side by side: the ratings model (softmax units at rated entries
only) and the joint model (the same plus a Bernoulli "picked" unit for every movie). Each runs in
its own forked process, so each peak resident memory is that model's (the generated data, shared
at the fork, included). With ``--max-cases`` an epoch covers the first users only and is scaled
up to a full epoch. A dense users × movies × levels tensor would need 162,000 × 59,000 × 10
floats (382 GB): the ratings model's memory follows the number of ratings. The joint model's
interaction block is dense over movies: a batch holds batch × movies values, so its memory stays
bounded by the batch, while its work per epoch grows with users × movies × hidden units.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.synthetic import long_tailed_ratings


def peak_memory_gb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def measured_bandwidth(device: str, megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second this machine moves in a large tensor copy (read + write counted), the best of ``repeats``."""
    import torch

    source = torch.ones(megabytes * 2**20 // 4, device=device)
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(source)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * source.numel() * 4 / best


def bytes_per_rating(n_levels: int, n_hidden: int) -> int:
    """The least memory traffic one rating costs an update of the ratings model, in bytes (float32).

    Reading the K·H weights of its unit for the sampled reconstruction's logits, its H-row twice for
    the hidden inputs of the two phases, and the lazy momentum update of the two rows it touches
    (data level, model level: parameter and velocity, each read and written): (K + 2 + 8)·H floats.
    Everything else (per-case hidden states, sorting, sampling) is counted as overhead.
    """
    return 4 * n_hidden * (n_levels + 2 + 8)


def in_child(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` in a forked child, its result returned.

    The parent never starts torch's thread pool: a fork after it has run leaves the child waiting
    forever on the pool's locks. A child that dies is an error, not a hang.
    """
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=lambda: results.put(work(*args)))
    child.start()
    while True:
        try:
            value = results.get(timeout=1.0)
            break
        except queue.Empty:
            if not child.is_alive():
                raise SystemExit(f"the child measuring {work.__name__} exited with code {child.exitcode}") from None
    child.join()
    return value


def train_one_epoch(model: str, train: Any, args: argparse.Namespace) -> tuple[float, float, float, float]:
    """One epoch of ``model`` (run in a forked child, so patching the trainer here touches no one else).

    Returns the seconds of its update steps (building the batches included), of what the lazy momentum does once
    per epoch (taking each parameter into its lazy state at its first sparse update, bringing every row forward
    at the end), of the whole ``fit`` call (initialisation and the epoch's measurements included), and the peak GB.
    """
    from recsys_rbm.recommender import objective
    from recsys_rbm.train import momentum as lazy_momentum
    from recsys_rbm.train import trainer

    spent = {"steps": 0.0, "take_over": 0.0, "finish": 0.0}
    making_batches = objective.RecommenderObjective.batches

    def batches(self: Any, generator: Any) -> Any:  # gathered here, so that building them is timed too
        started = time.perf_counter()
        made = list(making_batches(self, generator))
        spent["steps"] += time.perf_counter() - started
        return iter(made)

    objective.RecommenderObjective.batches = batches  # type: ignore[method-assign]

    def timed(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapper(*call_args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*call_args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - started

        setattr(owner, name, wrapper)

    timed(trainer.Trainer, "step", "steps")
    timed(lazy_momentum.LazyMomentum, "_take_over", "take_over")
    timed(lazy_momentum.LazyMomentum, "finish", "finish")
    config = RecommenderConfig(
        kind=model,
        mode="user",
        hidden=args.hidden,
        batch_size=args.batch_size,
        epochs=1,
        device=args.device,
        monitor_ratings=10_000,
    )
    started = time.perf_counter()
    RBMRecommender(config).fit(train)
    once_per_epoch = spent["take_over"] + spent["finish"]
    return spent["steps"] - spent["take_over"], once_per_epoch, time.perf_counter() - started, peak_memory_gb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_000)
    parser.add_argument("--movies", type=int, default=59_000)
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--max-cases", type=int, default=0, help="train on this many users only (0: all)")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--models", default="ratings,joint", help="comma-separated: ratings, joint")
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
        train = ratings.subset(ratings.users < args.max_cases)
        fraction = len(train) / len(ratings)
        print(f"timing on the first {args.max_cases:,} users ({len(train):,} ratings, {fraction:.1%} of them)")

    bandwidth = in_child(measured_bandwidth, args.device)
    per_rating = bytes_per_rating(ratings.n_levels, args.hidden)
    floor = len(ratings) * per_rating / bandwidth
    print(
        f"measured copy bandwidth {bandwidth / 1e9:.1f} GB/s; the ratings model moves at least {per_rating:,} bytes "
        f"per rating (K = {ratings.n_levels}, H = {args.hidden}): floor {floor:.1f} s per epoch "
        f"({len(ratings) / floor / 1e6:.1f} M ratings/s)"
    )
    print(
        f"{'model':<10} {'s/epoch':>9} {'M ratings/s':>12} {'× floor':>8} {'peak GB':>8} {'fit s':>7}  (user-based, "
        f"CD-1, {args.hidden} hidden, batches of {args.batch_size} users, on {args.device})"
    )
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        steps, once_per_epoch, fit, peak = in_child(train_one_epoch, model, train, args)
        per_epoch = steps / fraction + once_per_epoch  # the steps scale with the cases, the rest does not
        print(
            f"{model:<10} {per_epoch:>9.1f} {len(ratings) / per_epoch / 1e6:>12.2f} {per_epoch / floor:>8.1f} "
            f"{peak:>8.2f} {fit:>7.1f}",
            flush=True,
        )
    print(
        "s/epoch: building the batches and the update steps (scaled to all users with --max-cases), and the lazy "
        "momentum's once-per-epoch "
        "work (taking the parameters over, bringing every row forward at the end; not scaled); fit s: the whole "
        "one-epoch fit call measured (initialisation and the "
        "epoch's measurements included, not scaled)"
    )
    print(
        f"a dense users × movies × levels float32 tensor would take "
        f"{args.users * args.movies * ratings.n_levels * 4 / 1e9:,.0f} GB; the joint model's dense block per batch "
        f"{args.batch_size * args.movies * 4 / 1e6:,.0f} MB"
    )
    rated_per_user = np.bincount(ratings.users, minlength=ratings.n_users)
    print(f"ratings per user: median {int(np.median(rated_per_user))}, max {int(rated_per_user.max())}")


if __name__ == "__main__":
    main()
