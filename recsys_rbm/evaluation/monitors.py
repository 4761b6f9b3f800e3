"""Cheap measures of how a model is doing: reconstruction error, mean free energy, the free-energy
gap between training and validation cases, and pseudo-log-likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recsys_rbm import functional as fn
from recsys_rbm.model import RBM
from recsys_rbm.units import BernoulliUnits


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
    per_case = max(1, chunk_elements // (n_groups * units.group_size * rbm.n_hidden))
    total = torch.zeros((), dtype=torch.float64, device=v.device)
    for start in range(0, n_cases, per_case):
        batch_present = present[start : start + per_case]
        batch = fn.apply_mask(v[start : start + per_case], batch_present, units)  # (b, D)
        x = fn.hidden_preactivation(batch, rbm.weights, rbm.hidden_bias)  # (b, H)
        if generator is None:
            step = max(1, chunk_elements // (batch.shape[0] * units.group_size * rbm.n_hidden))
            for first in range(0, n_groups, step):
                groups = torch.arange(first, min(n_groups, first + step), device=v.device).expand(batch.shape[0], -1)
                log_p = _group_conditional_log_probability(rbm, batch, x, groups)  # (b, S)
                total += (log_p * batch_present.gather(1, groups)).sum(dtype=torch.float64)
        else:
            choosable = batch_present | ~batch_present.any(-1, keepdim=True)  # a case with no groups counts 0 anyway
            groups = torch.multinomial(choosable.to(x.dtype), 1, generator=generator)  # (b, 1), present only
            log_p = _group_conditional_log_probability(rbm, batch, x, groups)  # (b, 1)
            total += (log_p[:, 0] * batch_present.sum(-1)).sum(dtype=torch.float64)
    return float(total) / max(1, n_cases)


def _group_conditional_log_probability(
    rbm: RBM, v: torch.Tensor, x: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """``log p(v_g | v_−g)`` for the groups ``groups`` (b, S) of each case; ``x = c + vᵀW`` (b, H).

    ``log p = −log Σ_{v'_g} exp(F(v) − F(v'))``, where ``v'`` is ``v`` with group ``g`` changed and
    ``F(v) − F(v') = b·(v' − v) + Σ_j [softplus(x'_j) − softplus(x_j)]``.
    """
    base = F.softplus(x)[:, None, None, :]  # (b, 1, 1, H)
    if isinstance(rbm.units, BernoulliUnits):
        flip = 1 - 2 * v.gather(1, groups)  # (b, S): +1 turns a unit on, −1 off
        x_new = x[:, None, :] + flip[..., None] * rbm.weights[groups]  # (b, S, H)
        gain = flip * rbm.visible_bias[groups] + (F.softplus(x_new) - base[:, 0]).sum(-1)  # (b, S) = F(v) − F(v')
        return -F.softplus(gain)  # log 1/(1 + exp(gain))
    n_levels = rbm.units.n_levels
    grouped_weights = rbm.weights.view(rbm.units.n_groups, n_levels, -1)[groups]  # (b, S, K, H)
    grouped_bias = rbm.visible_bias.view(rbm.units.n_groups, n_levels)[groups]  # (b, S, K)
    current = v.view(v.shape[0], rbm.units.n_groups, n_levels).gather(1, groups[..., None].expand(-1, -1, n_levels))
    current_weights = (current[..., None] * grouped_weights).sum(2, keepdim=True)  # (b, S, 1, H)
    current_bias = (current * grouped_bias).sum(-1, keepdim=True)  # (b, S, 1)
    x_new = x[:, None, None, :] + grouped_weights - current_weights  # (b, S, K, H)
    gain = grouped_bias - current_bias + (F.softplus(x_new) - base).sum(-1)  # (b, S, K)
    return -torch.logsumexp(gain, dim=-1)
