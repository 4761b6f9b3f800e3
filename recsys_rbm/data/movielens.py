"""MovieLens releases: where they live, how they are fetched and verified, and how they are parsed.

A release lives in the data directory (``--data-dir``, else ``$RBM_REC_DATA``, else ``data/``)
either as the extracted folder GroupLens ships inside the zip (``data/ml-100k/u.data``) or as the
zip itself (``data/ml-100k.zip``), read member by member without extracting it. A missing release
is downloaded from GroupLens and kept only once its size and checksums match the values recorded
in :data:`RELEASES`; a zip already in the folder is trusted as far as the zip's own CRCs go.

Three layouts cover every release:

- ``"100k"``: ml-100k. ``u.data`` is ``user<TAB>item<TAB>rating<TAB>timestamp``; ``u.item`` is
  ``|``-separated Latin-1 (id, title, release date, video release date, IMDb URL, one 0/1 flag
  per genre) and ``u.genre`` names the flags in order (``Action|1``).
- ``"dat"``: ml-1m and ml-10m. ``ratings.dat`` is ``user::movie::rating::timestamp``;
  ``movies.dat`` is ``id::title::Genre|Genre``.
- ``"csv"``: ml-20m, ml-25m, ml-32m and ml-latest-small. ``ratings.csv`` has the header
  ``userId,movieId,rating,timestamp`` (half-star ratings); ``movies.csv`` has
  ``movieId,title,genres`` with titles quoted when they contain commas.

Ratings are parsed with polars (imported only when ratings are read, so :func:`load_movies`
stays cheap for the ``recommend`` path); movie tables, at most ~90,000 lines, with the standard
library. Nothing here imports torch. The rating scale is read from the data: its distinct values,
ascending, become the levels ``0..K-1`` of :class:`~recsys_rbm.recommender.ratings.Ratings`.
A malformed line is a one-line :class:`DataError` naming ``file:line``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from recsys_rbm.data.paths import resolve_data_dir
from recsys_rbm.errors import DataError
from recsys_rbm.recommender.ratings import IdMap, Ratings

if TYPE_CHECKING:
    import polars as pl

    from recsys_rbm.data.download import ProgressCallback

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"
RATINGS_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")
MOVIES_CSV_HEADER = ("movieId", "title", "genres")
NO_GENRES = "(no genres listed)"  # what the dat/csv releases write for a movie without genres

Layout = Literal["100k", "dat", "csv"]


@dataclass(frozen=True)
class Release:
    """One MovieLens release: where to get it, how to check it, and how its files are laid out.

    Tests substitute their own (``dataclasses.replace(RELEASES["ml-100k"], url="file://…",
    md5=…)``) rather than switching verification off.
    """

    name: str  # what users type, and the zip's name without ".zip": "ml-100k"
    folder: str  # the folder inside the zip; ml-10m's is "ml-10M100K"
    layout: Layout  # "100k" (u.data, u.item, u.genre), "dat" ("::"-separated) or "csv" (with a header)
    ratings_file: str  # inside ``folder``
    movies_file: str  # inside ``folder``
    separator: str  # field separator of the ratings file: "\t", "::" or ","
    encoding: str  # documented encoding of the movies file; UTF-8 is tried first, line by line
    md5: str | None  # of the zip, as GroupLens publishes it in <name>.zip.md5
    sha256: str | None  # of the zip
    size: int | None  # bytes of the zip
    n_ratings: int  # as documented in the release's README
    url: str = ""  # empty: GROUPLENS_URL + <name>.zip

    def __post_init__(self) -> None:
        if not self.url:
            object.__setattr__(self, "url", f"{GROUPLENS_URL}{self.name}.zip")
        if self.md5 is None and self.sha256 is None:
            raise ValueError(f"release {self.name} needs at least one checksum")

    @property
    def zip_name(self) -> str:
        return f"{self.name}.zip"

    @property
    def has_header(self) -> bool:
        return self.layout == "csv"


# Checksums of the release zips, and where each value comes from. None of the zips is on this
# machine, so no zip checksum could be verified here; what was verified here is the content of
# the real ml-100k folder in ../shared/data (sha256 of u.data, u.item, u1.base and u1.test, in
# tests/test_movielens_real.py). Sources:
# - md5: the <name>.zip.md5 files GroupLens publishes beside each zip, as quoted (with the .md5
#   URL) by several independent projects; ml-100k, ml-1m, ml-10m, ml-20m, ml-25m and ml-32m each
#   agree across at least three of them. GroupLens publishes one for ml-latest-small too, but it
#   changes whenever that "latest" release is regenerated, and no stable quote of it was found.
# - sha256 and size: TensorFlow Datasets' url_checksums/movielens.txt for ml-100k, ml-1m, ml-20m,
#   ml-25m and ml-latest-small (the 2018-09-26 generation: 610 users, 100,836 ratings); for ml-10m
#   and ml-32m, projects that record the archive's SHA-256 and size beside the GroupLens MD5
#   (the ml-32m size, 238,950,008 bytes, is quoted by two of them).
# Files, ratings separator and movie-file encoding of each layout.
_LAYOUTS: dict[str, tuple[str, str, str, str]] = {
    "100k": ("u.data", "u.item", "\t", "latin-1"),
    "dat": ("ratings.dat", "movies.dat", "::", "latin-1"),
    "csv": ("ratings.csv", "movies.csv", ",", "utf-8"),
}


def _release(
    name: str, folder: str, layout: Layout, md5: str | None, sha256: str, size: int, n_ratings: int
) -> Release:
    ratings_file, movies_file, separator, encoding = _LAYOUTS[layout]
    return Release(name, folder, layout, ratings_file, movies_file, separator, encoding, md5, sha256, size, n_ratings)


# fmt: off
RELEASES: dict[str, Release] = {
    release.name: release
    for release in (
        _release("ml-100k", "ml-100k", "100k", "0e33842e24a9c977be4e0107933c0723",
                 "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4_924_029, 100_000),
        _release("ml-1m", "ml-1m", "dat", "c4d9eecfca2ab87c1945afe126590906",
                 "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5_917_549, 1_000_209),
        _release("ml-10m", "ml-10M100K", "dat", "ce571fd55effeba0271552578f2648bd",
                 "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862", 65_566_137, 10_000_054),
        _release("ml-20m", "ml-20m", "csv", "cd245b17a1ae2cc31bb14903e1204af3",
                 "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198_702_078, 20_000_263),
        _release("ml-25m", "ml-25m", "csv", "6b51fb2759a8657d3bfcbfc42b592ada",
                 "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261_978_986, 25_000_095),
        _release("ml-32m", "ml-32m", "csv", "d472be332d4daa821edc399621853b57",
                 "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee", 238_950_008, 32_000_204),
        _release("ml-latest-small", "ml-latest-small", "csv", None,
                 "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978_202, 100_836),
    )
}
# fmt: on


def get_release(release: str | Release) -> Release:
    """The :class:`Release` named ``release`` (a :class:`Release` is returned as it is)."""
    if isinstance(release, Release):
        return release
    try:
        return RELEASES[release]
    except KeyError:
        raise DataError(f"unknown MovieLens release {release!r}; known: {', '.join(RELEASES)}") from None


# ---------------------------------------------------------------------------------------------
# Finding, downloading and reading a release's files


@dataclass(frozen=True)
class ReleaseFiles:
    """A release's files as found on disk: in an extracted folder, or inside the release zip."""

    release: Release
    path: Path  # the folder holding u.data / ratings.csv …, or the zip

    @property
    def is_zip(self) -> bool:
        return self.path.suffix == ".zip"

    def _member(self, name: str) -> str | None:
        """The zip member for ``name``: ``<folder>/<name>``, else the one member ending in ``/<name>``."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise self._corrupt(error) from None
        expected = f"{self.release.folder}/{name}"
        if expected in names:
            return expected
        matches = [member for member in names if member == name or member.endswith("/" + name)]
        return matches[0] if len(matches) == 1 else None

    def has(self, name: str) -> bool:
        """Whether the release holds the file ``name`` (e.g. ``"u1.base"``)."""
        if self.is_zip:
            return self._member(name) is not None
        return (self.path / name).is_file()

    def describe(self, name: str) -> str:
        """How messages name a file: ``/data/ml-100k/u.data`` or ``/data/ml-100k.zip:ml-100k/u.data``."""
        if self.is_zip:
            return f"{self.path}:{self._member(name) or f'{self.release.folder}/{name}'}"
        return str(self.path / name)

    def local_path(self, name: str) -> Path | None:
        """The file's own path when it lies in a folder (None inside a zip)."""
        return None if self.is_zip else self.path / name

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes; a missing file or a corrupt zip is a :class:`DataError`."""
        if not self.is_zip:
            try:
                return (self.path / name).read_bytes()
            except FileNotFoundError:
                raise DataError(
                    f"{self.path / name} is missing; the {self.release.name} folder is incomplete"
                ) from None
        member = self._member(name)
        if member is None:
            raise DataError(f"{self.path} has no {self.release.folder}/{name}; is it the {self.release.name} zip?")
        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError) as error:
            raise self._corrupt(error) from None

    def _corrupt(self, error: Exception) -> DataError:
        return DataError(
            f"{self.path} is corrupt ({error}); delete it to download a fresh copy, "
            f"or put the extracted {self.release.folder}/ folder beside it"
        )


def _folder_candidates(release: Release, directory: Path) -> list[Path]:
    candidates = [directory / release.folder, directory / release.name]
    if directory.name in (release.folder, release.name):  # --data-dir pointed at the release folder itself
        candidates.append(directory)
    return list(dict.fromkeys(candidates))


def locate_release(release: str | Release, data_dir: str | Path | None = None) -> ReleaseFiles | None:
    """Where ``release`` is in the data directory, or None: the extracted folder first, then the zip."""
    release = get_release(release)
    directory = resolve_data_dir(data_dir)
    for folder in _folder_candidates(release, directory):
        if (folder / release.ratings_file).is_file():
            return ReleaseFiles(release, folder)
    archive = directory / release.zip_name
    if archive.is_file():
        return ReleaseFiles(release, archive)
    return None


def placement_instructions(release: str | Release, data_dir: str | Path | None = None) -> str:
    """What to put where for ``release`` to be found offline (part of every missing-data message)."""
    release = get_release(release)
    directory = resolve_data_dir(data_dir).resolve()
    return (
        f"put {release.zip_name} (from {release.url}) or the extracted {release.folder}/ folder in {directory}, "
        f"or point --data-dir or RBM_REC_DATA at the folder that holds it"
    )


def verify_release_zip(release: str | Release, path: str | Path) -> None:
    """Check a downloaded zip against the size and checksums recorded for ``release``.

    Raises :class:`DataError` on the first mismatch; each recorded value is checked, so one
    corrupt byte or a changed upstream file is caught whichever checksum is known.
    """
    release = get_release(release)
    path = Path(path)
    size = path.stat().st_size
    if release.size is not None and size != release.size:
        raise DataError(f"{release.zip_name} has {size:,} bytes, expected {release.size:,} (incomplete or changed)")
    for algorithm, expected in (("md5", release.md5), ("sha256", release.sha256)):
        if expected is None:
            continue
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, algorithm).hexdigest()
        if digest != expected:
            raise DataError(
                f"{release.zip_name} has {algorithm} {digest}, expected {expected} (corrupt, or changed upstream)"
            )


def download_release(
    release: str | Release,
    data_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``release``'s zip into the data directory, verified; returns its path.

    The zip appears only once complete and verified (:func:`recsys_rbm.data.download.download`
    writes to a temporary file beside it); a failure raises :class:`DataError` and leaves nothing.
    """
    from recsys_rbm.data.download import download  # urllib is only needed here

    release = get_release(release)
    destination = resolve_data_dir(data_dir) / release.zip_name
    return download(
        [release.url], destination, verify=lambda temporary: verify_release_zip(release, temporary), progress=progress
    )


def open_release(
    release: str | Release = "ml-100k",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> ReleaseFiles:
    """The files of ``release``: found in the data directory, else downloaded when ``download`` is true.

    When the release is missing and cannot be downloaded (offline, or ``download=False``), the
    :class:`DataError` says exactly what to place where.
    """
    release = get_release(release)
    found = locate_release(release, data_dir)
    if found is not None:
        return found
    directory = resolve_data_dir(data_dir).resolve()
    if not download:
        raise DataError(
            f"MovieLens {release.name} is not in {directory} and downloading is off; "
            f"{placement_instructions(release, data_dir)}"
        )
    try:
        archive = download_release(release, data_dir, progress)
    except DataError as error:
        reason = " ".join(str(error).split())  # keep the message on one line
        raise DataError(
            f"MovieLens {release.name} is not in {directory} and {reason}; {placement_instructions(release, data_dir)}"
        ) from None
    return ReleaseFiles(release, archive)


# ---------------------------------------------------------------------------------------------
# Ratings


@dataclass(frozen=True)
class RawRatings:
    """Ratings as the file holds them, in file order: raw ids and rating values, not yet indexed."""

    users: np.ndarray  # (N,) int64 raw user ids
    items: np.ndarray  # (N,) int64 raw movie ids
    values: np.ndarray  # (N,) float64 ratings, e.g. 3.5
    timestamps: np.ndarray  # (N,) int64 seconds since 1970
    source: str  # the file, as messages name it
    first_line: int = 1  # the file's line number of row 0 (2 after a header), for messages

    def __len__(self) -> int:
        return int(self.users.shape[0])


_INTEGER = re.compile(r"[+-]?\d+")


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


def _first_bad_line(data: bytes | Path, source: str, separator: str, first_line: int) -> DataError | None:
    """Scan the file line by line (only after the fast parse failed) for the first malformed line.

    Blank lines at the end of the file are allowed; a blank line followed by more ratings is not.
    """
    blank: int | None = None
    for number, raw in enumerate(_lines(data), start=1):
        if number < first_line:
            continue
        text = raw.decode("latin-1").rstrip("\r\n")
        if not text.strip():
            blank = blank or number
            continue
        if blank is not None:
            return DataError(f"{source}:{blank}: empty line")
        problem = _line_problem(text, separator)
        if problem is not None:
            return DataError(f"{source}:{number}: {problem}")
    return None


def _first_line(data: bytes | Path) -> str:
    for raw in _lines(data):
        return raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    return ""


def parse_ratings(data: bytes | Path, source: str, separator: str, has_header: bool = False) -> RawRatings:
    """Parse a ratings file (its bytes, or its path) with polars into :class:`RawRatings`.

    ``separator`` is ``"\\t"`` (u.data), ``"::"`` (ratings.dat) or ``","`` (ratings.csv, which has
    ``has_header``). The fast path reads typed columns; if polars rejects the file or leaves a
    field empty, the file is scanned line by line for a one-line ``file:line`` message.
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
        return _first_bad_line(data, source, separator, first_line) or DataError(f"{source}: {reason}")

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


def _check_unique_pairs(raw: RawRatings, users: np.ndarray, items: np.ndarray, n_items: int) -> None:
    """Raise :class:`DataError` naming both lines when a user rated the same movie twice (inner indices given)."""
    if users.size < 2:
        return
    key = users * n_items + items  # (N,) one int64 per (user, movie) cell
    ordered = np.sort(key)
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeats.size:
        rows = np.flatnonzero(key == ordered[repeats[0]])
        raise DataError(
            f"{raw.source}:{int(rows[1]) + raw.first_line}: user {int(raw.users[rows[0]])} rated movie "
            f"{int(raw.items[rows[0]])} again (first at line {int(rows[0]) + raw.first_line}); "
            f"each user rates a movie at most once"
        )


def read_ratings_file(files: ReleaseFiles, name: str | None = None) -> RawRatings:
    """Parse one ratings file of a release (default its main one; ml-100k also has ``u1.base`` …)."""
    release = files.release
    name = name or release.ratings_file
    local = files.local_path(name)
    if local is not None and not local.is_file():
        raise DataError(f"{local} is missing; the {release.name} folder is incomplete")
    data: bytes | Path = local if local is not None else files.read_bytes(name)
    return parse_ratings(data, files.describe(name), release.separator, release.has_header)


def _index(raw: np.ndarray, kind: str) -> tuple[IdMap, np.ndarray]:
    """The id map of the distinct raw ids and each entry's inner index, in O(N) when ids are dense."""
    if raw.size == 0:
        return IdMap(np.zeros(0, dtype=np.int64), kind), np.zeros(0, dtype=np.int64)
    low, high = int(raw.min()), int(raw.max())
    span = high - low + 1
    if span <= max(4 * raw.size, 1 << 20):  # a lookup table beats sorting for MovieLens-style ids
        present = np.zeros(span, dtype=bool)
        present[raw - low] = True
        lookup = np.cumsum(present, dtype=np.int64) - 1
        return IdMap(np.flatnonzero(present).astype(np.int64) + low, kind), lookup[raw - low]
    raw_ids, inner = np.unique(raw, return_inverse=True)
    return IdMap(raw_ids.astype(np.int64), kind), inner.astype(np.int64)


def rating_scale(values: np.ndarray) -> np.ndarray:
    """The distinct rating values, ascending: the K levels of the softmax units (1..5 gives K = 5).

    O(N) for ratings on a grid of half stars (every MovieLens release), a sort otherwise.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0, dtype=np.float64)
    doubled = values * 2.0
    grid = doubled.astype(np.int64)
    if np.array_equal(grid, doubled):
        low = int(grid.min())
        if int(grid.max()) - low < 1 << 20:
            return (np.flatnonzero(np.bincount(grid - low)) + low) / 2.0
    return np.unique(values)


def index_ratings(
    raw: RawRatings,
    user_ids: IdMap | None = None,
    item_ids: IdMap | None = None,
    rating_values: np.ndarray | None = None,
) -> Ratings:
    """Convert raw ratings to :class:`Ratings`: inner indices, levels and timestamps.

    Without id maps and a scale they are built from ``raw`` itself. With them (a test file
    mapped into the id space of the whole dataset) every id and rating must already be known;
    otherwise a :class:`DataError` names the file and the stranger. A user who rates the same
    movie twice is an error too: each (user, movie) cell holds one rating.
    """
    if user_ids is None:
        user_ids, users = _index(raw.users, "user")
    else:
        users = _to_inner(user_ids, raw.users, raw.source)
    if item_ids is None:
        item_ids, items = _index(raw.items, "movie")
    else:
        items = _to_inner(item_ids, raw.items, raw.source)
    _check_unique_pairs(raw, users, items, len(item_ids))
    scale = rating_scale(raw.values) if rating_values is None else np.asarray(rating_values, dtype=np.float64)
    levels = np.searchsorted(scale, raw.values).astype(np.int64)
    on_scale = levels < scale.size
    on_scale[on_scale] = scale[levels[on_scale]] == raw.values[on_scale]
    if not on_scale.all():
        stranger = float(raw.values[~on_scale][0])
        raise DataError(f"{raw.source}: rating {stranger:g} is not on the scale {', '.join(f'{v:g}' for v in scale)}")
    return Ratings(users, items, levels, user_ids, item_ids, scale, raw.timestamps)


def _to_inner(id_map: IdMap, raw: np.ndarray, source: str) -> np.ndarray:
    known = id_map.contains(raw)
    if not known.all():
        stranger = int(raw[~known][0])
        raise DataError(f"{source}: {id_map.kind} {stranger} does not appear in the full ratings file")
    return np.searchsorted(id_map.raw_ids, raw).astype(np.int64)


def ratings_fingerprint(ratings: Ratings) -> str:
    """SHA-256 of the (raw user, raw movie, rating) triples in stored order, and of the scale.

    Identifies a set of ratings independently of how it was stored (a generated dataset, a
    split); :attr:`MovieLensDataset.fingerprint` identifies a release's ratings file.
    """
    digest = hashlib.sha256()
    for array in (
        ratings.rating_values.astype("<f8"),
        ratings.user_ids.to_raw(ratings.users).astype("<i8"),
        ratings.item_ids.to_raw(ratings.items).astype("<i8"),
        ratings.values.astype("<f8"),
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Movies

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
    """The movie table of a release, indexed by raw movie id (ascending).

    Light on purpose: plain arrays, no polars, so the ``recommend`` path can load it (or rebuild
    it from a checkpoint's JSON with :meth:`from_dict`) without the cost of a data-frame library.
    """

    ids: np.ndarray  # (M,) int64 raw movie ids, ascending, unique
    titles: np.ndarray  # (M,) object: titles as the release spells them, e.g. "Star Wars (1977)"
    years: np.ndarray  # (M,) int32 year from the title (ml-100k: else the release date); 0 where unknown
    genre_flags: np.ndarray  # (M, G) bool: movie m has genre g
    genre_names: tuple[str, ...]  # (G,) e.g. ("Action", "Adventure", …)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def id_map(self) -> IdMap:
        return IdMap(self.ids, "movie")

    def contains(self, movie_ids: np.ndarray | int) -> np.ndarray:
        """Boolean mask of which raw movie ids the table knows."""
        return self.id_map.contains(np.asarray(movie_ids))

    def positions(self, movie_ids: np.ndarray | int) -> np.ndarray:
        """Rows of the table for raw movie ids; an unknown id raises :class:`UnknownIdError`."""
        return self.id_map.to_inner(np.asarray(movie_ids))

    def title(self, movie_id: int) -> str:
        return str(self.titles[int(self.positions(movie_id))])

    def year(self, movie_id: int) -> int | None:
        year = int(self.years[int(self.positions(movie_id))])
        return year or None

    def genres(self, movie_id: int) -> tuple[str, ...]:
        row = self.genre_flags[int(self.positions(movie_id))]
        return tuple(name for name, flag in zip(self.genre_names, row, strict=True) if flag)

    def to_polars(self) -> pl.DataFrame:
        """The table as a polars DataFrame: movie_id, title, year (null when unknown), genres (list)."""
        import polars as pl

        names = np.array(self.genre_names, dtype=object)
        return pl.DataFrame(
            {
                "movie_id": self.ids,
                "title": self.titles.tolist(),
                "year": [int(y) or None for y in self.years],
                "genres": [names[row].tolist() for row in self.genre_flags],
            },
            schema={"movie_id": pl.Int64, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String)},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (e.g. for a checkpoint sidecar); :meth:`from_dict` rebuilds the table."""
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
        return cls._sorted(data["ids"], data["titles"], data["years"], flags, names)

    @classmethod
    def _sorted(
        cls, ids: list[int], titles: list[str], years: list[int], flags: np.ndarray, genre_names: tuple[str, ...]
    ) -> Movies:
        id_array = np.asarray(ids, dtype=np.int64)
        order = np.argsort(id_array, kind="stable")
        title_array = np.empty(len(titles), dtype=object)
        title_array[:] = titles
        return cls(
            ids=id_array[order],
            titles=title_array[order],
            years=np.asarray(years, dtype=np.int32)[order],
            genre_flags=np.asarray(flags, dtype=bool).reshape(len(ids), len(genre_names))[order],
            genre_names=genre_names,
        )


def _decoded_lines(data: bytes, encoding: str) -> Iterator[str]:
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


class _MovieTable:
    """Accumulates parsed movie rows and rejects a repeated id with both line numbers."""

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
        if genre_names is None:
            genre_names = tuple(sorted({genre for genres in self.genres for genre in genres}))
        column = {name: index for index, name in enumerate(genre_names)}
        rows = [row for row, genres in enumerate(self.genres) for _ in genres]
        columns = [column[genre] for genres in self.genres for genre in genres]
        flags = np.zeros((len(self.ids), len(genre_names)), dtype=bool)
        flags[rows, columns] = True
        return Movies._sorted(self.ids, self.titles, self.years, flags, genre_names)


def _split_genres(text: str) -> list[str]:
    return [genre for genre in text.strip().split("|") if genre and genre != NO_GENRES]


def _parse_genre_names(data: bytes, source: str) -> tuple[str, ...]:
    """ml-100k's u.genre: ``name|index`` lines, indices 0..G-1 in order."""
    names: list[str] = []
    for number, line in enumerate(_decoded_lines(data, "latin-1"), start=1):
        if not line.strip():
            continue
        name, _, index = line.rstrip("\r\n").rpartition("|")
        if not name or index.strip() != str(len(names)):
            raise DataError(f"{source}:{number}: expected 'Genre|{len(names)}', found {line.strip()!r}")
        names.append(name.strip())
    return tuple(names)


def _parse_100k_items(data: bytes, source: str, genre_names: tuple[str, ...], encoding: str) -> Movies:
    """ml-100k's u.item: ``id|title|release date|video release date|IMDb URL|flag|flag…``."""
    table = _MovieTable(source)
    n_fields = 5 + len(genre_names)
    for number, line in enumerate(_decoded_lines(data, encoding), start=1):
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


def _parse_dat_movies(data: bytes, source: str, encoding: str) -> Movies:
    """movies.dat of ml-1m / ml-10m: ``id::title::Genre|Genre``."""
    table = _MovieTable(source)
    for number, line in enumerate(_decoded_lines(data, encoding), start=1):
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
    reader = csv.reader(_decoded_lines(data, encoding))
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
    """Parse the movie table of a release (titles, years, genres), without polars."""
    release = files.release
    source = files.describe(release.movies_file)
    data = files.read_bytes(release.movies_file)
    if release.layout == "100k":
        genre_names = _parse_genre_names(files.read_bytes("u.genre"), files.describe("u.genre"))
        return _parse_100k_items(data, source, genre_names, release.encoding)
    if release.layout == "dat":
        return _parse_dat_movies(data, source, release.encoding)
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
    ratings: Ratings  # every rating of the release; ids and levels define the dataset's id space
    movies: Movies  # the movie table (it may list movies nobody rated)
    fingerprint: str  # SHA-256 of the ratings file's bytes: the same from the zip or the extracted folder

    @property
    def name(self) -> str:
        return self.release.name


def _sha256_of(files: ReleaseFiles, name: str) -> str:
    local = files.local_path(name)
    if local is not None:
        with local.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    return hashlib.sha256(files.read_bytes(name)).hexdigest()


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
    rating (ids and scale taken from the data) with the movie table and a fingerprint.
    """
    files = open_release(release, data_dir, download=download, progress=progress)
    name = files.release.ratings_file
    if files.is_zip:  # read the member once: hash and parse the same bytes
        data = files.read_bytes(name)
        fingerprint = hashlib.sha256(data).hexdigest()
        raw = parse_ratings(data, files.describe(name), files.release.separator, files.release.has_header)
    else:
        fingerprint = _sha256_of(files, name)
        raw = read_ratings_file(files)
    if len(raw) == 0:
        raise DataError(f"{files.describe(name)} holds no ratings")
    return MovieLensDataset(files.release, files, index_ratings(raw), read_movies(files), fingerprint)
