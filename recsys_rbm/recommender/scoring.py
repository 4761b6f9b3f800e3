"""Torch-free scoring of a saved movielens-rbm model, for ``rbm-rec recommend`` (no ``import torch``).

``import torch`` alone takes seconds, so the command-line recommend path reads the checkpoint with
``safetensors.numpy`` and the JSON sidecar and runs the mean-field pass in NumPy: a sparse sum of
the user's rated weight rows, then one dense product with the whole catalogue. The formulas are
those of :mod:`recsys_rbm.recommender.meanfield`, shared with the torch model, so the two paths
cannot drift (they are tested to agree). Nothing here may import torch, directly or indirectly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from recsys_rbm.checkpoint_files import read_verified
from recsys_rbm.data.ids import IdMap
from recsys_rbm.errors import CheckpointError, DataError, RecsysRBMError
from recsys_rbm.recommender import meanfield as mf

KIND = "movielens-rbm"


def read_checkpoint(path: str | Path, expected_kind: str = KIND) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a checkpoint as NumPy arrays, with the same checks as the torch loader
    (sidecar format and version, kind, SHA-256, shapes); any problem is a :class:`CheckpointError`."""
    return read_verified(path, expected_kind, load_file)


def summed_rows(table: np.ndarray, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``Σ`` of ``table`` rows per segment: ``rows`` (E,) split into segments of ``lengths`` (B,); -> (B, H).

    The NumPy spelling of the torch model's ``embedding_bag(mode="sum")``; empty segments give 0.
    """
    out = np.zeros((lengths.shape[0], table.shape[1]), dtype=table.dtype)
    nonempty = lengths > 0
    if rows.shape[0]:
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        out[nonempty] = np.add.reduceat(table[rows], starts, axis=0)
    return out


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` columns of each row, descending: ``(ids (B, n), scores (B, n))``.

    ``n`` is capped at the number of columns; entries scored -inf (filtered) come back as id -1.
    """
    n = max(0, min(int(n), scores.shape[1]))
    if n == 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64), np.empty((scores.shape[0], 0))
    if n < scores.shape[1]:
        candidates = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        candidates = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.argsort(-candidate_scores, axis=1, kind="stable")
    ids = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    best = np.take_along_axis(candidate_scores, order, axis=1)
    ids[np.isneginf(best)] = -1
    return ids, best


def check_ids(ids: Any, n: int, kind: str) -> np.ndarray:
    """Inner indices as int64 (M,), each in ``0..n-1``, else a one-line :class:`DataError`."""
    ids = np.asarray(ids).reshape(-1)
    if ids.size and ids.dtype.kind not in "iu":
        raise DataError(f"{kind} indices must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = int(ids[(ids < 0) | (ids >= n)][0])
        raise DataError(f"{kind} inner index {bad} is out of range 0..{n - 1}")
    return ids


def check_ratings_of_new_user(items: Any, levels: Any, n_items: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """A new user's ratings as (item inner ids, levels) int64 (M,) each, else a one-line :class:`DataError`."""
    items = check_ids(items, n_items, "movie")
    levels = np.asarray(levels).reshape(-1)
    if levels.size and levels.dtype.kind not in "iu":
        raise DataError(f"rating levels must be integers, got dtype {levels.dtype}")
    levels = levels.astype(np.int64)
    if levels.shape != items.shape:
        raise DataError(f"a fold-in needs one level per movie, got {items.shape[0]} movies, {levels.shape[0]} levels")
    if levels.size and (levels.min() < 0 or levels.max() >= n_levels):
        raise DataError(f"rating levels must lie in 0..{n_levels - 1}, got {levels.min()}..{levels.max()}")
    return items, levels


class ScoringModel:
    """A saved :class:`~recsys_rbm.recommender.model.RBMRecommender`, read for scoring only (NumPy).

    Ids are inner indices; :attr:`user_ids` / :attr:`item_ids` convert raw ids. :attr:`metadata` is
    the sidecar, including whatever ``extra_metadata`` the model was saved with (e.g. movie titles).
    """

    def __init__(self, tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
        try:
            self.metadata = metadata
            self.mode: str = metadata["mode"]
            self.n_levels = int(metadata["n_levels"])
            self.rating_values = tensors["rating_values"].astype(np.float64)  # (K,)
            self.user_ids = IdMap(tensors["user_raw_ids"].astype(np.int64), "user")
            self.item_ids = IdMap(tensors["item_raw_ids"].astype(np.int64), "movie")
            self.weights = tensors["weights"]  # (G·K, H) float32
            self.visible_bias = tensors["visible_bias"]  # (G·K,)
            self.hidden_bias = tensors["hidden_bias"]  # (H,)
            self.conditional = tensors.get("conditional_weights")  # (G, H) or None
            self.indptr = tensors["train_indptr"].astype(np.int64)  # (n_users + 1,)
            self.rated = tensors["train_items"].astype(np.int64)  # (nnz,)
            self.levels = tensors["train_levels"].astype(np.int64)  # (nnz,)
            item_counts = tensors["item_level_counts"].astype(np.float64)  # (n_items, K)
            self.item_hidden = tensors.get("item_hidden")  # (n_items, H), item-based models only
            if self.mode not in ("user", "item") or (self.mode == "item" and self.item_hidden is None):
                raise ValueError(f"mode {self.mode!r} without the tensors it needs")
            n_users, n_items = len(self.user_ids), len(self.item_ids)
            if self.indptr.shape != (n_users + 1,) or item_counts.shape != (n_items, self.n_levels):
                raise ValueError("id maps and training ratings disagree")
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"not a valid movielens-rbm model ({error}); retrain it") from None
        self.global_distribution = mf.global_distribution(item_counts)  # (K,)
        self.item_distribution = mf.smoothed_distribution(item_counts, self.global_distribution)  # (n_items, K)
        self.item_counts = item_counts.sum(1)  # (n_items,) training ratings per item
        self.item_known = self.item_counts > 0  # (n_items,)

    @classmethod
    def load(cls, path: str | Path) -> ScoringModel:
        """Read a ``movielens-rbm`` checkpoint (CheckpointError if missing, corrupt or of another kind)."""
        tensors, metadata = read_checkpoint(path)
        return cls(tensors, metadata)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def rated_items(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """A user's training ratings: ``(item inner ids, levels)``."""
        user = int(check_ids([user], self.n_users, "user")[0])
        lo, hi = self.indptr[user], self.indptr[user + 1]
        return self.rated[lo:hi], self.levels[lo:hi]

    def _hidden(self, items: np.ndarray, levels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """User-based ``p̂ = sigmoid(c + Σ W[i·K + k_i] + Σ D[i])`` per segment of ratings; -> (B, H)."""
        summed = summed_rows(self.weights, items * self.n_levels + levels, lengths)
        if self.conditional is not None:
            summed = summed + summed_rows(self.conditional, items, lengths)
        return mf.hidden_probability(summed, self.hidden_bias, np)

    def catalogue_distribution(self, users: Any) -> np.ndarray:
        """``P(r = k)`` of every item for each user, with the model's fallbacks; (B,) -> (B, n_items, K)."""
        users = check_ids(users, self.n_users, "user")
        lengths = self.indptr[users + 1] - self.indptr[users]
        k = self.n_levels
        if self.mode == "user":
            entries = np.concatenate([np.arange(self.indptr[u], self.indptr[u + 1]) for u in users] or [[]])
            entries = entries.astype(np.int64)
            hidden = self._hidden(self.rated[entries], self.levels[entries], lengths)
            query_weights = query_bias = None
        else:
            hidden = None
            query_weights = self.weights.reshape(self.n_users, k, -1)[users].reshape(-1, self.weights.shape[1])
            query_bias = self.visible_bias.reshape(self.n_users, k)[users].reshape(-1)
        distribution = mf.catalogue_distribution(
            self.mode,
            hidden,
            query_weights,
            query_bias,
            self.item_hidden,
            self.weights,
            self.visible_bias,
            k,
            np,
        ).astype(np.float64)
        return self._with_fallbacks(distribution, lengths > 0, self._user_distribution(users))

    def _user_distribution(self, users: np.ndarray) -> np.ndarray:
        counts = np.zeros((users.shape[0], self.n_levels))
        for row, user in enumerate(users):
            counts[row] = np.bincount(self.levels[self.indptr[user] : self.indptr[user + 1]], minlength=self.n_levels)
        return mf.smoothed_distribution(counts, self.global_distribution)

    def _with_fallbacks(self, distribution: np.ndarray, user_known: np.ndarray, user_dist: np.ndarray) -> np.ndarray:
        if user_known.all() and self.item_known.all():
            return distribution
        return mf.catalogue_fallbacks(
            distribution, user_known, self.item_known, user_dist, self.item_distribution, self.global_distribution, np
        )

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items closest to ``item`` by cosine of their learned vectors: ``(ids, cosines)``."""
        item = int(check_ids([item], self.n_items, "movie")[0])
        item_hidden = None if self.item_hidden is None else self.item_hidden.astype(np.float64)
        weights = self.weights.astype(np.float64)
        vectors = mf.item_vectors(self.mode, weights, self.rating_values, self.n_levels, item_hidden, self.item_known)
        ids, scores = top_n(mf.cosine_similarities(vectors, item, self.item_known)[None, :], n)
        return ids[0], scores[0]

    def fold_in(self, items: Any, levels: Any) -> np.ndarray:
        """``P(r = k)`` of every item for a new user given their ratings (user-based models); -> (n_items, K)."""
        if self.mode != "user":
            raise RecsysRBMError(
                "fold-in of a new user needs a user-based model (an item-based RBM learns weights per "
                "training user); train one with mode='user'"
            )
        items, levels = check_ratings_of_new_user(items, levels, self.n_items, self.n_levels)
        lengths = np.asarray([items.shape[0]])
        hidden = self._hidden(items, levels, lengths)  # (1, H)
        distribution = mf.outer_distribution(hidden, self.weights, self.visible_bias, self.n_levels, np)
        user_dist = mf.smoothed_distribution(
            np.bincount(levels, minlength=self.n_levels).astype(np.float64), self.global_distribution
        )
        return self._with_fallbacks(distribution.astype(np.float64), lengths > 0, user_dist[None, :])[0]

    def score_items(self, users: Any, score: str = mf.SCORES[0]) -> np.ndarray:
        """Ranking score of every item per user (``"expected"`` or ``"p_high"``); (B,) -> (B, n_items)."""
        distribution = self.catalogue_distribution(users)
        return mf.ranking_score(distribution, self.rating_values, _checked_score(score), self.item_counts)

    def recommend(
        self, users: Any, n: int = 10, filter_rated: bool = True, score: str = mf.SCORES[0]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items per user, best first: ``(item inner ids (B, n), scores (B, n))``; as the torch model."""
        users = check_ids(users, self.n_users, "user")
        scores = self.score_items(users, score)
        if filter_rated:
            for row, user in enumerate(users):
                scores[row, self.rated[self.indptr[user] : self.indptr[user + 1]]] = -np.inf
        return top_n(scores, n)


def _checked_score(score: str) -> str:
    if score not in mf.SCORES:
        raise RecsysRBMError(f"unknown ranking score {score!r}; use one of {', '.join(mf.SCORES)}")
    return score
