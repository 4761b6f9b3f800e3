"""The RBM's mathematics as pure tensor functions.

Notation: visible ``v`` (B, D), hidden ``h`` (B, H), weights ``W`` (D, H), visible bias ``b`` (D,),
hidden bias ``c`` (H,). The energy is ``E(v, h) = -b·v - c·h - vᵀ W h``. Every function takes its
parameters explicitly; ``mask`` is an optional per-group boolean (B, G) marking present groups,
and ``units`` is the visible layer: its blocks and groups (see ``recsys_rbm.rbm.units``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recsys_rbm.rbm.rng import RandomSource, bernoulli
from recsys_rbm.rbm.units import VisibleLayer


def apply_mask(v: torch.Tensor, mask: torch.Tensor | None, units: VisibleLayer) -> torch.Tensor:
    """Zero the entries of masked groups so they cannot influence anything; ``(B, D)``."""
    entry_mask = units.expand_mask(mask, v.dtype)
    return v if entry_mask is None else v * entry_mask


def hidden_preactivation(v: torch.Tensor, weights: torch.Tensor, hidden_bias: torch.Tensor) -> torch.Tensor:
    """``c + vᵀ W``: the input to each hidden unit; ``(B, D) -> (B, H)``."""
    return torch.addmm(hidden_bias, v, weights)


def visible_preactivation(h: torch.Tensor, weights: torch.Tensor, visible_bias: torch.Tensor) -> torch.Tensor:
    """``b + W h``: the input to each visible entry; ``(B, H) -> (B, D)``."""
    return torch.addmm(visible_bias, h, weights.T)


def energy(
    v: torch.Tensor,
    h: torch.Tensor,
    weights: torch.Tensor,
    visible_bias: torch.Tensor,
    hidden_bias: torch.Tensor,
) -> torch.Tensor:
    """``E(v, h) = -b·v - c·h - vᵀ W h``; ``(B, D), (B, H) -> (B,)``. Masked groups must be zero."""
    return -(v @ visible_bias) - (h @ hidden_bias) - ((v @ weights) * h).sum(-1)


def free_energy(
    v: torch.Tensor,
    weights: torch.Tensor,
    visible_bias: torch.Tensor,
    hidden_bias: torch.Tensor,
    units: VisibleLayer,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F(v) = -log Σ_h exp(-E(v, h)) = -b·v - Σ_j softplus(c_j + vᵀ W_j)``; ``(B, D) -> (B,)``."""
    v = apply_mask(v, mask, units)
    return -(v @ visible_bias) - F.softplus(hidden_preactivation(v, weights, hidden_bias)).sum(-1)


def hidden_free_energy(
    h: torch.Tensor,
    weights: torch.Tensor,
    visible_bias: torch.Tensor,
    hidden_bias: torch.Tensor,
    units: VisibleLayer,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F(h) = -log Σ_v exp(-E(v, h)) = -c·h - Σ_groups log Σ_{v_g} exp(v_g·a_g)``, ``a = b + W h``.

    Sums over the present groups only; ``(B, H) -> (B,)``.
    """
    per_group = units.group_log_partition(visible_preactivation(h, weights, visible_bias))  # (B, G)
    if mask is not None:
        per_group = per_group * mask.to(per_group.dtype)
    return -(h @ hidden_bias) - per_group.sum(-1)


def hidden_probability(
    v: torch.Tensor,
    weights: torch.Tensor,
    hidden_bias: torch.Tensor,
    units: VisibleLayer,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``p(h_j = 1 | v) = sigmoid(c_j + vᵀ W_j)``; ``(B, D) -> (B, H)``."""
    v = apply_mask(v, mask, units)
    return torch.sigmoid(hidden_preactivation(v, weights, hidden_bias))


def visible_mean(
    h: torch.Tensor,
    weights: torch.Tensor,
    visible_bias: torch.Tensor,
    units: VisibleLayer,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``E[v | h]``: each block's mean (sigmoid, per-group softmax) of ``b + W h``; masked groups are 0."""
    return apply_mask(units.mean(visible_preactivation(h, weights, visible_bias)), mask, units)


def sample_hidden(probability: torch.Tensor, generator: RandomSource) -> torch.Tensor:
    """Binary states drawn with the given probabilities; ``(B, H) -> (B, H)``."""
    return bernoulli(probability, generator)


def sample_visible(
    h: torch.Tensor,
    weights: torch.Tensor,
    visible_bias: torch.Tensor,
    units: VisibleLayer,
    generator: RandomSource,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One draw of ``v ~ p(v | h)``; masked groups are never sampled (left at 0); ``(B, H) -> (B, D)``."""
    return apply_mask(units.sample(visible_preactivation(h, weights, visible_bias), generator), mask, units)


def sufficient_statistics(v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch means of ``v hᵀ``, ``v`` and ``h``: the terms of ``-∂F/∂θ``; shapes (D, H), (D,), (H,)."""
    n = v.shape[0]
    return (v.T @ h) / n, v.mean(0), h.mean(0)
