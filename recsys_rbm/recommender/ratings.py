"""Ratings as the recommender sees them: inner indices and rating levels, with the raw ids kept apart.

Raw ids are what users type and files contain (MovieLens user and movie ids); inner indices are
tensor rows ``0..n-1``. :class:`IdMap` converts between them at the boundary. Ratings are stored as
levels ``0..K-1`` into ``rating_values`` (the distinct ratings found in the data, ascending).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_rbm.errors import UnknownIdError


@dataclass(frozen=True)
class IdMap:
    """Raw id ↔ inner index. ``raw_ids[i]`` is the raw id of inner index ``i`` (sorted ascending)."""

    raw_ids: np.ndarray  # (n,) int64, sorted, unique
    kind: str = "id"  # "user" or "movie", for error messages

    @classmethod
    def from_raw(cls, raw: np.ndarray, kind: str = "id") -> IdMap:
        return cls(np.unique(np.asarray(raw, dtype=np.int64)), kind)

    def __len__(self) -> int:
        return int(self.raw_ids.shape[0])

    def contains(self, raw: np.ndarray) -> np.ndarray:
        """Boolean mask of which raw ids are known."""
        raw = np.asarray(raw, dtype=np.int64)
        position = np.searchsorted(self.raw_ids, raw).clip(0, max(len(self) - 1, 0))
        return (len(self) > 0) & (self.raw_ids[position] == raw)

    def to_inner(self, raw: np.ndarray) -> np.ndarray:
        """Inner indices of known raw ids; raises :class:`UnknownIdError` naming the first unknown one."""
        raw = np.asarray(raw, dtype=np.int64)
        known = self.contains(raw)
        if not known.all():
            first = int(raw[~known].flat[0])
            raise UnknownIdError(
                f"unknown {self.kind} {first}; known {self.kind} ids range over "
                f"{int(self.raw_ids.min())}..{int(self.raw_ids.max())} ({len(self)} of them)"
                if len(self)
                else f"unknown {self.kind} {first}: the model knows no {self.kind}s"
            )
        return np.searchsorted(self.raw_ids, raw)

    def to_raw(self, inner: np.ndarray) -> np.ndarray:
        return self.raw_ids[np.asarray(inner, dtype=np.int64)]


@dataclass(frozen=True)
class Ratings:
    """A set of (user, item, level) triples in inner indices, sharing id maps and a rating scale."""

    users: np.ndarray  # (N,) int64 inner user index
    items: np.ndarray  # (N,) int64 inner item index
    levels: np.ndarray  # (N,) int64 rating level 0..K-1, into rating_values
    user_ids: IdMap
    item_ids: IdMap
    rating_values: np.ndarray  # (K,) float64 ascending, e.g. [1, 2, 3, 4, 5]
    timestamps: np.ndarray | None = None  # (N,) int64 seconds, when the release has them

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_levels(self) -> int:
        return int(self.rating_values.shape[0])

    @property
    def values(self) -> np.ndarray:
        """The ratings themselves (e.g. 4.0), not their levels."""
        return self.rating_values[self.levels]

    def subset(self, rows: np.ndarray) -> Ratings:
        """The same id maps and scale, a subset of the triples (boolean mask or row indices)."""
        return Ratings(
            self.users[rows],
            self.items[rows],
            self.levels[rows],
            self.user_ids,
            self.item_ids,
            self.rating_values,
            None if self.timestamps is None else self.timestamps[rows],
        )
