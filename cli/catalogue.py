"""The movies a saved model knows, by inner index, for the recommend and similar commands.

Titles, years and genres come from the checkpoint's metadata (written by ``train movielens``), so
no data folder is needed; a model saved without them shows ``movie <id>``. Also here: finding a
movie from what a user typed (an id or a tolerant title, see :mod:`recsys_rbm_cli.titles`) and
reading a new user's ratings file. No torch: imported by ``rbm-rec recommend``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from recsys_rbm_cli.titles import has_control_characters, match_title

from recsys_rbm.data.text_files import read_text_file
from recsys_rbm.errors import CheckpointError, DataError, RecsysRBMError
from recsys_rbm.io.inputs import input_problem

HEADER_RATING_NAMES = {"rating", "ratings", "score", "stars", "value"}  # a first line ending so is a header


class MovieLookupError(RecsysRBMError):
    """What the user typed names no movie of the model, or several."""


@dataclass(frozen=True)
class Catalogue:
    """Display facts of a model's movies, aligned with its inner item indices."""

    raw_ids: np.ndarray  # (n_items,) the items' raw ids: int64 (MovieLens movie ids) or text
    titles: list[str]  # as the release spells them, e.g. "Star Wars (1977)"; "movie <id>" when unknown
    years: np.ndarray  # (n_items,) int year, 0 where unknown
    genre_flags: np.ndarray  # (n_items, G) bool
    genre_names: tuple[str, ...]  # (G,)

    @classmethod
    def of(cls, raw_ids: np.ndarray, metadata: dict[str, Any]) -> Catalogue:
        """Rebuild the movie table saved in a checkpoint's ``metadata["movies"]`` for the model's movies."""
        from recsys_rbm.data.movies import Movies

        raw_ids = np.asarray(raw_ids)
        n = raw_ids.shape[0]
        titles = np.array([f"movie {movie}" for movie in raw_ids.tolist()], dtype=object)
        years = np.zeros(n, dtype=np.int64)
        table = metadata.get("movies")
        if table is None:
            return cls(raw_ids, titles.tolist(), years, np.zeros((n, 0), dtype=bool), ())
        try:
            movies = Movies.from_dict(table)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise CheckpointError(f"the model's movie table is corrupt ({error}); retrain it") from None
        known = movies.contains(raw_ids)
        rows = movies.positions(raw_ids[known])
        titles[known] = movies.titles[rows]
        years[known] = movies.years[rows]
        flags = np.zeros((n, len(movies.genre_names)), dtype=bool)
        flags[known] = movies.genre_flags[rows]
        return cls(raw_ids, [str(title) for title in titles.tolist()], years, flags, movies.genre_names)

    def genres(self, item: int) -> tuple[str, ...]:
        return tuple(name for name, flag in zip(self.genre_names, self.genre_flags[item], strict=True) if flag)

    def year(self, item: int) -> int | None:
        return int(self.years[item]) or None

    def label(self, item: int) -> str:
        """``Title (year)`` (MovieLens titles usually carry their year already)."""
        title, year = self.titles[item], self.year(item)
        return f"{title} ({year})" if year and not title.rstrip().endswith(")") else title

    def describe(self, item: int) -> str:
        """``Star Wars (1977), id 50``: unambiguous in messages (no brackets: rich would read them as markup)."""
        return f"{self.label(item)}, id {self.raw_ids[item].item()}"

    def record(self, item: int) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "movie_id": self.raw_ids[item].item(),
            "title": self.titles[item],
            "year": self.year(item),
            "genres": list(self.genres(item)),
        }

    def find(self, query: str, strict: bool = False) -> int:
        """The inner index of the movie ``query`` names (an id, or a title matched tolerantly, or with
        ``strict`` only verbatim or by a key one movie has: see :mod:`recsys_rbm_cli.titles`).

        Raises :class:`MovieLookupError` naming the candidates of an ambiguous title or the near
        titles of an unknown one.
        """
        from recsys_rbm.data.ids import IdMap

        text = query.strip()
        ids = IdMap(self.raw_ids, "movie")
        if ids.contains([text])[0]:  # an id first: "42" is movie 42, "sku-7" item sku-7
            return int(ids.to_inner([text])[0])
        integer_ids = ids.id_type == "int"
        if integer_ids and text.isdigit():
            low, high = int(self.raw_ids.min()), int(self.raw_ids.max())
            raise MovieLookupError(
                f"unknown movie id {text}; the model's movie ids range over {low}..{high}; give one of those or a title"
            )
        positions = list(range(self.raw_ids.shape[0]))
        match = match_title(text, positions, self.titles, strict=strict, numbers_are_ids=False)
        if match.found:
            return int(match.ids[0])
        if match.ambiguous:
            items = [int(position) for position in match.ids]
            return_list = "; ".join(self.describe(item) for item in items)
            raise MovieLookupError(
                f"{text!r} matches several movies: {return_list}; add the year, e.g. "
                f"{self.label(items[0])!r}, or give the movie id"
            )
        if strict and has_control_characters(text):
            raise MovieLookupError(
                f"{text!r} holds control characters, so it is not a movie title; is the file plain text (UTF-8)? "
                "Write one 'movie,rating' line per movie"
            )
        rule = " (a title in a file must match one movie's title, up to case, accents, punctuation and articles)"
        if match.suggestions:
            near = "; ".join(self.describe(int(position)) for position in match.suggestions)
            if strict:
                raise MovieLookupError(
                    f"no movie titled {text!r}{rule}; did you mean: {near}? Write the title as listed, or the movie id"
                )
            raise MovieLookupError(f"no movie titled {text!r}; did you mean: {near}?")
        if strict:
            raise MovieLookupError(f"no movie titled {text!r}{rule}, and no title is close; give the movie id")
        raise MovieLookupError(
            f"no movie titled {text!r}, and no title is close; try part of the title or the movie id"
        )


def _scale(values: np.ndarray) -> str:
    return ", ".join(f"{value:g}" for value in values)


def read_ratings_file(path: Path, catalogue: Catalogue, rating_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A new user's ratings from a CSV of ``movie,rating`` lines: ``(item inner ids, levels)``, (M,) each.

    ``movie`` is a movie id or a title (commas in a title may be quoted or not: the last field is
    the rating), which must match exactly or, ignoring case, accents, punctuation and articles,
    one movie only (near titles are suggested in the error, never taken); a first line such as
    ``movie,rating`` is a header; blank lines and lines starting with ``#`` are skipped. Every
    problem is one :class:`DataError` line naming ``file:line`` and what to write instead.
    """
    problem = input_problem(path)
    if problem is not None:
        advice = "give a CSV file of 'movie,rating' lines" if problem.kind == "folder" else problem.advice
        raise DataError(f"ratings file {path} {problem.text}; {advice}")
    text = read_text_file(path, "ratings file").data.decode("utf-8-sig")
    items: list[int] = []
    levels: list[int] = []
    first_line: dict[int, int] = {}  # item -> the line that rated it
    may_be_header = True  # only the first non-blank line
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = next(csv.reader([stripped], skipinitialspace=True, strict=True))
        except csv.Error as error:
            raise DataError(f"{path}:{number}: {error}; check the quotes on this line") from None
        if len(fields) < 2:
            raise DataError(
                f"{path}:{number}: expected 'movie,rating' (a movie id or title, a comma, a rating), "
                f"found {stripped!r}; write the rating after a comma"
            )
        movie, rating_text = ",".join(fields[:-1]).strip(), fields[-1].strip()
        if may_be_header and rating_text.lower() in HEADER_RATING_NAMES:
            may_be_header = False
            continue
        may_be_header = False
        try:
            rating = float(rating_text)
        except ValueError:
            raise DataError(
                f"{path}:{number}: rating {rating_text!r} is not a number; write one of {_scale(rating_values)}"
            ) from None
        if not movie:
            raise DataError(f"{path}:{number}: the movie (an id or a title) is missing; write 'movie,rating'")
        level = np.flatnonzero(np.isclose(rating_values, rating))
        if level.size == 0:
            low, high = rating_values.min(), rating_values.max()
            where = "outside" if not low <= rating <= high else "not on"
            scale = _scale(rating_values)
            raise DataError(f"{path}:{number}: rating {rating_text} is {where} the model's scale; use one of {scale}")
        try:
            item = catalogue.find(movie, strict=True)  # in a file, a near title is only a suggestion
        except MovieLookupError as error:
            raise DataError(f"{path}:{number}: {error}; check the quotes on this line") from None
        if item in first_line:
            raise DataError(
                f"{path}:{number}: {catalogue.describe(item)} again (first at line {first_line[item]}); "
                "rate each movie once"
            )
        first_line[item] = number
        items.append(item)
        levels.append(int(level[0]))
    if not items:
        raise DataError(
            f"ratings file {path} holds no ratings; write one 'movie,rating' line per movie (a movie id or title)"
        )
    return np.asarray(items, dtype=np.int64), np.asarray(levels, dtype=np.int64)
