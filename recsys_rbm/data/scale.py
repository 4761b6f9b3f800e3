"""The rating scale: which values a rating may take, hence the K levels of the softmax units.

A scale is one of

- **declared**: ``"1:5"`` (1, 2, 3, 4, 5), ``"0.5:5:0.5"`` (half stars, K = 10) or a list
  ``"1,2,3,5"``; a rating off a declared scale is an error, never a new level;
- **a release's**: a known MovieLens release has a known scale (ml-100k: 1..5), checked the same way;
- **inferred** from the data: the regular grid from the lowest to the highest value read (so
  ratings 1, 2, 4, 5 give 1..5, K = 5, even if nobody gave a 3), else the distinct values;
  shown to the user, who can declare another;
- **implicit** feedback: no rating at all, only that a user interacted with an item. Every
  interaction is a 1: ``values == (1.0,)``, K = 1. A rating column whose every value is the same
  carries no more than that, and is read as implicit too.

Nothing here imports polars or torch.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from recsys_rbm.errors import ConfigError, DataError

Origin = Literal["declared", "release", "inferred", "implicit", "given"]

MAX_INFERRED_LEVELS = 20  # more distinct values than this look continuous: the scale must be declared
MAX_DECLARED_LEVELS = 1000
_TOLERANCE = 1e-9  # relative: 0.1 * 3 is on the scale 0.1:1:0.1


def distinct_ratings(values: np.ndarray) -> np.ndarray:
    """The distinct rating values, ascending (float64).

    O(N) for ratings on a grid of half stars (every MovieLens release), a sort otherwise.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0, dtype=np.float64)
    doubled = values * 2.0
    if np.all(np.isfinite(doubled)):
        grid = doubled.astype(np.int64)
        if np.array_equal(grid, doubled):
            low = int(grid.min())
            if int(grid.max()) - low < 1 << 20:
                return (np.flatnonzero(np.bincount(grid - low)) + low) / 2.0
    return np.unique(values)


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class RatingScale:
    """The ascending values a rating may take (K = ``len(values)``), and where they came from."""

    values: tuple[float, ...]  # (K,) strictly ascending; (1.0,) for implicit feedback
    origin: Origin = "given"  # declared, release, inferred, implicit, or given (built from an array)
    text: str = ""  # what was declared ("1:5"), the release's name, or a note on the inference

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in self.values)
        if not values:
            raise ValueError("a rating scale needs at least one value")
        if not all(math.isfinite(v) for v in values):
            raise ValueError("rating scale values must be finite")
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError("rating scale values must be strictly ascending")
        if len(values) == 1 and values != (1.0,):
            raise ValueError("a one-value scale is implicit feedback, whose only value is 1")
        object.__setattr__(self, "values", values)
        if len(values) == 1 and self.origin == "given":
            object.__setattr__(self, "origin", "implicit")

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> RatingScale:
        """A declared scale: ``LOW:HIGH`` (step 1), ``LOW:HIGH:STEP`` or ``V1,V2,…``; else a :class:`ConfigError`."""
        spec = text.strip()
        usage = "write LOW:HIGH, LOW:HIGH:STEP or a list V1,V2,… (e.g. 1:5, 0.5:5:0.5 or 1,2,3,4,5)"
        if "," in spec:
            try:
                values = sorted(float(part) for part in spec.split(","))
            except ValueError:
                raise ConfigError(f"rating scale {text!r} is not a list of numbers; {usage}") from None
            if len(set(values)) != len(values) or len(values) < 2:
                raise ConfigError(f"rating scale {text!r} needs at least 2 different values; {usage}")
            if not all(math.isfinite(v) for v in values):
                raise ConfigError(f"rating scale {text!r} has a value that is not finite; {usage}")
            return cls(tuple(values), "declared", spec)
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"rating scale {text!r} is not understood; {usage}")
        try:
            low, high, step = (float(part) for part in (*parts, "1")[:3])
        except ValueError:
            raise ConfigError(f"rating scale {text!r} has a part that is not a number; {usage}") from None
        if not all(math.isfinite(v) for v in (low, high, step)):
            raise ConfigError(f"rating scale {text!r} has a value that is not finite; {usage}")
        if step <= 0:
            raise ConfigError(f"rating scale {text!r}: the step must be positive")
        if high <= low:
            raise ConfigError(f"rating scale {text!r}: HIGH must be above LOW (for implicit feedback use --implicit)")
        count = (high - low) / step
        if abs(count - round(count)) > 1e-6:
            raise ConfigError(f"rating scale {text!r}: {_number(high)} is not LOW plus a whole number of steps")
        n_levels = round(count) + 1
        if n_levels > MAX_DECLARED_LEVELS:
            raise ConfigError(f"rating scale {text!r} has {n_levels:,} levels; at most {MAX_DECLARED_LEVELS:,}")
        return cls(_grid(low, step, n_levels), "declared", spec)

    @classmethod
    def implicit(cls, note: str = "") -> RatingScale:
        """Implicit feedback: every interaction is a 1 (K = 1)."""
        return cls((1.0,), "implicit", note)

    @classmethod
    def of_release(cls, values: tuple[float, ...], name: str) -> RatingScale:
        return cls(values, "release", name)

    @classmethod
    def infer(cls, values: np.ndarray, source: str = "the ratings") -> RatingScale:
        """The scale of ratings read without a declared one (see the module docstring).

        One distinct value is implicit feedback. More than :data:`MAX_INFERRED_LEVELS` distinct
        values off any regular grid is a :class:`DataError` asking for a declared scale.
        """
        distinct = distinct_ratings(values)
        if distinct.size == 0:
            raise DataError(f"{source} holds no ratings to infer a scale from; add ratings, or declare --scale")
        if distinct.size == 1:
            return cls.implicit(f"every rating is {_number(distinct[0])}")
        step = _common_step(distinct)
        n_levels = 0 if step is None else round((distinct[-1] - distinct[0]) / step) + 1
        if step is not None and n_levels <= MAX_INFERRED_LEVELS:
            grid = _grid(float(distinct[0]), step, n_levels)
            note = "" if n_levels == distinct.size else f"{n_levels - distinct.size} of them unused"
            return cls(grid, "inferred", note)
        if distinct.size <= MAX_INFERRED_LEVELS:
            return cls(tuple(distinct.tolist()), "inferred", "")
        low, high = _number(distinct[0]), _number(distinct[-1])
        raise DataError(
            f"{source} holds {distinct.size:,} different rating values from {low} to {high}; "
            f"declare the scale, e.g. --scale {low}:{high}:STEP "
            "(a softmax unit needs a few discrete levels), or round the ratings"
        )

    # --- use ------------------------------------------------------------------------------------
    @property
    def rating_values(self) -> np.ndarray:
        """(K,) float64: level ``k`` means the rating ``rating_values[k]``."""
        return np.asarray(self.values, dtype=np.float64)

    @property
    def n_levels(self) -> int:
        return len(self.values)

    @property
    def is_implicit(self) -> bool:
        return self.values == (1.0,)

    def levels(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(levels, on_scale)``: each rating's level (int64, 0 where off the scale) and whether it is on it.

        Values match a level within a relative 1e-9 (so 0.1 * 3 is 0.3). Under implicit
        feedback every interaction is level 0, whatever value it came with.
        """
        values = np.asarray(values, dtype=np.float64)
        if self.is_implicit:
            return np.zeros(values.shape, dtype=np.int64), np.ones(values.shape, dtype=bool)
        scale = self.rating_values
        tolerance = _TOLERANCE * np.maximum(1.0, np.abs(np.nan_to_num(values)))
        found = np.searchsorted(scale, values - tolerance).clip(0, scale.size - 1).astype(np.int64)
        on_scale = np.abs(scale[found] - values) <= tolerance  # NaN compares False: off the scale
        return np.where(on_scale, found, 0), on_scale

    def spec(self) -> str:
        """The scale as ``--scale`` takes it: ``1:5``, ``0.5:5:0.5`` or ``1,2,4``."""
        values = self.values
        if len(values) == 1:
            return "implicit"
        steps = np.diff(values)
        if np.allclose(steps, steps[0], rtol=1e-9, atol=0):
            step = "" if math.isclose(steps[0], 1.0) else f":{_number(steps[0])}"
            return f"{_number(values[0])}:{_number(values[-1])}{step}"
        return ",".join(_number(v) for v in values)

    def describe(self) -> str:
        """One phrase for reports: ``1, 2, 3, 4, 5 (K = 5, declared as 1:5)``, ``implicit (…)``."""
        if self.is_implicit:
            note = f"; {self.text}" if self.text else ""
            return f"implicit feedback (every interaction counts as a 1, K = 1{note})"
        shown = ", ".join(_number(v) for v in self.values)
        if len(self.values) > 12:
            shown = (
                f"{_number(self.values[0])} to {_number(self.values[-1])} by {_number(self.values[1] - self.values[0])}"
            )
        where = {
            "declared": f"declared as {self.text or self.spec()}",
            "release": f"the scale of {self.text}" if self.text else "the release's scale",
            "inferred": "inferred from the data" + (f", {self.text}" if self.text else ""),
            "given": "given",
            "implicit": "implicit",
        }[self.origin]
        return f"{shown} (K = {self.n_levels}, {where})"


def _common_step(distinct: np.ndarray) -> float | None:
    """The largest step of a regular grid holding every value (0.5 for 0.5, 3.5, 5), or None.

    Values are taken to at most 6 decimals; the step is the greatest common divisor of their
    differences. None when the values have more decimals than that.
    """
    for decimals in range(7):
        scaled = distinct * 10**decimals
        whole = np.round(scaled)
        if np.allclose(scaled, whole, rtol=0, atol=1e-6):
            gaps = np.diff(whole).astype(np.int64)
            return float(np.gcd.reduce(gaps)) / 10**decimals
    return None


def _grid(low: float, step: float, n_levels: int) -> tuple[float, ...]:
    """``low, low + step, …`` (``n_levels`` values), rounded so 0.1 * 3 reads as 0.3."""
    return tuple(float(round(low + k * step, 12)) for k in range(n_levels))
