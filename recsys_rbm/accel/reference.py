"""The row operations in plain torch: the reference that states the maths (see :mod:`.protocol`)."""

from __future__ import annotations

import numpy as np
import torch


class ReferenceKernels:
    """:class:`~recsys_rbm.accel.protocol.RowKernels` in plain torch (and NumPy for the uniforms), on any device."""

    name = "reference"

    def block_products(
        self,
        table: torch.Tensor,
        base: torch.Tensor,
        cases: torch.Tensor,
        vectors: torch.Tensor,
        block: int,
        biases: torch.Tensor | None = None,
    ) -> torch.Tensor:
        rows = base[:, None] + torch.arange(block, device=base.device)  # (E, block)
        blocks = table.index_select(0, rows.flatten()).view(*rows.shape, -1)  # (E, block, W)
        out = torch.bmm(blocks, vectors.index_select(0, cases).unsqueeze(2)).squeeze(2)
        return out if biases is None else out.add_(biases[rows])

    def sample_levels(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        cumulative = (logits - logits.amax(-1, keepdim=True)).exp_().cumsum_(-1)  # ∝ the cumulative probabilities
        draw = uniforms.mul_(cumulative[..., -1:])  # the uniform scaled by the total, not the weights normalised
        return (cumulative < draw).sum(-1).clamp_max(logits.shape[-1] - 1)

    def draw_picks(self, logits: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        uniforms = torch.empty_like(logits)
        for row, seed in enumerate(seeds.tolist()):  # a generator per row: the row's draw depends on its seed alone
            generator = torch.Generator(device=logits.device).manual_seed(seed)
            torch.rand(logits.shape[1], generator=generator, out=uniforms[row])
        rows, units = torch.nonzero(uniforms < torch.sigmoid(logits), as_tuple=True)
        return units, torch.bincount(rows, minlength=logits.shape[0])

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
        levels = self.sample_levels(self.block_products(table, base, cases, vectors, block, biases), uniforms)
        sums = torch.zeros((vectors.shape[0], table.shape[1]), dtype=table.dtype, device=table.device)
        return levels, sums.index_add_(0, cases, table.index_select(0, base + levels))

    def add_rows(
        self,
        target: torch.Tensor,
        rows: torch.Tensor,
        per_case: torch.Tensor,
        cases: torch.Tensor,
        weights: torch.Tensor | None,
        scale: float,
    ) -> None:
        values = per_case.index_select(0, cases)
        if weights is not None:
            values.mul_(weights.view(-1, *([1] * (values.dim() - 1))))
        target.index_add_(0, rows, values, alpha=scale)

    def catch_up(
        self,
        parameter: torch.Tensor,
        velocity: torch.Tensor,
        clocks: torch.Tensor,
        rows: torch.Tensor,
        step: int,
        powers: torch.Tensor,
    ) -> None:
        shape = (-1, *([1] * (parameter.dim() - 1)))
        p00, p01, p10, p11 = (c.view(shape) for c in powers.index_select(1, step - clocks[rows]).unbind(0))
        theta, v = parameter.index_select(0, rows), velocity.index_select(0, rows)
        velocity.index_copy_(0, rows, (v * p11).addcmul_(theta, p10))
        parameter.index_copy_(0, rows, theta.mul_(p00).addcmul_(v, p01))
        clocks.index_fill_(0, rows, step)

    def momentum_step(
        self,
        parameter: torch.Tensor,
        velocity: torch.Tensor,
        gradient: torch.Tensor,
        momentum: float,
        rate: float,
        shrink: float,
    ) -> None:
        velocity.mul_(momentum).add_(gradient, alpha=rate)
        if shrink:
            velocity.add_(parameter, alpha=shrink)
        parameter.add_(velocity)

    def uniforms(self, bit_generator: np.random.PCG64, count: int, dtype: torch.dtype) -> torch.Tensor:
        numpy_dtype = np.float64 if dtype == torch.float64 else np.float32
        return torch.from_numpy(np.random.Generator(bit_generator).random(count, dtype=numpy_dtype))
