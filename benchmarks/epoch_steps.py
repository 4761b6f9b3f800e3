"""Seconds in the update steps of one ratings-model epoch, for comparing two checkouts in the same conditions.

Run:  PYTHONPATH=<checkout> LABEL=<name> [MAX_CASES=20000] python benchmarks/epoch_steps.py

The MovieLens-25M-shaped data (``recsys_rbm.recommender.synthetic``, as in ``movielens_scale.py``) is
generated, seeded, in each run (about 20 s, not timed). The ratings model trains one
epoch, user-based, on the first ``MAX_CASES`` users; the seconds inside ``Trainer.step`` are printed.
``CLOCKS=1`` sets ``LazyMomentum.prefer_eigenbasis = False`` first (checkouts before the row-clock-only
momentum, which kept an eigenbasis scheme beside the clocks).
"""

from __future__ import annotations

import os
import time
from typing import Any

from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.train import trainer


def ratings() -> Any:
    """The generated 25M-shaped ratings (the same in every run: the generator is seeded)."""
    from recsys_rbm.recommender.synthetic import long_tailed_ratings

    return long_tailed_ratings(162_000, 59_000, 25_000_000)


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
