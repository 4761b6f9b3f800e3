"""The item table: titles, years and genres by raw item id (movies, for MovieLens).

:class:`Movies` is what the MovieLens loaders build from a release's movie file and what the
generic items reader (:func:`recsys_rbm.data.tables.read_items_table`) builds from any table of
ids and titles; a checkpoint carries it as JSON (:meth:`Movies.to_dict`), so ``recommend`` and
``similar`` show titles without a data folder. Ids are integers or text, as the ratings' are.

Light on purpose: plain NumPy arrays and the standard library, no polars, so the ``recommend``
path can load it quickly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys_rbm.data.ids import IdMap, describe_id, ids_from_json_list, typed_ids

if TYPE_CHECKING:
    import polars as pl

_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")  # "Heat (1995)", "Show (2006–2007)"
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_YEAR_IN_DATE = re.compile(r"(\d{4})\s*$")  # ml-100k release dates: "01-Jan-1995"


def parse_year(title: str, release_date: str = "") -> int:
    """The year at the end of a MovieLens title ("Toy Story (1995)" gives 1995), else of the release date; 0 if none."""
    match = _YEAR_IN_TITLE.search(title) or _YEAR_IN_DATE.search(release_date)
    return int(match.group(1)) if match else 0


def strip_year(title: str) -> str:
    """The title without its trailing "(1995)": what a user types when searching by title."""
    return _YEAR_SUFFIX.sub("", title).strip()


@dataclass(frozen=True)
class Movies:
    """An item table indexed by raw item id (ascending): titles, years and genres."""

    ids: np.ndarray  # (M,) raw item ids, ascending, unique: int64, or unicode for text ids
    titles: np.ndarray  # (M,) object: titles as the source spells them, e.g. "Star Wars (1977)"
    years: np.ndarray  # (M,) int32 year from the title (ml-100k: else the release date); 0 where unknown
    genre_flags: np.ndarray  # (M, G) bool: item m has genre g
    genre_names: tuple[str, ...]  # (G,) e.g. ("Action", "Adventure", …)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def id_map(self) -> IdMap:
        return IdMap(self.ids, "movie")

    def contains(self, movie_ids: Any) -> np.ndarray:
        """Boolean mask of which raw item ids the table knows."""
        return self.id_map.contains(np.asarray(movie_ids))

    def positions(self, movie_ids: Any) -> np.ndarray:
        """Rows of the table for raw item ids; an unknown id raises :class:`UnknownIdError`."""
        return self.id_map.to_inner(np.asarray(movie_ids))

    def title(self, movie_id: Any) -> str:
        return str(self.titles[int(self.positions(movie_id))])

    def year(self, movie_id: Any) -> int | None:
        year = int(self.years[int(self.positions(movie_id))])
        return year or None

    def genres(self, movie_id: Any) -> tuple[str, ...]:
        row = self.genre_flags[int(self.positions(movie_id))]
        return tuple(name for name, flag in zip(self.genre_names, row, strict=True) if flag)

    def to_polars(self) -> pl.DataFrame:
        """The table as a polars DataFrame: movie_id, title, year (null when unknown), genres (list)."""
        import polars as pl

        names = np.array(self.genre_names, dtype=object)
        id_type = pl.Int64 if self.ids.dtype.kind in "iu" else pl.String
        return pl.DataFrame(
            {
                "movie_id": self.ids.tolist(),
                "title": self.titles.tolist(),
                "year": [int(y) or None for y in self.years],
                "genres": [names[row].tolist() for row in self.genre_flags],
            },
            schema={"movie_id": id_type, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String)},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (e.g. for a checkpoint sidecar); :meth:`from_dict` rebuilds the table.

        ``ids`` is a list of integers or of strings: JSON keeps the two apart.
        """
        return {
            "ids": self.ids.tolist(),
            "titles": self.titles.tolist(),
            "years": self.years.tolist(),
            "genre_names": list(self.genre_names),
            "genres": [np.flatnonzero(row).tolist() for row in self.genre_flags],  # indices into genre_names
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Movies:
        names = tuple(data["genre_names"])
        flags = np.zeros((len(data["ids"]), len(names)), dtype=bool)
        for row, genre_indices in enumerate(data["genres"]):
            flags[row, genre_indices] = True
        return cls.sorted_by_id(ids_from_json_list(data["ids"]), data["titles"], data["years"], flags, names)

    @classmethod
    def from_rows(
        cls,
        ids: Sequence[Any] | np.ndarray,
        titles: Sequence[str],
        genres: Sequence[Sequence[str]] | None = None,
        years: Sequence[int] | None = None,
        genre_names: tuple[str, ...] | None = None,
    ) -> Movies:
        """A table from one row per item (ids unique; years read from the titles when not given).

        ``ids`` as an int64 or unicode array keep their type; other sequences are typed by
        :func:`~recsys_rbm.data.ids.typed_ids`. ``genre_names`` fixes the genre columns and their
        order; by default the genres found, sorted.
        """
        genres = genres if genres is not None else [[] for _ in titles]
        years = years if years is not None else [parse_year(title) for title in titles]
        if genre_names is None:
            genre_names = tuple(sorted({genre for row in genres for genre in row}))
        column = {name: index for index, name in enumerate(genre_names)}
        flags = np.zeros((len(titles), len(genre_names)), dtype=bool)
        rows = [row for row, names in enumerate(genres) for _ in names]
        flags[rows, [column[name] for names in genres for name in names]] = True
        typed = ids if isinstance(ids, np.ndarray) and ids.dtype.kind in "iU" else typed_ids(ids)
        return cls.sorted_by_id(
            typed.astype(np.int64) if typed.dtype.kind == "i" else typed, titles, years, flags, genre_names
        )

    @classmethod
    def sorted_by_id(
        cls,
        ids: np.ndarray,
        titles: Sequence[str],
        years: Sequence[int],
        flags: np.ndarray,
        genre_names: tuple[str, ...],
    ) -> Movies:
        """The table with its rows ordered by id; a repeated id is a :class:`ValueError`."""
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        if ordered.size > 1 and not bool(np.all(ordered[1:] != ordered[:-1])):
            repeated = ordered[np.flatnonzero(ordered[1:] == ordered[:-1])[0]]
            raise ValueError(f"item {describe_id(repeated.item())} appears twice in the item table")
        title_array = np.empty(len(titles), dtype=object)
        title_array[:] = list(titles)
        return cls(
            ids=ordered,
            titles=title_array[order],
            years=np.asarray(years, dtype=np.int32).reshape(-1)[order],
            genre_flags=np.asarray(flags, dtype=bool).reshape(len(ids), len(genre_names))[order],
            genre_names=genre_names,
        )


def decoded_lines(data: bytes, encoding: str) -> Iterator[str]:
    """Lines of a text file (ends kept), decoded as UTF-8 where valid, else line by line with ``encoding``."""
    try:
        yield from io.StringIO(data.decode("utf-8"), newline="\n")
        return
    except UnicodeDecodeError:
        pass
    for raw in io.BytesIO(data):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield raw.decode(encoding, errors="replace")
