"""Tiny float64 RBMs and brute-force sums over every (v, h) pair: the ground truth of the tests.

Only ``RBM.energy`` and the state tables are used here, so the brute-force sums are independent of
the closed forms (free energies, conditionals) they check.
"""

from __future__ import annotations

import torch

from recsys_rbm.evaluation.exact import binary_states, visible_states
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits, VisibleLayer, VisibleUnits
from recsys_rbm.runtime import make_generator

# The visible layers every identity is checked on: Bernoulli only, softmax only, and a mixed layer
# (Bernoulli units beside softmax groups, as in the joint recommender). A softmax mask drops groups
# 1 and 3; the mixed mask drops one Bernoulli unit and one softmax group.
BERNOULLI = VisibleLayer((BernoulliUnits(7),))
SOFTMAX = VisibleLayer((SoftmaxUnits(4, 3),))
SOFTMAX_MASK = torch.tensor([True, False, True, False])
MIXED = VisibleLayer((BernoulliUnits(3), SoftmaxUnits(3, 3)))
MIXED_MASK = torch.tensor([True, False, True, True, False, True])


def random_rbm(
    units: VisibleUnits, n_hidden: int = 5, seed: int = 0, weight_scale: float = 1.0, bias_scale: float = 0.5
) -> RBM:
    """A float64 RBM with weights ``N(0, weight_scale²)`` and biases ``N(0, bias_scale²)``."""
    generator = make_generator(seed)
    return RBM(
        torch.randn(units.size, n_hidden, generator=generator, dtype=torch.float64) * weight_scale,
        torch.randn(units.size, generator=generator, dtype=torch.float64) * bias_scale,
        torch.randn(n_hidden, generator=generator, dtype=torch.float64) * bias_scale,
        units,
    )


def joint_minus_energy(rbm: RBM, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All visible states ``(Nv, D)`` (masked groups 0), all hidden states ``(Nh, H)`` and the matrix
    ``−E(v, h)`` ``(Nv, Nh)`` from the energy itself."""
    v = visible_states(rbm.units, mask)
    h = binary_states(rbm.n_hidden)
    pairs_v = v.repeat_interleave(h.shape[0], dim=0)  # (Nv·Nh, D)
    pairs_h = h.repeat(v.shape[0], 1)  # (Nv·Nh, H)
    return v, h, -rbm.energy(pairs_v, pairs_h).view(v.shape[0], h.shape[0])


def brute_force_log_z(rbm: RBM, mask: torch.Tensor | None = None) -> float:
    """``log Σ_{v,h} exp(−E(v, h))`` over every pair (present groups only under ``mask``)."""
    return float(torch.logsumexp(joint_minus_energy(rbm, mask)[2].flatten(), dim=0))


def softmax_mask_rows(n_cases: int, seed: int = 0) -> torch.Tensor:
    """A random per-case group mask ``(n_cases, SOFTMAX.n_groups)`` with every row keeping a group."""
    mask = torch.rand(n_cases, SOFTMAX.n_groups, generator=make_generator(seed)) < 0.6
    mask[:, 0] = True
    return mask
