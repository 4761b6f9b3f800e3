"""Exact log partition function and log-likelihood of small RBMs, by enumerating one layer.

``Z = Σ_{v,h} exp(−E(v, h))`` can be summed over either layer once the other is summed out in
closed form: ``log Z = log Σ_h exp(−F(h)) = log Σ_v exp(−F(v))``. We enumerate the layer with
fewer states: ``2^H`` hidden states, or ``2^D`` Bernoulli / ``K^G`` softmax visible states, up to
``2^max_units`` states (``max_units = 25`` by default, about 3·10⁷ states). The cost is one
per-group log-partition per (state, visible group): for a 784-visible model with 20 hidden units
that is 8·10⁸ softplus evaluations, about ten seconds on one CPU core; with 25 hidden units, 32
times more (use a GPU, or AIS). Sums are taken in float64, in chunks, so memory stays bounded.

Masks. With a per-group mask the visible layer only has its present groups, so ``Z`` depends on
the mask: ``Z(m) = Σ_{v: masked groups 0} Σ_h exp(−E(v, h))``. :func:`log_partition` takes no mask
or one mask shared by every case; :func:`log_likelihood` also accepts a per-case mask and then
computes ``log Z`` once per distinct mask row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import torch

from recsys_rbm.errors import ConfigError
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import VisibleUnits, as_layer

Side = Literal["auto", "hidden", "visible"]

CHUNK_ELEMENTS = 1 << 23  # float64 entries of the largest temporary per chunk (64 MiB)


# --- enumeration of states --------------------------------------------------------------------


def n_hidden_states(rbm: RBM) -> int:
    """``2^H``: the number of hidden configurations."""
    return 2**rbm.n_hidden


def n_visible_states(units: VisibleUnits, mask: torch.Tensor | None = None) -> int:
    """The number of visible configurations: ``2^D`` Bernoulli, ``K^G`` softmax, their product for a
    mixed layer (present groups only under ``mask``)."""
    layer = as_layer(units)
    return layer.n_states(None if mask is None else _shared_mask(mask, layer))


def binary_states(
    n_units: int,
    start: int = 0,
    stop: int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Rows ``start..stop−1`` of the table of all ``2^n`` binary vectors; ``(stop − start, n)``.

    Row ``r`` is the binary expansion of ``r``, least significant bit first.
    """
    stop = 2**n_units if stop is None else stop
    index = torch.arange(start, stop, device=device)
    bits = (index[:, None] >> torch.arange(n_units, device=device)) & 1  # (n, n_units)
    return bits.to(dtype)


def visible_states(
    units: VisibleUnits,
    mask: torch.Tensor | None = None,
    start: int = 0,
    stop: int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Rows ``start..stop−1`` of the table of all visible configurations; ``(n, D)``.

    Every present group takes each of its block's local states (``{0, 1}`` for a Bernoulli unit,
    the K one-hot rows for a softmax group); configurations are numbered in mixed radix, the
    first present group of the first block fastest. Masked groups are zero in every row.
    """
    layer = as_layer(units)
    shared = None if mask is None else _shared_mask(mask, layer)
    stop = layer.n_states(shared) if stop is None else stop
    index = torch.arange(start, stop, device=device)  # (n,)
    out = torch.zeros(index.numel(), layer.size, dtype=dtype, device=device)
    radix = 1  # number of configurations of the groups before this block
    for part, groups in layer.present_groups(shared):
        states = part.block.local_states(dtype, device)  # (S, group size)
        n_states, width = states.shape
        powers = radix * n_states ** torch.arange(groups.numel(), device=device)  # (n_present,)
        digits = (index[:, None] // powers) % n_states  # (n, n_present): each present group's state
        block = out[:, part.entries].view(index.numel(), part.block.n_groups, width)
        block[:, groups.to(device)] = states[digits]
        radix *= n_states ** groups.numel()
    return out


def _shared_mask(mask: torch.Tensor, units: VisibleUnits) -> torch.Tensor:
    """One per-group mask ``(G,)`` from ``(G,)`` or ``(B, G)`` with identical rows."""
    mask = mask.to(torch.bool)
    if mask.dim() == 2:
        if not bool((mask == mask[:1]).all()):
            raise ValueError("log Z depends on the mask: pass one shared mask, or call log_likelihood per mask")
        mask = mask[0]
    if mask.shape != (units.n_groups,):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected ({units.n_groups},) groups")
    return mask.cpu()


def _chunks(n_states: int, other_size: int, chunk_size: int | None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` blocks of states with about ``CHUNK_ELEMENTS / other_size`` states each."""
    size = chunk_size or max(1, CHUNK_ELEMENTS // max(1, other_size))
    for start in range(0, n_states, size):
        yield start, min(n_states, start + size)


# --- log Z ------------------------------------------------------------------------------------


def can_enumerate(rbm: RBM, mask: torch.Tensor | None = None, max_units: int = 25) -> bool:
    """Whether :func:`log_partition` can enumerate one side within ``2^max_units`` states."""
    return min(n_hidden_states(rbm), n_visible_states(rbm.units, mask)) <= 2**max_units


def log_partition(
    rbm: RBM,
    mask: torch.Tensor | None = None,
    max_units: int = 25,
    chunk_size: int | None = None,
    side: Side = "auto",
) -> float:
    """``log Z = log Σ_h exp(−F(h))`` or ``log Σ_v exp(−F(v))``, whichever side has fewer states.

    Parameters
    ----------
    rbm : the model; the sums run on its device in float64.
    mask : optional per-group mask ``(G,)`` (or ``(B, G)`` with identical rows) shared by all
        cases: ``Z`` is then the normaliser over the present groups only.
    max_units : the largest enumeration allowed is ``2^max_units`` states.
    chunk_size : states per chunk; by default chosen so a chunk's temporaries take about 64 MiB.
    side : ``"hidden"`` or ``"visible"`` forces the enumerated layer (for tests); ``"auto"`` picks
        the smaller.

    Raises
    ------
    ConfigError : both sides have more than ``2^max_units`` states (use AIS instead).
    """
    rbm64 = rbm.to(dtype=torch.float64)
    n_hidden, n_visible = n_hidden_states(rbm), n_visible_states(rbm.units, mask)
    if side == "auto":
        if min(n_hidden, n_visible) > 2**max_units:
            raise ConfigError(
                f"exact log Z needs at most 2^{max_units} states on one side, but this model has "
                f"2^{rbm.n_hidden} hidden and {_describe_visible(rbm.units, mask)} visible states; "
                "estimate it with AIS (recsys_rbm.evaluation.ais_log_partition) instead"
            )
        side = "hidden" if n_hidden <= n_visible else "visible"
    device = rbm.device
    shared = None if mask is None else _shared_mask(mask, rbm.units).to(device)
    partial = []
    if side == "hidden":
        partial = _hidden_side_partial_sums(rbm64, shared, chunk_size or CHUNK_ELEMENTS // rbm.n_visible)
    elif side == "visible":
        for start, stop in _chunks(n_visible, max(rbm.n_hidden, rbm.n_visible), chunk_size):
            v = visible_states(rbm.units, mask, start, stop, dtype=torch.float64, device=device)  # (n, D)
            partial.append(torch.logsumexp(-rbm64.free_energy(v), dim=0))
    else:
        raise ValueError(f"side must be 'auto', 'hidden' or 'visible', got {side!r}")
    return float(torch.logsumexp(torch.stack(partial), dim=0))


def _hidden_side_partial_sums(rbm: RBM, mask: torch.Tensor | None, chunk_size: int) -> list[torch.Tensor]:
    """``log Σ_h exp(−F(h))`` over blocks of hidden states, ``−F(h) = c·h + Σ_g log Σ_{v_g} exp(v_g·a_g)``.

    ``h`` is split into its ``L`` low bits and the rest, so ``a = b + W h = (b + W_high h_high) +
    W_low h_low``: the ``2^L`` low-bit products are computed once and each block only adds a
    vector, which saves a matrix product per block (the per-group log-partitions remain the cost).
    """
    n_low = min(rbm.n_hidden, max(0, int(chunk_size).bit_length() - 1))  # 2^L ≤ chunk_size states per block
    weights, device = rbm.weights, rbm.device
    low = binary_states(n_low, dtype=torch.float64, device=device)  # (2^L, L)
    low_preactivation = low @ weights[:, :n_low].T  # (2^L, D)
    low_bias = low @ rbm.hidden_bias[:n_low]  # (2^L,)
    partial = []
    for high_index in range(2 ** (rbm.n_hidden - n_low)):
        high = binary_states(rbm.n_hidden - n_low, high_index, high_index + 1, dtype=torch.float64, device=device)[0]
        offset = torch.addmv(rbm.visible_bias, weights[:, n_low:], high)  # (D,) b + W_high h_high
        per_group = rbm.units.group_log_partition(low_preactivation + offset)  # (2^L, G)
        if mask is not None:
            per_group = per_group * mask.to(per_group.dtype)
        minus_free_energy = low_bias + rbm.hidden_bias[n_low:] @ high + per_group.sum(-1)  # (2^L,)
        partial.append(torch.logsumexp(minus_free_energy, dim=0))
    return partial


def _describe_visible(units: VisibleUnits, mask: torch.Tensor | None) -> str:
    n_states = n_visible_states(units, mask)
    return f"≈2^{math.log2(n_states):.0f}" if n_states > 1 else "1"


# --- log-likelihood ---------------------------------------------------------------------------


def log_likelihood(
    rbm: RBM,
    v: torch.Tensor,
    log_z: float | torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    max_units: int = 25,
) -> torch.Tensor:
    """``log p(v) = −F(v) − log Z`` per case, in float64; ``(B, D) -> (B,)``.

    ``log_z`` may be given (a float, or a ``(B,)`` tensor when cases have different masks);
    otherwise it is computed exactly, once per distinct row of ``mask`` when there is one.
    """
    v = v.to(rbm.device, torch.float64)
    rbm64 = rbm.to(dtype=torch.float64)
    if mask is not None and mask.dim() == 1:
        mask = mask.expand(v.shape[0], -1)
    minus_free_energy = -rbm64.free_energy(v, mask)  # (B,)
    if log_z is None:
        if mask is None:
            log_z = log_partition(rbm, max_units=max_units)
        else:
            patterns, inverse = torch.unique(mask.to(torch.bool), dim=0, return_inverse=True)
            per_pattern = torch.tensor(
                [log_partition(rbm, pattern, max_units) for pattern in patterns], dtype=torch.float64
            )
            log_z = per_pattern.to(rbm.device)[inverse.to(rbm.device)]
    if isinstance(log_z, torch.Tensor):
        log_z = log_z.to(rbm.device, torch.float64)
    return minus_free_energy - log_z


def mean_log_likelihood(
    rbm: RBM,
    v: torch.Tensor,
    log_z: float | torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    batch_size: int = 10_000,
) -> float:
    """Mean over cases of ``log p(v)`` in nats (the usual "test log-likelihood" of a model).

    With no mask or a shared ``(G,)`` mask, ``log Z`` is computed once (exactly, unless given) and
    reused for every batch; a per-case ``(B, G)`` mask gets ``log Z`` per distinct mask row.
    """
    per_case_mask = mask is not None and mask.dim() == 2
    if log_z is None and not per_case_mask:
        log_z = log_partition(rbm, mask)
    total = 0.0
    for start in range(0, v.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        batch_mask = mask[rows] if per_case_mask else mask
        batch_log_z = log_z[rows] if isinstance(log_z, torch.Tensor) and log_z.dim() == 1 else log_z
        total += float(log_likelihood(rbm, v[rows], batch_log_z, batch_mask).sum())
    return total / max(1, v.shape[0])
