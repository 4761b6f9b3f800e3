"""The row operations the fast paths are made of: one protocol, a plain-torch reference, native kernels.

Every operation is stated on plain tensors, without hints about how to visit them: an implementation
is free to reorder or thread its work, as long as it computes what the reference computes (to
rounding). Shapes: ``table`` (N, W) rows of a parameter, ``base`` (E,) int64 the first of each
entry's ``block`` consecutive rows, ``cases`` (E,) int64 ascending, the case of each entry,
``vectors`` (B, W) one vector per case.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class RowKernels(Protocol):
    """Products, level draws and scatter-adds over a parameter's rows; the trainer's dense update and uniforms."""

    name: str

    def block_products(
        self,
        table: torch.Tensor,
        base: torch.Tensor,
        cases: torch.Tensor,
        vectors: torch.Tensor,
        block: int,
        biases: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``out[e, k] = table[base[e] + k] · vectors[cases[e]] (+ biases[base[e] + k])``; (E, block)."""
        ...

    def sample_levels(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """The first level ``k`` whose cumulative ``softmax(logits)`` exceeds ``uniforms``; (..., K), (..., 1) ->
        (...). Consumes ``uniforms``."""
        ...

    def draw_picks(self, logits: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ones of ``x ~ Bernoulli(sigmoid(logits))``, every entry independent, each row's randomness from its
        seed: ``logits`` (B, G), ``seeds`` (B,) int64 -> ``(units (P,), counts (B,))``, each row's units ascending.

        Implementations may draw differently from the same seed (the distribution is the same, not the numbers)."""
        ...

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
        """``level_e`` drawn from the softmax of :meth:`block_products` at ``uniforms`` (E, 1), and the drawn rows
        summed per case, ``sums[b] = Σ_{e: cases[e] = b} table[base[e] + level_e]``: (E,), (B, W)."""
        ...

    def add_rows(
        self,
        target: torch.Tensor,
        rows: torch.Tensor,
        per_case: torch.Tensor,
        cases: torch.Tensor,
        weights: torch.Tensor | None,
        scale: float,
    ) -> None:
        """``target[rows[i]] += scale · weights[i] · per_case[cases[i]]`` in place (repeated rows add up)."""
        ...

    def catch_up(
        self,
        parameter: torch.Tensor,
        velocity: torch.Tensor,
        clocks: torch.Tensor,
        rows: torch.Tensor,
        step: int,
        powers: torch.Tensor,
    ) -> None:
        """Rows ``rows`` (unique) of ``(θ, v)``, current at step ``clocks[r]``, brought to ``step`` in place:
        ``(θ, v)[r] ← M^(step − clocks[r]) (θ, v)[r]``, ``clocks[r] ← step``; ``powers`` (4, S) holds the entries
        ``M^s[0, 0], M^s[0, 1], M^s[1, 0], M^s[1, 1]`` for ``s < S``."""
        ...

    def momentum_step(
        self,
        parameter: torch.Tensor,
        velocity: torch.Tensor,
        gradient: torch.Tensor,
        momentum: float,
        rate: float,
        shrink: float,
    ) -> None:
        """``v ← m·v + rate·g + shrink·θ``, ``θ ← θ + v`` in place."""
        ...

    def uniforms(self, bit_generator: np.random.PCG64, count: int, dtype: torch.dtype) -> torch.Tensor:
        """``count`` U[0, 1) values of NumPy's PCG64 stream (float32 or float64), the generator moved past them."""
        ...
