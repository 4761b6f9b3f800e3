"""The native kernels behind the row protocol: each operation runs its kernel where it applies, else the reference.

How the kernels visit their work (entries of one unit together, a few units' rows per thread) is decided here,
from the arguments: the torch side states only what to compute (:mod:`recsys_rbm.accel.protocol`).
"""

from __future__ import annotations

import numpy as np
import torch

from recsys_rbm.accel import native
from recsys_rbm.accel.reference import ReferenceKernels

#: Rows that share a key of the visiting order of :meth:`NativeKernels.add_rows` (nearby rows together) …
ROWS_PER_KEY = 16
#: … and rows that one thread takes before the next thread's share begins (no two threads write one row).
ROWS_PER_THREAD_SHARE = 64


def _entry_order(base: torch.Tensor, block: int, n_rows: int) -> torch.Tensor | None:
    """The entries sorted by their first row's block (entries on the same rows together), or None."""
    return native.group_order(torch.div(base, block, rounding_mode="floor"), n_rows // block + 1)


class NativeKernels(ReferenceKernels):
    """:class:`~recsys_rbm.accel.protocol.RowKernels` on the C++ kernels (CPU, float32/float64, contiguous)."""

    name = "native"

    def block_products(
        self,
        table: torch.Tensor,
        base: torch.Tensor,
        cases: torch.Tensor,
        vectors: torch.Tensor,
        block: int,
        biases: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = torch.empty((base.shape[0], block), dtype=vectors.dtype, device=vectors.device)
        offsets = None if biases is None else (biases.view(-1, 1), (1.0,))
        order = _entry_order(base, block, len(table))
        if native.block_products(table, base, cases, vectors, block, out, offsets, order):
            return out
        return super().block_products(table, base, cases, vectors, block, biases)

    def sample_levels(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        drawn = native.sample_levels(logits, uniforms)
        return drawn if drawn is not None else super().sample_levels(logits, uniforms)

    def draw_picks(self, logits: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        drawn = native.draw_picks(logits, seeds)
        return drawn if drawn is not None else super().draw_picks(logits, seeds)

    def draw_levels(
        self,
        table: torch.Tensor,
        base: torch.Tensor,
        cases: torch.Tensor,
        vectors: torch.Tensor,
        block: int,
        uniforms: torch.Tensor,
        biases: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = None if biases is None else (biases.view(-1, 1), (1.0,))
        order = _entry_order(base, block, len(table))
        drawn = native.sampled_blocks(table, (1.0,), base, cases, vectors, block, uniforms, offsets, order)
        return drawn if drawn is not None else super().draw_levels(table, base, cases, vectors, block, uniforms, biases)

    def add_rows(
        self,
        target: torch.Tensor,
        rows: torch.Tensor,
        per_case: torch.Tensor,
        cases: torch.Tensor,
        weights: torch.Tensor | None,
        scale: float,
    ) -> None:
        storage, flat = target.view(target.shape[0], 1, -1), per_case.view(per_case.shape[0], -1)
        order = native.group_order(rows // ROWS_PER_KEY, target.shape[0] // ROWS_PER_KEY + 1)
        if not native.add_rows(storage, rows, cases, flat, weights, (scale,), order, ROWS_PER_THREAD_SHARE):
            super().add_rows(target, rows, per_case, cases, weights, scale)

    def catch_up(
        self,
        parameter: torch.Tensor,
        velocity: torch.Tensor,
        clocks: torch.Tensor,
        rows: torch.Tensor,
        step: int,
        powers: torch.Tensor,
    ) -> None:
        if not native.catch_up(parameter, velocity, clocks, rows, step, powers):
            super().catch_up(parameter, velocity, clocks, rows, step, powers)

    def momentum_step(
        self,
        parameter: torch.Tensor,
        velocity: torch.Tensor,
        gradient: torch.Tensor,
        momentum: float,
        rate: float,
        shrink: float,
    ) -> None:
        if not native.momentum_step(parameter, velocity, gradient, momentum, rate, shrink):
            super().momentum_step(parameter, velocity, gradient, momentum, rate, shrink)

    def uniforms(self, bit_generator: np.random.PCG64, count: int, dtype: torch.dtype) -> torch.Tensor:
        drawn = native.pcg64_uniforms(bit_generator, count, dtype)
        return drawn if drawn is not None else super().uniforms(bit_generator, count, dtype)


NATIVE = NativeKernels()
