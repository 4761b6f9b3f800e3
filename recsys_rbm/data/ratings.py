"""Ratings as models see them, and the step that makes them from what a file holds.

:class:`RawRatings` is a table as read: raw ids (integers or text), rating values, timestamps,
and how to name each row in messages. :func:`index_ratings` turns it into :class:`Ratings`:
inner indices through :class:`~recsys_rbm.data.ids.IdMap`, rating levels ``0..K-1`` through a
:class:`~recsys_rbm.data.scale.RatingScale`, with every bad row (an unknown id, a rating off the
scale, a repeated (user, item) pair) reported together in one line.

Each (user, item) cell holds one rating. Repeated pairs are an error by default; readers that
are told to keep the last one call :func:`drop_repeated_pairs` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from recsys_rbm.data.ids import IdMap, describe_id, index_ids
from recsys_rbm.data.problems import DEFAULT_LIMIT, FIX_ADVICE, BadRows, RowNames
from recsys_rbm.data.scale import RatingScale

Duplicates = Literal["error", "last"]


@dataclass(frozen=True)
class Ratings:
    """A set of (user, item, level) triples in inner indices, sharing id maps and a rating scale.

    ``scale`` says where the values came from (declared, a release's, inferred, implicit); built
    without one, it is derived from ``rating_values``. Implicit feedback is ``rating_values ==
    [1.0]`` (K = 1): every triple says "this user interacted with this item".
    """

    users: np.ndarray  # (N,) int64 inner user index
    items: np.ndarray  # (N,) int64 inner item index
    levels: np.ndarray  # (N,) int64 rating level 0..K-1, into rating_values
    user_ids: IdMap
    item_ids: IdMap
    rating_values: np.ndarray  # (K,) float64 ascending, e.g. [1, 2, 3, 4, 5]; [1] for implicit feedback
    timestamps: np.ndarray | None = None  # (N,) int64 seconds, when the source has them
    scale: RatingScale = field(default=None)  # type: ignore[assignment]  # derived from rating_values when None

    def __post_init__(self) -> None:
        if self.scale is None:
            object.__setattr__(self, "scale", RatingScale(tuple(np.asarray(self.rating_values).tolist())))
        elif not np.array_equal(self.scale.rating_values, self.rating_values):
            raise ValueError("rating_values must be the scale's values")

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
    def is_implicit(self) -> bool:
        """Implicit feedback: K = 1, every triple is a 1."""
        return self.scale.is_implicit

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
            self.scale,
        )


@dataclass(frozen=True)
class RawRatings:
    """Ratings as a source holds them, in its order: raw ids and rating values, not yet indexed."""

    users: np.ndarray  # (N,) int64 or unicode raw user ids
    items: np.ndarray  # (N,) int64 or unicode raw item ids
    values: np.ndarray  # (N,) float64 ratings, e.g. 3.5 (all 1 for implicit feedback)
    timestamps: np.ndarray | None  # (N,) int64 seconds since 1970, or None
    source: str  # the file, as messages name it
    first_line: int = 1  # the line of row 0 (2 after a header), for messages
    names: RowNames | None = None  # how to name rows when they are not consecutive lines

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def row_names(self) -> RowNames:
        return self.names if self.names is not None else RowNames(self.source, "line", self.first_line)

    def subset(self, rows: np.ndarray) -> RawRatings:
        """The rows ``rows`` (ascending indices), still named by their place in the source."""
        names = self.row_names
        numbers = names.lines if names.lines is not None else np.arange(len(self), dtype=np.int64) + names.first
        return replace(
            self,
            users=self.users[rows],
            items=self.items[rows],
            values=self.values[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            names=replace(names, lines=numbers[rows]),
        )


def repeated_pairs(users: np.ndarray, items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows that repeat an earlier row's (user, item) pair, and that earlier row (both ascending by row).

    ``users`` and ``items`` are inner indices.
    """
    if users.size < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    key = users.astype(np.int64) * n_items + items  # (N,) one int64 per (user, item) cell
    order = np.argsort(key, kind="stable")  # within a cell, rows stay in file order
    ordered = key[order]
    starts = np.ones(order.size, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first_of_group = order[np.flatnonzero(starts)][np.cumsum(starts) - 1]  # (N,) first row of each row's cell
    repeats = ~starts
    rows, firsts = order[repeats], first_of_group[repeats]
    by_row = np.argsort(rows)
    return rows[by_row], firsts[by_row]


def drop_repeated_pairs(raw: RawRatings) -> tuple[RawRatings, int]:
    """Keep each (user, item) pair's last row in source order; returns the rows kept and how many were dropped."""
    _, users = index_ids(raw.users, "user")
    item_map, items = index_ids(raw.items, "item")
    if users.size < 2:
        return raw, 0
    key = users * max(len(item_map), 1) + items
    reversed_first = np.unique(key[::-1], return_index=True)[1]  # first occurrence from the end: the last
    keep = np.sort(users.size - 1 - reversed_first)
    dropped = users.size - keep.size
    return (raw if dropped == 0 else raw.subset(keep)), int(dropped)


def index_ratings(
    raw: RawRatings,
    user_ids: IdMap | None = None,
    item_ids: IdMap | None = None,
    scale: RatingScale | np.ndarray | None = None,
    *,
    item_kind: str = "item",
    known_from: str = "the full ratings file",
    limit: int = DEFAULT_LIMIT,
    advice: str = FIX_ADVICE,
) -> Ratings:
    """Convert raw ratings to :class:`Ratings`: inner indices, levels and timestamps.

    Without id maps and a scale they are built from ``raw`` itself (the scale inferred, see
    :meth:`RatingScale.infer`). With them (a test file mapped into the id space of the whole
    dataset, or a known release's scale) every id and rating must be known. Every row that is
    not (an unknown id, a rating off the scale, a (user, item) pair rated twice) is named in one
    :class:`DataError` line, up to ``limit`` rows and a count of the rest.
    """
    names = raw.row_names
    bad = BadRows(names, limit)
    if user_ids is None:
        user_ids, users = index_ids(raw.users, "user")
    else:
        users = _known(user_ids, raw.users, bad, known_from)
    if item_ids is None:
        item_ids, items = index_ids(raw.items, item_kind)
    else:
        items = _known(item_ids, raw.items, bad, known_from)
    if scale is None:
        scale = RatingScale.infer(raw.values, raw.source)
    elif not isinstance(scale, RatingScale):
        scale = RatingScale(tuple(np.asarray(scale, dtype=np.float64).tolist()))
    levels, on_scale = scale.levels(raw.values)
    if not on_scale.all():
        where = _scale_name(scale)
        values = raw.values
        bad.add_many(np.flatnonzero(~on_scale), lambda row: f"rating {values[row]:g} is not on {where}")
    rows, firsts = repeated_pairs(users, items, max(len(item_ids), 1))
    if rows.size:

        def again(row: int) -> str:
            first = int(firsts[np.searchsorted(rows, row)])
            user, item = describe_id(raw.users[row].item()), describe_id(raw.items[row].item())
            return f"user {user} rated {item_kind} {item} again (first at {names.at(first)})"

        bad.add_many(rows, again)
    bad.raise_if_any(advice)
    timestamps = None if raw.timestamps is None else np.asarray(raw.timestamps, dtype=np.int64)
    return Ratings(users, items, levels, user_ids, item_ids, scale.rating_values, timestamps, scale)


def _known(id_map: IdMap, raw: np.ndarray, bad: BadRows, known_from: str) -> np.ndarray:
    position, known = id_map._positions(raw)
    if not known.all():
        bad.add_many(
            np.flatnonzero(~known),
            lambda row: f"{id_map.kind} {describe_id(raw[row].item())} does not appear in {known_from}",
        )
    return position


def _scale_name(scale: RatingScale) -> str:
    shown = ", ".join(f"{v:g}" for v in scale.values) if scale.n_levels <= 12 else scale.spec()
    if scale.origin == "declared":
        return f"the declared scale {scale.text or scale.spec()} ({shown})"
    if scale.origin == "release" and scale.text:
        return f"{scale.text}'s scale {shown}"
    return f"the scale {shown}"
