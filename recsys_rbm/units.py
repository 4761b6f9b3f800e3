"""Visible unit types: Bernoulli units and K-way softmax groups.

A visible layer is a flat vector of ``D = n_groups * group_size`` entries. A Bernoulli layer has
groups of size one; a softmax layer has one K-way one-hot group per item (ratings 1..K). A
per-group boolean mask marks which groups are present for a case: a masked group is all zeros,
so it contributes nothing to the energy or to ``p(h|v)``, and it is never sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recsys_rbm.rng import RandomSource, bernoulli, uniform


@dataclass(frozen=True)
class BernoulliUnits:
    """Binary units: ``p(v_i = 1 | h) = sigmoid(a_i)`` for pre-activation ``a = W h + b``."""

    n_units: int

    kind = "bernoulli"

    @property
    def group_size(self) -> int:
        return 1

    @property
    def n_groups(self) -> int:
        return self.n_units

    @property
    def size(self) -> int:
        return self.n_units

    def mean(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``E[v | h] = sigmoid(a)``; shapes ``(B, D) -> (B, D)``."""
        return torch.sigmoid(preactivation)

    def sample(self, preactivation: torch.Tensor, generator: RandomSource) -> torch.Tensor:
        """One draw of ``v ~ p(v | h)``; shapes ``(B, D) -> (B, D)``, values in {0, 1}."""
        return bernoulli(torch.sigmoid(preactivation), generator)

    def group_log_partition(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``log sum_{v_i in {0,1}} exp(v_i a_i) = softplus(a_i)`` per group; ``(B, D) -> (B, G)``."""
        return F.softplus(preactivation)

    def to_json(self) -> dict:
        return {"kind": self.kind, "n_units": self.n_units}


@dataclass(frozen=True)
class SoftmaxUnits:
    """One K-way softmax per group: ``p(v_ik = 1 | h) = softmax_k(a_i)_k``, ``a_i = W_i h + b_i``."""

    n_groups: int
    n_levels: int

    kind = "softmax"

    @property
    def group_size(self) -> int:
        return self.n_levels

    @property
    def size(self) -> int:
        return self.n_groups * self.n_levels

    def _grouped(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.view(*flat.shape[:-1], self.n_groups, self.n_levels)  # (B, G, K)

    def mean(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``E[v | h]``: a softmax over each group's K levels; ``(B, G*K) -> (B, G*K)``."""
        return torch.softmax(self._grouped(preactivation), dim=-1).flatten(-2)

    def sample(self, preactivation: torch.Tensor, generator: RandomSource) -> torch.Tensor:
        """One one-hot draw per group from its softmax (inverse CDF); ``(B, G*K) -> (B, G*K)``."""
        probs = torch.softmax(self._grouped(preactivation), dim=-1)  # (B, G, K)
        draw = uniform((*probs.shape[:-1], 1), probs, generator)  # (B, G, 1)
        level = (probs.cumsum(-1) < draw).sum(-1).clamp_max(self.n_levels - 1)  # (B, G)
        return F.one_hot(level, self.n_levels).to(probs.dtype).flatten(-2)

    def group_log_partition(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``log sum_k exp(a_ik)`` per group; ``(B, G*K) -> (B, G)``."""
        return torch.logsumexp(self._grouped(preactivation), dim=-1)

    def to_json(self) -> dict:
        return {"kind": self.kind, "n_groups": self.n_groups, "n_levels": self.n_levels}


VisibleUnits = BernoulliUnits | SoftmaxUnits


def visible_units_from_json(spec: dict) -> VisibleUnits:
    """Rebuild a visible unit description saved by ``to_json``."""
    if spec.get("kind") == "bernoulli":
        return BernoulliUnits(int(spec["n_units"]))
    if spec.get("kind") == "softmax":
        return SoftmaxUnits(int(spec["n_groups"]), int(spec["n_levels"]))
    raise ValueError(f"unknown visible unit kind {spec.get('kind')!r}")


def expand_group_mask(mask: torch.Tensor | None, units: VisibleUnits, dtype: torch.dtype) -> torch.Tensor | None:
    """Per-group boolean mask ``(B, G)`` to a per-entry 0/1 mask ``(B, G*group_size)``."""
    if mask is None:
        return None
    return mask.to(dtype).repeat_interleave(units.group_size, dim=-1)
