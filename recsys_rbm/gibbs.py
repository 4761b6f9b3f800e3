"""Block Gibbs sampling. The chain is an explicit value, passed in and returned, so CD-k (chains
restarted at the data) and PCD-k (chains carried between updates) are one code path."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsys_rbm.model import RBM


@dataclass
class Chain:
    """The state of a set of Gibbs chains after a half-step into the hidden layer."""

    visible: torch.Tensor  # (M, D) visible states (or means, when visible sampling is off)
    hidden_probability: torch.Tensor  # (M, H) p(h = 1 | visible)
    hidden: torch.Tensor  # (M, H) binary hidden states drawn from hidden_probability


def chain_from_visible(
    rbm: RBM, visible: torch.Tensor, generator: torch.Generator | None, mask: torch.Tensor | None = None
) -> Chain:
    """Start chains at ``visible`` (for CD this is the data): draw ``h ~ p(h | v)``."""
    probability = rbm.hidden_probability(visible, mask)
    return Chain(visible, probability, torch.bernoulli(probability, generator=generator))


def gibbs_step(
    rbm: RBM,
    chain: Chain,
    generator: torch.Generator | None,
    mask: torch.Tensor | None = None,
    sample_visible: bool = True,
) -> Chain:
    """One full step ``h -> v -> h`` of block Gibbs sampling."""
    if sample_visible:
        visible = rbm.sample_visible(chain.hidden, generator, mask)
    else:
        visible = rbm.visible_mean(chain.hidden, mask)
    return chain_from_visible(rbm, visible, generator, mask)


def run_chain(
    rbm: RBM,
    chain: Chain,
    steps: int,
    generator: torch.Generator | None,
    mask: torch.Tensor | None = None,
    sample_visible: bool = True,
) -> Chain:
    """``steps`` Gibbs steps from ``chain``; returns the new state (the input is not modified)."""
    for _ in range(steps):
        chain = gibbs_step(rbm, chain, generator, mask, sample_visible)
    return chain


def sample_snapshots(
    rbm: RBM,
    start: torch.Tensor,
    n_snapshots: int,
    steps_between: int,
    generator: torch.Generator | None,
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
