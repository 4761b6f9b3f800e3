"""Visible units: a visible layer is a list of blocks (Bernoulli units, K-way softmax groups).

Each block owns a contiguous slice of the flat visible vector and is made of *groups*: a
Bernoulli block has groups of one unit, a softmax block one K-way one-hot group per item (ratings
1..K). A per-group boolean mask marks which groups are present for a case; each block's groups
have their own columns of the mask. A masked group is all zeros, so it contributes nothing to the
energy or to ``p(h|v)``, and it is never sampled.

Everything the rest of the package needs of a unit type is a method of its block class: the
conditional mean, a sampler, the per-group log-partition, the table of a group's local states
(for enumeration and pseudo-likelihood) and the base-rate biases. A new unit type is one new
class here, registered in :data:`BLOCK_KINDS`; nothing else branches on the kind.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from recsys_rbm.accel import kernels
from recsys_rbm.rbm.rng import RandomSource, bernoulli, uniform

BASE_RATE_EPS = 1e-3  # base rates are clipped away from 0 and 1 before taking logs


def sample_levels(logits: torch.Tensor, random: RandomSource) -> torch.Tensor:
    """One draw per row from ``softmax(logits)`` over the last axis, by the inverse CDF; ``(..., K) -> (...)``.

    The sampler of every softmax in the package (dense groups and the recommender's sparse entries
    alike): one uniform per row, compared with the cumulative probabilities (:func:`levels_at`).
    """
    return levels_at(logits, uniform((*logits.shape[:-1], 1), logits, random))


def levels_at(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """The inverse CDF of ``softmax(logits)`` at ``uniforms`` (..., 1): the first level whose cumulative probability
    exceeds the uniform; ``(..., K) -> (...)``. The cumulative weights are left unnormalised and the uniform scaled
    by their total instead (:meth:`~recsys_rbm.accel.protocol.RowKernels.sample_levels`). Consumes ``uniforms``."""
    return kernels().sample_levels(logits, uniforms)


@dataclass(frozen=True)
class BernoulliUnits:
    """Binary units: ``p(v_i = 1 | h) = sigmoid(a_i)`` for pre-activation ``a = W h + b``."""

    n_units: int

    kind: ClassVar[str] = "bernoulli"
    group_size: ClassVar[int] = 1

    @property
    def n_groups(self) -> int:
        return self.n_units

    @property
    def size(self) -> int:
        return self.n_units

    def mean(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``E[v | h] = sigmoid(a)``; ``(B, D) -> (B, D)``."""
        return torch.sigmoid(preactivation)

    def sample(self, preactivation: torch.Tensor, random: RandomSource) -> torch.Tensor:
        """One draw of ``v ~ p(v | h)``; ``(B, D) -> (B, D)``, values in {0, 1}."""
        return bernoulli(torch.sigmoid(preactivation), random).to(preactivation.dtype)

    def group_log_partition(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``log Σ_{v_i ∈ {0,1}} exp(v_i a_i) = softplus(a_i)`` per group; ``(B, D) -> (B, G)``."""
        return F.softplus(preactivation)

    def local_states(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """The states one group can take, as rows: ``[[0], [1]]``; ``(2, 1)``."""
        return torch.tensor([[0.0], [1.0]], dtype=dtype, device=device)

    def base_rate_bias(self, visible_mean: torch.Tensor) -> torch.Tensor:
        """``log(p / (1 − p))``: the biases that give each unit its data mean ``p`` when ``W = 0``."""
        p = visible_mean.clamp(BASE_RATE_EPS, 1 - BASE_RATE_EPS)
        return torch.log(p) - torch.log1p(-p)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_units": self.n_units}

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> BernoulliUnits:
        return cls(int(spec["n_units"]))


@dataclass(frozen=True)
class SoftmaxUnits:
    """One K-way softmax per group: ``p(v_ik = 1 | h) = softmax_k(a_i)_k``, ``a_i = W_i h + b_i``."""

    n_groups: int
    n_levels: int

    kind: ClassVar[str] = "softmax"

    @property
    def group_size(self) -> int:
        return self.n_levels

    @property
    def size(self) -> int:
        return self.n_groups * self.n_levels

    def _grouped(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.view(*flat.shape[:-1], self.n_groups, self.n_levels)  # (B, G, K)

    def mean(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``E[v | h]``: a softmax over each group's K levels; ``(B, G·K) -> (B, G·K)``."""
        return torch.softmax(self._grouped(preactivation), dim=-1).flatten(-2)

    def sample(self, preactivation: torch.Tensor, random: RandomSource) -> torch.Tensor:
        """One one-hot draw per group (:func:`sample_levels`); ``(B, G·K) -> (B, G·K)``."""
        levels = sample_levels(self._grouped(preactivation), random)  # (B, G)
        return F.one_hot(levels, self.n_levels).to(preactivation.dtype).flatten(-2)

    def group_log_partition(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``log Σ_k exp(a_ik)`` per group; ``(B, G·K) -> (B, G)``."""
        return torch.logsumexp(self._grouped(preactivation), dim=-1)

    def local_states(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """The states one group can take: the K one-hot rows; ``(K, K)``."""
        return torch.eye(self.n_levels, dtype=dtype, device=device)

    def base_rate_bias(self, visible_mean: torch.Tensor) -> torch.Tensor:
        """``log p_k`` per group: the biases that give each level its data frequency when ``W = 0``."""
        p = self._grouped(visible_mean).clamp_min(BASE_RATE_EPS)
        return torch.log(p / p.sum(-1, keepdim=True)).flatten(-2)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_groups": self.n_groups, "n_levels": self.n_levels}

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> SoftmaxUnits:
        return cls(int(spec["n_groups"]), int(spec["n_levels"]))


VisibleBlock = BernoulliUnits | SoftmaxUnits

#: Every unit type by its ``kind``: the one place a new block class is registered.
BLOCK_KINDS: dict[str, type[VisibleBlock]] = {BernoulliUnits.kind: BernoulliUnits, SoftmaxUnits.kind: SoftmaxUnits}


@dataclass(frozen=True)
class BlockSlice:
    """Where one block sits: its entries ``entries`` of the flat vector and its columns ``groups`` of the mask."""

    block: VisibleBlock
    entries: slice
    groups: slice


@dataclass(frozen=True)
class VisibleLayer:
    """A visible layer made of blocks laid end to end; it offers the blocks' interface over the whole vector.

    Entries are ordered block by block (each block group-major); the per-group mask ``(B, G)`` has
    the blocks' groups in the same order.
    """

    blocks: tuple[VisibleBlock, ...]

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("a visible layer needs at least one block")

    @property
    def size(self) -> int:
        return sum(block.size for block in self.blocks)

    @property
    def n_groups(self) -> int:
        return sum(block.n_groups for block in self.blocks)

    def slices(self) -> Iterator[BlockSlice]:
        """Each block with its slice of entries and of mask columns, in order."""
        entry, group = 0, 0
        for block in self.blocks:
            yield BlockSlice(block, slice(entry, entry + block.size), slice(group, group + block.n_groups))
            entry, group = entry + block.size, group + block.n_groups

    def _per_block(self, name: str, flat: torch.Tensor, *args: Any) -> torch.Tensor:
        parts = [getattr(part.block, name)(flat[..., part.entries], *args) for part in self.slices()]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def mean(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``E[v | h]`` block by block; ``(B, D) -> (B, D)``."""
        return self._per_block("mean", preactivation)

    def sample(self, preactivation: torch.Tensor, random: RandomSource) -> torch.Tensor:
        """One draw of ``v ~ p(v | h)`` block by block; ``(B, D) -> (B, D)``."""
        return self._per_block("sample", preactivation, random)

    def group_log_partition(self, preactivation: torch.Tensor) -> torch.Tensor:
        """``log Σ_{v_g} exp(v_g·a_g)`` for every group of every block; ``(B, D) -> (B, G)``."""
        return self._per_block("group_log_partition", preactivation)

    def base_rate_bias(self, visible_mean: torch.Tensor | None) -> torch.Tensor:
        """Float64 biases (D,) that reproduce the data's mean ``visible_mean`` (D,) when ``W = 0``; zeros without it."""
        if visible_mean is None:
            return torch.zeros(self.size, dtype=torch.float64)
        mean = visible_mean.detach().to("cpu", torch.float64)
        return self._per_block("base_rate_bias", mean)

    def expand_mask(self, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """Per-group mask ``(B, G)`` to a per-entry 0/1 mask ``(B, D)``."""
        if mask is None:
            return None
        parts = [
            mask[..., part.groups].to(dtype).repeat_interleave(part.block.group_size, dim=-1) for part in self.slices()
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def present_groups(self, mask: torch.Tensor | None = None) -> list[tuple[BlockSlice, torch.Tensor]]:
        """Each block with the indices of its present groups (all of them without ``mask`` (G,))."""
        out = []
        for part in self.slices():
            groups = torch.arange(part.block.n_groups)
            if mask is not None:
                groups = groups[mask[part.groups].cpu()]
            out.append((part, groups))
        return out

    def n_states(self, mask: torch.Tensor | None = None) -> int:
        """The number of visible configurations: ``Π_blocks S_b^(present groups)``, ``S_b`` a group's states."""
        return math.prod(
            _states_per_group(part.block) ** int(groups.numel()) for part, groups in self.present_groups(mask)
        )

    def to_json(self) -> dict[str, Any]:
        """A one-block layer is saved as its block (the format of checkpoints written before layers)."""
        if len(self.blocks) == 1:
            return self.blocks[0].to_json()
        return {"kind": "layer", "blocks": [block.to_json() for block in self.blocks]}


def _states_per_group(block: VisibleBlock) -> int:
    return int(block.local_states(torch.float64, "cpu").shape[0])


def as_layer(units: VisibleLayer | VisibleBlock) -> VisibleLayer:
    """A layer from a layer or a single block."""
    return units if isinstance(units, VisibleLayer) else VisibleLayer((units,))


def visible_units_from_json(spec: dict[str, Any]) -> VisibleLayer:
    """Rebuild a visible layer saved by :meth:`VisibleLayer.to_json` (or a block's ``to_json``)."""
    if spec.get("kind") == "layer":
        return VisibleLayer(tuple(_block_from_json(block) for block in spec["blocks"]))
    return VisibleLayer((_block_from_json(spec),))


def _block_from_json(spec: dict[str, Any]) -> VisibleBlock:
    kind = spec.get("kind")
    if kind not in BLOCK_KINDS:
        raise ValueError(f"unknown visible unit kind {kind!r}; known: {', '.join(BLOCK_KINDS)}")
    return BLOCK_KINDS[kind].from_json(spec)


VisibleUnits = VisibleLayer | VisibleBlock
