"""Cheap measures of how a model is doing: reconstruction error and mean free energy."""

from __future__ import annotations

import torch

from recsys_rbm.model import RBM


def reconstruction_error(rbm: RBM, v: torch.Tensor, batch_size: int = 10_000) -> float:
    """Mean over cases of ``Σ_i (v_i − E[v_i | p(h|v)])²``: squared error of a mean-field round trip."""
    total = torch.zeros((), dtype=torch.float64, device=v.device)
    for start in range(0, v.shape[0], batch_size):
        batch = v[start : start + batch_size]
        total += ((batch - rbm.reconstruct(batch)) ** 2).sum(dtype=torch.float64)
    return float(total) / max(1, v.shape[0])


def mean_free_energy(rbm: RBM, v: torch.Tensor, batch_size: int = 10_000) -> float:
    """Mean of ``F(v)`` over the rows of ``v``."""
    total = torch.zeros((), dtype=torch.float64, device=v.device)
    for start in range(0, v.shape[0], batch_size):
        total += rbm.free_energy(v[start : start + batch_size]).sum(dtype=torch.float64)
    return float(total) / max(1, v.shape[0])
