"""The MovieLens RBM (Salakhutdinov, Mnih & Hinton 2007): softmax visible units, sparse training.

Each *case* (a user in user-based mode, a movie in item-based mode) is its own RBM over the
*units* it rated (movies, resp. users); all cases share one weight matrix. A case's missing
ratings are absent from both phases: they are never reconstructed, never sampled and never
counted, and the data stay sparse (per-case CSR), so every cost grows with the number of ratings.

Shapes: ``G`` units with ``K`` rating levels each, ``H`` hidden units, ``W`` (G·K, H) group-major
(row ``g·K + k`` is unit ``g`` at level ``k``, as in :class:`recsys_rbm.units.SoftmaxUnits`),
``b`` (G·K,), ``c`` (H,), and for the conditional RBM ``D`` (G, H). A mini-batch holds ``B`` cases
with ``E`` ratings in all; rating ``e`` belongs to case ``case_e`` and unit ``g_e`` at level ``k_e``.

* positive phase: ``p̂ = sigmoid(c + Σ_{e∈case} W[g_e·K + k_e] + Σ_{e∈case} D[g_e])`` — one
  ``embedding_bag`` over the rated rows (a sparse product with the one-hot visible vector);
* negative phase (CD-T): ``h ~ p̂``; each rated entry only is resampled from
  ``softmax_k(b[g_e, k] + W[g_e, k]·h)``; the hidden probabilities are recomputed; T times;
* learning rule, the core's ``<v hᵀ>_data − <v hᵀ>_model`` restricted to rated entries, with
  ``h`` replaced by ``p(h|v)`` in both terms, accumulated with ``index_add`` into the rated rows.

Prediction is mean-field (:mod:`recsys_rbm.recommender.meanfield`, shared with the torch-free
:mod:`recsys_rbm.recommender.scoring`): ``p̂`` from a case's training ratings, then a softmax per
unit. Users and items without training ratings get a documented fallback distribution
(:func:`meanfield.fallback_codes`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F

from recsys_rbm.checkpoint import load_checkpoint, save_checkpoint, tensor_path
from recsys_rbm.config import config_from_dict
from recsys_rbm.data.fingerprint import ratings_fingerprint
from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.errors import CheckpointError, DataError, RecsysRBMError, TrainingDiverged
from recsys_rbm.model import RBM
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.scoring import check_ids, check_ratings_of_new_user, top_n
from recsys_rbm.rng import RandomSource, UniformStream, uniform
from recsys_rbm.runtime import make_generator, resolve_device
from recsys_rbm.units import SoftmaxUnits

KIND = "movielens-rbm"
PAIR_CHUNK = 1 << 20  # (case, unit) pairs predicted per sparse product
CATALOGUE_BUDGET = 1 << 24  # (user, item, level) probabilities per dense catalogue product in score_items


# --- sparse data --------------------------------------------------------------------------------
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
        order = np.argsort(cases.astype(np.int64) * (int(units.max(initial=0)) + 1) + units, kind="stable")
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
        total = case_of_entry.shape[0]
        entry = starts[case_of_entry] + torch.arange(total, device=cases.device) - offsets[case_of_entry]
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


# --- the sparse mathematics ---------------------------------------------------------------------
@dataclass
class Parameters:
    """The shared RBM (``W``, ``b``, ``c`` as the core :class:`RBM`) and the conditional ``D`` (G, H)."""

    rbm: RBM
    conditional: torch.Tensor | None = None

    @property
    def n_levels(self) -> int:
        return self.rbm.units.n_levels  # type: ignore[union-attr]

    @property
    def n_units(self) -> int:
        return self.rbm.units.n_groups  # type: ignore[union-attr]

    def tensors(self) -> dict[str, torch.Tensor]:
        out = dict(self.rbm.parameters())
        if self.conditional is not None:
            out["conditional_weights"] = self.conditional
        return out

    def clone(self) -> Parameters:
        rbm = RBM(*(t.clone() for t in self.rbm.parameters().values()), self.rbm.units)
        return Parameters(rbm, None if self.conditional is None else self.conditional.clone())


def hidden_input(params: Parameters, batch: CaseBatch, levels: torch.Tensor) -> torch.Tensor:
    """``s = Σ_{e∈case} W[g_e·K + k_e] (+ Σ_{e∈case} D[g_e])``: a sparse product; -> (B, H).

    ``levels`` (E,) are the visible states (the data's, or a negative sample's). The conditional
    term sums ``D`` over the units the case rated in training — the same set in both phases.
    """
    rows = batch.units * params.n_levels + levels
    s = F.embedding_bag(rows, params.rbm.weights, batch.offsets, mode="sum")  # (B, H)
    if params.conditional is not None:
        s = s + F.embedding_bag(batch.units, params.conditional, batch.offsets, mode="sum")
    return s


def hidden_probability(params: Parameters, batch: CaseBatch, levels: torch.Tensor) -> torch.Tensor:
    """``p(h = 1 | v, r) = sigmoid(c + s)``; -> (B, H)."""
    return mf.hidden_probability(hidden_input(params, batch, levels), params.rbm.hidden_bias, torch)


def rated_logits(params: Parameters, batch: CaseBatch, hidden: torch.Tensor) -> torch.Tensor:
    """``b[g_e, k] + W[g_e, k]·h[case_e]`` at the rated entries only; ``hidden`` (B, H) -> (E, K)."""
    return entry_logits(params, batch.case_of_entry, batch.units, hidden)


def entry_logits(
    params: Parameters, case_of_entry: torch.Tensor, units: torch.Tensor, hidden: torch.Tensor
) -> torch.Tensor:
    """``b[g_e, k] + W[g_e, k]·h[c_e]`` for entries (c_e, g_e) sorted by case; ``hidden`` (C, H) -> (E, K).

    A sampled dense-dense product (SDDMM): ``h Wᵀ`` evaluated only at the K rows of each entry,
    so neither the (C, G·K) product nor an (E, K, H) gather of weights is ever formed.
    """
    k, n_cases = params.n_levels, hidden.shape[0]
    columns = (units[:, None] * k + torch.arange(k, device=units.device)).flatten()  # (E·K,)
    lengths = torch.bincount(case_of_entry, minlength=n_cases) * k
    row_starts = torch.zeros(n_cases + 1, dtype=torch.long, device=columns.device)
    torch.cumsum(lengths, 0, out=row_starts[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        pattern = torch.sparse_csr_tensor(
            row_starts,
            columns,
            params.rbm.visible_bias[columns],
            (n_cases, params.rbm.n_visible),
            check_invariants=False,
        )
        logits = torch.sparse.sampled_addmm(pattern, hidden, params.rbm.weights.T)  # b + h Wᵀ at the pattern
    return logits.values().view(-1, k)


def sample_levels(logits: torch.Tensor, random: RandomSource) -> torch.Tensor:
    """One draw per entry from ``softmax_k(logits)`` by the inverse CDF; (E, K) -> (E,) levels."""
    probability = torch.softmax(logits, dim=-1)
    draw = uniform((logits.shape[0], 1), probability, random)
    return (probability.cumsum(-1) < draw).sum(-1).clamp_max(logits.shape[1] - 1)


def negative_levels(params: Parameters, batch: CaseBatch, steps: int, random: RandomSource) -> torch.Tensor:
    """CD-T from the data: ``h ~ p(h|v)``, resample the rated entries, repeat; -> (E,) levels.

    Only the case's rated entries are reconstructed; the rated-set term of the conditional RBM is
    held at the training set throughout.
    """
    levels = batch.levels
    probability = hidden_probability(params, batch, levels)
    for _ in range(steps):
        h = (uniform(probability.shape, probability, random) < probability).to(probability.dtype)
        levels = sample_levels(rated_logits(params, batch, h), random)
        probability = hidden_probability(params, batch, levels)
    return levels


@dataclass
class SparseGradient:
    """Sums over a batch's cases of ``<v hᵀ>_data − <v hᵀ>_model`` (``h`` → ``p(h|v)``), per parameter."""

    weights: torch.Tensor  # (G·K, H)
    visible_bias: torch.Tensor  # (G·K,)
    hidden_bias: torch.Tensor  # (H,)
    conditional: torch.Tensor | None  # (G, H)


def contrastive_statistics(params: Parameters, batch: CaseBatch, model_levels: torch.Tensor) -> SparseGradient:
    """The contrastive gradient of a batch, summed over cases, touching only the rated rows.

    ``ΔW[g·K + k] = Σ_e (1[k_e = k]·p̂_data[case_e] − 1[k'_e = k]·p̂_model[case_e])`` where ``k'``
    are ``model_levels`` (E,), ``Δb`` the same without ``p̂``, ``Δc = Σ_cases (p̂_data − p̂_model)``
    and ``ΔD[g] = Σ_e (p̂_data − p̂_model)[case_e]``. Equal to ``B ×`` the core's
    :func:`recsys_rbm.training.contrastive_gradient` on dense one-hot, masked data (tested).
    """
    gradient = SparseGradient(
        torch.zeros_like(params.rbm.weights),
        torch.zeros_like(params.rbm.visible_bias),
        torch.zeros_like(params.rbm.hidden_bias),
        None if params.conditional is None else torch.zeros_like(params.conditional),
    )
    accumulate_statistics(params, batch, model_levels, gradient)
    return gradient


def accumulate_statistics(
    params: Parameters,
    batch: CaseBatch,
    model_levels: torch.Tensor,
    into: SparseGradient,
    scale: float = 1.0,
    unit_scale: torch.Tensor | None = None,
) -> None:
    """``into += scale ·`` :func:`contrastive_statistics`, with unit ``g``'s rows also times ``unit_scale[g]``.

    Only the rated rows are written (``index_add``), so training adds the batch's gradient
    straight into the momentum buffers without a dense (G·K, H) gradient tensor.
    """
    k = params.n_levels
    data_h = hidden_probability(params, batch, batch.levels)  # (B, H)
    model_h = hidden_probability(params, batch, model_levels)  # (B, H)
    data_rows = batch.units * k + batch.levels  # (E,)
    model_rows = batch.units * k + model_levels  # (E,)
    per_entry = torch.full_like(data_rows, scale, dtype=data_h.dtype)  # (E,)
    if unit_scale is not None:
        per_entry = per_entry * unit_scale[batch.units]
    weight = per_entry[:, None]
    into.weights.index_add_(0, data_rows, data_h[batch.case_of_entry] * weight)
    into.weights.index_add_(0, model_rows, model_h[batch.case_of_entry] * weight, alpha=-1.0)
    into.visible_bias.index_add_(0, data_rows, per_entry).index_add_(0, model_rows, per_entry, alpha=-1.0)
    difference = data_h - model_h  # (B, H)
    into.hidden_bias.add_(difference.sum(0), alpha=scale)
    if into.conditional is not None:
        into.conditional.index_add_(0, batch.units, difference[batch.case_of_entry] * weight)


def case_hidden_all(params: Parameters, matrix: CaseMatrix, chunk_entries: int = 1 << 20) -> torch.Tensor:
    """Mean-field hidden states ``p̂`` of every case from its training ratings; -> (C, H)."""
    out = torch.empty(matrix.n_cases, params.rbm.n_hidden, dtype=params.rbm.dtype, device=params.rbm.device)
    indptr = matrix.indptr.cpu().numpy()
    first = 0
    while first < matrix.n_cases:
        last = int(np.searchsorted(indptr, indptr[first] + chunk_entries, side="right")) - 1
        last = min(max(last, first + 1), matrix.n_cases)
        batch = matrix.slice(first, last)
        out[first:last] = hidden_probability(params, batch, batch.levels)
        first = last
    return out


# --- training records ---------------------------------------------------------------------------
@dataclass
class EpochRecord:
    """What one epoch measured. ``train_rmse`` is the mean-field reconstruction RMSE of a fixed sample
    of training ratings (their own rating is part of the input, so it is optimistic)."""

    epoch: int  # 1-based
    cd_steps: int
    train_rmse: float
    validation_rmse: float | None
    seconds: float  # the update pass and the measurements
    is_best: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[EpochRecord], None]


# --- the recommender ------------------------------------------------------------------------------
@dataclass
class _TrainingData:
    """What the fitted model keeps of its training ratings (numpy, CPU): a user × item CSR and counts."""

    user_indptr: np.ndarray  # (n_users + 1,) int64
    user_items: np.ndarray  # (nnz,) int32, sorted within each user
    user_levels: np.ndarray  # (nnz,) uint8
    user_level_counts: np.ndarray  # (n_users, K) int64
    item_level_counts: np.ndarray  # (n_items, K) int64

    @classmethod
    def from_ratings(cls, ratings: Ratings) -> _TrainingData:
        order = np.argsort(ratings.users * ratings.n_items + ratings.items, kind="stable")
        indptr = np.zeros(ratings.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(ratings.users, minlength=ratings.n_users), out=indptr[1:])
        k = ratings.n_levels
        user_counts = np.bincount(ratings.users * k + ratings.levels, minlength=ratings.n_users * k)
        item_counts = np.bincount(ratings.items * k + ratings.levels, minlength=ratings.n_items * k)
        return cls(
            indptr,
            ratings.items[order].astype(np.int32),
            ratings.levels[order].astype(np.uint8),
            user_counts.reshape(ratings.n_users, k).astype(np.int64),
            item_counts.reshape(ratings.n_items, k).astype(np.int64),
        )

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users = np.repeat(np.arange(self.user_indptr.shape[0] - 1), np.diff(self.user_indptr))
        return users, self.user_items.astype(np.int64), self.user_levels.astype(np.int64)


class RBMRecommender:
    """RBM collaborative filtering implementing the :class:`~recsys_rbm.recommender.protocol.Recommender` protocol.

    All ids are inner indices (see :class:`~recsys_rbm.data.ids.IdMap`).

    Conditional RBM (``config.conditional``): the rated-set vector ``r`` of a case is the set of
    units it rated **in the training ratings passed to** :meth:`fit` (user-based: the movies the
    user rated; item-based: the users who rated the movie). It never includes test or validation
    ratings, nor even which test movies exist: evaluation leaks through ``r`` are impossible by
    construction. Because ``r`` equals the case's own training set, a fold-in sees exactly what a
    training user saw.
    """

    def __init__(self, config: RecommenderConfig | None = None) -> None:
        self.config = config or RecommenderConfig()
        self.device = resolve_device(self.config.device)
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None
        self.best_validation_rmse: float | None = None
        self.fit_seconds: float | None = None
        self.metadata: dict[str, Any] = {}  # extra metadata read back by load (e.g. movie titles)
        self.params: Parameters | None = None
        self._data: _TrainingData | None = None
        self._matrix: CaseMatrix | None = None
        self._case_hidden: torch.Tensor | None = None  # (C, H) mean-field states of the training cases
        self.user_ids: IdMap | None = None
        self.item_ids: IdMap | None = None
        self.rating_values: np.ndarray | None = None
        self.fingerprint: str | None = None

    @property
    def name(self) -> str:
        base = "U-RBM" if self.config.mode == "user" else "I-RBM"
        return f"{base} (conditional)" if self.config.conditional else base

    @property
    def n_users(self) -> int:
        return len(self._require_fitted().user_ids)  # type: ignore[arg-type]

    @property
    def n_items(self) -> int:
        return len(self._require_fitted().item_ids)  # type: ignore[arg-type]

    @property
    def n_levels(self) -> int:
        return int(self._require_fitted().rating_values.shape[0])  # type: ignore[union-attr]

    # --- fitting ----------------------------------------------------------------------------------
    def fit(self, train: Ratings, validation: Ratings | None = None, progress: ProgressCallback | None = None) -> Self:
        """Train by CD-T on ``train``; with ``validation`` (same id space), stop early and keep the best epoch.

        ``history`` gets one :class:`EpochRecord` per epoch; ``progress`` is called with each.
        """
        config = self.config
        _check_ratings(train, "training")
        if validation is not None and len(validation) > 0:
            _check_same_space(train, validation)
        else:
            validation = None
        started = time.perf_counter()
        self._set_training_data(train)
        torch_generator = make_generator(config.seed)
        params = self._initial_parameters(torch_generator)
        stream_seed = int(torch.randint(0, 2**62, (1,), generator=torch_generator))
        random = UniformStream(stream_seed, self.device, torch.float32)
        matrix = self._matrix
        assert matrix is not None and self._data is not None
        nonempty = torch.nonzero(matrix.lengths() > 0).squeeze(1).cpu()
        monitor = self._monitor_pairs(train, torch_generator)
        velocity = {name: torch.zeros_like(t) for name, t in params.tensors().items()}
        self.history, self.best_epoch, self.best_validation_rmse = [], None, None
        best = params.clone()
        averaged: Parameters | None = None  # exponential moving average of the parameters over epochs
        for epoch in range(config.epochs):
            epoch_started = time.perf_counter()
            steps = config.cd_steps(epoch)
            order = nonempty[torch.randperm(nonempty.shape[0], generator=torch_generator)].to(self.device)
            with torch.no_grad():
                for start in range(0, order.shape[0], config.batch_size):
                    batch = matrix.gather(order[start : start + config.batch_size])
                    self._update(params, batch, velocity, steps, config.learning_rate, random)
            _check_finite(params, epoch + 1)
            if config.averaging:
                if averaged is None:
                    averaged = params.clone()
                for mean, current in zip(averaged.tensors().values(), params.tensors().values(), strict=True):
                    mean.mul_(config.averaging).add_(current, alpha=1 - config.averaging)
            evaluated = averaged if averaged is not None else params
            self.params = evaluated
            self._case_hidden = case_hidden_all(evaluated, matrix)
            train_rmse = self._rmse(*monitor)
            validation_rmse = None if validation is None else self._rmse_of(validation)
            improved = validation_rmse is not None and (
                self.best_validation_rmse is None or validation_rmse < self.best_validation_rmse
            )
            if improved:
                self.best_epoch, self.best_validation_rmse, best = epoch + 1, validation_rmse, evaluated.clone()
            record = EpochRecord(
                epoch + 1,
                steps,
                train_rmse,
                validation_rmse,
                time.perf_counter() - epoch_started,
                improved,
            )
            self.history.append(record)
            if progress is not None:
                progress(record)
            stalled = self.best_epoch is not None and epoch + 1 - self.best_epoch >= config.patience
            if validation is not None and stalled:
                break
        if validation is not None:
            self.params = best
        else:
            self.best_epoch = len(self.history)
        self._case_hidden = case_hidden_all(self.params, matrix)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _set_training_data(self, train: Ratings) -> None:
        self.user_ids, self.item_ids = train.user_ids, train.item_ids
        self.rating_values = np.asarray(train.rating_values, dtype=np.float64)
        self.fingerprint = ratings_fingerprint(train)
        self._data = _TrainingData.from_ratings(train)
        self._build_matrix()

    def _build_matrix(self) -> None:
        """The per-case CSR for this mode, on the training device."""
        users, items, levels = self._data.triples()  # type: ignore[union-attr]
        if self.config.mode == "user":
            self._matrix = CaseMatrix.from_arrays(users, items, levels, len(self.user_ids), self.device)
        else:
            self._matrix = CaseMatrix.from_arrays(items, users, levels, len(self.item_ids), self.device)

    def _unit_level_counts(self) -> np.ndarray:
        data = self._data
        assert data is not None
        return data.item_level_counts if self.config.mode == "user" else data.user_level_counts

    def _initial_parameters(self, generator: torch.Generator) -> Parameters:
        """``W ~ N(0, σ²)``, ``c = 0``, ``D = 0``, ``b[g, k] = log`` of unit g's smoothed level frequencies."""
        counts = self._unit_level_counts()  # (G, K)
        units = SoftmaxUnits(counts.shape[0], counts.shape[1])
        frequencies = mf.smoothed_distribution(counts.astype(np.float64), mf.global_distribution(counts))
        rbm = RBM.initialise(
            units,
            self.config.n_hidden,
            generator,
            weight_std=self.config.weight_std,
            visible_mean=torch.from_numpy(frequencies.reshape(-1)),
            device=self.device,
        )
        conditional = None
        if self.config.conditional:
            conditional = torch.zeros(units.n_groups, self.config.n_hidden, device=self.device)
        return Parameters(rbm, conditional)

    def _update(
        self,
        params: Parameters,
        batch: CaseBatch,
        velocity: dict[str, torch.Tensor],
        steps: int,
        learning_rate: float,
        random: RandomSource,
    ) -> None:
        """One momentum step: ``v ← m·v + ε(Δ/n − λW)``, ``θ ← θ + v`` (decay on W and D only).

        ``n`` is the number of cases in the batch (``gradient_scale="cases"``), or for each unit's
        rows the number of the batch's cases that rated that unit (``"raters"``); the hidden
        biases are always divided by the number of cases. ``Δ`` is added into ``v`` at the rated
        rows only.
        """
        config = self.config
        model_levels = negative_levels(params, batch, steps, random)
        for buffer in velocity.values():
            buffer.mul_(config.momentum)
        into = SparseGradient(
            velocity["weights"], velocity["visible_bias"], velocity["hidden_bias"], velocity.get("conditional_weights")
        )
        n_cases = batch.n_cases
        if config.gradient_scale == "raters":
            raters = torch.bincount(batch.units, minlength=params.n_units).clamp_min_(1).to(params.rbm.dtype)
            accumulate_statistics(
                params, batch, model_levels, into, learning_rate / n_cases, unit_scale=n_cases / raters
            )
        else:
            accumulate_statistics(params, batch, model_levels, into, learning_rate / n_cases)
        for name, parameter in params.tensors().items():
            if config.weight_decay and name in ("weights", "conditional_weights"):
                velocity[name].add_(parameter, alpha=-learning_rate * config.weight_decay)
            parameter.add_(velocity[name])

    def _monitor_pairs(self, train: Ratings, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A fixed sample of whole training cases with about ``monitor_ratings`` ratings in all."""
        case_of = train.users if self.config.mode == "user" else train.items
        n_cases = train.n_users if self.config.mode == "user" else train.n_items
        if len(train) <= self.config.monitor_ratings:
            return train.users, train.items, train.levels
        keep_fraction = self.config.monitor_ratings / len(train)
        chosen = torch.rand(n_cases, generator=generator).numpy() < keep_fraction
        rows = chosen[case_of]
        return train.users[rows], train.items[rows], train.levels[rows]

    def _rmse(self, users: np.ndarray, items: np.ndarray, levels: np.ndarray) -> float:
        if users.shape[0] == 0:
            return float("nan")
        predicted = self.predict(users, items)
        return float(np.sqrt(np.mean((predicted - self.rating_values[levels]) ** 2)))

    def _rmse_of(self, ratings: Ratings) -> float:
        return self._rmse(ratings.users, ratings.items, ratings.levels)

    # --- prediction -------------------------------------------------------------------------------
    def fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per pair, which prediction it gets: an index into :data:`meanfield.FALLBACK_NAMES`; (N,) -> (N,)."""
        data = self._require_fitted()._data
        assert data is not None
        users, items = self._check_pairs(users, items)
        user_known = np.diff(data.user_indptr)[users] > 0
        item_known = data.item_level_counts.sum(1)[items] > 0
        return mf.fallback_codes(user_known, item_known)

    def predict_distribution(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Mean-field ``P(r = k)`` for each (user, item) pair; (N,), (N,) -> (N, K), rows sum to 1.

        ``p̂ = p(h | the case's training ratings)`` (not sampled), then a softmax over the target
        unit's K levels. Pairs without training ratings on one side get their fallback (see
        :meth:`fallback`).
        """
        codes = self.fallback(users, items)
        users, items = self._check_pairs(users, items)
        cases, units = (users, items) if self.config.mode == "user" else (items, users)
        out = np.empty((users.shape[0], self.n_levels), dtype=np.float64)
        model = codes == mf.MODEL
        out[model] = self._model_pairs(cases[model], units[model])
        if not model.all():
            rest = ~model
            user_dist, item_dist, global_dist = self._empirical_distributions()
            out[rest] = mf.apply_fallbacks(
                out[rest], codes[rest], user_dist[users[rest]], item_dist[items[rest]], global_dist, np
            )
        return out

    def _model_pairs(self, cases: np.ndarray, units: np.ndarray) -> np.ndarray:
        """``softmax_k(b[g, k] + W[g, k]·p̂_c)`` for (case, unit) pairs with training data; -> (N, K)."""
        params, hidden = self.params, self._case_hidden
        assert params is not None and hidden is not None
        order = np.argsort(cases, kind="stable")
        out = np.empty((cases.shape[0], params.n_levels), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, cases.shape[0], PAIR_CHUNK):
                rows = order[start : start + PAIR_CHUNK]
                c = torch.from_numpy(cases[rows]).to(self.device)
                u = torch.from_numpy(units[rows]).to(self.device)
                logits = entry_logits(params, c, u, hidden)
                out[rows] = mf.softmax(logits, torch).cpu().numpy()
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Expected ratings ``Σ_k P(r = k)·value_k`` on the data's scale; (N,), (N,) -> (N,)."""
        return mf.expected_rating(self.predict_distribution(users, items), self.rating_values)

    def probability_at_least(self, users: np.ndarray, items: np.ndarray, threshold: float = 4.0) -> np.ndarray:
        """``P(r ≥ threshold)`` for each pair; (N,), (N,) -> (N,)."""
        return mf.probability_at_least(self.predict_distribution(users, items), self.rating_values, threshold)

    def catalogue_distribution(self, users: np.ndarray) -> np.ndarray:
        """``P(r = k)`` of every item for each user, with fallbacks; (B,) -> (B, n_items, K).

        One dense product per batch: user-based ``softmax(b + p̂_u Wᵀ)``; item-based
        ``softmax(b_u + P̂ W_uᵀ)`` with ``P̂`` (n_items, H) the items' mean-field states.
        """
        self._require_fitted()
        users = self._check_ids(users, self.n_users, "user")
        params, hidden = self.params, self._case_hidden
        assert params is not None and hidden is not None
        k = params.n_levels
        with torch.no_grad():
            index = torch.from_numpy(users).to(self.device)
            weights = params.rbm.weights.view(params.n_units, k, -1)
            query_hidden = hidden[index] if self.config.mode == "user" else None
            query_weights = None if self.config.mode == "user" else weights[index].reshape(-1, weights.shape[-1])
            query_bias = None if self.config.mode == "user" else params.rbm.visible_bias.view(-1, k)[index].flatten()
            distribution = mf.catalogue_distribution(
                self.config.mode,
                query_hidden,
                query_weights,
                query_bias,
                hidden,
                params.rbm.weights,
                params.rbm.visible_bias,
                k,
                torch,
            )
            distribution = distribution.to(torch.float64).cpu().numpy()
        return self._catalogue_fallbacks(users, distribution)

    def _catalogue_fallbacks(self, users: np.ndarray, distribution: np.ndarray) -> np.ndarray:
        data = self._data
        assert data is not None
        user_known = np.diff(data.user_indptr)[users] > 0  # (B,)
        item_known = data.item_level_counts.sum(1) > 0  # (n_items,)
        if user_known.all() and item_known.all():
            return distribution
        user_dist, item_dist, global_dist = self._empirical_distributions()
        return mf.catalogue_fallbacks(
            distribution, user_known, item_known, user_dist[users], item_dist, global_dist, np
        )

    def score_items(self, users: np.ndarray, score: str = mf.SCORES[0]) -> np.ndarray:
        """Ranking score of every item per user, higher is better; (B,) -> (B, n_items).

        ``score``: ``"p_rated_high"`` (default) ``(n_i + 1)·P(r ≥ 4)``, ``"expected"`` rating or
        ``"p_high"`` = ``P(r ≥ 4)``; see :func:`meanfield.ranking_score`. One dense catalogue
        product per batch of users.
        """
        _check_score(score)
        users = self._check_ids(users, self.n_users, "user")
        out = np.empty((users.shape[0], self.n_items), dtype=np.float64)
        step = max(1, CATALOGUE_BUDGET // (self.n_items * self.n_levels))
        for start in range(0, users.shape[0], step):
            distribution = self.catalogue_distribution(users[start : start + step])
            out[start : start + step] = mf.ranking_score(
                distribution,
                self.rating_values,
                score,
                self._data.item_level_counts.sum(1),  # type: ignore[union-attr]
            )
        return out

    def recommend(
        self, users: np.ndarray, n: int = 10, filter_rated: bool = True, score: str = mf.SCORES[0]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items per user, best first: ``(item inner ids (B, n), scores (B, n))``.

        ``filter_rated`` drops the items each user rated in training. ``n`` is capped at the number
        of items; where a user has fewer than ``n`` candidates, the row ends in id -1, score -inf.
        """
        users = self._check_ids(users, self.n_users, "user")
        scores = self.score_items(users, score)
        if filter_rated:
            data = self._data
            assert data is not None
            for row, user in enumerate(users):
                scores[row, data.user_items[data.user_indptr[user] : data.user_indptr[user + 1]]] = -np.inf
        return top_n(scores, n)

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items closest to ``item`` by cosine similarity of their learned vectors: ``(ids, cosines)``.

        User-based: an item's vector is its expected-rating direction in hidden space,
        ``w_i = Σ_k (value_k − mean value)·W[i, k]`` (H,): the hidden units that raise its predicted
        rating (the level-independent part of ``W_i`` only says "was rated" and is dropped).
        Item-based: an item is a case, its vector its mean-field hidden state ``p̂_i`` with each
        hidden unit standardised over the items (z-scores), so no one dominant unit decides.
        Items without training ratings are never returned.
        """
        self._require_fitted()
        item = int(self._check_ids(np.asarray([item]), self.n_items, "movie")[0])
        params, data = self.params, self._data
        assert params is not None and data is not None and self.rating_values is not None
        item_known = data.item_level_counts.sum(1) > 0
        item_hidden = None if self._case_hidden is None else self._case_hidden.double().cpu().numpy()
        weights = params.rbm.weights.double().cpu().numpy()
        vectors = mf.item_vectors(
            self.config.mode, weights, self.rating_values, params.n_levels, item_hidden, item_known
        )
        ids, scores = top_n(mf.cosine_similarities(vectors, item, item_known)[None, :], n)
        return ids[0], scores[0]

    def fold_in(self, items: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """``P(r = k)`` of every item for a new user from their ratings, no retraining; -> (n_items, K).

        ``items`` inner item ids and ``levels`` 0..K-1, (M,) each. The user's hidden state is
        ``p̂ = sigmoid(c + Σ W[i, k_i] + Σ D[i])`` exactly as for a training user with these
        training ratings. Item-based models cannot fold in a user (a user is a visible unit with
        its own learned weights), and raise :class:`RecsysRBMError`.
        """
        self._require_fitted()
        if self.config.mode != "user":
            raise RecsysRBMError(
                "fold-in of a new user needs a user-based model (an item-based RBM learns weights per "
                "training user); train one with mode='user'"
            )
        items, levels = check_ratings_of_new_user(items, levels, self.n_items, self.n_levels)
        params = self.params
        assert params is not None
        with torch.no_grad():
            batch = CaseBatch(
                torch.zeros(items.shape[0], dtype=torch.long, device=self.device),
                torch.zeros(1, dtype=torch.long, device=self.device),
                torch.from_numpy(items).to(self.device),
                torch.from_numpy(levels).to(self.device),
            )
            hidden = hidden_probability(params, batch, batch.levels)  # (1, H)
            distribution = mf.outer_distribution(
                hidden, params.rbm.weights, params.rbm.visible_bias, params.n_levels, torch
            )[0]
            distribution = distribution.to(torch.float64).cpu().numpy()
        k = self.n_levels
        counts = np.bincount(levels, minlength=k).astype(np.float64)
        _, item_dist, global_dist = self._empirical_distributions()
        item_known = self._data.item_level_counts.sum(1) > 0  # type: ignore[union-attr]
        codes = mf.fallback_codes(np.full(self.n_items, items.shape[0] > 0), item_known)
        user_dist = mf.smoothed_distribution(counts, global_dist)
        return mf.apply_fallbacks(distribution, codes, user_dist[None, :], item_dist, global_dist, np)

    def _empirical_distributions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Smoothed per-user (n_users, K) and per-item (n_items, K) level distributions, and the global (K,)."""
        data = self._data
        assert data is not None
        global_dist = mf.global_distribution(data.item_level_counts.astype(np.float64))
        return (
            mf.smoothed_distribution(data.user_level_counts.astype(np.float64), global_dist),
            mf.smoothed_distribution(data.item_level_counts.astype(np.float64), global_dist),
            global_dist,
        )

    def rated_items(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """A user's training ratings: ``(item inner ids, levels)``."""
        data = self._require_fitted()._data
        assert data is not None
        user = int(self._check_ids(np.asarray([user]), self.n_users, "user")[0])
        lo, hi = data.user_indptr[user], data.user_indptr[user + 1]
        return data.user_items[lo:hi].astype(np.int64), data.user_levels[lo:hi].astype(np.int64)

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path, extra_metadata: dict[str, Any] | None = None) -> Path:
        """Write ``path`` (.safetensors) and its JSON sidecar; scoring needs nothing else.

        Tensors: the parameters, the training ratings as an int32 user × item CSR with uint8 levels,
        per-item level counts, raw ids (int64), rating values, and in item-based mode the items'
        mean-field hidden states (for the torch-free fast path). The sidecar: kind
        ``"movielens-rbm"``, config, seed, history, best epoch and validation RMSE, training
        fingerprint, and ``extra_metadata`` (e.g. ``{"dataset": ..., "movies": {raw id: {...}}}``).
        """
        self._require_fitted()
        data, params = self._data, self.params
        assert data is not None and params is not None
        tensors = {name: t.float() for name, t in params.tensors().items()}
        tensors |= {
            "train_indptr": torch.from_numpy(data.user_indptr),
            "train_items": torch.from_numpy(data.user_items),
            "train_levels": torch.from_numpy(data.user_levels),
            "item_level_counts": torch.from_numpy(data.item_level_counts),
            "user_raw_ids": torch.from_numpy(self.user_ids.raw_ids),  # type: ignore[union-attr]
            "item_raw_ids": torch.from_numpy(self.item_ids.raw_ids),  # type: ignore[union-attr]
            "rating_values": torch.from_numpy(self.rating_values),  # type: ignore[arg-type]
        }
        if self.config.mode == "item":
            tensors["item_hidden"] = self._case_hidden.float()  # type: ignore[union-attr]
        own = {
            "kind": KIND,
            "config": asdict(self.config),
            "name": self.name,
            "seed": self.config.seed,
            "mode": self.config.mode,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_levels": self.n_levels,
            "n_hidden": self.config.n_hidden,
            "n_train_ratings": int(data.user_items.shape[0]),
            "rating_values": [float(v) for v in self.rating_values],  # type: ignore[union-attr]
            "training_fingerprint": self.fingerprint,
            "best_epoch": self.best_epoch,
            "best_validation_rmse": self.best_validation_rmse,
            "fit_seconds": self.fit_seconds,
            "history": [record.as_dict() for record in self.history],
        }
        clash = sorted(set(own) & set(extra_metadata or {}))
        if clash:
            raise RecsysRBMError(f"extra_metadata may not override the model's own fields: {', '.join(clash)}")
        return save_checkpoint(path, tensors, {**(extra_metadata or {}), **own})

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> RBMRecommender:
        """Rebuild a saved model (no training data needed); any problem is a one-line CheckpointError."""
        tensors, metadata = load_checkpoint(path, expected_kind=KIND)
        try:
            config = config_from_dict(RecommenderConfig, {**metadata["config"], "device": device})
            model = cls(config)
            k = int(metadata["n_levels"])
            n_users, n_items = int(metadata["n_users"]), int(metadata["n_items"])
            model.user_ids = IdMap(tensors["user_raw_ids"].numpy().astype(np.int64), "user")
            model.item_ids = IdMap(tensors["item_raw_ids"].numpy().astype(np.int64), "movie")
            model.rating_values = tensors["rating_values"].numpy().astype(np.float64)
            indptr = tensors["train_indptr"].numpy().astype(np.int64)
            items = tensors["train_items"].numpy().astype(np.int32)
            levels = tensors["train_levels"].numpy().astype(np.uint8)
            if indptr.shape != (n_users + 1,) or model.rating_values.shape != (k,) or len(model.item_ids) != n_items:
                raise ValueError("id maps, rating scale and training ratings disagree")
            users = np.repeat(np.arange(n_users), np.diff(indptr))
            user_counts = np.bincount(users * k + levels, minlength=n_users * k).reshape(n_users, k)
            item_counts = tensors["item_level_counts"].numpy().astype(np.int64)
            model._data = _TrainingData(indptr, items, levels, user_counts.astype(np.int64), item_counts)
            n_units = n_items if config.mode == "user" else n_users
            rbm = RBM(
                tensors["weights"].to(model.device),
                tensors["visible_bias"].to(model.device),
                tensors["hidden_bias"].to(model.device),
                SoftmaxUnits(n_units, k),
            )
            conditional = tensors.get("conditional_weights")
            if (conditional is not None) != config.conditional:
                raise ValueError("conditional weights present/absent contrary to the config")
            model.params = Parameters(rbm, None if conditional is None else conditional.to(model.device))
            model.history = [EpochRecord(**record) for record in metadata.get("history", [])]
            model.best_epoch = metadata.get("best_epoch")
            model.best_validation_rmse = metadata.get("best_validation_rmse")
            model.fit_seconds = metadata.get("fit_seconds")
            model.fingerprint = metadata.get("training_fingerprint")
        except (KeyError, ValueError, TypeError, RecsysRBMError) as error:
            raise CheckpointError(
                f"{tensor_path(path)} is not a valid movielens-rbm model ({error}); retrain it"
            ) from None
        model._build_matrix()
        model._case_hidden = case_hidden_all(model.params, model._matrix)  # type: ignore[arg-type]
        model.metadata = metadata
        return model

    # --- checks -------------------------------------------------------------------------------------
    def _require_fitted(self) -> RBMRecommender:
        if self.params is None:
            raise RecsysRBMError("the model is not trained yet: call fit() or load() first")
        return self

    def _check_ids(self, ids: np.ndarray, n: int, kind: str) -> np.ndarray:
        return check_ids(ids, n, kind)

    def _check_pairs(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._require_fitted()
        users = self._check_ids(users, self.n_users, "user")
        items = self._check_ids(items, self.n_items, "movie")
        if users.shape != items.shape:
            raise DataError(f"users and items must pair up, got {users.shape[0]} users and {items.shape[0]} items")
        return users, items


# --- helpers ------------------------------------------------------------------------------------
def _check_score(score: str) -> str:
    if score not in mf.SCORES:
        raise RecsysRBMError(f"unknown ranking score {score!r}; use one of {', '.join(mf.SCORES)}")
    return score


def _check_ratings(ratings: Ratings, what: str) -> None:
    if len(ratings) == 0:
        raise DataError(f"the {what} ratings are empty")
    if ratings.n_levels < 2:
        raise DataError(f"the {what} ratings use {ratings.n_levels} rating value(s); a softmax needs at least 2")
    if ratings.levels.min() < 0 or ratings.levels.max() >= ratings.n_levels:
        raise DataError(f"the {what} rating levels fall outside 0..{ratings.n_levels - 1}")


def _check_same_space(train: Ratings, other: Ratings) -> None:
    same = (
        np.array_equal(train.user_ids.raw_ids, other.user_ids.raw_ids)
        and np.array_equal(train.item_ids.raw_ids, other.item_ids.raw_ids)
        and np.array_equal(train.rating_values, other.rating_values)
    )
    if not same:
        raise DataError("validation ratings must share the training ratings' id maps and rating scale")


def _check_finite(params: Parameters, epoch: int) -> None:
    for name, tensor in params.tensors().items():
        if not bool(torch.isfinite(tensor).all()):
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}: {name} became non-finite; lower the learning rate and retrain"
            )


__all__ = [
    "KIND",
    "CaseBatch",
    "CaseMatrix",
    "EpochRecord",
    "Parameters",
    "RBMRecommender",
    "SparseGradient",
    "contrastive_statistics",
    "hidden_probability",
    "negative_levels",
]
