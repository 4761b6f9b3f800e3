"""MovieLens files parsed, checked against what is known of the release, and loaded.

:func:`load_movielens` finds (or downloads) a release through :mod:`recsys_rbm.data.releases`,
parses its ratings and movie files, and checks them against the release: every rating on the
release's scale (a 7 or a 3.5 in ml-100k is an error naming the line, not a new level), the
documented number of ratings (a cut file is an error, not half the data), and the recorded
SHA-256 of each file read. :func:`canonical_fold` reads ml-100k's own ``u1.base`` … ``ub.test``
into the id space of the whole release, checked the same way.

Ratings are parsed with polars (imported only when ratings are read, so :func:`load_movies`
stays cheap for the ``recommend`` path); movie tables, at most ~90,000 lines, with the standard
library. Nothing here imports torch. Every malformed line, up to a limit, is named as
``file:line`` in one :class:`DataError` line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.movies import Movies, decoded_lines, parse_year
from recsys_rbm.data.problems import BadRows, RowNames
from recsys_rbm.data.ratings import Ratings, RawRatings, index_ratings
from recsys_rbm.data.releases import Release, ReleaseFiles, open_release
from recsys_rbm.data.scale import RatingScale
from recsys_rbm.errors import ConfigError, DataError

if TYPE_CHECKING:
    from recsys_rbm.data.download import ProgressCallback

RATINGS_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")
MOVIES_CSV_HEADER = ("movieId", "title", "genres")
NO_GENRES = "(no genres listed)"  # what the dat/csv releases write for a movie without genres
CANONICAL_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")  # ml-100k's own <name>.base / <name>.test files

_INTEGER = re.compile(r"[+-]?\d+")


def _redownload(files: ReleaseFiles) -> str:
    release = files.release.name
    return f"the file is not the {release} original: re-download it, or delete {files.path} to download a fresh copy"


# ---------------------------------------------------------------------------------------------
# Ratings files


def _line_problem(text: str, separator: str) -> str | None:
    """Why one line of a ratings file is malformed, or None when it is fine."""
    if not text.strip():
        return "empty line"
    fields = text.split(separator)
    if len(fields) != 4:
        return f"expected 4 fields (user, movie, rating, timestamp) separated by {separator!r}, found {len(fields)}"
    user, movie, rating, timestamp = (field.strip() for field in fields)
    for label, value in (("user id", user), ("movie id", movie), ("timestamp", timestamp)):
        if not _INTEGER.fullmatch(value):
            return f"{label} {value!r} is not an integer"
    try:
        number = float(rating)
    except ValueError:
        return f"rating {rating!r} is not a number"
    if not math.isfinite(number):
        return f"rating {rating!r} is not a finite number"
    return None


def _lines(data: bytes | Path) -> Iterator[bytes]:
    if isinstance(data, Path):
        with data.open("rb") as handle:
            yield from handle
    else:
        yield from io.BytesIO(data)


def _bad_lines(data: bytes | Path, source: str, separator: str, first_line: int) -> DataError | None:
    """Scan the file line by line (only after the fast parse failed) for every malformed line.

    Blank lines at the end of the file are allowed; a blank line followed by more ratings is not.
    """
    bad = BadRows(RowNames(source, "line", 1))
    blanks: list[int] = []
    for number, raw in enumerate(_lines(data), start=1):
        if number < first_line:
            continue
        text = raw.decode("latin-1").rstrip("\r\n")
        if not text.strip():
            blanks.append(number)
            continue
        for blank in blanks:  # blank lines with ratings after them
            bad.add(blank - 1, "empty line")
        blanks = []
        problem = _line_problem(text, separator)
        if problem is not None:
            bad.add(number - 1, problem)
    return bad.error("fix or remove them") if len(bad) else None


def _first_line(data: bytes | Path) -> str:
    for raw in _lines(data):
        return raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    return ""


def parse_ratings(data: bytes | Path, source: str, separator: str, has_header: bool = False) -> RawRatings:
    """Parse a MovieLens ratings file (its bytes, or its path) with polars into :class:`RawRatings`.

    ``separator`` is ``"\\t"`` (u.data), ``"::"`` (ratings.dat) or ``","`` (ratings.csv, which has
    ``has_header``). The fast path reads typed columns; if polars rejects the file or leaves a
    field empty, the file is scanned line by line and every bad line (up to a limit) is named.
    """
    import polars as pl

    first_line = 1
    if has_header:
        header = tuple(field.strip().strip('"') for field in _first_line(data).split(separator))
        if header != RATINGS_CSV_HEADER:
            raise DataError(f"{source}:1: expected the header {','.join(RATINGS_CSV_HEADER)}, found {','.join(header)}")
        first_line = 2
    columns = ["user", "item", "rating", "timestamp"]
    types = [pl.Int64, pl.Int64, pl.Float64, pl.Int64]
    spacers: list[str] = []
    polars_separator = separator
    if separator == "::":  # polars needs a one-byte separator: "a::b" is "a", "", "b" split on ":"
        polars_separator = ":"
        spacers = ["_1", "_2", "_3"]
        columns = ["user", "_1", "item", "_2", "rating", "_3", "timestamp"]
        types = [pl.Int64, pl.String, pl.Int64, pl.String, pl.Float64, pl.String, pl.Int64]

    def malformed(reason: str) -> DataError:
        return _bad_lines(data, source, separator, first_line) or DataError(f"{source}: {reason}")

    try:
        frame = pl.read_csv(
            str(data) if isinstance(data, Path) else data,
            separator=polars_separator,
            has_header=False,
            skip_rows=first_line - 1,
            schema=dict(zip(columns, types, strict=True)),
            quote_char=None,
        )
    except pl.exceptions.PolarsError as error:
        raise malformed(f"could not be parsed ({str(error).splitlines()[0]})") from None
    except OSError as error:
        raise DataError(f"{source} could not be read ({error})") from None
    # Trailing blank lines arrive as all-null rows; drop them, and treat any other gap as malformed.
    values = ["user", "item", "rating", "timestamp"]
    n_rows = frame.height
    while n_rows and all(frame[column][n_rows - 1] is None for column in values):
        n_rows -= 1
    frame = frame.head(n_rows)
    incomplete = any(frame[column].null_count() for column in values)
    stray = any(frame[column].null_count() != frame.height for column in spacers)
    if incomplete or stray or not frame["rating"].is_finite().all():
        raise malformed("malformed line")
    return RawRatings(
        users=frame["user"].to_numpy().astype(np.int64, copy=False),
        items=frame["item"].to_numpy().astype(np.int64, copy=False),
        values=frame["rating"].to_numpy().astype(np.float64, copy=False),
        timestamps=frame["timestamp"].to_numpy().astype(np.int64, copy=False),
        source=source,
        first_line=first_line,
    )


def read_ratings_file(files: ReleaseFiles, name: str | None = None) -> RawRatings:
    """Parse one ratings file of a release (default its main one; ml-100k also has ``u1.base`` …)."""
    release = files.release
    name = name or release.ratings_file
    local = files.local_path(name)
    if local is not None and not local.is_file():
        raise files.missing(name)
    data: bytes | Path = local if local is not None else files.read_bytes(name)
    return parse_ratings(data, files.describe(name), release.separator, release.has_header)


# ---------------------------------------------------------------------------------------------
# Movie files


class _MovieTable:
    """Accumulates parsed movie rows; a non-integer or repeated id is an error naming its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.ids: list[int] = []
        self.titles: list[str] = []
        self.years: list[int] = []
        self.genres: list[list[str]] = []
        self.lines: dict[int, int] = {}

    def add(self, line: int, movie_id: str, title: str, year: int, genres: list[str]) -> None:
        if not _INTEGER.fullmatch(movie_id.strip()):
            raise DataError(f"{self.source}:{line}: movie id {movie_id!r} is not an integer")
        number = int(movie_id)
        if number in self.lines:
            raise DataError(f"{self.source}:{line}: movie {number} again (first at line {self.lines[number]})")
        self.lines[number] = line
        self.ids.append(number)
        self.titles.append(title.strip())
        self.years.append(year)
        self.genres.append(genres)

    def build(self, genre_names: tuple[str, ...] | None = None) -> Movies:
        return Movies.from_rows(np.asarray(self.ids, dtype=np.int64), self.titles, self.genres, self.years, genre_names)


def _split_genres(text: str) -> list[str]:
    return [genre for genre in text.strip().split("|") if genre and genre != NO_GENRES]


def parse_genre_names(data: bytes, source: str) -> tuple[str, ...]:
    """ml-100k's u.genre: ``name|index`` lines, indices 0..G-1 in order."""
    names: list[str] = []
    for number, line in enumerate(decoded_lines(data, "latin-1"), start=1):
        if not line.strip():
            continue
        name, _, index = line.rstrip("\r\n").rpartition("|")
        if not name or index.strip() != str(len(names)):
            raise DataError(f"{source}:{number}: expected 'Genre|{len(names)}', found {line.strip()!r}")
        names.append(name.strip())
    return tuple(names)


def parse_100k_items(data: bytes, source: str, genre_names: tuple[str, ...], encoding: str) -> Movies:
    """ml-100k's u.item: ``id|title|release date|video release date|IMDb URL|flag|flag…``."""
    table = _MovieTable(source)
    n_fields = 5 + len(genre_names)
    for number, line in enumerate(decoded_lines(data, encoding), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("|")
        if len(fields) != n_fields:
            raise DataError(
                f"{source}:{number}: expected {n_fields} '|'-separated fields "
                f"(id, title, release date, video date, IMDb URL, {len(genre_names)} genre flags), found {len(fields)}"
            )
        flags = [flag.strip() for flag in fields[5:]]
        if any(flag not in ("0", "1") for flag in flags):
            raise DataError(f"{source}:{number}: genre flags must be 0 or 1")
        genres = [name for name, flag in zip(genre_names, flags, strict=True) if flag == "1"]
        table.add(number, fields[0], fields[1], parse_year(fields[1], fields[2]), genres)
    return table.build(genre_names)


def parse_dat_movies(data: bytes, source: str, encoding: str) -> Movies:
    """movies.dat of ml-1m / ml-10m: ``id::title::Genre|Genre``."""
    table = _MovieTable(source)
    for number, line in enumerate(decoded_lines(data, encoding), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("::")
        if len(fields) != 3:
            raise DataError(
                f"{source}:{number}: expected 3 '::'-separated fields (id, title, genres), found {len(fields)}"
            )
        table.add(number, fields[0], fields[1], parse_year(fields[1]), _split_genres(fields[2]))
    return table.build()


def _parse_csv_movies(data: bytes, source: str, encoding: str) -> Movies:
    """movies.csv of ml-20m and later: header ``movieId,title,genres``, titles quoted when they hold commas."""
    table = _MovieTable(source)
    reader = csv.reader(decoded_lines(data, encoding))
    try:
        for row in reader:
            number = reader.line_num
            if number == 1:
                header = tuple(field.strip().lstrip("\ufeff") for field in row)
                if header != MOVIES_CSV_HEADER:
                    raise DataError(
                        f"{source}:1: expected the header {','.join(MOVIES_CSV_HEADER)}, found {','.join(row)}"
                    )
                continue
            if not row or not any(field.strip() for field in row):
                continue
            if len(row) != 3:
                raise DataError(
                    f"{source}:{number}: expected 3 comma-separated fields (movieId, title, genres), found {len(row)}"
                )
            table.add(number, row[0], row[1], parse_year(row[1]), _split_genres(row[2]))
    except csv.Error as error:
        raise DataError(f"{source}:{reader.line_num}: {error}") from None
    return table.build()


def read_movies(files: ReleaseFiles) -> Movies:
    """Parse the movie table of a release (titles, years, genres), without polars; files are verified."""
    release = files.release
    source = files.describe(release.movies_file)
    data = files.read_bytes(release.movies_file)
    if release.layout == "100k":
        genres = files.read_bytes("u.genre")
        files.verify([release.movies_file, "u.genre"], read={release.movies_file: data, "u.genre": genres})
        genre_names = parse_genre_names(genres, files.describe("u.genre"))
        return parse_100k_items(data, source, genre_names, release.encoding)
    files.verify([release.movies_file], read={release.movies_file: data})
    if release.layout == "dat":
        return parse_dat_movies(data, source, release.encoding)
    return _parse_csv_movies(data, source, release.encoding)


def load_movies(
    release: str | Release = "ml-100k",
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    progress: ProgressCallback | None = None,
) -> Movies:
    """The movie table of a release from the data directory (no ratings parsed, no polars imported).

    ``download`` is off by default: titles alone are not worth fetching a large release for;
    the error then says where to put the release.
    """
    return read_movies(open_release(release, data_dir, download=download, progress=progress))


# ---------------------------------------------------------------------------------------------
# Everything together


@dataclass(frozen=True)
class MovieLensDataset:
    """A loaded release: its ratings in inner indices, its movie table, and a fingerprint."""

    release: Release
    files: ReleaseFiles  # where it was read from, for further files (ml-100k's u1.base …)
    ratings: Ratings  # every rating of the release; ids and scale define the dataset's id space
    movies: Movies  # the movie table (it may list movies nobody rated)
    fingerprint: str  # SHA-256 of the ratings file's bytes: the same from the zip or the extracted folder

    @property
    def name(self) -> str:
        return self.release.name


def _checked_ratings(
    files: ReleaseFiles,
    name: str,
    raw: RawRatings,
    digest: str | None,
    scale: RatingScale,
    user_ids: IdMap | None = None,
    item_ids: IdMap | None = None,
) -> Ratings:
    """Index ``raw`` on ``scale`` (into the given id space), then check the count and the file's SHA-256.

    ``digest`` is the file's SHA-256 when already computed; otherwise it is computed (or
    remembered) here. Only the release's main ratings file has a documented count.
    """
    known_from = files.describe(files.release.ratings_file)
    ratings = index_ratings(
        raw, user_ids, item_ids, scale, item_kind="movie", known_from=known_from, advice=_redownload(files)
    )
    expected = files.release.n_ratings if name == files.release.ratings_file else None
    if expected is not None and len(raw) != expected:
        raise DataError(
            f"{files.describe(name)} holds {len(raw):,} ratings, but {files.release.name} has {expected:,}; "
            f"{_redownload(files)}"
        )
    recorded = files.release.file_sha256.get(name)
    if recorded is not None and digest is not None and digest != recorded:
        raise files.not_original(name, digest)
    if digest is None:
        files.verify([name])
    return ratings


def load_movielens(
    release: str | Release = "ml-100k",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> MovieLensDataset:
    """Load a MovieLens release from the data directory, downloading it first when missing.

    ``data_dir`` defaults to ``$RBM_REC_DATA``, else ``data/``; the release may be an extracted
    folder or its zip. ``progress(done, total, name)`` is called while downloading. Returns every
    rating (on the release's scale) with the movie table and a fingerprint; ratings off the scale,
    a count other than the release's, or a file whose SHA-256 differs from the recorded one are
    one-line :class:`DataError`\\ s naming the file.
    """
    files = open_release(release, data_dir, download=download, progress=progress)
    name = files.release.ratings_file
    if files.is_zip:  # read the member once: hash and parse the same bytes
        data = files.read_bytes(name)
        fingerprint = files.sha256(name, data)
        raw = parse_ratings(data, files.describe(name), files.release.separator, files.release.has_header)
    else:
        fingerprint = files.sha256(name)  # remembered by size and mtime in the data directory
        raw = read_ratings_file(files)
    if len(raw) == 0:
        raise DataError(f"{files.describe(name)} holds no ratings; {_redownload(files)}")
    ratings = _checked_ratings(files, name, raw, fingerprint, files.release.rating_scale)
    return MovieLensDataset(files.release, files, ratings, read_movies(files), fingerprint)


def canonical_fold(dataset: MovieLensDataset, name: str) -> tuple[Ratings, Ratings]:
    """ml-100k's ``<name>.base`` and ``<name>.test`` in the id space and scale of the whole release.

    Every id of the two files must appear in ``u.data`` and every rating lie on the scale; the
    files are checked against their recorded SHA-256.
    """
    if name not in CANONICAL_SPLITS:
        raise ConfigError(f"unknown ml-100k split {name!r}; use one of {', '.join(CANONICAL_SPLITS)}")
    if dataset.release.layout != "100k":
        raise DataError(f"the canonical splits belong to ml-100k; {dataset.name} has none (use a random split)")
    full = dataset.ratings
    parts = []
    for part in ("base", "test"):
        file_name = f"{name}.{part}"
        raw = read_ratings_file(dataset.files, file_name)
        parts.append(_checked_ratings(dataset.files, file_name, raw, None, full.scale, full.user_ids, full.item_ids))
    return parts[0], parts[1]
