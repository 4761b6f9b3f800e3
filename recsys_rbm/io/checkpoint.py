"""Checkpoints: one safetensors file holding the tensors and the metadata, written atomically, no pickle.

The metadata (kind, configs, seed, epoch, metrics, package version, data fingerprint: everything
needed to rebuild and describe the model without the training data) lives in the file's header,
and one SHA-256 covers it and the tensors together; see :mod:`recsys_rbm.io.checkpoint_files` for the
layout. Old two-file checkpoints (a JSON sidecar beside the tensors) are still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from recsys_rbm import __version__
from recsys_rbm.errors import CheckpointError
from recsys_rbm.io.atomic import atomic_path
from recsys_rbm.io.checkpoint_files import (
    header_metadata,
    read_verified,
    sidecar_path,
    tensor_path,
)
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import visible_units_from_json

__all__ = ["load_checkpoint", "load_rbm", "save_checkpoint", "save_rbm", "sidecar_path", "tensor_path"]


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``metadata`` as one checkpoint file, atomically; returns its path.

    The file is written to a temporary name, flushed to disk and renamed into place, so a failure
    (or Ctrl-C) while writing leaves the previous file intact.
    """
    target = tensor_path(path)
    cpu_tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    header = header_metadata(metadata, cpu_tensors, __version__)
    with atomic_path(target) as temporary:
        save_file(cpu_tensors, str(temporary), metadata=header)
    return target


def load_checkpoint(
    path: str | Path, expected_kind: str | None = None, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint; any problem is a one-line :class:`CheckpointError`.

    The tensors are read and verified on the CPU, then moved to ``device``.
    """
    tensors, metadata = read_verified(path, expected_kind, lambda file: load_file(file, device="cpu"))
    if torch.device(device).type != "cpu":
        tensors = {name: t.to(device) for name, t in tensors.items()}
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
