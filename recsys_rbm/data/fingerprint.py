"""Stable content hashes: of a set of ratings, and of data files (remembered between runs).

:func:`ratings_fingerprint` identifies what a model was trained on, whatever file or DataFrame it
came from. :func:`file_sha256` hashes files, remembering each result in a small JSON cache keyed
by the file's absolute path, size and modification time (``mtime_ns``), so a release checked once
is not read again to be checked again. The cache is plain JSON written atomically; one that
cannot be read is ignored and one that cannot be written is skipped (a read-only data folder
works, it is only checked every time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.io.atomic import atomic_write_text

CACHE_NAME = ".rbm-rec-hashes.json"  # in the data directory, beside the release folders
_CACHE_VERSION = 1


def _id_bytes(id_map: IdMap, inner: np.ndarray) -> bytes:
    """The raw id of each row, canonically: int64 little-endian for integer ids (as always).

    For text ids: a tag, the distinct ids used (sorted, as UTF-8 with int64 offsets) and each
    row's position among them; ids in the map but unused by these rows do not count.
    """
    if id_map.id_type == "int":
        return np.ascontiguousarray(id_map.to_raw(inner).astype("<i8")).tobytes()
    used, positions = np.unique(inner, return_inverse=True)
    arrays = IdMap(id_map.to_raw(used), id_map.kind).to_arrays("ids")
    return b"".join(
        (
            b"text-ids",
            np.int64(used.size).astype("<i8").tobytes(),
            arrays["ids_raw_offsets"].astype("<i8").tobytes(),
            arrays["ids_raw_utf8"].tobytes(),
            positions.astype("<i8").tobytes(),
        )
    )


def ratings_fingerprint(ratings: Ratings) -> str:
    """SHA-256 of the scale and the (raw user, raw item, rating) triples in stored order.

    Identifies a set of ratings independently of how it was stored (a generated dataset, a
    split, a CSV file or a DataFrame). For integer ids the bytes are those fingerprints have
    always had; text ids are tagged, so they never collide with integer ones.
    """
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ratings.rating_values.astype("<f8")).tobytes())
    digest.update(_id_bytes(ratings.user_ids, ratings.users))
    digest.update(_id_bytes(ratings.item_ids, ratings.items))
    digest.update(np.ascontiguousarray(ratings.values.astype("<f8")).tobytes())
    return digest.hexdigest()


def _read_cache(cache: Path) -> dict[str, dict[str, int | str]]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _hash_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def files_sha256(paths: Iterable[Path], cache: Path | None = None) -> dict[Path, str]:
    """SHA-256 of each file, taken from ``cache`` where the file's size and ``mtime_ns`` still match.

    The cache is updated (atomically) with what was computed; failing to write it is not an error.
    """
    entries = _read_cache(cache) if cache is not None else {}
    result: dict[Path, str] = {}
    changed = False
    for path in paths:
        status = path.stat()
        key = str(path.resolve())
        entry = entries.get(key)
        if (
            isinstance(entry, dict)
            and entry.get("size") == status.st_size
            and entry.get("mtime_ns") == status.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            result[path] = str(entry["sha256"])
            continue
        result[path] = _hash_file(path)
        entries[key] = {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "sha256": result[path]}
        changed = True
    if changed and cache is not None and _writable(cache.parent):
        with contextlib.suppress(OSError):  # could not write it after all: check every time instead
            text = json.dumps({"version": _CACHE_VERSION, "files": entries}, indent=1, sort_keys=True)
            atomic_write_text(cache, text + "\n")
    return result


def _writable(folder: Path) -> bool:
    """Whether to write into ``folder``: it must be writable, and not read-only by its mode bits.

    A folder without any write bit (``dr-xr-xr-x``) is read-only by intent, e.g. a shared copy of
    the datasets; its owner may be root, who could write anyway, but the cache stays out of it.
    """
    try:
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def file_sha256(path: Path, cache: Path | None = None) -> str:
    """SHA-256 of one file (see :func:`files_sha256`)."""
    return files_sha256([path], cache)[path]
