"""The recommender's objective over several processes (see :mod:`recsys_rbm.train.distributed`).

Each process takes a contiguous share of the global batch's cases, hence a contiguous share of its
rated entries, and draws through :class:`~recsys_rbm.rbm.rng.RowShard` over two axes: the cases
(hidden states, interaction units) and the rated entries (one uniform per entry's level); each draw
names its axis. Its statistics are weighted so that their sum over the processes is the
global batch's, as :func:`~recsys_rbm.recommender.objective.statistics` normalises them:

* ``gradient_scale="cases"``: everything is a mean over the batch's cases, weighted by ``n_r / n``;
* ``gradient_scale="raters"``: a unit's rating rows and conditional row are divided by the number
  of the batch's cases that rated it, so those rows are weighted by ``raters_r[g] / raters[g]``
  (this process's raters of unit ``g`` over the global batch's); the rest by ``n_r / n``.
"""

from __future__ import annotations

import torch

from recsys_rbm.rbm.rng import RowAxis, RowShard, UniformStream
from recsys_rbm.recommender.objective import RecommenderObjective
from recsys_rbm.recommender.sparse import CaseBatch
from recsys_rbm.train.distributed import Parallel, scaled, shard_range
from recsys_rbm.train.gradients import Gradient, SparseRows


def case_share(batch: CaseBatch, first: int, stop: int) -> tuple[CaseBatch, int, int]:
    """Cases ``first:stop`` of a batch (views, no copies) and the range ``[e0, e1)`` of their rated entries."""
    n_entries = batch.units.shape[0]
    e0 = int(batch.offsets[first]) if first < batch.n_cases else n_entries
    e1 = int(batch.offsets[stop]) if stop < batch.n_cases else n_entries
    share = CaseBatch(
        batch.case_of_entry[e0:e1] - first, batch.offsets[first:stop] - e0, batch.units[e0:e1], batch.levels[e0:e1]
    )
    return share, e0, e1


class CaseSharding:
    """:class:`~recsys_rbm.recommender.objective.RecommenderObjective` over several processes (module docstring).

    A process whose share of a short batch is empty computes the batch's first case with weight 0,
    so that it makes the same draws as the others and the streams stay in step.
    """

    def check(self, objective: RecommenderObjective, parallel: Parallel) -> None:
        """Every setting of the recommender splits exactly."""

    def gradient(
        self,
        objective: RecommenderObjective,
        batch: CaseBatch,
        steps: int,
        stream: UniformStream,
        parallel: Parallel,
    ) -> Gradient:
        n = batch.n_cases
        first, stop = shard_range(n, parallel.rank, parallel.world_size)
        empty = stop == first
        if empty:
            first, stop = 0, 1
        share, e0, e1 = case_share(batch, first, stop)
        draws = RowShard(stream, cases=RowAxis(stop - first, n, first), entries=RowAxis(e1 - e0, len(batch.units), e0))
        gradient = objective.gradient(share, steps, draws)
        if empty:
            return scaled(gradient, 0.0)
        fraction = (stop - first) / n
        if objective.config.gradient_scale == "cases":
            return scaled(gradient, fraction)
        return _raters_weighted(gradient, objective, batch, share, fraction)


def _raters_weighted(
    gradient: Gradient, objective: RecommenderObjective, batch: CaseBatch, share: CaseBatch, fraction: float
) -> Gradient:
    """Rating and conditional rows of unit ``g`` times ``raters_r[g] / raters[g]``; other rows times ``fraction``."""
    layout = objective.model.layout
    dtype = objective.model.rbm.dtype
    raters = torch.bincount(batch.units, minlength=layout.n_units).clamp_min_(1).to(dtype)  # (G,) global batch
    unit_weight = torch.bincount(share.units, minlength=layout.n_units).to(dtype) / raters  # (G,)
    k, offset = layout.n_levels, layout.rating_offset

    def visible_rows(rows: torch.Tensor) -> torch.Tensor:  # the weight of rows of W and b
        weight = torch.full(rows.shape, fraction, dtype=dtype, device=rows.device)
        rating = rows >= offset
        weight[rating] = unit_weight[(rows[rating] - offset) // k]
        return weight

    out: Gradient = {}
    for name, g in gradient.items():
        if name == "hidden_bias":
            out[name] = g * fraction
            continue
        # rows of W and b, or of the conditional weights D, where row g is unit g
        rows_of = visible_rows if name in ("weights", "visible_bias") else unit_weight.__getitem__
        if isinstance(g, SparseRows):
            weight = rows_of(g.rows)
            out[name] = g.with_values(g.values * weight.view(-1, *([1] * (g.values.dim() - 1))))
        else:
            weight = rows_of(torch.arange(g.shape[0], device=g.device))
            out[name] = g * weight.view(-1, *([1] * (g.dim() - 1)))
    return out
