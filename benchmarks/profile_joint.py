"""Where the joint model's training step spends its time, block by block, at MovieLens-25M's catalogue size.

Run:  python benchmarks/profile_joint.py [--users 5000] [--movies 59000] [--per-user 154] [--hidden 100]
      [--batch-size 100] [--batches 30] [--threads 1] [--kind ratings] [--torch-profiler]

Generates ``users`` users of a ``movies``-movie catalogue with ``per-user`` ratings each on average (the
defaults: MovieLens 25M's catalogue and its 154 ratings per user; :mod:`recsys_rbm.recommender.synthetic`),
and trains the default joint model (user-based, CD-1, ``--hidden`` units, batches of ``--batch-size`` users)
through ``RBMRecommender.fit`` for ``--batches`` update steps after a few untimed ones. Nothing in the library
changes: this process wraps some of its functions in timers, and each block's *own* time (its callees'
subtracted) is printed per batch:

- the data's dense interaction block ``x_data`` (B, G), and the data phase's hidden input (bags of rated rows);
- the interaction rows' current weights (G, H), read out of the lazy momentum's storage once per batch;
- the logits of every item ``c_x + h W_xᵀ`` (B × G × H) and their sigmoid; the Bernoulli draw of every item;
- the rating levels' fused draw; the model phase's hidden input ``x_model W_x`` (B × G × H, dense);
- the statistics (the negative statistic ``x_modelᵀ p_model``, G × B × H, dense, and the bookkeeping);
- the lazy momentum's update of each parameter (every interaction row of ``W`` each batch).

Then each dense operation of the interaction block is timed alone at the same shapes beside the row-sparse
operation that would give the same numbers (the sampled ``x_model`` has few ones a row: its count is
measured), and the epoch time such a step would give is estimated from the two. With ``--torch-profiler``
it also prints torch's own table of operators over the timed steps; ``--kind ratings`` times the ratings model
the same way (the yardstick for statistics and updates over rated entries only); ``--threads`` sets torch's
threads (on a machine whose cores are busy with other work, one thread can be the faster: compare both).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from recsys_rbm.accel import native
from recsys_rbm.rbm.rng import UniformStream, bernoulli
from recsys_rbm.recommender import objective, sparse
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.synthetic import long_tailed_ratings
from recsys_rbm.train import momentum, trainer

WARMUP = 3  # untimed update steps first (memory first touched, the lazy storage taken over)
X_DATA = "x_data: dense (B, G) zeros + scatter of the rated units"
MODEL_INPUT = "hidden input, model phase: x_model·W_x (B×G×H, dense)"
STATISTICS = "statistics: x_modelᵀ·p_model (G×B×H, dense) + tables"
UPDATE_WEIGHTS = "update weights: lazy momentum (every interaction row + rated rows)"
UPDATE_BIASES = "update visible_bias: lazy momentum (every interaction row + rated rows)"
#: The blocks whose work a row-sparse interaction block replaces (by the row-sparse operations timed alone, and
#: statistics over the entries, as the ratings model makes them: see ``--kind ratings``).
GOES = (X_DATA, MODEL_INPUT, STATISTICS, UPDATE_WEIGHTS, UPDATE_BIASES)


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


def best_of(work: Callable[[], Any], repeats: int = 5) -> float:
    """The fastest of ``repeats`` runs of ``work``, in seconds (after one untimed run)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


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

    def counted_bernoulli(probability: torch.Tensor, source: Any) -> torch.Tensor:
        drawn = bernoulli(probability, source)
        if timers.on:
            ones["sum"] += float(drawn.sum())
            ones["rows"] += drawn.shape[0]
        return drawn

    sparse.bernoulli = counted_bernoulli  # the interaction block's draw of every item
    timers.wrap(sparse, "bernoulli", "Bernoulli draw of every item (B×G uniforms, compare)")
    timers.wrap(sparse.CaseBatch, "interactions", X_DATA)
    timers.wrap(sparse.SparseCases, "interaction_block", "W_x, c_x: current (G, H) rows gathered from lazy storage")
    timers.wrap(sparse.SparseCases, "sample_visible", "logits of every item h·W_xᵀ (B×G×H) + sigmoid")
    timers.wrap(sparse.SparseCases, "_draw_levels", "rating levels: fused native draw (rated entries)")

    def phase(self: Any, state: Any, *rest: Any) -> str:
        if state.rated_only:
            return "hidden input, data phase: bags of rated rows (sparse)"
        return MODEL_INPUT if state.interactions is not None else "hidden input, model phase: rating rows (sparse)"

    timers.wrap(sparse.SparseCases, "hidden_input", phase)
    timers.wrap(sparse.SparseCases, "hidden_probability", "sigmoid of the hidden input (B, H)")
    timers.wrap(objective, "statistics", STATISTICS if args.kind == "joint" else "statistics over the entries")
    timers.wrap(objective.RecommenderObjective, "gradient", "the rest of the gradient (hidden draws, chain)")

    def update(self: Any, name: str, *rest: Any) -> str:
        if args.kind == "joint" and name in ("weights", "visible_bias"):
            return UPDATE_WEIGHTS if name == "weights" else UPDATE_BIASES
        return f"update {name}: lazy momentum (rated rows)"

    timers.wrap(momentum.LazyMomentum, "update_rows", update)
    config = {"kind": args.kind, "mode": "user", "hidden": args.hidden, "batch_size": args.batch_size, "epochs": 1}
    model = RBMRecommender(**config, monitor_ratings=1_000)
    model.fit(ratings, validation_fraction=0.0, progress=False)
    if profiler is not None and steps["count"] >= WARMUP + args.batches:
        table = profiler.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25)
        print(f"torch's operators over the {args.batches} timed steps, by input shapes\n{table}")
    per_row = ones["sum"] / max(ones["rows"], 1)
    return timers, steps["seconds"], steps["count"] - WARMUP, per_row


def dense_against_sparse(args: argparse.Namespace, ones_per_row: float) -> list[tuple[str, float, str, float]]:
    """Each dense operation of the interaction block alone, and its row-sparse equivalent, at the run's shapes."""
    b, g, h = args.batch_size, args.movies, args.hidden
    torch.manual_seed(0)
    storage = torch.randn(g, 2, h) * 0.01  # the lazy momentum's (rows, 2, H) coordinates of W_x
    weights = storage[:, 0].contiguous()  # (G, H)
    biases = torch.randn(g) - 6.0
    hidden = (torch.rand(b, h) < 0.5).float()  # (B, H)
    p_model = torch.rand(b, h)
    stream = UniformStream(0)
    picked = max(1, round(ones_per_row))
    units = torch.randint(0, g, (b * picked,))  # the sampled ones: B × picked (unit, case) pairs
    cases = torch.arange(b).repeat_interleave(picked)
    offsets = torch.arange(b) * picked
    x_model = torch.zeros(b, g)
    x_model[cases, units] = 1.0
    probability = torch.sigmoid(torch.addmm(biases, hidden, weights.T))
    both = torch.cat([hidden * 0.7, hidden * 0.3], 1)  # (B, 2H): the two stored coordinates' weights
    flat = storage.view(g, 2 * h)
    # The update as the trainer makes it (native add_rows into the lazy storage, from per-case rows): now every
    # interaction row gets its own product row; sparse, the data's and the model's picked rows get their case's
    # row of p, and the rating rows of both phases as now (about as many rated entries as sampled ones: four
    # parts of that size are updated).
    every_row, products = torch.arange(g), torch.randn(g, h)
    picked_rows, picked_cases = units.repeat(4), torch.cat([cases, cases + b, cases, cases + b])
    per_case = torch.randn(2 * b, h)
    coefs = [0.01, 0.02]

    def update(rows: torch.Tensor, cases: torch.Tensor, table: torch.Tensor) -> None:
        if not native.add_rows(storage, rows, cases, table, None, coefs):
            storage.index_add_(0, rows, table[cases].unsqueeze(1).repeat(1, 2, 1))

    def x_data() -> torch.Tensor:
        return torch.zeros(b, g).index_put_((cases, units), torch.ones(()))

    return [
        (
            "W_x current rows: gather (G, 2, H) + combine",
            best_of(lambda: torch.mul(storage[:, 0], 0.7).add_(storage[:, 1], alpha=0.3)),
            "(stays: cheaper than the next line)",
            float("nan"),
        ),
        (
            "logits h·W_xᵀ + c_x (B×G×H)",
            best_of(lambda: torch.addmm(biases, hidden, weights.T)),
            "(stays)",
            float("nan"),
        ),
        (
            "  (the logits from the storage, no gather)",
            best_of(lambda: torch.addmm(biases, both, flat.T)),
            "(an alternative to the two lines above)",
            float("nan"),
        ),
        ("sigmoid of the logits (B×G)", best_of(lambda: torch.sigmoid(probability)), "(stays)", float("nan")),
        (
            "Bernoulli draw of every item (B×G)",
            best_of(lambda: stream.uniform((b, g)).lt_(probability)),
            "(stays)",
            float("nan"),
        ),
        (
            "x_model: nonzero → (case, unit) pairs",
            0.0,
            "nonzero of the drawn (B, G) block",
            best_of(lambda: x_model.nonzero()),
        ),
        (
            "hidden input x_model·W_x (B×G×H)",
            best_of(lambda: x_model @ weights),
            f"bag of the {picked} sampled rows a case",
            best_of(lambda: F.embedding_bag(units, flat, offsets, mode="sum")),
        ),
        (
            "negative statistic x_modelᵀ·p_model (G×B×H)",
            best_of(lambda: torch.mm(x_model.T, p_model)),
            "per-case rows, factored (no product)",
            0.0,
        ),
        (
            "update W: every interaction row (G, 2, H)",
            best_of(lambda: update(every_row, every_row, products)),
            "update W: rated + sampled rows, both blocks",
            best_of(lambda: update(picked_rows, picked_cases, per_case)),
        ),
        (
            "x_data dense (B, G) zeros + scatter",
            best_of(x_data),
            "(not needed: the data phase uses bags)",
            0.0,
        ),
    ]


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

    if args.kind != "joint":
        return
    goes = sum(timers.own[label] for label in GOES) / timed
    print(f"\nthe interaction block's operations alone (B = {args.batch_size}, G = {args.movies:,}, H = {args.hidden})")
    print(f"{'dense, as now':<48}{'ms':>8}   {'row-sparse, the same estimator':<44}{'ms':>8}")
    rows = dense_against_sparse(args, ones_per_row)
    replacing = 0.0
    for dense_name, dense_seconds, sparse_name, sparse_seconds in rows:
        shown = "" if sparse_seconds != sparse_seconds else f"{sparse_seconds * 1e3:>8.1f}"  # NaN: stays dense
        print(f"{dense_name:<48}{dense_seconds * 1e3:>8.1f}   {sparse_name:<44}{shown:>8}")
        if sparse_seconds == sparse_seconds:
            replacing += sparse_seconds
    estimate = per_batch - goes + replacing
    batches = -(-args.epoch_users // args.batch_size)
    n_ratings = args.epoch_users * args.per_user
    print(
        f"\nper batch: {per_batch * 1e3:.1f} ms now, of which {goes * 1e3:.1f} ms in the blocks a row-sparse "
        f"interaction block replaces ({', '.join(label.split(':')[0] for label in GOES)});\nabout "
        f"{estimate * 1e3:.1f} ms with the row-sparse operations timed alone instead (plus statistics over the "
        f"entries: --kind ratings gives a yardstick)\nan epoch of {args.epoch_users:,} users ({batches:,} batches, "
        f"{n_ratings / 1e6:.1f} M ratings): {per_batch * batches:.0f} s now "
        f"({n_ratings / (per_batch * batches) / 1e6:.2f} M ratings/s), about {estimate * batches:.0f} s sparse "
        f"({n_ratings / max(estimate * batches, 1e-9) / 1e6:.2f} M ratings/s)"
    )


if __name__ == "__main__":
    main()
