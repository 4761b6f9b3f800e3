"""Checkpoints: tensors in a safetensors file plus a JSON sidecar, written atomically, no pickle.

``model.safetensors`` holds the tensors; ``model.json`` beside it holds everything needed to
rebuild and describe the model without the training data (kind, configs, seed, epoch, metrics,
package version, data fingerprint) and the SHA-256 of the tensor file, so a sidecar that belongs
to another tensor file is caught.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from recsys_rbm import __version__
from recsys_rbm.atomic import atomic_path
from recsys_rbm.errors import CheckpointError
from recsys_rbm.model import RBM
from recsys_rbm.units import visible_units_from_json

FORMAT = "recsys_rbm.checkpoint"
FORMAT_VERSION = 1


def tensor_path(path: str | Path) -> Path:
    """The tensor file for a checkpoint path given with or without its ``.safetensors`` suffix."""
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def sidecar_path(path: str | Path) -> Path:
    return tensor_path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``metadata`` atomically; returns the tensor file's path."""
    target = tensor_path(path)
    cpu_tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    # Both files are written completely to temporary names first, then renamed into place one
    # after the other, so a failure while writing leaves the previous checkpoint intact.
    with atomic_path(target) as tensor_temporary, atomic_path(sidecar_path(target)) as sidecar_temporary:
        save_file(cpu_tensors, str(tensor_temporary))
        sidecar = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "tensors_sha256": _sha256(tensor_temporary),
            "tensor_shapes": {name: list(t.shape) for name, t in cpu_tensors.items()},
            **metadata,
        }
        sidecar_temporary.write_text(json.dumps(sidecar, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    return target


def load_checkpoint(
    path: str | Path, expected_kind: str | None = None, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint; any problem is a one-line :class:`CheckpointError`."""
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
    if _sha256(target) != metadata.get("tensors_sha256"):
        raise CheckpointError(
            f"{target} does not match its metadata file (corrupt or mixed up with another model); retrain it"
        )
    try:
        tensors = load_file(str(target), device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{target} is not a readable safetensors file ({error}); retrain it") from None
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    if shapes != metadata.get("tensor_shapes"):
        raise CheckpointError(f"{target}: tensor shapes {shapes} differ from those its metadata records")
    return tensors, metadata


def save_rbm(
    path: str | Path,
    rbm: RBM,
    metadata: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save an RBM (plus optional extra tensors, e.g. optimiser state) with its metadata."""
    tensors = {**rbm.parameters(), **(extra_tensors or {})}
    return save_checkpoint(path, tensors, {"visible_units": rbm.units.to_json(), **metadata})


def load_rbm(
    path: str | Path, expected_kind: str | None = None, device: torch.device | str = "cpu"
) -> tuple[RBM, dict[str, Any], dict[str, torch.Tensor]]:
    """Rebuild an RBM from a checkpoint; returns the model, its metadata and any extra tensors."""
    tensors, metadata = load_checkpoint(path, expected_kind, device)
    try:
        units = visible_units_from_json(metadata["visible_units"])
        rbm = RBM(tensors.pop("weights"), tensors.pop("visible_bias"), tensors.pop("hidden_bias"), units)
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{tensor_path(path)} does not describe an RBM ({error}); retrain it") from None
    return rbm, metadata, tensors
