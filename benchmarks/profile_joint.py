"""Where the joint model's training step spends its time, block by block, at MovieLens-25M's catalogue size.

Run:  python benchmarks/profile_joint.py [--users 5000] [--movies 59000] [--per-user 154] [--hidden 100]
      [--batch-size 100] [--batches 30] [--threads 1] [--kind ratings] [--torch-profiler]

Generates ``users`` users of a ``movies``-movie catalogue with ``per-user`` ratings each on average (the
defaults: MovieLens 25M's catalogue and its 154 ratings per user; :mod:`recsys_rbm.recommender.synthetic`),
and trains the default joint model (user-based, CD-1, ``--hidden`` units, batches of ``--batch-size`` users)
through ``RBMRecommender.fit`` for ``--batches`` update steps after a few untimed ones. Nothing in the library
changes: this process wraps some of its functions in timers, and each block's *own* time (its callees'
subtracted) is printed per batch:

- the interaction rows' weights (G, H), the logits of every item ``c_x + h W_xᵀ`` (B × G × H), and the draw of
  every item's Bernoulli unit, which gives its ones alone (the row kernels' ``draw_picks``);
- the rating levels' fused draw; each phase's hidden input (bags over rated or drawn rows);
- the statistics; the lazy momentum's catch-up of the rows a batch reads and its update of each parameter.

Then it estimates the epoch of ``--epoch-users`` users from the time per batch. With ``--torch-profiler`` it
also prints torch's own table of operators over the timed steps; ``--kind ratings`` times the ratings model
the same way (the yardstick); ``--threads`` sets torch's threads (on a machine whose cores are busy with other
work, one thread can be the faster: compare both).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import torch

from recsys_rbm.accel import kernels
from recsys_rbm.recommender import objective, sparse
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.synthetic import long_tailed_ratings
from recsys_rbm.train import momentum, trainer

WARMUP = 3  # untimed update steps first (memory first touched, the lazy storage taken over)


class Timers:
    """Own time per label: a wrapped call's seconds, less those of the wrapped calls inside it."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.on = False
        self._stack: list[float] = []  # the time of the callees of each open call

    def wrap(self, owner: Any, name: str, label: Callable[..., str] | str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return original(*args, **kwargs)
            self._stack.append(0.0)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                inner = self._stack.pop()
                key = label(*args, **kwargs) if callable(label) else label
                self.own[key] += spent - inner
                self.calls[key] += 1
                if self._stack:
                    self._stack[-1] += spent

        setattr(owner, name, timed)


def profile_steps(args: argparse.Namespace) -> tuple[Timers, float, int, float]:
    """Train the joint model for ``WARMUP + args.batches`` steps with the timers on for the last ``args.batches``.

    Returns the timers, the seconds of the timed steps, how many were timed, and the mean ones per row of the
    sampled ``x_model``.
    """
    ratings = long_tailed_ratings(args.users, args.movies, args.users * args.per_user, seed=0)
    print(
        f"generated {len(ratings):,} ratings of {ratings.n_users:,} users × {ratings.n_items:,} movies; "
        f"K = {ratings.n_levels}; joint model, H = {args.hidden}, batches of {args.batch_size} users, CD-1"
    )
    timers = Timers()
    ones = {"sum": 0.0, "rows": 0}
    steps = {"seconds": 0.0, "count": 0}

    making_batches = objective.RecommenderObjective.batches

    def few_batches(self: Any, generator: Any) -> Iterator[Any]:
        return iter(list(itertools.islice(making_batches(self, generator), WARMUP + args.batches)))

    objective.RecommenderObjective.batches = few_batches  # type: ignore[method-assign]

    timers.wrap(trainer.Trainer, "step", "the rest of the step (dense biases, bookkeeping)")
    stepping = trainer.Trainer.step  # timed, and the timers switched on around it

    profiler = None
    if args.torch_profiler:
        from torch.profiler import ProfilerActivity, profile

        profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True)

    def step(self: Any, *call: Any, **kwargs: Any) -> Any:
        timers.on = steps["count"] >= WARMUP
        if profiler is not None and steps["count"] == WARMUP:
            profiler.start()  # the timed steps only
        started = time.perf_counter()
        out = stepping(self, *call, **kwargs)
        if timers.on:
            steps["seconds"] += time.perf_counter() - started
        steps["count"] += 1
        if profiler is not None and steps["count"] == WARMUP + args.batches:
            profiler.stop()
        timers.on = False
        return out

    trainer.Trainer.step = step  # type: ignore[method-assign]

    implementation = type(kernels())
    drawing = implementation.draw_picks

    def counted_draw(self: Any, logits: torch.Tensor, seeds: torch.Tensor) -> Any:
        units, counts = drawing(self, logits, seeds)
        if timers.on:
            ones["sum"] += float(counts.sum())
            ones["rows"] += counts.shape[0]
        return units, counts

    implementation.draw_picks = counted_draw  # type: ignore[method-assign]
    timers.wrap(implementation, "draw_picks", f"draw of every item, its ones only ({implementation.name} kernels)")
    timers.wrap(sparse.SparseCases, "interaction_block", "W_x, c_x: the interaction rows (G, H) gathered")
    timers.wrap(sparse.SparseCases, "draw_picks", "logits of every item h·W_xᵀ (B×G×H); the picks' seeds and pairs")
    timers.wrap(sparse.SparseCases, "sample_visible", "the rest of the visible draw")
    timers.wrap(sparse.SparseCases, "_draw_levels", "rating levels: fused draw (rated entries)")

    def phase(self: Any, state: Any, *rest: Any) -> str:
        if state.interactions is None and state.picked is not None:
            return "hidden input, data phase: bags of rated rows"
        return "hidden input, model phase: bags of drawn and rated rows"

    timers.wrap(sparse.SparseCases, "hidden_input", phase)
    timers.wrap(sparse.SparseCases, "hidden_probability", "sigmoid of the hidden input (B, H)")
    timers.wrap(objective, "statistics", "statistics: per-case rows of both phases")
    timers.wrap(objective.RecommenderObjective, "gradient", "the rest of the gradient (hidden draws, chain)")
    timers.wrap(momentum.LazyMomentum, "catch_up", lambda self, name, *rest: f"catch up {name}: rows a batch reads")
    timers.wrap(momentum.LazyMomentum, "update_rows", lambda self, name, *rest: f"update {name}: touched rows")
    config = {"kind": args.kind, "mode": "user", "hidden": args.hidden, "batch_size": args.batch_size, "epochs": 1}
    model = RBMRecommender(**config, monitor_ratings=1_000)
    model.fit(ratings, validation_fraction=0.0, progress=False)
    if profiler is not None and steps["count"] >= WARMUP + args.batches:
        table = profiler.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25)
        print(f"torch's operators over the {args.batches} timed steps, by input shapes\n{table}")
    per_row = ones["sum"] / max(ones["rows"], 1)
    return timers, steps["seconds"], steps["count"] - WARMUP, per_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--movies", type=int, default=59_000)
    parser.add_argument("--per-user", type=int, default=154, help="ratings per user, on average")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batches", type=int, default=30, help="timed update steps")
    parser.add_argument("--epoch-users", type=int, default=162_000, help="users of the epoch to estimate")
    parser.add_argument("--kind", default="joint", choices=("joint", "ratings"), help="ratings: the yardstick")
    parser.add_argument("--threads", type=int, default=0, help="torch's threads (0: its default)")
    parser.add_argument("--torch-profiler", action="store_true", help="also torch's table of operators")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    timers, seconds, timed, ones_per_row = profile_steps(args)
    per_batch = seconds / timed
    print(
        f"\n{timed} timed steps, {per_batch * 1e3:.1f} ms each on {torch.get_num_threads()} threads; "
        f"the sampled x_model has {ones_per_row:.1f} ones a row (of {args.movies:,})"
    )
    print(f"{'own time per batch':<72}{'ms':>8}{'share':>7}")
    for label, spent in sorted(timers.own.items(), key=lambda item: -item[1]):
        print(f"{label:<72}{spent / timed * 1e3:>8.1f}{spent / seconds:>7.0%}")

    batches = -(-args.epoch_users // args.batch_size)
    n_ratings = args.epoch_users * args.per_user
    print(
        f"\nan epoch of {args.epoch_users:,} users ({batches:,} batches, {n_ratings / 1e6:.1f} M ratings): about "
        f"{per_batch * batches:.0f} s ({n_ratings / (per_batch * batches) / 1e6:.2f} M ratings/s)"
    )


if __name__ == "__main__":
    main()
