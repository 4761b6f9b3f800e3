"""What the recommender RBM hands the core trainer: its batches of cases and their sparse statistics.

The learning rule is the core's ``<v hᵀ>_data − <v hᵀ>_model`` with ``h`` replaced by ``p(h|v)``,
computed on the cases of a batch with the model term after a CD-T chain run by the core's Gibbs
sampler over :class:`~recsys_rbm.recommender.sparse.SparseCases`. Written out per block:

* interaction rows (dense over units): ``ΔW_x = (x_dataᵀ p̂_data − x_modelᵀ p̂_model) / B``, one
  matrix product over the stacked phases, and ``Δa = mean(x_data − x_model)``;
* rating rows (rated entries only): ``ΔW_r[g·K + k] = Σ_e (1[k_e = k]·p̂_data[case_e] −
  1[k'_e = k]·p̂_model[case_e]) / B`` accumulated with ``index_add``, ``Δb`` likewise without ``p̂``;
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
    with repeated rows (not coalesced): only the rows of the batch's rated entries (and every
    interaction row) are nonzero, and only those rows are written; the hidden biases are dense.
    ``gradient_scale="raters"`` divides each unit's rating rows (and conditional row) by the number
    of the batch's cases that rated it instead of the number of cases.
    """
    model, layout, batch = view.model, view.layout, view.batch
    rbm = model.rbm
    n, n_entries, n_units = batch.n_cases, batch.units.shape[0], layout.n_units
    p_data, p_model = positive.hidden_probability, negative.hidden_probability  # (B, H)
    by_raters = None  # with "raters": each rating entry's n / (raters of its unit)
    if gradient_scale == "raters":
        raters = torch.bincount(batch.units, minlength=n_units).clamp_min_(1).to(rbm.dtype)
        by_raters = (n / raters)[batch.units]
    # Each row of the weights' (biases') gradient is a row (value) of one table, weighted: the interaction
    # products (G), then the data and the model phase's per-case rows, with 1/n and the sign folded in.
    # The data's interactions are its rated units: x_dataᵀ p_data is then a sum over the rated entries.
    sparse_data = layout.interactions and positive.visible.rated_only
    n_products = n_units if layout.interactions else 0
    table = torch.empty((n_products + 2 * n, rbm.n_hidden), dtype=rbm.dtype, device=rbm.device)
    bias_table = torch.empty(n_products + 2, dtype=rbm.dtype, device=rbm.device)
    torch.div(p_data, n, out=table[n_products : n_products + n])
    torch.div(p_model, -n, out=table[n_products + n :])
    bias_table[n_products], bias_table[n_products + 1] = 1.0 / n, -1.0 / n
    data_at, model_at = n_products, n_products + n  # the phases' blocks in the table (data_at + case, …)
    rows, cases, bias_cases, weights = [], [], [], []  # per part of the rows, joined at the end (weights: raters)
    if layout.interactions:
        x_data, x_model = positive.visible.interactions, negative.visible.interactions  # (B, G)
        every_unit = torch.arange(n_units, device=rbm.device)
        rows.append(every_unit)
        cases.append(every_unit)
        bias_cases.append(every_unit)
        phases = table[n_products:]
        if sparse_data:
            torch.mm(x_model.T, phases[n:], out=table[:n_units])
            torch.mean(x_model, 0, out=bias_table[:n_units]).neg_()
            rows.append(batch.units)
            cases.append(batch.case_of_entry + data_at)
            bias_cases.append(torch.full_like(batch.units, n_products))
        else:
            torch.mm(torch.cat([x_data, x_model]).T, phases, out=table[:n_units])
            torch.mean(x_data - x_model, 0, out=bias_table[:n_units])
        if by_raters is not None:  # the interaction rows are not reweighted
            weights.append(torch.ones(n_units + (n_entries if sparse_data else 0), dtype=rbm.dtype, device=rbm.device))
    if layout.ratings:
        rows += [view.level_rows + positive.visible.levels, view.level_rows + negative.visible.levels]
        cases += [batch.case_of_entry + data_at, batch.case_of_entry + model_at]
        bias_cases += [torch.full_like(batch.units, n_products), torch.full_like(batch.units, n_products + 1)]
        weights += [] if by_raters is None else [by_raters, by_raters]
    # Rows repeat (entries of different cases on one unit and level): the trainer's update adds them up.
    all_rows, all_weights = _joined(rows), None if by_raters is None else _joined(weights)
    weight_factors = CaseFactors(table, _joined(cases), all_weights)
    bias_factors = CaseFactors(bias_table, _joined(bias_cases), all_weights)
    gradient: Gradient = {
        "weights": SparseRows(all_rows, None, rbm.weights.shape, coalesced=False, factors=weight_factors),
        "visible_bias": SparseRows(all_rows, None, rbm.visible_bias.shape, coalesced=False, factors=bias_factors),
        "hidden_bias": (p_data - p_model).mean(0),
    }
    if model.conditional is not None:
        difference = CaseFactors((p_data - p_model) / n, batch.case_of_entry, by_raters)  # (B, H) per case
        gradient["conditional_weights"] = SparseRows(
            batch.units, None, model.conditional.shape, coalesced=False, factors=difference
        )
    return gradient


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(parts)``, without copying a single part."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)
