"""Block Gibbs sampling. The chain is an explicit value, passed in and returned, so CD-k (chains
restarted at the data) and PCD-k (chains carried between updates) are one code path.

The sampler needs only the two conditionals of a model (:class:`Conditionals`): the dense
:class:`~recsys_rbm.rbm.model.RBM` has them, and so has the recommender's sparse view of a batch of
cases, whose visible state is its rated entries rather than a dense vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from recsys_rbm.rbm.rng import RandomSource, bernoulli


class Conditionals(Protocol):
    """A model the chain can step: ``p(h | v)``, a draw of ``v ~ p(v | h)`` and ``E[v | h]``."""

    def hidden_probability(self, visible: Any, mask: torch.Tensor | None = None) -> torch.Tensor: ...

    def sample_visible(self, h: torch.Tensor, generator: RandomSource, mask: torch.Tensor | None = None) -> Any: ...

    def visible_mean(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> Any: ...


@dataclass
class Chain:
    """The state of a set of Gibbs chains after a half-step into the hidden layer."""

    visible: Any  # (M, D) visible states (or means, when visible sampling is off); a sparse model's own state
    hidden_probability: torch.Tensor  # (M, H) p(h = 1 | visible)
    hidden: torch.Tensor | None  # (M, H) binary states drawn from hidden_probability (None: not drawn)


def chain_from_visible(
    rbm: Conditionals,
    visible: Any,
    generator: RandomSource,
    mask: torch.Tensor | None = None,
    sample_hidden: bool = True,
) -> Chain:
    """Chains at ``visible`` (for CD this is the data) with ``p(h | v)`` and, unless told not to,
    a draw ``h ~ p(h | v)`` (skipped where nothing will use it, e.g. the end of a CD chain)."""
    probability = rbm.hidden_probability(visible, mask)
    return Chain(visible, probability, bernoulli(probability, generator) if sample_hidden else None)


def gibbs_step(
    rbm: Conditionals,
    chain: Chain,
    generator: RandomSource,
    mask: torch.Tensor | None = None,
    sample_visible: bool = True,
    sample_hidden: bool = True,
) -> Chain:
    """One full step ``h -> v -> h`` of block Gibbs sampling."""
    if chain.hidden is None:
        raise ValueError("this chain has no hidden states to step from; build it with sample_hidden=True")
    if sample_visible:
        visible = rbm.sample_visible(chain.hidden, generator, mask)
    else:
        visible = rbm.visible_mean(chain.hidden, mask)
    return chain_from_visible(rbm, visible, generator, mask, sample_hidden)


def run_chain(
    rbm: Conditionals,
    chain: Chain,
    steps: int,
    generator: RandomSource,
    mask: torch.Tensor | None = None,
    sample_visible: bool = True,
    sample_last_hidden: bool = True,
) -> Chain:
    """``steps`` Gibbs steps from ``chain``; returns the new state (the input is not modified).

    ``sample_last_hidden=False`` leaves the final hidden states undrawn (only their
    probabilities), which is all a CD update needs.
    """
    for step in range(steps):
        last = step == steps - 1
        chain = gibbs_step(rbm, chain, generator, mask, sample_visible, sample_hidden=sample_last_hidden or not last)
    return chain


def sample_snapshots(
    rbm: Conditionals,
    start: torch.Tensor,
    n_snapshots: int,
    steps_between: int,
    generator: RandomSource,
) -> torch.Tensor:
    """Chains started at ``start``; returns the visible means every ``steps_between`` steps.

    Shape ``(n_snapshots + 1, M, D)``: row 0 is ``start`` itself. Means are shown rather than
    binary states because they are what the tutorial's sample figure plots.
    """
    chain = chain_from_visible(rbm, start, generator)
    snapshots = [start]
    for _ in range(n_snapshots):
        chain = run_chain(rbm, chain, steps_between - 1, generator)
        snapshots.append(rbm.visible_mean(chain.hidden))
        chain = gibbs_step(rbm, chain, generator)
    return torch.stack(snapshots)
