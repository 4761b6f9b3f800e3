"""Cheap measures of how a model is doing: reconstruction error, mean free energy, the free-energy
gap between training and validation cases, and pseudo-log-likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BlockSlice


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


def free_energy_gap(rbm: RBM, train_subset: torch.Tensor, validation: torch.Tensor, batch_size: int = 10_000) -> float:
    """``mean F(validation) − mean F(train_subset)``: the overfitting monitor of Hinton's practical guide.

    ``log Z`` cancels in the difference, so it is the gap in mean log-likelihood (train minus
    validation) without needing ``Z``. Compare subsets of equal size drawn the same way; a gap that
    keeps growing means the model is fitting the training cases more than held-out ones.
    """
    return mean_free_energy(rbm, validation, batch_size) - mean_free_energy(rbm, train_subset, batch_size)


def pseudo_log_likelihood(
    rbm: RBM,
    v: torch.Tensor,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
    chunk_elements: int = 1 << 22,
) -> float:
    """Mean over cases of the total pseudo-log-likelihood ``Σ_g log p(v_g | v_−g)``, in nats.

    ``g`` runs over the visible groups (each Bernoulli unit, or each present softmax group):
    ``log p(v_g | v_−g) = −F(v) − log Σ_{v'_g} exp(−F(v with group g set to v'_g))``. Changing one
    group changes the hidden pre-activation ``x = c + vᵀW`` by one rank-1 term (``±W_i`` for a
    Bernoulli flip, ``W_gk − W_g,current`` for a softmax level), so every conditional costs
    ``O(K·H)`` given ``x``: ``O(B·G·K·H)`` in all, in chunks of about ``chunk_elements`` entries.

    Scale: a sum over the ``G`` groups of a case (not a mean over them), ≤ 0, in nats per case,
    so it has the magnitude of a log-likelihood; it is neither a bound on it nor an estimate of it.
    With ``generator``, one group per case is drawn uniformly and its conditional is scaled by the
    number of present groups: an unbiased, noisy estimate of the same quantity (what
    scikit-learn's ``BernoulliRBM.score_samples`` returns per case).

    Computed in the model's precision and accumulated in float64; ``mask`` (B, G) skips absent groups.
    """
    units = rbm.units
    n_cases, n_groups = v.shape[0], units.n_groups
    if mask is None:
        present = torch.ones(n_cases, n_groups, dtype=torch.bool, device=v.device)
    else:
        present = mask.to(device=v.device, dtype=torch.bool).expand(n_cases, -1)
    widest = max(part.block.size // max(part.block.n_groups, 1) for part in units.slices())
    per_case = max(1, chunk_elements // (units.size * widest * rbm.n_hidden))
    total = torch.zeros((), dtype=torch.float64, device=v.device)
    for start in range(0, n_cases, per_case):
        batch_present = present[start : start + per_case]
        batch = fn.apply_mask(v[start : start + per_case], batch_present, units)  # (b, D)
        x = fn.hidden_preactivation(batch, rbm.weights, rbm.hidden_bias)  # (b, H)
        if generator is None:
            total += _exact_sum(rbm, batch, x, batch_present, chunk_elements)
        else:
            total += _sampled_sum(rbm, batch, x, batch_present, generator)
    return float(total) / max(1, n_cases)


def _exact_sum(rbm: RBM, v: torch.Tensor, x: torch.Tensor, present: torch.Tensor, chunk_elements: int) -> torch.Tensor:
    """``Σ_cases Σ_present g log p(v_g | v_−g)``, block by block, groups in chunks."""
    total = torch.zeros((), dtype=torch.float64, device=v.device)
    for part in rbm.units.slices():
        block = part.block
        step = max(1, chunk_elements // (v.shape[0] * block.group_size**2 * rbm.n_hidden))
        block_present = present[:, part.groups]
        for first in range(0, block.n_groups, step):
            groups = torch.arange(first, min(block.n_groups, first + step), device=v.device).expand(v.shape[0], -1)
            log_p = _group_conditional_log_probability(rbm, part, v, x, groups)  # (b, S)
            total += (log_p * block_present.gather(1, groups)).sum(dtype=torch.float64)
    return total


def _sampled_sum(
    rbm: RBM, v: torch.Tensor, x: torch.Tensor, present: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """One present group per case drawn uniformly, its conditional times the case's number of present groups."""
    choosable = present | ~present.any(-1, keepdim=True)  # a case with no groups counts 0 anyway
    chosen = torch.multinomial(choosable.to(x.dtype), 1, generator=generator)[:, 0]  # (b,) layer group index
    weight = present.sum(-1).to(torch.float64)  # (b,)
    total = torch.zeros((), dtype=torch.float64, device=v.device)
    for part in rbm.units.slices():
        rows = torch.nonzero((chosen >= part.groups.start) & (chosen < part.groups.stop)).flatten()
        if rows.numel() == 0:
            continue
        groups = (chosen[rows] - part.groups.start)[:, None]  # (r, 1) index within the block
        log_p = _group_conditional_log_probability(rbm, part, v[rows], x[rows], groups)  # (r, 1)
        total += (log_p[:, 0].to(torch.float64) * weight[rows]).sum()
    return total


def _group_conditional_log_probability(
    rbm: RBM, part: BlockSlice, v: torch.Tensor, x: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """``log p(v_g | v_−g)`` for the groups ``groups`` (b, S) of one block, per case; ``x = c + vᵀW`` (b, H).

    ``log p = −log Σ_s exp(F(v) − F(v_s))`` over the group's local states ``s``, where ``v_s`` is
    ``v`` with group ``g`` set to ``s`` and, with ``δ = s − v_g``,
    ``F(v) − F(v_s) = δ·b_g + Σ_j [softplus(x_j + δ·W_gj) − softplus(x_j)]``.
    """
    block = part.block
    width, n_hidden = block.group_size, rbm.n_hidden
    weights = rbm.weights[part.entries].view(block.n_groups, width, n_hidden)[groups]  # (b, S, w, H)
    bias = rbm.visible_bias[part.entries].view(block.n_groups, width)[groups]  # (b, S, w)
    grouped = v[:, part.entries].reshape(v.shape[0], block.n_groups, width)
    current = grouped.gather(1, groups[..., None].expand(-1, -1, width))  # (b, S, w)
    states = block.local_states(v.dtype, v.device)  # (L, w)
    delta = states[None, None] - current[:, :, None, :]  # (b, S, L, w)
    x_new = x[:, None, None, :] + torch.einsum("bslw,bswh->bslh", delta, weights)  # (b, S, L, H)
    gain = (delta * bias[:, :, None, :]).sum(-1) + (F.softplus(x_new) - F.softplus(x)[:, None, None, :]).sum(-1)
    return -torch.logsumexp(gain, dim=-1)  # (b, S)
