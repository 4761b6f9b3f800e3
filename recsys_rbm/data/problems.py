"""Bad rows of a data file, collected and reported together as one line.

A file with one bad row usually has more; reporting only the first makes the user fix and rerun
once per row. :class:`BadRows` gathers ``(row, problem)`` pairs, keeps the first ``limit`` in row
order and counts the rest, and :meth:`BadRows.error` turns them into one :class:`DataError` line:

- one bad row: ``u.data:5: rating 7 is not on the scale 1, 2, 3, 4, 5``
- several: ``ratings.csv: 3 bad rows: line 5: rating 'x' is not a number; line 9: user id is
  missing; line 12: …``, with ``and N more`` past the limit, then what to do.

Rows are named by their line in a text file (``line`` 1-based, the header counted) or by their
row in a Parquet file or a DataFrame (``row``, 1-based in a file, 0-based in a DataFrame as its
own indexing is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys_rbm.errors import DataError

DEFAULT_LIMIT = 10  # bad rows named in one message; the rest are counted
FIX_ADVICE = "fix the file and read it again"


@dataclass(frozen=True)
class RowNames:
    """How messages name row ``i`` (0-based, in reading order) of a data source."""

    source: str  # the file as messages name it, or "DataFrame"
    unit: str = "line"  # "line" in text files, "row" in Parquet files and DataFrames
    first: int = 1  # the number of row 0: 2 after a header line, 0 in a DataFrame
    lines: np.ndarray | None = None  # (N,) explicit numbers when rows are not consecutive lines

    def number(self, row: int) -> int:
        if self.lines is not None:
            return int(self.lines[row])
        return row + self.first

    def at(self, row: int) -> str:
        """``line 5`` / ``row 3``."""
        return f"{self.unit} {self.number(row)}"

    def located(self, row: int) -> str:
        """``ratings.csv:5`` for lines, ``data.parquet row 3`` otherwise."""
        if self.unit == "line":
            return f"{self.source}:{self.number(row)}"
        return f"{self.source} {self.at(row)}"


class BadRows:
    """Problems found in the rows of one source; :meth:`raise_if_any` reports them as one line.

    Problems are kept as arrays of rows with a function that words the problem of one row, so a
    file whose every row is bad costs one array, not a string per row. A row with several
    problems is reported with the first one added.
    """

    def __init__(self, names: RowNames, limit: int = DEFAULT_LIMIT) -> None:
        self.names = names
        self.limit = limit
        self._found: list[tuple[np.ndarray, Callable[[int], str]]] = []  # (rows, row -> problem)

    def add(self, row: int, problem: str) -> None:
        """Record ``problem`` for ``row`` (0-based, in reading order)."""
        self._found.append((np.array([row], dtype=np.int64), lambda _row, text=problem: text))

    def add_many(self, rows: np.ndarray, problem: str | Callable[[int], str]) -> None:
        """Record the same problem for each of ``rows``, or one worded by ``problem(row)``."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size:
            self._found.append((rows, (lambda _row, text=problem: text) if isinstance(problem, str) else problem))

    def _first_problems(self) -> tuple[int, list[tuple[int, str]]]:
        """The number of distinct bad rows and the first ``limit`` of them with their problem."""
        rows = np.concatenate([found for found, _ in self._found])
        check = np.concatenate([np.full(found.size, k) for k, (found, _) in enumerate(self._found)])
        order = np.lexsort((check, rows))  # by row, then by the order the checks were added
        rows, check = rows[order], check[order]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        rows, check = rows[first], check[first]
        shown = [
            (int(row), self._found[int(k)][1](int(row))) for row, k in zip(rows[: self.limit], check, strict=False)
        ]
        return int(rows.size), shown

    def __len__(self) -> int:
        return self._first_problems()[0] if self._found else 0

    def error(self, advice: str = FIX_ADVICE) -> DataError:
        """One line naming every bad row up to the limit, and how many more there are."""
        total, shown = self._first_problems()
        shown = [(row, " ".join(problem.split())) for row, problem in shown]  # never a line break
        if total == 1:
            row, problem = shown[0]
            return DataError(f"{self.names.located(row)}: {problem}; {advice}")
        listed = "; ".join(f"{self.names.at(row)}: {problem}" for row, problem in shown)
        more = f"; and {total - len(shown):,} more" if total > len(shown) else ""
        return DataError(f"{self.names.source}: {total:,} bad rows: {listed}{more}; {advice}")

    def raise_if_any(self, advice: str = FIX_ADVICE) -> None:
        if self._found:
            raise self.error(advice)
