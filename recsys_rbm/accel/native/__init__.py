"""Fused CPU kernels (the recommender's sparse step, the trainer's updates, the uniform stream), with the
reference implementation as the fallback.

Two row kernels (``kernels.cpp``, built at install time when a C++ compiler is present) do in one
pass what the torch path does with a gather, a product and a scatter:

* :func:`block_products`: ``out[e, k] = table[base[e] + k] · vectors[cases[e]]``, the rated logits
  (each entry's K level rows against its case's hidden state);
* :func:`add_rows`: ``storage[rows[i], c] += coefs[c] · weights[i] · per_case[cases[i]]``, the lazy
  momentum's update straight from the per-case statistics, without an (entries, H) source;

and :func:`group_order` (a counting sort) gives the order that visits the entries of one unit together,
so that each unit's rows come from memory once per batch; :func:`sample_levels` draws each rated entry's
level from its K logits in one pass. :func:`catch_up` brings lazily updated rows up to date in one pass,
:func:`momentum_step` is the trainer's dense update in one pass, :func:`draw_picks` draws the ones of a
Bernoulli block by thinning (no exponential or uniform for most unlikely units), and :func:`pcg64_uniforms`
continues a NumPy PCG64 stream on every thread (NumPy draws on one): the same numbers.

These are the low-level wrappers; :class:`~recsys_rbm.accel.native.backend.NativeKernels` puts them behind
the protocol of :mod:`recsys_rbm.accel.protocol`, and nothing outside :mod:`recsys_rbm.accel` imports them.

Each returns ``False`` where it does not apply (not built, a CUDA or non-contiguous tensor, a dtype
other than float32/float64, or ``RBM_REC_NATIVE=0`` in the environment), and the caller takes its
torch path. The results agree with the torch path to rounding (tested).
"""

from __future__ import annotations

import os

import numpy as np
import torch

try:
    from recsys_rbm.accel.native import _kernels
except ImportError:  # built without a compiler: the torch path serves
    _kernels = None

#: Set to ``0`` to run the torch path even where the kernels are built (to compare the two).
ENVIRONMENT_SWITCH = "RBM_REC_NATIVE"

_FLOATS = (torch.float32, torch.float64)
#: Room for each row's picks in a first try of :func:`draw_picks` (at least; an eighth of the units if more).
PICKS_PER_ROW = 256


def available() -> bool:
    """Whether the kernels are built and not switched off."""
    return _kernels is not None and os.environ.get(ENVIRONMENT_SWITCH, "1") != "0"


def _applies(*tensors: torch.Tensor) -> bool:
    return available() and all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def block_products(
    table: torch.Tensor,
    base: torch.Tensor,
    cases: torch.Tensor,
    vectors: torch.Tensor,
    block: int,
    out: torch.Tensor,
    offsets: tuple[torch.Tensor, tuple[float, ...]] | None = None,
    order: torch.Tensor | None = None,
) -> bool:
    """``out[e, k] = table[base[e] + k] · vectors[cases[e]]`` (``table`` (R, W), ``vectors`` (B, W), ``out``
    (E, block)), plus ``Σ_c coefs[c] · stored[base[e] + k, c]`` for ``offsets = (stored (R, C), coefs)``;
    ``False`` (nothing written) where the kernel does not apply. ``order``: a permutation of the entries to visit
    them in (entries on the same rows together read those rows once; the result is the same)."""
    if not _entries_apply("block_products", table, base, cases, vectors, offsets, order, out):
        return False
    if out.shape != (base.shape[0], block):
        raise ValueError("block_products: the table, vectors, indices and output disagree in shape")
    stored, coefs = offsets if offsets is not None else (None, ())
    factors = torch.tensor(coefs, dtype=torch.float64)
    _kernels.block_products(
        table.data_ptr(), table.shape[0], table.shape[1], base.data_ptr(), cases.data_ptr(), vectors.data_ptr(),
        vectors.shape[0], base.shape[0], block, out.data_ptr(), 0 if stored is None else stored.data_ptr(),
        len(coefs), factors.data_ptr(), _address(order), torch.get_num_threads(), table.dtype == torch.float64,
    )  # fmt: skip
    return True


def add_rows(
    storage: torch.Tensor,
    rows: torch.Tensor,
    cases: torch.Tensor,
    per_case: torch.Tensor,
    weights: torch.Tensor | None,
    coefs: list[float] | tuple[float, ...],
    order: torch.Tensor | None = None,
    group: int = 1,
) -> bool:
    """``storage[rows[i], c] += coefs[c] · weights[i] · per_case[cases[i]]`` (``storage`` (N, C, W), ``per_case``
    (P, W), ``weights`` (R,) or None for ones); ``False`` (nothing written) where the kernel does not apply.

    ``order``: a permutation of the entries to visit them in (entries on nearby rows together); ``group``: about
    how many consecutive rows go to one thread (a few units' K level rows, say; rounded up to a power of two, so
    a row's thread is a shift and a mask). Repeated rows add up in the visiting order.
    """
    tensors = [storage, rows, cases, per_case] + [t for t in (weights, order) if t is not None]
    if not _applies(*tensors) or storage.dtype not in _FLOATS or storage.dim() != 3:
        return False
    same = per_case.dtype == storage.dtype and (weights is None or weights.dtype == storage.dtype)
    if not (same and _indices(rows, cases, order) and len(coefs) == storage.shape[1]):
        return False
    if (
        per_case.shape[1] != storage.shape[2]
        or cases.shape != rows.shape
        or (any(t is not None and t.shape != rows.shape for t in (weights, order)))
    ):
        raise ValueError("add_rows: the storage, per-case rows, indices and weights disagree in shape")
    factors = torch.tensor(coefs, dtype=torch.float64)
    rows_per_share = 1 << (max(group, 1) - 1).bit_length()
    _kernels.add_rows(
        storage.data_ptr(), storage.shape[0], storage.shape[1], storage.shape[2], rows.data_ptr(), cases.data_ptr(),
        per_case.data_ptr(), per_case.shape[0], _address(weights), factors.data_ptr(), _address(order), rows_per_share,
        rows.shape[0], torch.get_num_threads(), storage.dtype == torch.float64,
    )  # fmt: skip
    return True


def group_order(keys: torch.Tensor, n_keys: int) -> torch.Tensor | None:
    """The positions of ``keys`` (E,) int64 in 0..n_keys-1, sorted by key, stably (a counting sort); None where
    the kernel does not apply."""
    if not _applies(keys) or keys.dtype != torch.int64:
        return None
    order = torch.empty_like(keys)
    _kernels.group_order(keys.data_ptr(), keys.shape[0], n_keys, order.data_ptr())
    return order


def sampled_blocks(
    table: torch.Tensor,
    row_coefs: tuple[float, ...],
    base: torch.Tensor,
    cases: torch.Tensor,
    vectors: torch.Tensor,
    block: int,
    uniforms: torch.Tensor,
    offsets: tuple[torch.Tensor, tuple[float, ...]] | None = None,
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`block_products` of the entries, a level drawn per entry from the softmax of its products (as
    :func:`sample_levels`, with ``uniforms`` (E,)), and ``Σ_c row_coefs[c] · table[base[e] + level_e, c]`` summed
    per case (``table`` (R, C·H) rows of C coordinates): the levels (E,) and the sums (B, H), or None where the
    kernel does not apply. The sums are added in visiting order, per thread, then over threads."""
    if not 1 <= block <= MAX_LEVELS or not _entries_apply(
        "sampled_blocks", table, base, cases, vectors, offsets, order, uniforms
    ):
        return None
    n_coords = len(row_coefs)
    if table.dim() != 2 or table.shape[1] % n_coords or uniforms.numel() != base.shape[0]:
        raise ValueError(
            "sampled_blocks: the table's rows are not whole coordinates, or the uniforms not one per entry"
        )
    stored, coefs = offsets if offsets is not None else (None, ())
    hidden = table.shape[1] // n_coords
    out = torch.empty((base.shape[0], block), dtype=table.dtype)
    levels = torch.empty(base.shape[0], dtype=torch.int64)
    sums = torch.zeros((vectors.shape[0], hidden), dtype=table.dtype)
    row_factors, offset_factors = torch.tensor(row_coefs, dtype=torch.float64), torch.tensor(coefs, dtype=torch.float64)
    _kernels.sampled_blocks(
        table.data_ptr(), table.shape[0], n_coords, hidden, row_factors.data_ptr(), base.data_ptr(), cases.data_ptr(),
        vectors.data_ptr(), vectors.shape[0], _address(order), base.shape[0], block, _address(stored), len(coefs),
        offset_factors.data_ptr(), uniforms.data_ptr(), out.data_ptr(), levels.data_ptr(), sums.data_ptr(),
        torch.get_num_threads(), table.dtype == torch.float64,
    )  # fmt: skip
    return levels, sums


#: The most levels :func:`sample_levels` takes (its cumulative weights live on the stack).
MAX_LEVELS = 64


def sample_levels(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor | None:
    """One level per row of ``logits`` (..., K) from its softmax, by the inverse CDF with ``uniforms`` (...)
    (what :func:`recsys_rbm.rbm.units.sample_levels` computes); None where the kernel does not apply."""
    if not _applies(logits, uniforms) or logits.dtype not in _FLOATS or uniforms.dtype != logits.dtype:
        return None
    levels = logits.shape[-1]
    if not 1 <= levels <= MAX_LEVELS or uniforms.numel() * levels != logits.numel():
        return None
    out = torch.empty(logits.shape[:-1], dtype=torch.int64)
    _kernels.sample_levels(
        logits.data_ptr(), uniforms.numel(), levels, uniforms.data_ptr(), out.data_ptr(), torch.get_num_threads(),
        logits.dtype == torch.float64,
    )  # fmt: skip
    return out


def draw_picks(logits: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The ones of ``x ~ Bernoulli(sigmoid(logits))`` (B, G), by thinning, each row's uniforms from its seed in
    ``seeds`` (B,) int64: ``(units (P,) ascending within each row, counts (B,))``; None where the kernel does not
    apply."""
    if not _applies(logits, seeds) or logits.dtype not in _FLOATS or seeds.dtype != torch.int64:
        return None
    if logits.dim() != 2 or seeds.shape != logits.shape[:1]:
        return None
    rows, width = logits.shape
    counts = torch.empty(rows, dtype=torch.int64)
    for capacity in (min(width, max(PICKS_PER_ROW, width // 8)), width):  # rarely a row picks more: all again
        picks = torch.empty((rows, capacity), dtype=torch.int64)
        _kernels.draw_picks(
            logits.data_ptr(), rows, width, seeds.data_ptr(), counts.data_ptr(), picks.data_ptr(), capacity,
            torch.get_num_threads(), logits.dtype == torch.float64,
        )  # fmt: skip
        if rows == 0 or int(counts.max()) <= capacity:
            break
    kept = torch.arange(capacity) < counts[:, None]
    return picks[kept], counts


def catch_up(
    parameter: torch.Tensor,
    velocity: torch.Tensor,
    clocks: torch.Tensor,
    rows: torch.Tensor,
    step: int,
    powers: torch.Tensor,
) -> bool:
    """``(θ, v)[r] ← M^(step − clocks[r]) (θ, v)[r]``, ``clocks[r] ← step`` for the distinct ``rows`` (R,), with
    ``powers`` (4, S) the entries of ``M^s``; ``False`` (nothing written) where the kernel does not apply."""
    tensors = (parameter, velocity, clocks, rows, powers)
    if not _applies(*tensors) or parameter.dtype not in _FLOATS or not _indices(clocks, rows):
        return False
    if velocity.dtype != parameter.dtype or powers.dtype != parameter.dtype:
        return False
    if velocity.shape != parameter.shape or clocks.shape != parameter.shape[:1] or powers.shape[0] != 4:
        raise ValueError("catch_up: the parameter, velocity, clocks and powers disagree in shape")
    width = parameter[0].numel() if parameter.shape[0] else 0
    _kernels.catch_up(
        parameter.data_ptr(), velocity.data_ptr(), clocks.data_ptr(), rows.data_ptr(), parameter.shape[0], width,
        rows.shape[0], step, powers.data_ptr(), powers.shape[1], torch.get_num_threads(),
        parameter.dtype == torch.float64,
    )  # fmt: skip
    return True


def momentum_step(
    parameter: torch.Tensor, velocity: torch.Tensor, gradient: torch.Tensor, momentum: float, rate: float, shrink: float
) -> bool:
    """``v ← m·v + rate·g + shrink·θ``, ``θ ← θ + v`` in one pass over the three tensors (of one shape and float
    dtype); ``False`` (nothing written) where the kernel does not apply."""
    tensors = (parameter, velocity, gradient)
    if not _applies(*tensors) or parameter.dtype not in _FLOATS:
        return False
    if any(t.dtype != parameter.dtype or t.shape != parameter.shape for t in tensors):
        return False
    _kernels.momentum_step(
        parameter.data_ptr(), velocity.data_ptr(), gradient.data_ptr(), parameter.numel(), momentum, rate, shrink,
        torch.get_num_threads(), parameter.dtype == torch.float64,
    )  # fmt: skip
    return True


_LOW_64 = (1 << 64) - 1


def pcg64_uniforms(bit_generator: np.random.PCG64, count: int, dtype: torch.dtype) -> torch.Tensor | None:
    """``count`` U[0, 1) values, the very ones ``np.random.Generator(bit_generator).random(count, dtype)`` would
    draw, with the generator's state moved past them as that call would; None where the kernel does not apply
    (``dtype`` not float32/float64)."""
    if not available() or dtype not in _FLOATS or count < 0:
        return None
    state = bit_generator.state
    out = torch.empty(count, dtype=dtype)
    first = 0
    if dtype == torch.float32 and state["has_uint32"] and count:  # the high half left over by the last float32
        out[0] = (state["uinteger"] >> 8) / 16777216.0
        state["has_uint32"], first = 0, 1
    n_outputs = count - first if dtype == torch.float64 else (count - first) // 2
    lcg = state["state"]
    pairs = out[first : first + (n_outputs if dtype == torch.float64 else 2 * n_outputs)]
    high, low = _kernels.pcg64_uniforms(
        lcg["state"] >> 64, lcg["state"] & _LOW_64, lcg["inc"] >> 64, lcg["inc"] & _LOW_64, n_outputs,
        pairs.data_ptr(), dtype == torch.float64, torch.get_num_threads(),
    )  # fmt: skip
    lcg["state"] = (high << 64) | low
    bit_generator.state = state
    if dtype == torch.float32 and (count - first) % 2:  # an odd count: the last value takes a half of one more
        generator = np.random.Generator(bit_generator)
        out[-1] = float(generator.random(dtype=np.float32))
    return out


def _entries_apply(
    name: str,
    table: torch.Tensor,
    base: torch.Tensor,
    cases: torch.Tensor,
    vectors: torch.Tensor,
    offsets: tuple[torch.Tensor, tuple[float, ...]] | None,
    order: torch.Tensor | None,
    *others: torch.Tensor,
) -> bool:
    """Whether the products kernels take these arguments (CPU, contiguous, one float dtype, int64 indices; ``others``
    are float tensors beside the table); raises ``ValueError`` where their shapes disagree."""
    stored, coefs = offsets if offsets is not None else (None, ())
    floats = [vectors, *others] + ([] if stored is None else [stored])
    if not _applies(table, base, cases, *floats, *([] if order is None else [order])) or table.dtype not in _FLOATS:
        return False
    if not (all(t.dtype == table.dtype for t in floats) and _indices(base, cases, order)):
        return False
    if (
        vectors.shape[1] != table.shape[1]
        or cases.shape != base.shape
        or (order is not None and order.shape != base.shape)
    ):
        raise ValueError(f"{name}: the table, vectors, indices and output disagree in shape")
    if stored is not None and (stored.shape[0] != table.shape[0] or stored.shape[1] != len(coefs)):
        raise ValueError(f"{name}: the offsets do not match the table's rows or their coefficients")
    return True


def _indices(*indices: torch.Tensor | None) -> bool:
    return all(index is None or index.dtype == torch.int64 for index in indices)


def _address(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.data_ptr()
