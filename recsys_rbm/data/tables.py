"""Anyone's ratings in: a ratings table from a CSV, TSV or Parquet file or a DataFrame, and an item table.

:func:`read_ratings_table` reads any table of (user, item[, rating][, time]) rows:

- **sources**: a path (``.parquet``/``.pq`` as Parquet; anything else as delimited text whose
  delimiter, comma, tab, semicolon, ``|`` or runs of spaces, is sniffed from the first lines;
  gzip, bzip2 or xz compressed or not; UTF-8, UTF-16 or UTF-32 with a byte-order mark, else
  Latin-1; anything else refused for what it is, see :mod:`recsys_rbm.data.text_files`), a pandas
  DataFrame or a polars DataFrame. Text files need a header line, except
  MovieLens's own headerless layouts (``u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``;
  ``ratings.dat``: ``user::item::rating::timestamp``), recognised by their shape.
- **columns** are picked by name (``user_col`` …) or recognised: ``userId``/``user_id``/``user``/
  ``uid``; ``movieId``/``itemId``/``item_id``/``item``/``movie``/``iid``; ``rating``/``score``/
  ``stars``; ``timestamp``/``time``/``ts``/``datetime``/``date`` (case, ``_`` and ``-`` ignored).
- **ids** are integers or text, kept raw (:mod:`recsys_rbm.data.ids`); surrounding spaces are
  not part of an id.
- **ratings**: no rating column, or ``implicit=True``, is implicit feedback (every row a 1, K = 1);
  otherwise the scale is declared (``scale="1:5"``) and every rating must lie on it, or inferred
  from the data (:meth:`RatingScale.infer`). Either way the report shows it.
- **time**: whole seconds since 1970, or date-times (typed, or text such as ``2020-01-31 12:00``).
- **bad rows**: every row that cannot be read (a missing or malformed field, a rating off the
  declared scale, a wrong number of fields) is named as ``file:line`` in one :class:`DataError`
  line, up to ``max_errors`` rows and a count of the rest. Blank lines are skipped.
- **repeated (user, item) pairs**: an error naming both lines (``duplicates="error"``, the
  default: a table with repeats is usually a log, and silently keeping one rating could keep the
  wrong one), or ``duplicates="last"`` keeps each pair's last row in source order and reports how
  many were dropped. Under implicit feedback repeated interactions are one interaction (counted).

:func:`read_items_table` reads an item table (id, title, genres) into the
:class:`~recsys_rbm.data.movies.Movies` structure the MovieLens loaders produce, so checkpoints
carry titles the same way whatever the data.

polars does the reading and the column work; pandas is never imported (a pandas DataFrame is
recognised by its type's module and converted column by column).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from recsys_rbm.data.fingerprint import ratings_fingerprint
from recsys_rbm.data.ids import IdMap, describe_id, typed_ids
from recsys_rbm.data.movies import Movies, parse_year
from recsys_rbm.data.problems import DEFAULT_LIMIT, FIX_ADVICE, BadRows, RowNames
from recsys_rbm.data.ratings import Duplicates, Ratings, RawRatings, drop_repeated_pairs, index_ratings
from recsys_rbm.data.scale import RatingScale
from recsys_rbm.data.text_files import inner_suffix, read_text_file
from recsys_rbm.errors import ConfigError, DataError
from recsys_rbm.io.inputs import input_problem, read_regular_bytes

if TYPE_CHECKING:
    import polars as pl

Role = Literal["user", "item", "rating", "time"]

# Recognised column names, normalised (lower case, without "_", "-", " " and "."), by priority.
RATING_COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("userid", "user", "uid", "users"),
    "item": ("movieid", "itemid", "item", "movie", "iid", "items", "movies"),
    "rating": ("rating", "ratings", "score", "stars"),
    "time": ("timestamp", "time", "ts", "datetime", "date"),
}
ITEM_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("movieid", "itemid", "item", "movie", "id", "iid"),
    "title": ("title", "name", "movietitle", "itemname", "movie", "item"),
    "genres": ("genres", "genre", "categories", "category"),
}
RECOGNISED = {  # as messages show them
    "user": "userId, user_id, user, uid",
    "item": "movieId, itemId, item_id, item, movie, iid",
}
OPTIONS = {"user": "--user-col", "item": "--item-col", "rating": "--rating-col", "time": "--time-col"}
NO_GENRES = "(no genres listed)"
PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", "\t", ";", "|")
SPACES = " "  # the sniffed "delimiter" of a table whose fields are separated by runs of spaces
_CANONICAL_INTEGER = r"^-?(?:0|[1-9][0-9]{0,17})$"
_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")


def _normalised(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.lstrip("\ufeff")).lower()


@dataclass
class _Frame:
    """A source loaded as a polars DataFrame, with how to name its rows and which rows are blank lines."""

    frame: pl.DataFrame
    source: str  # as messages name it
    format: str  # "CSV", "TSV", "Parquet", "MovieLens u.data layout", "pandas DataFrame" …
    names: RowNames
    text: bytes | None = None  # a delimited text file's bytes (to locate rows precisely when needed)
    delimiter: str = ","
    headerless_movielens: bool = False
    ragged: bool = False  # some line has more fields than the header (polars dropped the extra ones)


# ---------------------------------------------------------------------------------------------
# Loading a source


def _is_pandas(source: Any) -> bool:
    return type(source).__module__.split(".")[0] == "pandas" and hasattr(source, "columns")


def _is_polars(source: Any) -> bool:
    return type(source).__module__.split(".")[0] == "polars" and hasattr(source, "columns")


def _from_pandas(frame: Any) -> pl.DataFrame:
    """A pandas DataFrame as polars, column by column (a column polars cannot type stays Python objects)."""
    import polars as pl

    columns = []
    for name in frame.columns:
        column = frame[name]
        try:
            series = pl.from_pandas(column)
        except Exception:  # pyarrow missing, or a mixed object column: keep the Python values
            values = column.to_numpy(dtype=object)
            series = pl.Series(str(name), [None if _is_missing(v) else v for v in values.tolist()], dtype=pl.Object)
        columns.append(series.alias(str(name)))
    return pl.DataFrame(columns)


def _is_missing(value: Any) -> bool:
    """None, NaN, and pandas's NA and NaT."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _sniff_delimiter(sample: str, suffix: str) -> str:
    """The delimiter of a text table: the candidate that splits the first lines into the same number (> 1) of fields.

    Ties go to the extension's own (tab for ``.tsv``, comma otherwise); quoted fields are honoured.
    When no candidate does and no line holds one, runs of spaces (:data:`SPACES`) are tried the same way.
    """
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if not lines:
        return "\t" if suffix == ".tsv" else ","
    preferred = "\t" if suffix == ".tsv" else ","
    best: tuple[int, int, str] | None = None
    for delimiter in _DELIMITERS:
        try:
            counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(counts) == 1 and (n := counts.pop()) > 1:
            score = (1 if delimiter == preferred else 0, n, delimiter)
            best = max(best, score) if best is not None else score
    if best is None and not any(mark in line for line in lines for mark in _DELIMITERS):
        width = len(lines[0].split())  # the header's: the bad rows among the rest are reported as such
        if width > 1 and 2 * sum(len(line.split()) == width for line in lines) > len(lines):
            return SPACES  # the header and most lines split into as many fields at runs of spaces
    return best[2] if best is not None else preferred


def _looks_numeric(fields: list[str]) -> bool:
    return bool(fields) and all(_NUMBER.fullmatch(field) for field in fields)


def _read_text(path: Path, source: str, kind: str) -> _Frame:
    """A delimited text table with a header (or a MovieLens headerless ratings layout) as string columns."""
    import polars as pl

    from recsys_rbm.data.movielens import parse_ratings

    stored = read_text_file(path, f"{kind}s file")
    data = stored.data
    text_start = data[:65536].decode("utf-8", errors="ignore").lstrip("\ufeff")
    first = next((line for line in text_start.splitlines() if line.strip()), "")
    if not first:
        raise DataError(f"{source} is empty; write a header line and one row per {kind}")
    if kind == "rating" and "::" in first and _looks_numeric(first.split("::")):  # ml-1m / ml-10m ratings.dat
        raw = parse_ratings(data, source, "::")
        return _raw_frame(raw, source, "MovieLens ratings.dat layout")
    delimiter = _sniff_delimiter(text_start, inner_suffix(path))
    spaced = delimiter == SPACES
    if spaced:  # one tab between fields, so that the reading below is that of a TSV; lines keep their numbers
        data = b"\n".join(b"\t".join(line.split()) for line in data.split(b"\n"))
        delimiter = "\t"
    fields = first.split() if spaced else next(csv.reader([first], delimiter=delimiter))
    if _looks_numeric(fields):
        if kind == "rating" and delimiter == "\t" and len(fields) == 4:  # ml-100k u.data and its splits
            raw = parse_ratings(data, source, "\t")
            return _raw_frame(raw, source, "MovieLens u.data layout")
        example = "user,item,rating,timestamp" if kind == "rating" else "item,title,genres"
        raise DataError(
            f"{source} has no header line (its first line is data: {first.strip()[:60]!r}); "
            f"add a first line naming the columns, e.g. {example}"
        )
    name = (
        "space-separated text" if spaced else {"\t": "TSV", ",": "CSV"}.get(delimiter, f"{delimiter!r}-separated text")
    )
    name += stored.describe()
    ragged = False
    try:
        frame = pl.read_csv(data, separator=delimiter, has_header=True, infer_schema=False, quote_char='"')
    except pl.exceptions.PolarsError:
        try:  # a line with too many fields: read the rest, and name that line with the other bad rows
            frame = pl.read_csv(
                data,
                separator=delimiter,
                has_header=True,
                infer_schema=False,
                quote_char='"',
                truncate_ragged_lines=True,
            )
            ragged = True
        except pl.exceptions.PolarsError as error:
            problems = _field_count_problems(data, source, delimiter)
            if len(problems):
                raise problems.error(FIX_ADVICE) from None
            raise DataError(f"{source} could not be read as {name} ({str(error).splitlines()[0]})") from None
    return _Frame(frame, source, name, RowNames(source, "line", 2), data, delimiter, ragged=ragged)


def _raw_frame(raw: RawRatings, source: str, layout: str) -> _Frame:
    import polars as pl

    frame = pl.DataFrame({"user": raw.users, "item": raw.items, "rating": raw.values, "timestamp": raw.timestamps})
    return _Frame(frame, source, layout, raw.row_names, headerless_movielens=True)


def _record_lines(data: bytes, delimiter: str) -> tuple[list[int], list[int]]:
    """For each record after the header: the line it starts on, and its number of fields (csv module; slow path)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter)
    starts: list[int] = []
    widths: list[int] = []
    previous_end = 0
    for row in reader:
        starts.append(previous_end + 1)
        widths.append(len(row))
        previous_end = reader.line_num
    return starts[1:], widths[1:]


def _field_count_problems(data: bytes, source: str, delimiter: str, bad: BadRows | None = None) -> BadRows:
    """Every record whose number of fields differs from the header's, added to ``bad`` (or a new one).

    Rows are records after the header, as polars counts them (a blank line is a record).
    """
    try:
        starts, widths = _record_lines(data, delimiter)
        header = next(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter))
    except (csv.Error, StopIteration):
        starts, widths, header = [], [], []
    if bad is None:
        bad = BadRows(RowNames(source, "line", 2, np.asarray(starts, dtype=np.int64)))
    for row, width in enumerate(widths):
        if width and width != len(header):
            bad.add(row, f"expected {len(header)} fields like the header, found {width}")
    return bad


def _load(source: Any, kind: str) -> _Frame:
    """Any supported source as a :class:`_Frame`; ``kind`` ("rating" or "item") words the messages."""
    import polars as pl

    if _is_polars(source):
        if not isinstance(source, pl.DataFrame):
            source = source.collect() if hasattr(source, "collect") else source
        return _Frame(source, "DataFrame", "polars DataFrame", RowNames("DataFrame", "row", 0))
    if _is_pandas(source):
        return _Frame(_from_pandas(source), "DataFrame", "pandas DataFrame", RowNames("DataFrame", "row", 0))
    if not isinstance(source, (str, Path)):
        raise ConfigError(
            f"cannot read {kind}s from a {type(source).__name__}; give a path (CSV, TSV or Parquet) "
            "or a pandas or polars DataFrame"
        )
    path = Path(source).expanduser()
    shown = str(source)
    problem = input_problem(path)
    if problem is not None and problem.kind in ("missing", "folder"):
        what = "does not exist; check the path" if problem.kind == "missing" else "is a folder, not a file"
        raise DataError(f"{kind}s file {shown} {what}; give a CSV, TSV or Parquet file of {kind}s")
    if problem is not None:
        raise DataError(f"{kind}s file {shown} {problem.text}; {problem.advice}")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            frame = pl.read_parquet(io.BytesIO(read_regular_bytes(path, f"{kind}s file")))
        except (pl.exceptions.PolarsError, OSError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(
                f"{shown} is not a readable Parquet file ({reason}); check the file, or give a CSV or TSV file"
            ) from None
        return _Frame(frame, shown, "Parquet", RowNames(shown, "row", 1))
    try:
        return _read_text(path, shown, kind)
    except OSError as error:
        raise DataError(f"{shown} could not be read ({error})") from None


def _precise_lines(loaded: _Frame) -> None:
    """Make ``loaded.names`` exact when a quoted field spans lines (rows are then not consecutive lines)."""
    if loaded.text is None or loaded.names.lines is not None:
        return
    text = loaded.text
    n_lines = text.count(b"\n") + (0 if text.endswith(b"\n") else 1)
    if n_lines == loaded.frame.height + 1:
        return
    starts, _ = _record_lines(text, loaded.delimiter)
    if len(starts) == loaded.frame.height:
        loaded.names = RowNames(loaded.source, "line", 2, np.asarray(starts, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Columns


def _pick(columns: list[str], given: str | None, candidates: tuple[str, ...], source: str, option: str) -> str | None:
    """The column for ``role``: the one named ``given`` (it must exist), else the first recognised name."""
    if given is not None:
        if given in columns:
            return given
        folded = [name for name in columns if name.strip().lower() == given.strip().lower()]
        if len(folded) == 1:
            return folded[0]
        raise DataError(
            f"{source} has no column {given!r} (given by {option}); its columns are {_listed(columns)}: "
            f"give {option} one of them"
        )
    by_name = {}
    for name in columns:
        by_name.setdefault(_normalised(name), name)
    for candidate in candidates:
        if candidate in by_name:
            return by_name[candidate]
    return None


def _listed(columns: list[str]) -> str:
    shown = ", ".join(repr(name) for name in columns[:12])
    return shown + (f" and {len(columns) - 12} more" if len(columns) > 12 else "")


# ---------------------------------------------------------------------------------------------
# Typing the columns


def _ids(
    series: pl.Series, what: str, bad: BadRows, rows: np.ndarray, source: str, like: IdMap | None = None
) -> np.ndarray:
    """A column of raw ids as int64 or unicode (see :mod:`recsys_rbm.data.ids`); missing ids are bad rows.

    ``rows`` maps the series' positions to source rows. With ``like``, ids take that map's type.
    """
    import polars as pl

    dtype = series.dtype
    if dtype == pl.Object:
        values = series.to_list()
        missing = np.array([_is_missing(v) for v in values], dtype=bool)
        bad.add_many(rows[missing], f"{what} is missing")
        present = [v for v, gone in zip(values, missing, strict=True) if not gone]
        try:
            typed = typed_ids(np.asarray(present, dtype=object)) if present else np.zeros(0, dtype=np.int64)
        except ValueError as error:
            raise DataError(f"{source}: the {what} column: {error}") from None
        out = np.zeros(len(values), dtype=typed.dtype)
        out[~missing] = typed
        return _like(out, like, missing)
    if dtype.is_integer():
        missing = series.is_null().to_numpy()
        bad.add_many(rows[missing], f"{what} is missing")
        return _like(series.fill_null(0).cast(pl.Int64).to_numpy(), like, missing)
    if dtype.is_float():
        values = series.to_numpy().astype(np.float64)
        missing = ~np.isfinite(values)
        bad.add_many(rows[missing], f"{what} is missing")
        fractional = ~missing & (values != np.round(np.nan_to_num(values)))
        bad.add_many(rows[fractional], lambda row: f"{what} {values[_position(rows, row)]:g} is not a whole number")
        whole = np.where(missing | fractional, 0, values).astype(np.int64)
        return _like(whole, like, missing | fractional)
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        text = series.cast(pl.String).str.strip_chars()
        missing = (text.is_null() | (text.str.len_chars() == 0)).to_numpy()
        bad.add_many(rows[missing], f"{what} is missing")
        present = text.filter(~pl.Series(missing))
        integers = like.id_type == "int" if like is not None else bool(present.str.contains(_CANONICAL_INTEGER).all())
        if integers:
            canonical = text.str.contains(_CANONICAL_INTEGER).fill_null(False).to_numpy()
            not_integer = ~missing & ~canonical
            values = text.to_numpy()
            bad.add_many(
                rows[not_integer],
                lambda row: f"{what} {values[_position(rows, row)]!r} is not an integer like the other ids",
            )
            usable = ~missing & ~not_integer
            return np.where(usable, text.cast(pl.Int64, strict=False).fill_null(0).to_numpy(), 0).astype(np.int64)
        return np.asarray(text.fill_null("").to_numpy(), dtype=str)
    raise DataError(f"{source}: the {what} column holds {dtype} values; ids must be integers or text")


def _position(rows: np.ndarray, row: int) -> int:
    """Where source row ``row`` sits in ``rows`` (ascending)."""
    return int(np.searchsorted(rows, row))


def _like(ids: np.ndarray, like: IdMap | None, skip: np.ndarray) -> np.ndarray:
    """Integer ids converted to text when the ids must be like a text map's."""
    if like is not None and like.id_type == "str":
        return np.where(skip, "", ids.astype(str))
    return ids


def _ratings(series: pl.Series, bad: BadRows, rows: np.ndarray, source: str) -> np.ndarray:
    """A column of ratings as float64; missing, non-numeric and non-finite ratings are bad rows."""
    import polars as pl

    dtype = series.dtype
    if dtype.is_numeric() and dtype != pl.Boolean:
        values = series.cast(pl.Float64).to_numpy()
        missing = series.is_null().to_numpy() | np.isnan(values)
        bad.add_many(rows[missing], "rating is missing")
        infinite = ~missing & ~np.isfinite(values)
        bad.add_many(rows[infinite], lambda row: f"rating {values[_position(rows, row)]} is not a finite number")
        return np.where(missing | infinite, np.nan, values)
    if dtype == pl.String or dtype == pl.Object:
        if dtype == pl.Object:  # a pandas object column: its values as text
            series = pl.Series([None if _is_missing(v) else str(v) for v in series.to_list()], dtype=pl.String)
        text = series.str.strip_chars()
        missing = (text.is_null() | (text.str.len_chars() == 0)).to_numpy()
        bad.add_many(rows[missing], "rating is missing")
        numbers = text.cast(pl.Float64, strict=False)
        values = numbers.to_numpy().astype(np.float64)
        shown = text.to_numpy()
        not_number = ~missing & numbers.is_null().to_numpy()
        bad.add_many(rows[not_number], lambda row: f"rating {shown[_position(rows, row)]!r} is not a number")
        infinite = ~missing & ~not_number & ~np.isfinite(values)
        bad.add_many(rows[infinite], lambda row: f"rating {shown[_position(rows, row)]!r} is not a finite number")
        return np.where(missing | not_number | infinite, np.nan, values)
    raise DataError(f"{source}: the rating column holds {dtype} values; ratings must be numbers")


def _timestamps(series: pl.Series, bad: BadRows, rows: np.ndarray, source: str) -> np.ndarray:
    """A column of times as int64 seconds since 1970 (from whole seconds or date-times)."""
    import polars as pl

    dtype = series.dtype
    if dtype.is_temporal() and dtype != pl.Time and dtype != pl.Duration:
        seconds = series.cast(pl.Datetime("us")).dt.epoch("s")
    elif dtype.is_integer():
        seconds = series.cast(pl.Int64)
    elif dtype.is_float():
        values = series.to_numpy().astype(np.float64)
        missing = np.isnan(values)
        bad.add_many(rows[missing], "time is missing")
        fractional = ~missing & ~(np.isfinite(values) & (values == np.round(np.nan_to_num(values))))
        bad.add_many(rows[fractional], lambda row: f"time {values[_position(rows, row)]} is not whole seconds")
        return np.where(missing | fractional, 0, np.nan_to_num(values)).astype(np.int64)
    elif dtype == pl.String:
        text = series.str.strip_chars()
        as_integer = text.cast(pl.Int64, strict=False)
        seconds = as_integer.fill_null(_datetime_seconds(text.set(as_integer.is_not_null(), None)))
        shown = text.to_numpy()
        unreadable = (text.is_not_null() & (text.str.len_chars() > 0) & seconds.is_null()).to_numpy()
        bad.add_many(
            rows[unreadable],
            lambda row: f"time {shown[_position(rows, row)]!r} is neither whole seconds nor a date-time",
        )
        seconds = seconds.set(pl.Series(unreadable), None) if unreadable.any() else seconds
        missing = (text.is_null() | (text.str.len_chars() == 0)).to_numpy()
        bad.add_many(rows[missing], "time is missing")
        return seconds.fill_null(0).to_numpy().astype(np.int64)
    else:
        raise DataError(f"{source}: the time column holds {dtype} values; give seconds since 1970 or date-times")
    missing = seconds.is_null().to_numpy()
    bad.add_many(rows[missing], "time is missing")
    return seconds.fill_null(0).to_numpy().astype(np.int64)


def _datetime_seconds(text: pl.Series) -> pl.Series:
    """Text date-times (the format inferred from the first one) as seconds since 1970; null where unreadable."""
    import polars as pl

    if text.null_count() == text.len():
        return pl.Series(values=[None] * text.len(), dtype=pl.Int64)
    try:
        return text.str.to_datetime(strict=False, time_unit="us").dt.epoch("s")
    except pl.exceptions.PolarsError:  # no format fits the first value
        return pl.Series(values=[None] * text.len(), dtype=pl.Int64)


# ---------------------------------------------------------------------------------------------
# Ratings


@dataclass(frozen=True)
class RatingsTable:
    """What :func:`read_ratings_table` read: the ratings, and a report of how they were read."""

    ratings: Ratings
    source: str  # the file as given, or "DataFrame"
    format: str  # "CSV", "TSV", "Parquet", "MovieLens u.data layout (…)", "pandas DataFrame" …
    columns: dict[str, str | None]  # role ("user", "item", "rating", "time") -> the column read, or None
    n_rows: int  # data rows read (blank lines not counted)
    dropped_repeats: int  # rows dropped as repeats of a (user, item) pair (duplicates="last", or implicit)
    notes: tuple[str, ...] = field(default=())  # what else the user should know (a rating column ignored …)

    @property
    def scale(self) -> RatingScale:
        return self.ratings.scale

    @property
    def is_implicit(self) -> bool:
        return self.ratings.is_implicit

    @property
    def fingerprint(self) -> str:
        """:func:`~recsys_rbm.data.fingerprint.ratings_fingerprint` of what was read."""
        return ratings_fingerprint(self.ratings)

    def describe(self) -> str:
        """One sentence: rows, users, items, id types, columns, scale, and any notes."""
        r = self.ratings
        used = ", ".join(f"{role} {name!r}" for role, name in self.columns.items() if name is not None)
        dropped = f"; {self.dropped_repeats:,} repeated (user, item) rows dropped" if self.dropped_repeats else ""
        notes = "".join(f"; {note}" for note in self.notes)
        kinds = f"{r.user_ids.id_type} user ids, {r.item_ids.id_type} item ids"
        return (
            f"{self.source} ({self.format}): {len(r):,} ratings by {r.n_users:,} users of {r.n_items:,} items "
            f"({kinds}; columns {used}); ratings {r.scale.describe()}{dropped}{notes}"
        )

    def summary(self) -> dict[str, Any]:
        """Plain data for a checkpoint's metadata or JSON output."""
        r = self.ratings
        return {
            "source": self.source,
            "format": self.format,
            "columns": dict(self.columns),
            "rows": self.n_rows,
            "ratings": len(r),
            "users": r.n_users,
            "items": r.n_items,
            "user_id_type": r.user_ids.id_type,
            "item_id_type": r.item_ids.id_type,
            "scale": r.scale.spec(),
            "scale_origin": r.scale.origin,
            "implicit": r.is_implicit,
            "dropped_repeats": self.dropped_repeats,
            "fingerprint": self.fingerprint,
        }


def read_ratings_table(
    source: str | Path | Any,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    implicit: bool = False,
    scale: str | RatingScale | None = None,
    duplicates: Duplicates = "error",
    max_errors: int = DEFAULT_LIMIT,
) -> RatingsTable:
    """Read a ratings table (a CSV, TSV or Parquet path, or a pandas or polars DataFrame) into :class:`Ratings`.

    See the module docstring for how columns, ids, scales, times, bad rows and repeated pairs
    are handled. Problems with the data are one-line :class:`DataError`\\ s naming ``file:line``;
    contradictory options are :class:`ConfigError`\\ s.
    """
    if implicit and rating_col is not None:
        raise ConfigError("give either a rating column (--rating-col) or --implicit, not both")
    if implicit and scale is not None:
        raise ConfigError("implicit feedback has no rating scale; drop --scale or --implicit")
    if duplicates not in ("error", "last"):
        raise ConfigError(f"duplicates must be 'error' or 'last', got {duplicates!r}")
    declared = RatingScale.parse(scale) if isinstance(scale, str) else scale
    if declared is not None and declared.is_implicit:
        raise ConfigError("a declared rating scale needs at least 2 values; for implicit feedback use --implicit")
    loaded = _load(source, "rating")
    frame, shown = loaded.frame, loaded.source
    columns = [str(name) for name in frame.columns]
    given = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
    if loaded.headerless_movielens:
        for role, name in given.items():
            if name is not None and name not in columns:
                raise DataError(f"{shown} has no header (columns {_listed(columns)}); drop {OPTIONS[role]}")
    chosen = {
        role: _pick(columns, given[role], RATING_COLUMNS[role], shown, OPTIONS[role])
        for role in ("user", "item", "rating", "time")
    }
    for role in ("user", "item"):
        if chosen[role] is None:
            raise DataError(
                f"{shown} has no {role} id column among {_listed(columns)}; name it with {OPTIONS[role]} "
                f"(recognised: {RECOGNISED[role]})"
            )
    picked = [name for name in chosen.values() if name is not None]
    if len(set(picked)) != len(picked):
        raise ConfigError(f"{shown}: one column serves two roles ({chosen}); name each with its own option")
    notes: list[str] = []
    if implicit and chosen["rating"] is not None:
        notes.append(f"column {chosen['rating']!r} ignored: implicit feedback")
        chosen["rating"] = None
    if chosen["rating"] is None and not implicit and declared is not None:
        raise ConfigError(f"{shown} has no rating column, so --scale does not apply; name it with --rating-col")

    import polars as pl

    used = frame.select([chosen[role] for role in ("user", "item", "rating", "time") if chosen[role] is not None])
    keep = np.arange(used.height, dtype=np.int64)
    if loaded.text is not None:  # blank lines come back as rows of nulls: skip them
        blank = used.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
        if blank.any():
            keep = np.flatnonzero(~blank)
            used = used.filter(~pl.Series(blank))
    if used.height == 0:
        raise DataError(f"{shown} holds no ratings; add one row per rating under its header line")
    _precise_lines(loaded)
    bad = BadRows(loaded.names, max_errors)
    if loaded.text is not None and (
        loaded.ragged or used.select(pl.any_horizontal(pl.all().is_null())).to_series().any()
    ):  # a short line reads as missing fields, a long one was cut: name them as what they are
        _field_count_problems(loaded.text, shown, loaded.delimiter, bad)
    users = _ids(used[chosen["user"]], "user id", bad, keep, shown)
    items = _ids(used[chosen["item"]], "item id", bad, keep, shown)
    if chosen["rating"] is None:
        values = np.ones(used.height, dtype=np.float64)
        rating_scale = RatingScale.implicit("no rating column" if not implicit else "--implicit")
    else:
        values = _ratings(used[chosen["rating"]], bad, keep, shown)
        rating_scale = declared
        if declared is not None:
            _, on_scale = declared.levels(np.nan_to_num(values, nan=declared.values[0]))
            bad.add_many(
                keep[~on_scale],
                lambda row: f"rating {values[_position(keep, row)]:g} is not on the declared scale {declared.spec()}",
            )
    times = _timestamps(used[chosen["time"]], bad, keep, shown) if chosen["time"] is not None else None
    bad.raise_if_any(FIX_ADVICE)
    names = RowNames(shown, loaded.names.unit, loaded.names.first, _numbers(loaded.names, keep))
    raw = RawRatings(users, items, values, times, shown, names=names)
    if rating_scale is None:
        rating_scale = RatingScale.infer(values, shown)
    dropped = 0
    if rating_scale.is_implicit or duplicates == "last":
        raw, dropped = drop_repeated_pairs(raw)
    repeat_advice = "keep one row per (user, item) pair, or read with --duplicates last to keep the last one"
    ratings = index_ratings(raw, scale=rating_scale, limit=max_errors, advice=repeat_advice)
    return RatingsTable(ratings, shown, loaded.format, chosen, len(keep), dropped, tuple(notes))


def _numbers(names: RowNames, keep: np.ndarray) -> np.ndarray:
    """The source numbers (lines or rows) of the rows kept."""
    base = names.lines if names.lines is not None else np.arange(int(keep.max(initial=-1)) + 1) + names.first
    return np.asarray(base, dtype=np.int64)[keep]


# ---------------------------------------------------------------------------------------------
# Items


def read_items_table(
    source: str | Path | Any,
    *,
    id_col: str | None = None,
    title_col: str | None = None,
    genres_col: str | None = None,
    like: IdMap | None = None,
    max_errors: int = DEFAULT_LIMIT,
    prefer_id: str | None = None,
    id_option: str = "id_col",
) -> Movies:
    """An item table (id, title, optional genres) as :class:`~recsys_rbm.data.movies.Movies`.

    Columns are named or recognised (``movieId``/``itemId``/``item``/``id``; ``title``/``name``;
    ``genres``/``genre``/``categories``). ``prefer_id`` (the ratings table's item column, e.g.
    ``product``) is taken as the id column when the table has it and ``id_col`` is not given;
    ``id_option`` is how messages name ``id_col`` (the command line's ``--items-id-col``). Genres
    are ``|``-separated text as in MovieLens (``"(no genres listed)"`` is none) or a list column.
    ``like`` (the ratings' item id map) gives the ids its type, so ``"42"`` in the items file
    matches the item 42 of the ratings. A missing id or title and a repeated id are bad rows,
    reported together. MovieLens's headerless ``movies.dat`` (``id::title::genres``) and ``u.item``
    (with ``u.genre`` beside it) are recognised too.
    """
    import polars as pl

    movielens = _movielens_items(source)
    if movielens is not None:
        return movielens
    loaded = _load(source, "item")
    frame, shown = loaded.frame, loaded.source
    columns = [str(name) for name in frame.columns]
    preferred = () if prefer_id is None else (_normalised(prefer_id),)
    id_name = _pick(columns, id_col, (*preferred, *ITEM_COLUMNS["id"]), shown, id_option)
    if id_name is None:
        named = f" (or {prefer_id!r}, as in the ratings)" if prefer_id is not None else ""
        raise DataError(
            f"{shown} has no item id column among {_listed(columns)}; name it movieId, itemId or id{named}, "
            f"or give {id_option}"
        )
    rest = [name for name in columns if name != id_name]
    title_name = _pick(rest, title_col, ITEM_COLUMNS["title"], shown, "title_col")
    if title_name is None:
        raise DataError(f"{shown} has no title column among {_listed(columns)}; name it 'title'")
    genres_name = _pick([n for n in rest if n != title_name], genres_col, ITEM_COLUMNS["genres"], shown, "genres_col")
    used = frame.select([name for name in (id_name, title_name, genres_name) if name is not None])
    keep = np.arange(used.height, dtype=np.int64)
    if loaded.text is not None:
        blank = used.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
        keep = np.flatnonzero(~blank)
        used = used.filter(~pl.Series(blank))
    _precise_lines(loaded)
    bad = BadRows(loaded.names, max_errors)
    ids = _ids(used[id_name], "item id", bad, keep, shown, like)
    titles_series = used[title_name].cast(pl.String).str.strip_chars()
    no_title = (titles_series.is_null() | (titles_series.str.len_chars() == 0)).to_numpy()
    bad.add_many(keep[no_title], "title is missing")
    titles = titles_series.fill_null("").to_list()
    genres = _genres(used[genres_name]) if genres_name is not None else [[] for _ in titles]
    first_row: dict[Any, int] = {}
    for position, raw_id in enumerate(ids.tolist()):
        if raw_id in first_row:
            first = loaded.names.at(int(keep[first_row[raw_id]]))
            bad.add(int(keep[position]), f"item {describe_id(raw_id)} again (first at {first})")
        else:
            first_row[raw_id] = position
    bad.raise_if_any(FIX_ADVICE)
    return Movies.from_rows(ids, titles, genres, [parse_year(title) for title in titles])


def _movielens_items(source: Any) -> Movies | None:
    """MovieLens's own headerless item files, recognised by their first line: movies.dat, and u.item (with u.genre)."""
    if not isinstance(source, (str, Path)) or not Path(source).is_file():
        return None
    path = Path(source)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return None
    head = path.read_bytes()[:4096].decode("latin-1")
    first = next((line for line in head.splitlines() if line.strip()), "")
    from recsys_rbm.data import movielens

    if first.count("::") == 2 and first.split("::")[0].strip().isdigit():
        return movielens.parse_dat_movies(path.read_bytes(), str(source), "latin-1")
    fields = first.split("|")
    if len(fields) > 5 and fields[0].strip().isdigit() and all(flag.strip() in ("0", "1") for flag in fields[5:]):
        genre_file = path.with_name("u.genre")
        if not genre_file.is_file():
            raise DataError(f"{source} is laid out as ml-100k's u.item; put its u.genre beside it for the genre names")
        names = movielens.parse_genre_names(genre_file.read_bytes(), str(genre_file))
        return movielens.parse_100k_items(path.read_bytes(), str(source), names, "latin-1")
    return None


def _genres(series: pl.Series) -> list[list[str]]:
    """Genres per row from ``|``-separated text or a list column."""
    import polars as pl

    split: Callable[[Any], list[str]]
    if isinstance(series.dtype, pl.List):
        split = lambda value: [str(g).strip() for g in (value or []) if g and str(g).strip() != NO_GENRES]  # noqa: E731
    else:
        split = lambda value: [g.strip() for g in (value or "").split("|") if g.strip() and g.strip() != NO_GENRES]  # noqa: E731
    values = series.to_list() if isinstance(series.dtype, pl.List) else series.cast(pl.String).to_list()
    return [split(value) for value in values]
