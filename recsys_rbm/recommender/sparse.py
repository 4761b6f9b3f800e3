"""The recommender RBM on sparse data: cases, their rated entries, and the conditionals over them.

A *case* is one RBM input (a user in user-based mode, an item in item-based mode); a *unit* is one
position of its visible layer (an item, resp. a user). The visible layer is the core's
:class:`~recsys_rbm.rbm.units.VisibleLayer`, made of up to two blocks over the ``G`` units:

* an **interaction** block, :class:`~recsys_rbm.rbm.units.BernoulliUnits` ``(G)``: ``x_g = 1`` when the
  case rated (or used) unit ``g``; dense, every unit present;
* a **rating** block, :class:`~recsys_rbm.rbm.units.SoftmaxUnits` ``(G, K)``: the rating of each unit
  the case rated, one-hot over ``K`` levels; present at the case's rated units only, in both
  learning phases (the masking of Salakhutdinov, Mnih & Hinton 2007).

The joint model has both blocks; the ratings model (the paper's) the rating block only, and
implicit data (``K = 1``) the interaction block only. The paper's conditional term ``D`` (G, H)
adds ``Σ_{g rated} D[g]`` to the hidden input.

Shapes: ``W`` (Dv, H) with rows ``[interaction g (G) | rating g·K + k (G·K)]``, ``b`` (Dv,),
``c`` (H,). A batch holds ``B`` cases with ``E`` rated entries; entry ``e`` belongs to case
``case_e``, unit ``g_e``, level ``k_e``. Costs grow with the rated entries, except the interaction
block, which is dense over units: ``B × G`` per batch, ``cases × G × H`` per epoch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recsys_rbm.accel import kernels
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import PER_CASE, PER_ENTRY, RandomSource, uniform
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits, VisibleLayer
from recsys_rbm.recommender.state import Layout

SEED_HALF = 1 << 24  # a float32 uniform's bits: two of them make a case's seed for its draw of the picks


def visible_layer(layout: Layout) -> VisibleLayer:
    """The core layer of a recommender RBM: ``[interactions (G)]`` then ``[ratings (G, K)]``."""
    blocks: list[BernoulliUnits | SoftmaxUnits] = []
    if layout.interactions:
        blocks.append(BernoulliUnits(layout.n_units))
    if layout.ratings:
        blocks.append(SoftmaxUnits(layout.n_units, layout.n_levels))
    if not blocks:
        raise ValueError("a recommender RBM needs interactions, ratings with at least 2 levels, or both")
    return VisibleLayer(tuple(blocks))


def layout_of(layer: VisibleLayer) -> Layout:
    """The :class:`~recsys_rbm.recommender.state.Layout` of a recommender's visible layer."""
    interactions = any(isinstance(block, BernoulliUnits) for block in layer.blocks)
    ratings = [block for block in layer.blocks if isinstance(block, SoftmaxUnits)]
    return Layout(layer.blocks[0].n_groups, ratings[0].n_levels if ratings else 0, interactions)


# --- sparse data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseMatrix:
    """Training ratings as a CSR matrix of cases × units: case ``c`` owns entries ``indptr[c]:indptr[c+1]``."""

    indptr: torch.Tensor  # (C + 1,) int64
    units: torch.Tensor  # (nnz,) int32: the rated unit of each entry
    levels: torch.Tensor  # (nnz,) uint8: its level 0..K-1

    @property
    def n_cases(self) -> int:
        return self.indptr.shape[0] - 1

    @classmethod
    def from_arrays(
        cls, cases: np.ndarray, units: np.ndarray, levels: np.ndarray, n_cases: int, device: torch.device
    ) -> CaseMatrix:
        """Sort (case, unit, level) triples by case, then unit; shapes (nnz,) -> CSR."""
        order = np.lexsort((units, cases))
        indptr = np.zeros(n_cases + 1, dtype=np.int64)
        np.cumsum(np.bincount(cases, minlength=n_cases), out=indptr[1:])
        return cls(
            torch.from_numpy(indptr).to(device),
            torch.from_numpy(units[order].astype(np.int32)).to(device),
            torch.from_numpy(levels[order].astype(np.uint8)).to(device),
        )

    def lengths(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def gather(self, cases: torch.Tensor) -> CaseBatch:
        """The ratings of the given cases (any order) as one flat batch."""
        starts = self.indptr[cases]
        lengths = self.indptr[cases + 1] - starts
        offsets = torch.cumsum(lengths, 0) - lengths  # (B,) first entry of each case in the batch
        case_of_entry = torch.repeat_interleave(torch.arange(cases.shape[0], device=cases.device), lengths)
        entry = starts[case_of_entry] + torch.arange(case_of_entry.shape[0], device=cases.device)
        entry -= offsets[case_of_entry]
        return CaseBatch(case_of_entry, offsets, self.units[entry].long(), self.levels[entry].long())

    def slice(self, first: int, last: int) -> CaseBatch:
        """The ratings of the contiguous cases ``first:last`` (no index gathering needed)."""
        lo, hi = int(self.indptr[first]), int(self.indptr[last])
        lengths = self.indptr[first + 1 : last + 1] - self.indptr[first:last]
        offsets = self.indptr[first:last] - lo
        case_of_entry = torch.repeat_interleave(torch.arange(last - first, device=lengths.device), lengths)
        return CaseBatch(case_of_entry, offsets, self.units[lo:hi].long(), self.levels[lo:hi].long())


@dataclass(frozen=True)
class CaseBatch:
    """``B`` cases' ``E`` ratings, flat: entry ``e`` is (case_of_entry[e], units[e], levels[e])."""

    case_of_entry: torch.Tensor  # (E,) int64 in 0..B-1
    offsets: torch.Tensor  # (B,) int64: where each case's entries start (embedding_bag offsets)
    units: torch.Tensor  # (E,) int64
    levels: torch.Tensor  # (E,) int64

    @property
    def n_cases(self) -> int:
        return self.offsets.shape[0]

    def interactions(self, n_units: int, dtype: torch.dtype) -> torch.Tensor:
        """The data's interaction block: ``x[b, g] = 1`` where case ``b`` rated unit ``g``; (B, G)."""
        x = torch.zeros(self.n_cases, n_units, dtype=dtype, device=self.units.device)
        x[self.case_of_entry, self.units] = 1.0
        return x

    def picks(self) -> Picks:
        """The data's interaction block by its ones: the rated units, as (case, unit) pairs."""
        return Picks(self.case_of_entry, self.units, self.offsets)


@dataclass(frozen=True)
class Picks:
    """The ones of a batch's interaction block as (case, unit) pairs, ordered by case: ``x[cases[i], units[i]] = 1``."""

    cases: torch.Tensor  # (P,) int64, ascending
    units: torch.Tensor  # (P,) int64
    offsets: torch.Tensor  # (B,) int64: where each case's pairs start (embedding_bag offsets)

    @classmethod
    def of(cls, interactions: torch.Tensor) -> Picks:
        """The ones of a dense 0/1 block (B, G)."""
        cases, units = torch.nonzero(interactions, as_tuple=True)
        return cls.of_counts(units, torch.bincount(cases, minlength=interactions.shape[0]))

    @classmethod
    def of_counts(cls, units: torch.Tensor, counts: torch.Tensor) -> Picks:
        """Pairs from each case's units, one case after another: ``units`` (P,), ``counts`` (B,) per case."""
        cases = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
        return cls(cases, units, torch.cumsum(counts, 0) - counts)


@dataclass(frozen=True)
class CaseState:
    """The visible state of a batch of cases: its interaction block and its rated entries' levels.

    The interaction block is dense (a draw of every unit), or given by its ones alone (``picked``: the
    data's rated units), or both; sums over it run over the ones where they are known.
    """

    interactions: torch.Tensor | None  # (B, G) 0/1, dense, or None (no interaction block, or only its ones known)
    levels: torch.Tensor | None  # (E,) levels at the batch's rated entries (None without a rating block)
    #: The interaction block's ones, where known: the data's rated units, or a draw's ones.
    picked: Picks | None = None
    #: ``Σ_e W[rating row of entry e at its level]`` per case (B, H), where the draw of the levels summed it.
    rating_input: torch.Tensor | None = None

    def picks(self) -> Picks | None:
        """The interaction block's ones (None without an interaction block)."""
        if self.picked is None and self.interactions is not None:
            return Picks.of(self.interactions)
        return self.picked


# --- the parameters and their conditionals on a batch ---------------------------------------------
@dataclass
class RecommenderRBM:
    """The shared RBM (the core's :class:`RBM`, over the recommender's layer) and the conditional ``D`` (G, H)."""

    rbm: RBM
    conditional: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.layout = layout_of(self.rbm.units)

    def parameters(self) -> dict[str, torch.Tensor]:
        out = dict(self.rbm.parameters())
        if self.conditional is not None:
            out["conditional_weights"] = self.conditional
        return out

    def on(self, batch: CaseBatch) -> SparseCases:
        """The conditionals of this model over ``batch``'s cases."""
        return SparseCases(self, batch)

    def rows_read(self, batch: CaseBatch) -> dict[str, torch.Tensor]:
        """The distinct rows of ``W``, ``b`` (and ``D``) that the conditionals over ``batch`` read: every
        interaction row, and the K rating rows (the row of ``D``) of each unit the batch rated."""
        layout, device = self.layout, batch.units.device
        units = torch.unique(batch.units)  # (U,) ascending
        levels = torch.arange(layout.n_levels if layout.ratings else 0, device=device)
        rows = (layout.rating_offset + units[:, None] * layout.n_levels + levels).flatten()
        if layout.interactions:
            rows = torch.cat([torch.arange(layout.n_units, device=device), rows])
        reads = {"weights": rows, "visible_bias": rows}
        if self.conditional is not None:
            reads["conditional_weights"] = units
        return reads


def bag(table: torch.Tensor, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``Σ table[rows[i]]`` over each case's entries (cases start at ``offsets`` (B,)); (B, *table.shape[1:])."""
    return F.embedding_bag(rows, table, offsets, mode="sum")


class SparseCases:
    """``p(h | v)``, ``v ~ p(v | h)`` for a batch of cases, over rated entries: the core's Gibbs chain runs on it.

    The rated-set term of the conditional RBM is held at the data's rated set in every step. The
    parameters are read as plain tensors: during training the trainer brings the batch's rows up to
    date before the chain runs (:meth:`RecommenderRBM.rows_read`). The products and draws over rated
    entries are row operations of :mod:`recsys_rbm.accel`.
    """

    def __init__(self, model: RecommenderRBM, batch: CaseBatch) -> None:
        self.model, self.batch, self.layout = model, batch, model.layout
        self._interaction_block: tuple[torch.Tensor, torch.Tensor] | None = None
        self._rated_set_input: torch.Tensor | None = None

    def interaction_block(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The interaction rows' weights (G, H) and visible biases (G,)."""
        if self._interaction_block is None:
            rbm, rows = self.model.rbm, self.layout.interaction_rows()
            self._interaction_block = (rbm.weights[rows], rbm.visible_bias[rows])
        return self._interaction_block

    def data(self) -> CaseState:
        """The batch's own visible state (the positive phase): its interaction block by its ones, the rated units."""
        layout = self.layout
        picked = self.batch.picks() if layout.interactions else None
        return CaseState(None, self.batch.levels if layout.ratings else None, picked=picked)

    def hidden_input(self, state: CaseState) -> torch.Tensor:
        """``vᵀW (+ Σ_{g rated} D[g])`` from the state's blocks; -> (B, H)."""
        rbm, batch = self.model.rbm, self.batch
        total = torch.zeros(batch.n_cases, rbm.n_hidden, dtype=rbm.dtype, device=rbm.device)
        if state.picked is not None:  # Σ_{g: x_g = 1} W[g]: a bag over the ones, not a (B, G) product
            total += bag(rbm.weights, state.picked.units, state.picked.offsets)
        elif state.interactions is not None:
            total.addmm_(state.interactions, self.interaction_block()[0])
        if state.rating_input is not None:
            total += state.rating_input
        elif state.levels is not None:
            total += bag(rbm.weights, self.level_rows + state.levels, batch.offsets)
        if self.model.conditional is not None:
            total += self.rated_set_input()
        return total

    @functools.cached_property
    def level_rows(self) -> torch.Tensor:
        """Each rated entry's first level row in ``W`` and ``b`` (E,): its K levels are the rows from there on."""
        return self.layout.rating_offset + self.batch.units * self.layout.n_levels

    def rated_set_input(self) -> torch.Tensor:
        """``Σ_{g rated} D[g]`` per case (B, H): the same in every Gibbs step of the batch, so summed once."""
        if self._rated_set_input is None:
            assert self.model.conditional is not None
            self._rated_set_input = bag(self.model.conditional, self.batch.units, self.batch.offsets)
        return self._rated_set_input

    def hidden_probability(self, state: CaseState, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``p(h = 1 | v) = sigmoid(c + vᵀW (+ Σ D))``; (B, H)."""
        return torch.sigmoid(self.hidden_input(state) + self.model.rbm.hidden_bias)

    def rated_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``b[g_e, k] + W[g_e, k]·h[case_e]`` at the rated entries only; ``hidden`` (B, H) -> (E, K).

        Each entry's K level rows against its case's hidden state, so neither the (B, G·K) product nor
        an (E, K, H) gather of weights need be formed.
        """
        rbm = self.model.rbm
        return kernels().block_products(
            rbm.weights, self.level_rows, self.batch.case_of_entry, hidden, self.layout.n_levels, rbm.visible_bias
        )

    def sample_visible(self, hidden: torch.Tensor, random: RandomSource, mask: torch.Tensor | None = None) -> CaseState:
        """One draw of the visible state: every interaction unit, and each rated entry's level; (B, H) -> state.

        Every interaction unit is drawn, but few come out 1, and the draw gives only its ones
        (:meth:`draw_picks`): the sums over the block that follow (the next hidden input, the
        statistics) run over them.
        """
        picked = self.draw_picks(hidden, random) if self.layout.interactions else None
        levels = rating_input = None
        if self.layout.ratings:
            levels, rating_input = self._draw_levels(hidden, random)
        return CaseState(None, levels, picked=picked, rating_input=rating_input)

    def draw_picks(self, hidden: torch.Tensor, random: RandomSource) -> Picks:
        """The ones of ``x ~ Bernoulli(sigmoid(a + W_x h))`` over every interaction unit; (B, H) -> picks.

        Each case's draw comes from a seed of 48 bits made of two of the run's uniforms, so it is the
        same in any batch and on any process (:meth:`RowKernels.draw_picks`).
        """
        weights, biases = self.interaction_block()
        logits = torch.addmm(biases, hidden, weights.T)  # (B, G)
        halves = (uniform((hidden.shape[0], 2), hidden, random, per=PER_CASE).double() * SEED_HALF).long()
        return Picks.of_counts(*kernels().draw_picks(logits, halves[:, 0] * SEED_HALF + halves[:, 1]))

    def _draw_levels(self, hidden: torch.Tensor, random: RandomSource) -> tuple[torch.Tensor, torch.Tensor]:
        """Each rated entry's level from ``p(v_e | h)``, and the next hidden input's share of them (the drawn rows
        summed per case), in one pass over the entries' rows."""
        rbm, batch = self.model.rbm, self.batch
        uniforms = uniform((batch.units.shape[0], 1), hidden, random, per=PER_ENTRY)  # as sample_levels draws them
        return kernels().draw_levels(
            rbm.weights, self.level_rows, batch.case_of_entry, hidden, self.layout.n_levels, uniforms, rbm.visible_bias
        )
