"""Baselines that every recommender must beat, through the same :class:`Recommender` protocol.

* :class:`GlobalMean` — predict the training mean ``μ`` for everything.
* :class:`BiasBaseline` — ``r̂_ui = μ + b_u + b_i`` with damped (shrunk) user and item offsets.
* :class:`MostPopular` — rank items by how many training ratings they have.
* :class:`EASE` — the closed-form item-item ranker of Steck (2019), its λ chosen on validation.

Fitting is a handful of ``np.bincount`` passes over the training triples (no per-rating Python
loop), so these run on MovieLens-25M in seconds. Users or items with no training rating get a zero
offset (bias baseline) or the global mean (most popular): unknown inner indices are a defined
outcome, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np

from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.metrics import rmse


def _lookup(table: np.ndarray, index: np.ndarray, default: float) -> np.ndarray:
    """``table[index]``, with ``default`` for indices outside ``0..len(table)-1`` (unseen ids)."""
    index = np.asarray(index, dtype=np.int64)
    inside = (index >= 0) & (index < table.shape[0])
    return np.where(inside, table[np.where(inside, index, 0)] if table.shape[0] else default, default)


def _require_fitted(model: object, attribute: str) -> None:
    if getattr(model, attribute) is None:
        raise RuntimeError(f"{type(model).__name__} must be fitted before it predicts")


@dataclass
class GlobalMean:
    """``r̂_ui = μ = (1/N) Σ r`` over the ``N`` training ratings; every item scores the same for ranking
    (so a top-k list is simply the lowest-indexed candidates: a floor, not a recommender)."""

    name: str = "global mean"
    mean: float | None = field(default=None, init=False)  # μ after fit
    n_items: int = field(default=0, init=False)

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        self.mean = float(train.values.mean())
        self.n_items = train.n_items
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        _require_fitted(self, "mean")
        return np.full(np.asarray(items).shape, self.mean, dtype=np.float64)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        _require_fitted(self, "mean")
        return np.zeros((np.asarray(users).shape[0], self.n_items), dtype=np.float64)  # (B, n_items)


def fit_biases(
    train: Ratings, lambda_item: float, lambda_user: float, n_passes: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """Damped biases by alternating closed-form passes; returns ``(μ, b_user (n_users,), b_item (n_items,))``.

    Starting from ``b_u = 0``, each pass sets, with ``R(i)`` the users who rated item ``i`` and
    ``R(u)`` the items user ``u`` rated::

        b_i = Σ_{u ∈ R(i)} (r_ui − μ − b_u) / (λ_i + |R(i)|)
        b_u = Σ_{i ∈ R(u)} (r_ui − μ − b_i) / (λ_u + |R(u)|)

    The first pass is Koren's (2008, "Factorization meets the neighborhood", §2.1) one-shot
    estimate; further passes are block coordinate descent on the ridge objective
    ``Σ (r − μ − b_u − b_i)² + λ_u Σ b_u² + λ_i Σ b_i²`` and converge in a few passes. The
    ``λ`` act as pseudo-counts pulling offsets of rarely-rated items and light users to zero.
    """
    if len(train) == 0:
        raise ValueError("cannot fit on an empty training set")
    values = train.values
    mu = float(values.mean())
    n_user = np.bincount(train.users, minlength=train.n_users).astype(np.float64)
    n_item = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
    b_user = np.zeros(train.n_users, dtype=np.float64)
    b_item = np.zeros(train.n_items, dtype=np.float64)
    for _ in range(n_passes):
        residual = values - mu - b_user[train.users]
        b_item = np.bincount(train.items, weights=residual, minlength=train.n_items) / (lambda_item + n_item)
        residual = values - mu - b_item[train.items]
        b_user = np.bincount(train.users, weights=residual, minlength=train.n_users) / (lambda_user + n_user)
    return mu, b_user, b_item


@dataclass
class BiasBaseline:
    """``r̂_ui = clip(μ + b_u + b_i)`` with damped offsets (see :func:`fit_biases`).

    Predictions are clipped to the rating scale ``[min, max]``. Ranking scores are
    ``μ + b_u + b_i``; within a user only ``b_i`` varies, so the ranking is by damped item mean
    (popularity-aware: a rarely-rated item is pulled to the global mean).

    With ``tune=True`` and a validation set, ``(λ_i, λ_u)`` are chosen from ``tune_grid`` by
    validation RMSE (cheap: each fit is a few bincounts); otherwise the defaults are used:
    ``λ_i = λ_u = 5``, chosen on the 5% validation carve-outs of ml-100k's u1–u5 base files (never
    the test files). Koren's (2008) Netflix values, ``λ_i = 25`` and ``λ_u = 10``, damp too hard
    for ml-100k's ~100 ratings per user (a worse validation RMSE on every fold).
    """

    lambda_item: float = 5.0  # λ_i, pseudo-ratings at μ added to every item (Koren's Netflix value: 25)
    lambda_user: float = 5.0  # λ_u, pseudo-ratings added to every user (Koren's Netflix value: 10)
    n_passes: int = 3  # alternating item/user passes; 1 is the classic one-shot estimate
    tune: bool = False  # pick (λ_i, λ_u) from tune_grid on the validation split
    tune_grid: tuple[float, ...] = (1.0, 3.0, 5.0, 10.0, 15.0, 25.0, 50.0)  # candidate values for both λ
    name: str = "user+item biases"
    mean: float | None = field(default=None, init=False)  # μ
    user_bias: np.ndarray | None = field(default=None, init=False)  # (n_users,) b_u
    item_bias: np.ndarray | None = field(default=None, init=False)  # (n_items,) b_i
    rating_range: tuple[float, float] = field(default=(-np.inf, np.inf), init=False)

    def __post_init__(self) -> None:
        if self.lambda_item < 0 or self.lambda_user < 0:
            raise ValueError("the damping terms λ_i and λ_u must be non-negative")
        if self.n_passes < 1:
            raise ValueError(f"n_passes must be at least 1, got {self.n_passes}")

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        if self.tune and validation is not None and len(validation):
            best = (np.inf, self.lambda_item, self.lambda_user)
            for lambda_item in self.tune_grid:
                for lambda_user in self.tune_grid:
                    mu, b_user, b_item = fit_biases(train, lambda_item, lambda_user, self.n_passes)
                    estimate = mu + b_user[validation.users] + b_item[validation.items]
                    low, high = train.rating_values[0], train.rating_values[-1]
                    error = rmse(np.clip(estimate, low, high), validation.values)
                    if error < best[0]:
                        best = (error, lambda_item, lambda_user)
            self.lambda_item, self.lambda_user = best[1], best[2]
        self.mean, self.user_bias, self.item_bias = fit_biases(train, self.lambda_item, self.lambda_user, self.n_passes)
        self.rating_range = (float(train.rating_values[0]), float(train.rating_values[-1]))
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        _require_fitted(self, "mean")
        assert self.user_bias is not None and self.item_bias is not None and self.mean is not None
        estimate = self.mean + _lookup(self.user_bias, users, 0.0) + _lookup(self.item_bias, items, 0.0)
        return np.clip(estimate, *self.rating_range)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        _require_fitted(self, "mean")
        assert self.user_bias is not None and self.item_bias is not None and self.mean is not None
        user_part = _lookup(self.user_bias, users, 0.0)[:, None]  # (B, 1)
        return self.mean + user_part + self.item_bias[None, :]  # (B, n_items)


@dataclass
class MostPopular:
    """Rank items by their number of training ratings ``n_i = |R(i)|`` (any rating value), the same
    list for every user (minus what each has already rated).

    For rating prediction it returns the item's plain training mean ``(1/n_i) Σ_{u∈R(i)} r_ui``, and
    the global mean ``μ`` for an item with no training rating — the natural "what do people give this
    item" companion of a popularity ranking, reported so its RMSE column is not empty.
    """

    name: str = "most popular"
    counts: np.ndarray | None = field(default=None, init=False)  # (n_items,) n_i
    item_mean: np.ndarray | None = field(default=None, init=False)  # (n_items,) mean rating, μ where n_i = 0
    mean: float = field(default=float("nan"), init=False)

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        values = train.values
        self.mean = float(values.mean())
        counts = np.bincount(train.items, minlength=train.n_items)
        sums = np.bincount(train.items, weights=values, minlength=train.n_items)
        self.counts = counts.astype(np.int64)
        self.item_mean = np.where(counts > 0, sums / np.maximum(counts, 1), self.mean)
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        _require_fitted(self, "item_mean")
        assert self.item_mean is not None
        return _lookup(self.item_mean, items, self.mean)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        _require_fitted(self, "counts")
        assert self.counts is not None
        popularity = self.counts.astype(np.float64)
        return np.broadcast_to(popularity, (np.asarray(users).shape[0], popularity.shape[0])).copy()  # (B, n_items)


@dataclass
class EASE:
    """Steck (2019), "Embarrassingly Shallow Autoencoders for Sparse Data": a linear item-item ranker.

    On the binary user × item matrix ``X`` of training interactions (any rating counts as 1), the
    item-item weights ``B = argmin ‖X − XB‖² + λ‖B‖²`` subject to ``diag(B) = 0`` have the closed
    form ``P = (XᵀX + λI)⁻¹``, ``B = −P / diag(P)`` (column-wise), ``diag(B) = 0``; a user's scores
    are ``X_u B``. ``λ`` is chosen among ``lambdas`` by NDCG@10 on the validation ratings (relevant:
    rated at least ``like_threshold``, default 3/4 up the scale; candidates: everything not in
    training), then the model is refitted on training and validation together. It predicts no
    ratings (``predict`` gives NaN). Memory and time grow with ``n_items²`` and ``n_items³``: fine
    for a few thousand items; for a long tail, ``min_users`` keeps only the items with at least
    that many users in the model (the others are never recommended), as on Last.fm's 17,632 artists.
    """

    lambdas: tuple[float, ...] = (30.0, 100.0, 300.0, 1000.0, 3000.0)
    like_threshold: float | None = None
    min_users: int = 1  # items with fewer users in the training data are left out of the item-item model
    name: str = "EASE"
    chosen_lambda: float | None = field(default=None, init=False)
    validation_ndcg: dict[float, float] = field(default_factory=dict, init=False)  # λ -> NDCG@10 on validation
    weights: np.ndarray | None = field(default=None, init=False)  # (modelled, modelled) B
    interactions: np.ndarray | None = field(default=None, init=False)  # (n_users, modelled) X of train ∪ validation
    modelled: np.ndarray | None = field(default=None, init=False)  # the items in the model (inner ids)
    n_items: int = field(default=0, init=False)  # the catalogue, modelled or not

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        if not self.lambdas or min(self.lambdas) <= 0:
            raise ValueError(f"EASE needs positive λ values, got {self.lambdas}")
        self.n_items = train.n_items
        self.modelled = _items_with_users(train, self.min_users)
        x_train = _interaction_matrix(train, self.modelled)
        self.validation_ndcg = {}
        self.chosen_lambda = float(self.lambdas[0])
        if validation is not None and len(validation) > 0:
            if len(self.lambdas) > 1:
                for value in self.lambdas:
                    self.validation_ndcg[float(value)] = _validation_ndcg(
                        x_train, _ease_weights(x_train, value), train, validation, self.like_threshold, self.modelled
                    )
                self.chosen_lambda = max(self.validation_ndcg, key=lambda value: self.validation_ndcg[value])
            from recsys_rbm.recommender.evaluation import concatenate

            everything = concatenate(train, validation)
            self.modelled = _items_with_users(everything, self.min_users)
            x_train = _interaction_matrix(everything, self.modelled)
        self.interactions = x_train
        self.weights = _ease_weights(x_train, self.chosen_lambda)
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(np.asarray(users).shape, np.nan)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        _require_fitted(self, "weights")
        assert self.interactions is not None and self.weights is not None and self.modelled is not None
        users = np.asarray(users, dtype=np.int64)
        scores = np.full((users.shape[0], self.n_items), -np.inf)
        scores[:, self.modelled] = self.interactions[users] @ self.weights
        return scores  # (B, n_items)


def _items_with_users(ratings: Ratings, least: int) -> np.ndarray:
    """Inner ids of the items with at least ``least`` ratings, ascending."""
    return np.flatnonzero(np.bincount(ratings.items, minlength=ratings.n_items) >= least)


def _interaction_matrix(ratings: Ratings, items: np.ndarray | None = None) -> np.ndarray:
    """``X[u, j] = 1`` where user ``u`` rated item ``items[j]`` (every item when not given); (n_users, len(items))."""
    column = np.arange(ratings.n_items) if items is None else np.full(ratings.n_items, -1)
    if items is not None:
        column[items] = np.arange(items.shape[0])
    keep = column[ratings.items] >= 0
    x = np.zeros((ratings.n_users, ratings.n_items if items is None else items.shape[0]), dtype=np.float64)
    x[ratings.users[keep], column[ratings.items[keep]]] = 1.0
    return x


def _ease_weights(x: np.ndarray, regularisation: float) -> np.ndarray:
    """``B = −P / diag(P)``, ``diag(B) = 0``, with ``P = (XᵀX + λI)⁻¹``; (n_items, n_items)."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += regularisation
    precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def _validation_ndcg(
    x_train: np.ndarray,
    weights: np.ndarray,
    train: Ratings,
    validation: Ratings,
    threshold: float | None,
    modelled: np.ndarray,
) -> float:
    """NDCG@10 of ``X B`` on the liked validation ratings, training items excluded (items outside the model last)."""
    from recsys_rbm.recommender.config import like_threshold
    from recsys_rbm.recommender.metrics import RankingAccumulator

    liked = validation.values >= like_threshold(train.rating_values, threshold)
    users = np.unique(validation.users[liked])
    scores = np.full((users.shape[0], train.n_items), -np.inf)
    scores[:, modelled] = x_train[users] @ weights
    row = np.full(train.n_users, -1)
    row[users] = np.arange(users.shape[0])
    seen = row[train.users] >= 0
    scores[row[train.users[seen]], train.items[seen]] = -np.inf
    accumulator = RankingAccumulator(10, train.n_items, validation.users[liked], validation.items[liked])
    accumulator.add(users, scores)
    return float(accumulator.result().ndcg)
