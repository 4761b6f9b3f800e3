"""Test helpers that take checkpoint files apart: edit their metadata, write the old two-file format."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from recsys_rbm.io.checkpoint_files import FORMAT, content_digest, sha256_of, sidecar_path


def header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def stored_metadata(path: Path) -> dict[str, Any]:
    """The metadata JSON inside a format-2 checkpoint, exactly as stored (no checks)."""
    return json.loads(header(path)["__metadata__"]["metadata"])


def rewrite_metadata(path: Path, change: Callable[[dict[str, Any]], None], *, rehash: bool) -> None:
    """Edit the metadata inside a checkpoint in place; ``rehash`` also recomputes its digest (a forgery
    that verifies), else the stored digest is kept (an edit that must be caught)."""
    arrays = load_file(str(path))
    stored = header(path)["__metadata__"]
    metadata = json.loads(stored["metadata"])
    change(metadata)
    text = json.dumps(metadata, sort_keys=True)
    digest = content_digest(text, arrays) if rehash else stored["content_sha256"]
    save_file(arrays, str(path), metadata={**stored, "metadata": text, "content_sha256": digest})


def write_legacy_checkpoint(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> Path:
    """A format-1 checkpoint as the previous version wrote it: tensors, plus a JSON sidecar holding the
    tensor file's SHA-256 and the shapes."""
    save_file(arrays, str(path))
    sidecar = {
        "format": FORMAT,
        "format_version": 1,
        "package_version": "0.1.0",
        "tensors_sha256": sha256_of(path),
        "tensor_shapes": {name: list(a.shape) for name, a in arrays.items()},
        **metadata,
    }
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


def to_legacy(path: Path, destination: Path) -> Path:
    """The same model as a format-1 checkpoint (tensors + sidecar) at ``destination``."""
    metadata = stored_metadata(path)
    for key in ("format", "format_version", "package_version", "tensor_shapes"):
        metadata.pop(key, None)
    return write_legacy_checkpoint(destination, load_file(str(path)), metadata)
