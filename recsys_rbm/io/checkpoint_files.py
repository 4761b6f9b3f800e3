"""The checkpoint file format, without torch: paths, the header's checks, verified reading.

A checkpoint is one safetensors file. Its header's ``__metadata__`` (a str -> str map, as
safetensors requires) holds four entries::

    format          "recsys_rbm.io.checkpoint"
    format_version  "2"
    metadata        the metadata as one JSON text: kind, configs, seed, metrics, package version,
                    tensor shapes, ... (whatever the writer passed, plus those fields)
    content_sha256  :func:`content_digest` of that JSON text and every tensor

The digest covers the metadata and the tensors together, so an edited title, a swapped tensor or
a flipped bit is caught, and since the file is replaced atomically (never edited in place) a
reader sees one whole file or the next, never a mix. :func:`read_verified` reads the header from
an open handle, lets ``load`` read the tensors (the one pass over the file) and hashes them in
memory; tensors that do not match that header are read again when the path has meanwhile been
replaced by a newer save, and reported as corruption only when it has not. The torch model
(``safetensors.torch``) and the torch-free scoring path (``safetensors.numpy``) share this code.

Format 1 (``name.safetensors`` plus a ``name.json`` sidecar holding the SHA-256 of the tensor
file only) is still read, with its own checks; it is never written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
from safetensors import SafetensorError

from recsys_rbm.errors import CheckpointError
from recsys_rbm.io.inputs import input_problem, open_regular, read_regular_bytes

FORMAT = "recsys_rbm.io.checkpoint"
FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1  # the two-file layout: tensors + JSON sidecar
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header
READ_ATTEMPTS = 5  # reads of a file that another process keeps replacing, before giving up

# safetensors' names for the element types (the digest names dtypes the same way in every framework)
DTYPE_CODES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "uint16": "U16",
    "int16": "I16",
    "float16": "F16",
    "uint32": "U32",
    "int32": "I32",
    "float32": "F32",
    "uint64": "U64",
    "int64": "I64",
    "float64": "F64",
}

DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "U32": 4, "I32": 4, "F32": 4}
DTYPE_SIZES |= {"U64": 8, "I64": 8, "F64": 8}

# The metadata fields rbm-rec itself writes (a caller's extra metadata may not override them) and what each
# holds: a file that claims the format but holds something else here was not written by rbm-rec. Absent
# fields are allowed (old models lack some); what callers add (dataset, split, metrics …) is theirs.
_WHOLE = (int,)
_NUMBER = (int, float)
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": ((str,), "text"),
    "name": ((str,), "text"),
    "mode": ((str,), "text"),
    "model": ((str,), "text"),
    "n_users": (_WHOLE, "a whole number"),
    "n_items": (_WHOLE, "a whole number"),
    "n_hidden": (_WHOLE, "a whole number"),
    "n_levels": (_WHOLE, "a whole number"),
    "n_train_ratings": (_WHOLE, "a whole number"),
    "seed": (_WHOLE, "a whole number"),
    "epoch": (_WHOLE, "a whole number"),
    "best_epoch": ((*_WHOLE, type(None)), "a whole number or null"),
    "best_validation": ((*_NUMBER, type(None)), "a number or null"),
    "fit_seconds": ((*_NUMBER, type(None)), "a number or null"),
    "like_threshold": ((*_NUMBER, type(None)), "a number or null"),
    "rating_values": ((list,), "a list of numbers"),
    "history": ((list,), "a list"),
    "config": ((dict,), "a table"),
    "train_config": ((dict,), "a table"),
    "visible_units": ((dict,), "a table"),
    "tensor_shapes": ((dict,), "a table"),
}

T = TypeVar("T")


def tensor_path(path: str | Path) -> Path:
    """The checkpoint file for a path given with or without its ``.safetensors`` suffix."""
    path = Path(path)
    if path.name in ("", ".", ".."):  # "", ".", "/": a folder, no file name to give the suffix to
        raise CheckpointError(f"model path {str(path)!r} names no file; give a file path such as model.safetensors")
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def model_file(path: str | Path) -> Path:
    """The file to read for a model path: as :func:`tensor_path`, except that a path given without the
    suffix names itself when only it exists (``-m mymodel`` reads ``mymodel``, or a link, pipe or device
    of that name, which is then reported as what it is)."""
    given, suffixed = Path(path), tensor_path(path)
    if given != suffixed and (given.exists() or given.is_symlink()) and not suffixed.exists():
        return given
    return suffixed


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a format-1 checkpoint (format 2 has none)."""
    return tensor_path(path).with_suffix(".json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- writing (the torch side calls these, then writes with safetensors) ---------------------------


def content_digest(metadata_text: str, arrays: Mapping[str, Any]) -> str:
    """SHA-256 over the metadata JSON text and every tensor, in name order.

    Fed to the hash, each length-prefixed (8 bytes, little-endian): the tag
    ``recsys_rbm.io.checkpoint/2``, the UTF-8 metadata text, then per tensor the JSON
    ``[name, dtype code, shape, byte count]`` followed by its raw little-endian bytes. ``arrays``
    are NumPy arrays or anything ``numpy.asarray`` takes without copying (CPU torch tensors).
    """
    digest = hashlib.sha256()

    def feed(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    feed(f"{FORMAT}/{FORMAT_VERSION}".encode())
    feed(metadata_text.encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(np.asarray(arrays[name]))
        code = DTYPE_CODES.get(array.dtype.name)
        if code is None:
            raise CheckpointError(f"tensor {name!r} has dtype {array.dtype}, which checkpoints do not store")
        feed(json.dumps([name, code, list(array.shape), array.nbytes]).encode("utf-8"))
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def header_metadata(metadata: Mapping[str, Any], arrays: Mapping[str, Any], package_version: str) -> dict[str, str]:
    """The ``__metadata__`` map of a format-2 checkpoint of ``arrays`` described by ``metadata``."""
    shapes = {name: list(np.shape(array)) for name, array in arrays.items()}
    record = {
        **metadata,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": package_version,
        "tensor_shapes": shapes,
    }
    text = json.dumps(record, sort_keys=True, default=str)
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "metadata": text,
        "content_sha256": content_digest(text, arrays),
    }


# --- reading ------------------------------------------------------------------------------------


MODEL_ADVICE = "pass the right --model path"  # how a command is given its model; `info` takes it as an argument


def _missing(target: Path, advice: str = MODEL_ADVICE) -> CheckpointError:
    return CheckpointError(f"model file {target} does not exist; train one first or {advice}")


def _open_model(target: Path, advice: str = MODEL_ADVICE) -> BinaryIO:
    """The model file opened for reading, never blocking: a missing file, a folder, a pipe or a device is one line.

    ``advice`` says how to give the command another model (its ``--model`` option, by default)."""
    problem = input_problem(target)
    if problem is not None and problem.kind == "missing":
        raise _missing(target, advice)
    if problem is not None and problem.kind == "folder":
        raise CheckpointError(f"{target} is a folder, not a model file; pass the model's .safetensors path")
    if problem is not None:
        raise CheckpointError(f"model file {target} {problem.text}; {problem.advice}, or {advice}")
    try:
        return open_regular(target, "model file", CheckpointError)
    except CheckpointError:
        if not target.exists():  # replaced or removed meanwhile
            raise _missing(target, advice) from None
        raise


def _read_header(handle: BinaryIO, target: Path) -> dict[str, Any]:
    """The JSON header of an open safetensors file (tensor table and ``__metadata__``), its layout checked
    against the file's size (see :func:`_check_layout`)."""
    size = os.fstat(handle.fileno()).st_size
    prefix = handle.read(8)
    length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
    if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
        raise CheckpointError(
            f"{target} is not a safetensors model file ({size} bytes, no valid header); "
            "pass a model written by rbm-rec, or retrain it"
        )
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(f"{target} has a corrupt safetensors header; retrain it or restore a good copy")
    _check_layout(target, header, size - 8 - length)
    return header


def _check_layout(target: Path, header: Mapping[str, Any], data_bytes: int) -> None:
    """Every tensor's dtype, shape and byte range agree, the ranges tile the data exactly, and the file holds
    all of it: a file cut short (a full disk, an interrupted copy) or padded is caught from the header alone."""
    ranges = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        entry = entry if isinstance(entry, dict) else {}
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise CheckpointError(
                f"{target}: tensor {name!r} has dtype {dtype!r}, which rbm-rec models never hold; "
                "pass a model written by rbm-rec, or retrain it"
            )
        whole = [value for value in (shape or []) if isinstance(value, int) and value >= 0]
        bounds = [value for value in (offsets or []) if isinstance(value, int) and value >= 0]
        if not isinstance(shape, list) or len(whole) != len(shape) or len(bounds) != 2 or bounds[0] > bounds[1]:
            raise CheckpointError(f"{target} has a corrupt safetensors header; retrain it or restore a good copy")
        if bounds[1] - bounds[0] != DTYPE_SIZES[dtype] * int(np.prod(shape, dtype=np.int64)):
            raise CheckpointError(
                f"{target}: tensor {name!r} takes {bounds[1] - bounds[0]} bytes, not the {DTYPE_SIZES[dtype]} × "
                f"{shape} its header gives; the file is corrupt: retrain it or restore a good copy"
            )
        ranges.append((bounds[0], bounds[1]))
    ranges.sort()
    expected = ranges[-1][1] if ranges else 0
    if expected > data_bytes:
        raise CheckpointError(
            f"{target} is truncated: its header describes {expected:,} bytes of tensors but only {data_bytes:,} "
            "follow it (the file was cut short: a full disk or an interrupted copy); retrain it or restore a good copy"
        )
    tiled = all(end == start for (_, end), (start, _) in itertools.pairwise(ranges))
    if expected < data_bytes or not tiled or (ranges and ranges[0][0] != 0):
        raise CheckpointError(
            f"{target} is corrupt: its tensors do not fill the file as its header says; "
            "retrain it or restore a good copy"
        )


def _checked_metadata(target: Path, stored: Mapping[str, Any], expected_kind: str | None) -> dict[str, Any]:
    """The metadata of a format-2 header's ``__metadata__``, checked for version and kind."""
    version = stored.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{target} has checkpoint format {version}, but this version of recsys_rbm reads formats "
            f"{LEGACY_FORMAT_VERSION} and {FORMAT_VERSION}; upgrade recsys_rbm or retrain the model"
        )
    try:
        metadata = json.loads(stored["metadata"])
    except (KeyError, TypeError, json.JSONDecodeError):
        metadata = None
    if not isinstance(metadata, dict) or not isinstance(stored.get("content_sha256"), str):
        raise CheckpointError(f"{target} has corrupt recsys_rbm metadata; retrain it or restore a good copy")
    metadata["content_sha256"] = stored["content_sha256"]
    _check_fields(target, metadata)
    _check_kind(target, metadata, expected_kind)
    return metadata


def _check_fields(target: Path, metadata: Mapping[str, Any]) -> None:
    """The metadata fields the commands read hold what rbm-rec writes there (see :data:`FIELD_TYPES`)."""
    for name, (types, expected) in FIELD_TYPES.items():
        if name not in metadata:
            continue
        value = metadata[name]
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if name == "rating_values" and not wrong:
            wrong = not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if wrong:
            shown = json.dumps(value, default=str)
            shown = shown if len(shown) <= 40 else shown[:40] + "…"
            raise CheckpointError(
                f"{target} claims to be an rbm-rec model, but its metadata field {name!r} holds {shown}, not "
                f"{expected}: it was not written by rbm-rec; pass a model written by 'rbm-rec train', or retrain it"
            )


def _check_kind(target: Path, metadata: Mapping[str, Any], expected_kind: str | None) -> None:
    if expected_kind is not None and metadata.get("kind") != expected_kind:
        raise CheckpointError(
            f"{target} holds a {metadata.get('kind')!r} model, but a {expected_kind!r} model is needed here; "
            "pass the right --model path"
        )


def _ours(header: Mapping[str, Any]) -> Mapping[str, Any] | None:
    stored = header.get("__metadata__")
    return stored if isinstance(stored, dict) and stored.get("format") == FORMAT else None


def read_metadata(path: str | Path, expected_kind: str | None = None) -> dict[str, Any]:
    """A checkpoint's metadata, checked for format, version and kind; the tensors are not read or verified."""
    target = model_file(path)
    with _open_model(target) as handle:
        stored = _ours(_read_header(handle, target))
    if stored is None:
        return _legacy_metadata(target, expected_kind)
    return _checked_metadata(target, stored, expected_kind)


def read_verified(
    path: str | Path, expected_kind: str | None, load: Callable[[str], dict[str, T]], *, advice: str = MODEL_ADVICE
) -> tuple[dict[str, T], dict[str, Any]]:
    """Verify a checkpoint (format, version, kind, the digest of metadata and tensors, shapes) and
    read its tensors with ``load`` (a function of the file's path returning ``{name: array}``).

    The header is read from an open handle; tensors that do not match it are read again if the
    path was meanwhile replaced (another process saving it: ``load`` opened the newer file), and
    are corruption only if it was not. ``advice`` ends the line for a missing or unreadable file: how
    the command is given another model.
    """
    target = model_file(path)
    for _ in range(READ_ATTEMPTS):
        try:
            with _open_model(target, advice) as handle:
                stored = _ours(_read_header(handle, target))
                if stored is None:
                    return _read_legacy(target, expected_kind, load)
                metadata = _checked_metadata(target, stored, expected_kind)
                try:
                    tensors = load(str(target))
                except (SafetensorError, OSError, ValueError) as error:
                    if not _still_names(target, handle):
                        continue  # load opened a file saved after ours: read again
                    message = " ".join(str(error).split())
                    raise CheckpointError(
                        f"{target} is not a readable safetensors file ({message}); retrain it"
                    ) from None
                # Tensors that match the header read from our handle are ours (or equal to them) even
                # if the path has been replaced since; a mismatch is corruption only if it has not.
                matches = content_digest(stored["metadata"], tensors) == stored["content_sha256"]
                if not matches and not _still_names(target, handle):
                    continue  # load opened a file saved after ours: read again
        except FileNotFoundError:
            raise _missing(target, advice) from None
        if not matches:
            raise CheckpointError(
                f"{target} is corrupt: its content does not match the checksum in its header "
                "(damaged or edited); retrain it or restore a good copy"
            )
        _check_shapes(target, tensors, metadata)
        return tensors, metadata
    raise CheckpointError(
        f"{target} was replaced {READ_ATTEMPTS} times while being read (another process keeps saving it); "
        "try again when that run has finished"
    )


def _still_names(target: Path, handle: BinaryIO) -> bool:
    """Whether ``target`` still names the file open as ``handle``.

    While the handle is open its inode cannot be reused, and files are replaced, never edited in
    place, so the same (device, inode) now means no other file was renamed into place since the
    handle was opened.
    """
    try:
        now = os.stat(target)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _check_shapes(target: Path, tensors: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
    shapes = {name: list(np.shape(t)) for name, t in tensors.items()}
    if shapes != metadata.get("tensor_shapes"):
        raise CheckpointError(f"{target}: tensor shapes {shapes} differ from those its metadata records; retrain it")


# --- format 1: tensors plus a JSON sidecar ---------------------------------------------------------


def _legacy_metadata(target: Path, expected_kind: str | None) -> dict[str, Any]:
    """The sidecar of a format-1 checkpoint, checked for format, version and kind."""
    sidecar = sidecar_path(target)
    if not sidecar.exists():
        raise CheckpointError(
            f"model file {target} carries no recsys_rbm metadata, and no {sidecar.name} (the metadata of an "
            "old two-file checkpoint) lies beside it; copy both files together, or retrain the model"
        )
    try:
        metadata = json.loads(read_regular_bytes(sidecar, "metadata file", CheckpointError).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"metadata file {sidecar} is corrupt ({error}); retrain or restore it") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar} is not a recsys_rbm model metadata file; retrain the model")
    if metadata.get("format_version") != LEGACY_FORMAT_VERSION:
        raise CheckpointError(
            f"{target} has checkpoint format {metadata.get('format_version')}, but this version of recsys_rbm "
            f"reads formats {LEGACY_FORMAT_VERSION} and {FORMAT_VERSION}; upgrade recsys_rbm or retrain the model"
        )
    _check_fields(target, metadata)
    _check_kind(target, metadata, expected_kind)
    return metadata


def _read_legacy(
    target: Path, expected_kind: str | None, load: Callable[[str], dict[str, T]]
) -> tuple[dict[str, T], dict[str, Any]]:
    """Format 1: the sidecar's SHA-256 of the tensor file, then the tensors. Its hash does not cover
    the metadata, and the two files are not replaced together; retraining writes format 2."""
    metadata = _legacy_metadata(target, expected_kind)
    if sha256_of(target) != metadata.get("tensors_sha256"):
        raise CheckpointError(
            f"{target} does not match its metadata file (corrupt or mixed up with another model); retrain it"
        )
    try:
        tensors = load(str(target))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{target} is not a readable safetensors file ({error}); retrain it") from None
    _check_shapes(target, tensors, metadata)
    return tensors, metadata
