"""The checkpoint file format, without torch: paths, the sidecar's checks, verified reading.

A checkpoint is ``name.safetensors`` (tensors) plus ``name.json`` (metadata, including the
SHA-256 and shapes of the tensors). :func:`read_verified` runs every check and hands the tensor
file to a loader, so the torch model (``safetensors.torch``) and the torch-free scoring path
(``safetensors.numpy``) verify checkpoints with the same code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError

from recsys_rbm.errors import CheckpointError

FORMAT = "recsys_rbm.checkpoint"
FORMAT_VERSION = 1

T = TypeVar("T")


def tensor_path(path: str | Path) -> Path:
    """The tensor file for a checkpoint path given with or without its ``.safetensors`` suffix."""
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def sidecar_path(path: str | Path) -> Path:
    return tensor_path(path).with_suffix(".json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(path: str | Path, expected_kind: str | None = None) -> dict[str, Any]:
    """The sidecar of a checkpoint, checked for format, version and kind (tensors not read)."""
    target, sidecar = tensor_path(path), sidecar_path(path)
    if not target.exists():
        raise CheckpointError(f"model file {target} does not exist; train one first or pass the right --model path")
    if not sidecar.exists():
        raise CheckpointError(f"model file {target} has no metadata file {sidecar.name} beside it; copy both files")
    try:
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"metadata file {sidecar} is corrupt ({error}); retrain or restore it") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar} is not a recsys_rbm model metadata file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{target} has checkpoint format {metadata.get('format_version')}, this version reads {FORMAT_VERSION}"
        )
    if expected_kind is not None and metadata.get("kind") != expected_kind:
        raise CheckpointError(
            f"{target} holds a {metadata.get('kind')!r} model, but a {expected_kind!r} model is needed here"
        )
    return metadata


def read_verified(
    path: str | Path, expected_kind: str | None, load: Callable[[str], dict[str, T]]
) -> tuple[dict[str, T], dict[str, Any]]:
    """Verify a checkpoint (sidecar, kind, SHA-256, shapes) and read its tensors with ``load``."""
    metadata = read_metadata(path, expected_kind)
    target = tensor_path(path)
    if sha256_of(target) != metadata.get("tensors_sha256"):
        raise CheckpointError(
            f"{target} does not match its metadata file (corrupt or mixed up with another model); retrain it"
        )
    try:
        tensors = load(str(target))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{target} is not a readable safetensors file ({error}); retrain it") from None
    shapes = {name: list(t.shape) for name, t in tensors.items()}  # type: ignore[attr-defined]
    if shapes != metadata.get("tensor_shapes"):
        raise CheckpointError(f"{target}: tensor shapes {shapes} differ from those its metadata records")
    return tensors, metadata
