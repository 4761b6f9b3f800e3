"""Checkpoints: tensors in a safetensors file plus a JSON sidecar, written atomically, no pickle.

``model.safetensors`` holds the tensors; ``model.json`` beside it holds everything needed to
rebuild and describe the model without the training data (kind, configs, seed, epoch, metrics,
package version, data fingerprint) and the SHA-256 of the tensor file, so a sidecar that belongs
to another tensor file is caught.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from recsys_rbm import __version__
from recsys_rbm.atomic import atomic_path
from recsys_rbm.checkpoint_files import (
    FORMAT,
    FORMAT_VERSION,
    read_verified,
    sha256_of,
    sidecar_path,
    tensor_path,
)
from recsys_rbm.errors import CheckpointError
from recsys_rbm.model import RBM
from recsys_rbm.units import visible_units_from_json


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
            "tensors_sha256": sha256_of(tensor_temporary),
            "tensor_shapes": {name: list(t.shape) for name, t in cpu_tensors.items()},
            **metadata,
        }
        sidecar_temporary.write_text(json.dumps(sidecar, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    return target


def load_checkpoint(
    path: str | Path, expected_kind: str | None = None, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint; any problem is a one-line :class:`CheckpointError`."""
    return read_verified(path, expected_kind, lambda file: load_file(file, device=str(device)))


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
