"""What the recommender's library API returns, in the data's own ids: lists, scored items, reasons, anomalies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TopItems:
    """Several users' lists, best first: ``items[b]`` (raw ids) and ``scores[b]`` for ``users[b]``.

    A list is shorter than asked only where fewer candidates remain. Iterating gives
    ``(user, items, scores)``; :meth:`to_frame` gives one row per (user, item).
    """

    users: list[Any]
    items: list[np.ndarray]
    scores: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.users)

    def __iter__(self) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
        return iter(zip(self.users, self.items, self.scores, strict=True))

    def __getitem__(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """One user's ``(items, scores)``, by position."""
        return self.items[row], self.scores[row]

    def to_frame(self) -> Any:
        """A polars DataFrame with columns user, item, rank (1 = best) and score."""
        import polars as pl

        lengths = [len(items) for items in self.items]
        users = np.repeat(np.asarray(self.users, dtype=object), lengths).tolist()
        ranks = np.concatenate([np.arange(1, n + 1) for n in lengths]) if lengths else np.zeros(0, np.int64)
        items = np.concatenate(self.items).tolist() if lengths else []
        scores = np.concatenate(self.scores) if lengths else np.zeros(0)
        return pl.DataFrame({"user": users, "item": items, "rank": ranks, "score": scores}, strict=False)


@dataclass(frozen=True)
class ScoredItem:
    """One item's score for a user and what it is made of, in the data's own ids."""

    item: Any  # raw item id
    title: str | None
    score: float  # the ranking score (by default P(picks it)·P(rates it ≥ threshold | picks it))
    p_interacted: float  # P(the user picks it): the model's, or the popularity prior of a ratings-only model
    p_like: float | None  # P(rating ≥ threshold | picks it); None for implicit data
    expected_rating: float | None  # None for implicit data
    because: tuple[Any, ...] = ()  # the user's own items that push this one up most (raw ids), strongest first


@dataclass(frozen=True)
class Reason:
    """One of the user's ratings and how much it moves an item's score (log of the score with / without it)."""

    item: Any
    title: str | None
    rating: float
    effect: float


@dataclass(frozen=True)
class Anomaly:
    """A user whose profile is atypical under the model (see :mod:`recsys_rbm.recommender.profiles`)."""

    user: Any  # raw user id
    score: float  # (F − F̂(n)) / spread(n): about 0 for a typical profile of that length
    n_ratings: int
    free_energy: float  # F of the profile: −log p(profile) up to the constant log Z
    surprising: tuple[Reason, ...]  # least likely ratings given the rest; ``effect`` = log p(picked, rated so | rest)
