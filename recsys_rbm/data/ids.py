"""Raw ids and inner indices: :class:`IdMap`, and how a column of ids gets its type.

Raw ids are what users type and files hold (MovieLens's ``196``, a shop's ``"alice"``); inner
indices are tensor rows ``0..n-1``. An :class:`IdMap` converts between them at every public
boundary. Raw ids are either all integers (int64) or all text (a NumPy unicode array), never a
mix, and are kept as given: ``"042"`` stays ``"042"``, ``196`` stays ``196``.

A column of ids is typed by :func:`typed_ids`: integers stay integers; text whose every value is
a canonical integer (``"196"``, ``"-3"``, not ``"042"`` or ``"+5"``, which would not survive a
round trip) becomes integers, so the same ids read from a CSV file or from a DataFrame are the
same ids; any other text keeps the whole column as text.

Serialisation for checkpoints (no pickle, no torch; safetensors holds these dtypes):

- integer ids: ``{"<prefix>_raw_ids": int64 (n,)}``: the name checkpoints have always used;
- text ids: ``{"<prefix>_raw_utf8": uint8 (total bytes,), "<prefix>_raw_offsets": int64 (n + 1,)}``:
  id ``i`` is ``utf8[offsets[i]:offsets[i + 1]].decode("utf-8")``.

:meth:`IdMap.to_arrays` / :meth:`IdMap.from_arrays` write and read these; :meth:`IdMap.to_json` /
:meth:`IdMap.from_json` give the same content as plain JSON for a sidecar.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from recsys_rbm.errors import UnknownIdError

IdType = Literal["int", "str"]

CANONICAL_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")  # text that round-trips through int()
_INT64_DIGITS = 18  # a canonical integer of at most 18 digits always fits int64


def is_canonical_integer(text: str) -> bool:
    """Whether ``text`` is an integer written as ``str(int(text))`` would write it, within int64."""
    return bool(CANONICAL_INTEGER.fullmatch(text)) and len(text.lstrip("-")) <= _INT64_DIGITS


def typed_ids(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """One column of raw ids as int64 (all integers, or text that is all canonical integers) or unicode text.

    Raises :class:`ValueError` for a mix of integers and text objects, booleans, floats that
    are not whole numbers, or anything else that is neither.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise ValueError("ids must be integers or text, not fractional numbers")
        return array.astype(np.int64)
    if array.dtype.kind == "U":
        return _text_ids(array)
    if array.dtype.kind == "O":
        kinds = {type(value) for value in array.tolist()}
        if kinds <= {int} or kinds <= {int, np.int64}:
            return array.astype(np.int64)
        if kinds <= {str, np.str_}:
            return _text_ids(array.astype(str))
        raise ValueError(f"ids must be all integers or all text, found {', '.join(sorted(k.__name__ for k in kinds))}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    raise ValueError(f"ids must be integers or text, not {array.dtype}")


def _text_ids(array: np.ndarray) -> np.ndarray:
    """Unicode ids, as integers when every one is a canonical integer."""
    if array.size and all(is_canonical_integer(text) for text in np.unique(array).tolist()):
        return array.astype(np.int64)
    return array


def id_type_of(raw_ids: np.ndarray) -> IdType:
    return "int" if raw_ids.dtype.kind in "iu" else "str"


def describe_id(value: Any) -> str:
    """An id as messages show it: ``196`` or ``'alice'`` (quoted, so ``'042'`` and ``42`` differ)."""
    if isinstance(value, (str, np.str_)):
        return repr(str(value))
    return str(value)


@dataclass(frozen=True)
class IdMap:
    """Raw id ↔ inner index: ``raw_ids[i]`` is the raw id of inner index ``i``, sorted ascending.

    ``raw_ids`` is int64 for integer ids, a NumPy unicode array for text ids (sorted by code
    point); ``kind`` ("user", "item", "movie") names them in messages.
    """

    raw_ids: np.ndarray  # (n,) int64 or unicode, sorted, unique
    kind: str = "id"

    def __post_init__(self) -> None:
        raw = np.asarray(self.raw_ids)
        if raw.dtype.kind in "iu":
            raw = raw.astype(np.int64, copy=False)
        elif raw.dtype.kind == "O" and all(isinstance(value, str) for value in raw.tolist()):
            raw = raw.astype(str)
        elif raw.size == 0:
            raw = np.zeros(0, dtype=np.int64)
        elif raw.dtype.kind != "U":
            raise ValueError(f"raw ids must be int64 or text, got {raw.dtype}")
        if raw.ndim != 1:
            raise ValueError(f"raw ids must be one-dimensional, got shape {raw.shape}")
        if raw.size > 1 and not bool(np.all(raw[1:] > raw[:-1])):
            raise ValueError("raw ids must be sorted ascending and unique; build the map with IdMap.from_raw")
        object.__setattr__(self, "raw_ids", raw)

    @classmethod
    def from_raw(cls, raw: Sequence[Any] | np.ndarray, kind: str = "id") -> IdMap:
        """The map of the distinct ids in ``raw`` (typed by :func:`typed_ids`)."""
        return cls(np.unique(typed_ids(raw)), kind)

    @property
    def id_type(self) -> IdType:
        """``"int"`` or ``"str"``."""
        return id_type_of(self.raw_ids)

    def __len__(self) -> int:
        return int(self.raw_ids.shape[0])

    def _as_own_type(self, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        """``raw`` converted to this map's id type, and where that was possible (same shape).

        Lookups are forgiving about how an id arrives, not about what it is: in an integer map
        the text ``"42"`` is looked up as 42 (a canonical integer only: ``"042"`` is no integer
        id); in a text map the integer 42 is looked up as ``"42"``.
        """
        array = np.asarray(raw)
        if self.id_type == "int":
            if array.dtype.kind in "iu":
                return array.astype(np.int64, copy=False), np.ones(array.shape, dtype=bool)
            if array.dtype.kind == "f":
                whole = np.isfinite(array) & (array == np.round(np.nan_to_num(array)))
                return np.where(whole, np.nan_to_num(array), 0).astype(np.int64), whole
            flat = array.reshape(-1).tolist()
            valid = [
                (isinstance(v, (int, np.integer)) and not isinstance(v, bool))
                or (isinstance(v, str) and is_canonical_integer(v))
                for v in flat
            ]
            values = [int(v) if ok else 0 for v, ok in zip(flat, valid, strict=True)]
            shape = array.shape
            return np.asarray(values, dtype=np.int64).reshape(shape), np.asarray(valid, dtype=bool).reshape(shape)
        if array.dtype.kind == "U":
            return array, np.ones(array.shape, dtype=bool)
        if array.dtype.kind in "iu":
            return array.astype(str), np.ones(array.shape, dtype=bool)
        flat = array.reshape(-1).tolist()
        valid = [isinstance(v, str) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)) for v in flat]
        values = [str(v) if ok else "" for v, ok in zip(flat, valid, strict=True)]
        return np.asarray(values, dtype=str).reshape(array.shape), np.asarray(valid, dtype=bool).reshape(array.shape)

    def _positions(self, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        """(inner index where found, found mask), both shaped like ``raw``."""
        values, valid = self._as_own_type(raw)
        if len(self) == 0:
            return np.zeros(values.shape, dtype=np.int64), np.zeros(values.shape, dtype=bool)
        position = np.searchsorted(self.raw_ids, values).clip(0, len(self) - 1).astype(np.int64)
        return position, valid & (self.raw_ids[position] == values)

    def contains(self, raw: Any) -> np.ndarray:
        """Boolean mask of which raw ids are known (an id of the other type is unknown, not an error)."""
        return self._positions(raw)[1]

    def to_inner(self, raw: Any) -> np.ndarray:
        """Inner indices (int64) of known raw ids; :class:`UnknownIdError` names the first unknown one."""
        position, known = self._positions(raw)
        if not known.all():
            first = np.asarray(raw).reshape(-1)[int(np.flatnonzero(~known.reshape(-1))[0])]
            raise UnknownIdError(self.unknown_message(first))
        return position

    def to_raw(self, inner: Any) -> np.ndarray:
        """Raw ids of inner indices."""
        return self.raw_ids[np.asarray(inner, dtype=np.int64)]

    def unknown_message(self, raw: Any) -> str:
        """``unknown user 999; known user ids range over 1..943 (943 of them)``, or with examples for text ids."""
        shown = describe_id(raw.item() if isinstance(raw, np.generic) else raw)
        if len(self) == 0:
            return f"unknown {self.kind} {shown}: the model knows no {self.kind}s"
        if self.id_type == "int":
            low, high = int(self.raw_ids[0]), int(self.raw_ids[-1])
            return (
                f"unknown {self.kind} {shown}; known {self.kind} ids range over {low}..{high} ({len(self)} of them); "
                "give one of those"
            )
        examples = ", ".join(repr(str(value)) for value in self.raw_ids[:3].tolist())
        return (
            f"unknown {self.kind} {shown}; the {len(self):,} known {self.kind} ids are text, e.g. {examples}; "
            "give one of those"
        )

    # --- serialisation --------------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays for a checkpoint: ``<prefix>_raw_ids`` (int64), or ``<prefix>_raw_utf8`` + ``_raw_offsets``."""
        if self.id_type == "int":
            return {f"{prefix}_raw_ids": self.raw_ids.copy()}
        encoded = [text.encode("utf-8") for text in self.raw_ids.tolist()]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        utf8 = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return {f"{prefix}_raw_utf8": utf8, f"{prefix}_raw_offsets": offsets}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], prefix: str, kind: str = "id") -> IdMap:
        """The map written by :meth:`to_arrays` (arrays may be NumPy arrays or anything ``np.asarray`` takes).

        Raises :class:`KeyError` when neither form is there and :class:`ValueError` when the
        arrays are malformed; readers turn both into their own one-line error.
        """
        if f"{prefix}_raw_ids" in arrays:
            return cls(np.asarray(arrays[f"{prefix}_raw_ids"]).astype(np.int64), kind)
        utf8 = np.asarray(arrays[f"{prefix}_raw_utf8"], dtype=np.uint8)
        offsets = np.asarray(arrays[f"{prefix}_raw_offsets"]).astype(np.int64)
        if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != utf8.size:
            raise ValueError(f"{prefix} id offsets do not fit its {utf8.size} bytes")
        if np.any(np.diff(offsets) < 0):
            raise ValueError(f"{prefix} id offsets are not ascending")
        data = utf8.tobytes()
        texts = [data[start:end].decode("utf-8") for start, end in itertools.pairwise(offsets.tolist())]
        return cls(np.asarray(texts, dtype=str) if texts else np.zeros(0, dtype=str), kind)

    def to_json(self) -> dict[str, Any]:
        """``{"type": "int" | "str", "ids": [...]}``: JSON keeps integers and text apart."""
        return {"type": self.id_type, "ids": self.raw_ids.tolist()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], kind: str = "id") -> IdMap:
        ids = list(data["ids"])
        if data.get("type") == "str":
            if not all(isinstance(value, str) for value in ids):
                raise ValueError("a text id map holds a non-text id")
            return cls(np.asarray(ids, dtype=str) if ids else np.zeros(0, dtype=str), kind)
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in ids):
            raise ValueError("an integer id map holds a non-integer id")
        return cls(np.asarray(ids, dtype=np.int64), kind)


def ids_from_json_list(values: Sequence[Any]) -> np.ndarray:
    """A JSON list of ids (all ints or all strings; JSON keeps the two apart) as int64 or unicode."""
    values = list(values)
    if all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(value, str) for value in values):
        return np.asarray(values, dtype=str)
    raise ValueError("ids must be all integers or all text")


def index_ids(raw: np.ndarray, kind: str) -> tuple[IdMap, np.ndarray]:
    """The map of the distinct ids in ``raw`` (int64 or unicode) and each entry's inner index.

    O(N) with a lookup table for integer ids in a compact range (MovieLens's), a sort otherwise.
    """
    if raw.size == 0:
        return IdMap(np.zeros(0, dtype=np.int64), kind), np.zeros(0, dtype=np.int64)
    if raw.dtype.kind in "iu":
        raw = raw.astype(np.int64, copy=False)
        low, high = int(raw.min()), int(raw.max())
        span = high - low + 1
        if span <= max(4 * raw.size, 1 << 20):
            present = np.zeros(span, dtype=bool)
            present[raw - low] = True
            lookup = np.cumsum(present, dtype=np.int64) - 1
            return IdMap(np.flatnonzero(present).astype(np.int64) + low, kind), lookup[raw - low]
    raw_ids, inner = np.unique(raw, return_inverse=True)
    return IdMap(raw_ids, kind), inner.astype(np.int64).reshape(-1)
