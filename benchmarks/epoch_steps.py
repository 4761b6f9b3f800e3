"""Seconds in the update steps of one ratings-model epoch, for comparing two checkouts in the same conditions.

Run:  PYTHONPATH=<checkout> LABEL=<name> [MAX_CASES=20000] python benchmarks/epoch_steps.py

The MovieLens-25M-shaped data (``recsys_rbm.recommender.synthetic``, as in ``movielens_scale.py``) is
generated once and pickled to ``$RATINGS_CACHE`` (default ``/tmp/movielens_25m_shape.pkl``), so that
alternating runs of two checkouts spend their time on training only. The ratings model trains one
epoch, user-based, on the first ``MAX_CASES`` users; the seconds inside ``Trainer.step`` are printed.
``CLOCKS=1`` sets ``LazyMomentum.prefer_eigenbasis = False`` first (checkouts before the row-clock-only
momentum, which kept an eigenbasis scheme beside the clocks).
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.train import trainer


def ratings() -> Any:
    """The generated 25M-shaped ratings, from the cache when it is there."""
    cache = Path(os.environ.get("RATINGS_CACHE", "/tmp/movielens_25m_shape.pkl"))
    if not cache.exists():
        from recsys_rbm.recommender.synthetic import long_tailed_ratings

        cache.write_bytes(pickle.dumps(long_tailed_ratings(162_000, 59_000, 25_000_000)))
    return pickle.loads(cache.read_bytes())  # our own file, written above


def main() -> None:
    everyone = ratings()
    train = everyone.subset(everyone.users < int(os.environ.get("MAX_CASES", "20000")))
    if os.environ.get("CLOCKS") == "1":
        from recsys_rbm.train.momentum import LazyMomentum

        LazyMomentum.prefer_eigenbasis = False  # type: ignore[attr-defined]
    spent = [0.0]
    original = trainer.Trainer.step

    def step(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    trainer.Trainer.step = step  # type: ignore[method-assign]
    config = RecommenderConfig(
        kind="ratings", mode="user", hidden=100, batch_size=100, epochs=1, device="cpu", monitor_ratings=10_000
    )
    started = time.perf_counter()
    RBMRecommender(config).fit(train)
    fit = time.perf_counter() - started
    print(
        f"{os.environ.get('LABEL', '?')}: steps {spent[0]:.1f} s for {len(train):,} ratings = "
        f"{len(train) / spent[0] / 1e6:.3f} M ratings/s; fit {fit:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
