"""Accuracy and top-k ranking metrics, as small numpy functions with their formulas and denominators.

Rating accuracy compares predicted ratings ``r̂`` with held-out ratings ``r`` over the ``N`` test
pairs. Ranking follows one protocol throughout:

* **relevant** items of user ``u``: ``Rel_u`` = the user's held-out ratings with ``r ≥ threshold``
  (default 4 on a 1..5 scale); ``R_u = |Rel_u|``.
* **candidates**: every item the user has *not* rated in training (those get score ``-inf``).
  A model ranks all candidates; ``L_u = (l_1, …, l_k)`` is its top-k list and
  ``h_j = 1[l_j ∈ Rel_u]`` marks the hits.
* **ties** in score are broken by the lower inner item index, so a ranking is deterministic.
* **k larger than the candidate list** (``C_u < k`` candidates): positions ``C_u+1..k`` are empty;
  they are never hits and never count as recommended, but denominators that contain ``k`` keep it
  (precision is not rescaled to ``C_u``).
* **users with no relevant items** (``R_u = 0``) are *excluded* from every average, because
  recall, NDCG and AP are undefined for them; :class:`RankingResult` counts them
  (``n_users_without_relevant``). Every average is a macro-average over the evaluated users
  ``U* = {u : R_u ≥ 1}``.

Per-user functions take a hits matrix ``(B, k)`` so they can be checked by hand;
:func:`top_k`, :func:`ranking_metrics` (dense, small problems) and :class:`RankingAccumulator`
(sparse, batched: MovieLens-25M scale) build it from score matrices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------
# Rating accuracy


def _paired(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    actual = np.asarray(actual, dtype=np.float64).ravel()
    if predicted.shape != actual.shape:
        raise ValueError(f"predicted {predicted.shape} and actual {actual.shape} ratings differ in length")
    if predicted.size == 0:
        raise ValueError("no ratings to compare")
    return predicted, actual


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root-mean-square error ``sqrt( (1/N) Σ_n (r̂_n − r_n)² )`` over the ``N`` pairs; ``(N,), (N,) -> float``."""
    predicted, actual = _paired(predicted, actual)
    return float(np.sqrt(np.mean(np.square(predicted - actual))))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error ``(1/N) Σ_n |r̂_n − r_n|`` over the ``N`` pairs; ``(N,), (N,) -> float``."""
    predicted, actual = _paired(predicted, actual)
    return float(np.mean(np.abs(predicted - actual)))


# ---------------------------------------------------------------------------------------------
# Top-k lists


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest-scoring items of each row, best first, and which positions are real.

    Items with score ``-inf`` (rated in training) are never recommended: when a row has fewer than
    ``k`` finite-or-``+inf`` scores, its trailing positions are padding with ``valid = False``.
    Ties are broken by the lower item index. Runs in ``O(B · n_items)`` (``argpartition``, then a
    sort of the ``k`` survivors), not ``O(B · n_items · log n_items)``.

    Parameters
    ----------
    scores : (B, n_items) float; NaN is an error.
    k : list length, ``k ≥ 1``; lists have ``min(k, n_items)`` positions.

    Returns
    -------
    items : (B, min(k, n_items)) int64, item indices best first.
    valid : (B, min(k, n_items)) bool, False where the position is padding (score ``-inf``).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, n_items), got shape {scores.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n_rows, n_items = scores.shape
    kk = min(k, n_items)
    if n_rows == 0 or kk == 0:
        return np.zeros((n_rows, kk), dtype=np.int64), np.zeros((n_rows, kk), dtype=bool)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; a ranking needs comparable scores")

    # argpartition puts the kk largest scores last in each row; among items tied at the kk-th
    # largest score ("threshold") it picks arbitrarily, so rows where the tie reaches past the
    # list are redone: everything above the threshold, then the lowest-indexed tied items.
    items = np.argpartition(scores, n_items - kk, axis=1)[:, n_items - kk :]  # (B, kk) unordered
    chosen = np.take_along_axis(scores, items, axis=1)  # (B, kk)
    threshold = chosen.min(axis=1, keepdims=True)  # (B, 1)
    ambiguous = np.flatnonzero((scores >= threshold).sum(axis=1) > kk)
    if ambiguous.size:
        rows = scores[ambiguous]  # (b, n_items)
        above = rows > threshold[ambiguous]
        tied = rows == threshold[ambiguous]
        places = kk - above.sum(axis=1, keepdims=True)  # (b, 1) places left for tied items
        selected = above | (tied & (np.cumsum(tied, axis=1) <= places))  # exactly kk per row
        items[ambiguous] = np.nonzero(selected)[1].reshape(ambiguous.size, kk)  # row-major: ascending index
        chosen[ambiguous] = np.take_along_axis(rows, items[ambiguous], axis=1)
    order = np.lexsort((items, -chosen), axis=1)  # by score descending, then item index ascending
    items = np.take_along_axis(items, order, axis=1).astype(np.int64, copy=False)
    valid = np.take_along_axis(chosen, order, axis=1) > -np.inf
    return items, valid


# ---------------------------------------------------------------------------------------------
# Per-user ranking metrics from a hits matrix


def _hits(hits: np.ndarray) -> np.ndarray:
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise ValueError(f"hits must be (B, k), got shape {hits.shape}")
    return hits


def _discounts(length: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, length + 2, dtype=np.float64))  # 1/log2(j+1), j = 1..length


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@k ``= (1/k) Σ_{j≤k} h_j`` per user; ``(B, k') -> (B,)``.

    The denominator is **k**, always: a user with fewer than ``k`` relevant items or fewer than
    ``k`` candidates cannot reach 1. (implicit's ``precision_at_k`` divides by ``min(k, R_u)``,
    and micro-averages over users, which makes it a recall-like quantity; this one is the
    textbook precision.)
    """
    return _hits(hits).sum(axis=1) / float(k)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Recall@k ``= (1/R_u) Σ_{j≤k} h_j`` per user; ``(B, k'), (B,) -> (B,)``; NaN where ``R_u = 0``.

    The denominator is **R_u = |Rel_u|**, the information-retrieval definition (as in Herlocker et
    al. 2004 and most recommender surveys), so recall@k < 1 whenever ``R_u > k``. The "truncated"
    or "normalised" recall of Liang et al. (2018, VAE-CF) divides by ``min(k, R_u)`` instead; that
    is the denominator implicit uses for what it calls precision.
    """
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, _hits(hits).sum(axis=1) / n_relevant, np.nan)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k with binary gains per user; ``(B, k'), (B,) -> (B,)``; NaN where ``R_u = 0``.

    ``DCG = Σ_{j≤k} h_j / log2(j + 1)``; ``IDCG = Σ_{j ≤ min(k, R_u)} 1 / log2(j + 1)`` (all relevant
    items ranked first); ``NDCG = DCG / IDCG ∈ [0, 1]``.
    """
    hits = _hits(hits)
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    dcg = hits @ _discounts(hits.shape[1])
    ideal_prefix = np.concatenate([[0.0], np.cumsum(_discounts(k))])  # IDCG for 0..k relevant items
    idcg = ideal_prefix[np.minimum(n_relevant, k)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, dcg / idcg, np.nan)


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Average precision at k per user (its mean over users is MAP@k); ``(B, k'), (B,) -> (B,)``.

    ``AP@k = (1 / min(k, R_u)) Σ_{j≤k} h_j · P@j`` with ``P@j = (1/j) Σ_{i≤j} h_i``; NaN where
    ``R_u = 0``. The denominator ``min(k, R_u)`` is the number of hits a perfect list would have, so
    a perfect list scores 1 (the usual MAP@k of recommender and Kaggle evaluations, and implicit's).
    """
    hits = _hits(hits).astype(np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    positions = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    precision_at_j = np.cumsum(hits, axis=1) / positions  # (B, k')
    denominator = np.minimum(n_relevant, k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, (hits * precision_at_j).sum(axis=1) / denominator, np.nan)


def hit_rate_at_k(hits: np.ndarray) -> np.ndarray:
    """Hit rate@k ``= 1[Σ_{j≤k} h_j ≥ 1]`` per user (at least one relevant item in the list); ``(B, k') -> (B,)``."""
    return _hits(hits).any(axis=1).astype(np.float64)


def catalogue_coverage(items: np.ndarray, valid: np.ndarray, n_items: int) -> float:
    """Catalogue coverage ``= |∪_u L_u| / n_items``: the fraction of all items in anyone's top-k list.

    Only real positions count (padding, ``valid = False``, does not); the union runs over the
    users whose lists are given. ``(B, k'), (B, k'), int -> float``.
    """
    items = np.asarray(items, dtype=np.int64)
    return float(np.unique(items[np.asarray(valid, dtype=bool)]).size / n_items) if n_items else 0.0


# ---------------------------------------------------------------------------------------------
# Whole evaluations


METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


@dataclass(frozen=True)
class RankingResult:
    """Ranking metrics at ``k``, macro-averaged over users with at least one relevant item.

    ``coverage`` is over every ranked user (including those without relevant items).
    """

    k: int
    precision: float  # mean over U* of hits/k
    recall: float  # mean over U* of hits/R_u
    ndcg: float  # mean over U* of DCG/IDCG, binary gains
    map: float  # mean over U* of AP@k, denominator min(k, R_u)
    hit_rate: float  # fraction of U* with at least one hit
    coverage: float  # |∪ top-k lists| / n_items over all ranked users
    n_users_ranked: int  # users whose lists were computed
    n_users_evaluated: int  # |U*|: ranked users with at least one relevant item
    n_users_without_relevant: int  # ranked users excluded from the averages (R_u = 0)
    n_users_short_lists: int  # ranked users with fewer than k candidates

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class RankingAccumulator:
    """Batched top-k evaluation: feed score matrices batch by batch, read a :class:`RankingResult`.

    Relevant pairs are kept as sorted keys ``user · n_items + item``, so a batch costs
    ``O(B · n_items)`` for selection plus ``O(B · k · log |relevant|)`` for hit lookup, and memory
    holds one score batch, never the users × items matrix.

    Parameters
    ----------
    k : list length.
    n_items : catalogue size (columns of every score batch).
    relevant_users, relevant_items : (M,) inner indices of the relevant held-out pairs.
    """

    def __init__(self, k: int, n_items: int, relevant_users: np.ndarray, relevant_items: np.ndarray) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = int(k)
        self.n_items = int(n_items)
        relevant_users = np.asarray(relevant_users, dtype=np.int64)
        relevant_items = np.asarray(relevant_items, dtype=np.int64)
        self._keys = np.unique(relevant_users * self.n_items + relevant_items)  # (M',) sorted, deduplicated
        unique_users, counts = np.unique(self._keys // self.n_items, return_counts=True)
        self._relevant_users = unique_users
        self._relevant_counts = counts
        self._sums = dict.fromkeys(METRICS, 0.0)
        self._recommended = np.zeros(self.n_items, dtype=bool)
        self._ranked = 0
        self._evaluated = 0
        self._short = 0

    def n_relevant(self, users: np.ndarray) -> np.ndarray:
        """``R_u`` for each user; ``(B,) -> (B,)`` int64."""
        users = np.asarray(users, dtype=np.int64)
        if self._relevant_users.size == 0:
            return np.zeros(users.shape, dtype=np.int64)
        position = np.searchsorted(self._relevant_users, users).clip(0, self._relevant_users.size - 1)
        return np.where(self._relevant_users[position] == users, self._relevant_counts[position], 0)

    def add(self, users: np.ndarray, scores: np.ndarray) -> None:
        """Rank one batch. ``users`` (B,) inner indices; ``scores`` (B, n_items), train-rated items at ``-inf``."""
        users = np.asarray(users, dtype=np.int64)
        scores = np.asarray(scores)
        if scores.shape != (users.shape[0], self.n_items):
            raise ValueError(f"scores shape {scores.shape} != (batch {users.shape[0]}, n_items {self.n_items})")
        self.add_top(users, *top_k(scores, self.k))

    def add_top(self, users: np.ndarray, items: np.ndarray, valid: np.ndarray) -> None:
        """Rank one batch whose top lists are already chosen: ``items`` (B, k') best first, ``valid`` (B, k')
        False at padding (as :func:`top_k` returns them)."""
        users = np.asarray(users, dtype=np.int64)
        items, valid = np.asarray(items, dtype=np.int64), np.asarray(valid, dtype=bool)
        keys = users[:, None] * self.n_items + items
        if self._keys.size:
            position = np.searchsorted(self._keys, keys).clip(0, self._keys.size - 1)
            hits = valid & (self._keys[position] == keys)  # (B, k')
        else:
            hits = np.zeros_like(valid)
        n_relevant = self.n_relevant(users)
        evaluated = n_relevant > 0
        self._ranked += users.shape[0]
        self._evaluated += int(evaluated.sum())
        self._short += int((valid.sum(axis=1) < self.k).sum())
        self._recommended[items[valid]] = True
        if evaluated.any():
            hits, n_relevant = hits[evaluated], n_relevant[evaluated]
            self._sums["precision"] += float(precision_at_k(hits, self.k).sum())
            self._sums["recall"] += float(recall_at_k(hits, n_relevant).sum())
            self._sums["ndcg"] += float(ndcg_at_k(hits, n_relevant, self.k).sum())
            self._sums["map"] += float(map_at_k(hits, n_relevant, self.k).sum())
            self._sums["hit_rate"] += float(hit_rate_at_k(hits).sum())

    def result(self) -> RankingResult:
        """The averages so far (NaN metrics when no ranked user had a relevant item)."""
        n = self._evaluated
        means = {name: (total / n if n else float("nan")) for name, total in self._sums.items()}
        return RankingResult(
            k=self.k,
            coverage=float(self._recommended.sum() / self.n_items) if self.n_items else 0.0,
            n_users_ranked=self._ranked,
            n_users_evaluated=n,
            n_users_without_relevant=self._ranked - n,
            n_users_short_lists=self._short,
            **means,
        )


def ranking_metrics(
    scores: np.ndarray, relevant: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> RankingResult:
    """All ranking metrics for a small dense problem (tests, notebooks).

    Parameters
    ----------
    scores : (B, n_items) ranking scores, higher is better.
    relevant : (B, n_items) bool, the held-out relevant items.
    k : list length.
    exclude : (B, n_items) bool, items rated in training; their scores become ``-inf``.
    """
    scores = np.array(scores, dtype=np.float64)  # a copy: masking must not touch the caller's array
    relevant = np.asarray(relevant, dtype=bool)
    if relevant.shape != scores.shape:
        raise ValueError(f"relevant {relevant.shape} and scores {scores.shape} differ in shape")
    if exclude is not None:
        scores[np.asarray(exclude, dtype=bool)] = -np.inf
    rows, columns = np.nonzero(relevant)
    accumulator = RankingAccumulator(k, scores.shape[1], rows, columns)
    accumulator.add(np.arange(scores.shape[0]), scores)
    return accumulator.result()
