"""What the recommender RBM hands the core trainer: its batches of cases and their sparse statistics.

The learning rule is the core's ``<v hᵀ>_data − <v hᵀ>_model`` with ``h`` replaced by ``p(h|v)``,
computed on the cases of a batch with the model term after a CD-T chain run by the core's Gibbs
sampler over :class:`~recsys_rbm.recommender.sparse.SparseCases`. Written out per block:

* interaction rows: ``ΔW_x = (x_dataᵀ p̂_data − x_modelᵀ p̂_model) / B`` and ``Δa = mean(x_data −
  x_model)``, sums over the ones of each phase's block (the rated units; the drawn units): only the
  rows of units some case rated or drew are nonzero;
* rating rows (rated entries only): ``ΔW_r[g·K + k] = Σ_e (1[k_e = k]·p̂_data[case_e] −
  1[k'_e = k]·p̂_model[case_e]) / B`` (repeated rows add up), ``Δb`` likewise without ``p̂``;
* ``Δc = mean(p̂_data − p̂_model)`` and, for the conditional RBM, ``ΔD[g] = Σ_e (p̂_data −
  p̂_model)[case_e] / B``.

It equals the core's dense :func:`~recsys_rbm.train.dense.contrastive_gradient` on the one-hot,
masked visible vectors (tested). Momentum, decay, schedules, averaging, early stopping and the
divergence checks are the trainer's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from recsys_rbm.rbm.gibbs import Chain, chain_from_visible, run_chain
from recsys_rbm.rbm.rng import RandomSource
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.sparse import CaseBatch, CaseMatrix, RecommenderRBM, SparseCases
from recsys_rbm.train.gradients import CaseFactors, Gradient, SparseRows

#: A validation RMSE this much above the global-mean baseline's means training has gone astray ...
DIVERGENCE_MARGIN = 1.2
#: ... when measured on at least this many validation ratings: on a handful, chance alone puts the
#: global mean that far ahead, and a model of a small table would be called diverged at epoch 1.
DIVERGENCE_MIN_RATINGS = 50

Measure = Callable[[], dict[str, float | None]]


class RecommenderObjective:
    """The recommender's side of :class:`~recsys_rbm.train.trainer.Trainer` (see the module docstring).

    ``measure`` is called after each epoch with the parameters being evaluated; it returns the
    epoch's measures (training and validation RMSE, validation NDCG@10). ``baseline_rmse`` is the
    global mean's validation RMSE, against which a diverging run is caught.
    """

    decayed = ("weights", "conditional_weights")

    def __init__(
        self,
        model: RecommenderRBM,
        matrix: CaseMatrix,
        config: RecommenderConfig,
        measure: Measure,
        validation_measure: str | None,
        baseline_rmse: float | None = None,
    ) -> None:
        self.model, self.matrix, self.config = model, matrix, config
        self._measure = measure
        self.validation_measure = validation_measure
        self.validation_goal = "max" if validation_measure == "validation_ndcg" else "min"
        self.baseline_rmse = baseline_rmse
        self._nonempty = torch.nonzero(matrix.lengths() > 0).squeeze(1).cpu()

    def parameters(self) -> dict[str, torch.Tensor]:
        return self.model.parameters()

    def start(self, generator: torch.Generator) -> None:
        """Nothing to prepare: the measurements' samples are fixed by the model."""

    def batches(self, generator: torch.Generator) -> Iterator[CaseBatch]:
        """The cases with training ratings, shuffled, in batches of ``config.batch_size``."""
        order = self._nonempty[torch.randperm(self._nonempty.shape[0], generator=generator)]
        order = order.to(self.model.rbm.device)
        size = self.config.batch_size
        for start in range(0, order.shape[0], size):
            yield self.matrix.gather(order[start : start + size])

    def gradient(self, batch: CaseBatch, steps: int, random: RandomSource) -> Gradient:
        """CD-T from the data: ``h ~ p(h|v)``, resample the visible state, repeat; then the statistics."""
        view = self.model.on(batch)
        positive = chain_from_visible(view, view.data(), random)
        negative = run_chain(view, positive, steps, random, sample_last_hidden=False)
        return statistics(view, positive, negative, self.config.gradient_scale)

    def rows_read(self, batch: CaseBatch) -> dict[str, torch.Tensor]:
        """The rows of the batch's rated units, and every interaction row (:meth:`RecommenderRBM.rows_read`)."""
        return self.model.rows_read(batch)

    def measure(self) -> dict[str, float | None]:
        return self._measure()

    def divergence(self, measures: dict[str, float | None]) -> str | None:
        rmse, baseline = measures.get("validation_rmse"), self.baseline_rmse
        if rmse is not None and baseline is not None and rmse > DIVERGENCE_MARGIN * baseline:
            return (
                f"validation RMSE {rmse:.3f} is worse than the global mean's {baseline:.3f} by over "
                f"{DIVERGENCE_MARGIN - 1:.0%}; lower the learning rate and train again"
            )
        return None


def statistics(view: SparseCases, positive: Chain, negative: Chain, gradient_scale: str = "cases") -> Gradient:
    """``<v hᵀ>_data − <v hᵀ>_model`` of a batch as batch means (see the module docstring), per parameter.

    The weights, visible biases and conditional weights come as :class:`~recsys_rbm.train.gradients.SparseRows`
    with repeated rows, a sum of terms whose values stay factored (:class:`CaseFactors`: each row is a
    case's vector, scaled): only the rows of the batch's rated entries and of its drawn interaction
    units are nonzero. ``gradient_scale="raters"`` divides each unit's rating rows (and conditional row) by the
    number of the batch's cases that rated it instead of the number of cases.
    """
    model, layout, batch = view.model, view.layout, view.batch
    rbm, n, entries = model.rbm, batch.n_cases, batch.case_of_entry
    data, fantasy = positive.hidden_probability / n, negative.hidden_probability / -n  # (B, H), 1/n and sign in
    scale = _raters_scale(view) if gradient_scale == "raters" else None  # (E,) n / raters of the entry's unit
    weights: list[SparseRows] = []  # terms of ΔW …
    biases: list[SparseRows] = []  # … and of Δb, on the same rows
    if layout.interactions:  # ΔW_x = x_dataᵀ p̂_data − x_modelᵀ p̂_model, Δa = mean(x_data − x_model), over the ones
        x_data, x_model = positive.visible.picks(), negative.visible.picks()
        assert x_data is not None and x_model is not None
        weights += [_term(x_data.units, data, x_data.cases), _term(x_model.units, fantasy, x_model.cases)]
        biases += [_same(x_data.units, 1.0 / n, data), _same(x_model.units, -1.0 / n, data)]
    if layout.ratings:  # ΔW_r[g·K + k] = Σ_e (1[k_e = k]·p̂_data − 1[k'_e = k]·p̂_model)[case_e] / B; Δb without p̂
        data_rows, fantasy_rows = view.level_rows + positive.visible.levels, view.level_rows + negative.visible.levels
        weights += [_term(data_rows, data, entries, scale), _term(fantasy_rows, fantasy, entries, scale)]
        biases += [_same(data_rows, 1.0 / n, data, scale), _same(fantasy_rows, -1.0 / n, data, scale)]
    gradient: Gradient = {
        "weights": SparseRows.joined(weights, rbm.weights.shape),
        "visible_bias": SparseRows.joined(biases, rbm.visible_bias.shape),
        "hidden_bias": (positive.hidden_probability - negative.hidden_probability).mean(0),  # Δc
    }
    if model.conditional is not None:  # ΔD[g] = Σ_e (p̂_data − p̂_model)[case_e] / B over the entries of unit g
        difference = CaseFactors(data + fantasy, entries, scale)
        gradient["conditional_weights"] = SparseRows(
            batch.units, None, model.conditional.shape, coalesced=False, factors=difference
        )
    return gradient


def _term(
    rows: torch.Tensor, per_case: torch.Tensor, cases: torch.Tensor | None = None, scale: torch.Tensor | None = None
) -> SparseRows:
    """Rows ``rows[i]`` += ``scale[i] · per_case[cases[i]]`` (``cases`` None: row ``i`` takes ``per_case[i]``)."""
    if cases is None:
        cases = torch.arange(rows.shape[0], device=rows.device)
    return SparseRows(rows, None, coalesced=False, factors=CaseFactors(per_case, cases, scale))


def _same(rows: torch.Tensor, value: float, like: torch.Tensor, scale: torch.Tensor | None = None) -> SparseRows:
    """Rows ``rows[i]`` += ``scale[i] · value`` (a bias term: the same value for every entry)."""
    table = torch.full((1,), value, dtype=like.dtype, device=like.device)
    return _term(rows, table, torch.zeros_like(rows), scale)


def _raters_scale(view: SparseCases) -> torch.Tensor:
    """Each rated entry's ``n / (the batch's raters of its unit)``: turns a mean over cases into one over raters."""
    batch, dtype = view.batch, view.model.rbm.dtype
    raters = torch.bincount(batch.units, minlength=view.layout.n_units).clamp_min_(1).to(dtype)
    return (batch.n_cases / raters)[batch.units]
