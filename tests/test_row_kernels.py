"""Every implementation of the row protocol (:mod:`recsys_rbm.accel.protocol`) against the plain-torch reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_rbm.accel import REFERENCE, implementations
from recsys_rbm.accel.protocol import RowKernels

IMPLEMENTATIONS = {kernels.name: kernels for kernels in implementations()}


def _entries(dtype: torch.dtype, block: int, seed: int = 0, width: int = 37):
    """A table (60, width), each of 40 entries' first row of a block, its case (ascending) and 5 cases' vectors."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(60, width, generator=generator, dtype=dtype)
    vectors = torch.randn(5, width, generator=generator, dtype=dtype)
    base = torch.randint(0, 60 - block + 1, (40,), generator=generator)
    cases = torch.sort(torch.randint(0, 5, (40,), generator=generator)).values
    biases = torch.randn(60, generator=generator, dtype=dtype)
    return table, base, cases, vectors, biases


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}


def _block_products(kernels: RowKernels, dtype: torch.dtype) -> None:
    for block in (1, 5, 10, 13):
        table, base, cases, vectors, biases = _entries(dtype, block, seed=block)
        stated = torch.stack([table[b : b + block] @ vectors[c] for b, c in zip(base, cases, strict=True)])
        torch.testing.assert_close(
            kernels.block_products(table, base, cases, vectors, block), stated, **_tolerance(dtype)
        )
        with_biases = stated + torch.stack([biases[b : b + block] for b in base])
        out = kernels.block_products(table, base, cases, vectors, block, biases)
        torch.testing.assert_close(out, with_biases, **_tolerance(dtype))


def _sample_levels(kernels: RowKernels, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(4)
    logits = 3 * torch.randn(2003, 10, generator=generator, dtype=dtype)
    uniforms = torch.rand(2003, 1, generator=generator, dtype=dtype)
    expected = REFERENCE.sample_levels(logits, uniforms.clone())
    drawn = kernels.sample_levels(logits, uniforms.clone())
    assert drawn.dtype == torch.int64 and drawn.shape == (2003,)
    assert (drawn != expected).sum() <= 2  # exp may round differently at a boundary, rarely


def _draw_levels(kernels: RowKernels, dtype: torch.dtype) -> None:
    table, base, cases, vectors, biases = _entries(dtype, 5, seed=2)
    uniforms = torch.rand(40, 1, generator=torch.Generator().manual_seed(3), dtype=dtype)
    levels, sums = kernels.draw_levels(table, base, cases, vectors, 5, uniforms.clone(), biases)
    logits = REFERENCE.block_products(table, base, cases, vectors, 5, biases)
    assert torch.equal(levels, REFERENCE.sample_levels(logits, uniforms.clone()))
    stated = torch.zeros(5, table.shape[1], dtype=dtype)
    for e in range(40):
        stated[cases[e]] += table[base[e] + levels[e]]
    torch.testing.assert_close(sums, stated, **_tolerance(dtype))


def _add_rows(kernels: RowKernels, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(30, 19, generator=generator, dtype=dtype)
    per_case = torch.randn(6, 19, generator=generator, dtype=dtype)
    rows = torch.randint(0, 30, (200,), generator=generator)  # many repeats
    cases = torch.randint(0, 6, (200,), generator=generator)
    for weights in (None, torch.rand(200, generator=generator, dtype=dtype)):
        stated = target.clone()
        for i in range(200):
            stated[rows[i]] += -0.75 * (1.0 if weights is None else float(weights[i])) * per_case[cases[i]]
        added = target.clone()
        kernels.add_rows(added, rows, per_case, cases, weights, -0.75)
        torch.testing.assert_close(added, stated, **_tolerance(dtype))


def _catch_up(kernels: RowKernels, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(5)
    theta, velocity = (
        torch.randn(20, 3, generator=generator, dtype=dtype),
        torch.randn(20, 3, generator=generator, dtype=dtype),
    )
    clocks = torch.randint(0, 8, (20,), generator=generator)
    matrix = torch.tensor([[0.99, 0.9], [-0.01, 0.9]], dtype=torch.float64)
    powers = torch.stack([torch.linalg.matrix_power(matrix, s).flatten() for s in range(9)], 1).to(dtype)
    rows = torch.tensor([3, 0, 17, 9, 4])
    stated_theta, stated_velocity, stated_clocks = theta.clone(), velocity.clone(), clocks.clone()
    for r in rows.tolist():
        a, b, c, d = powers[:, 8 - clocks[r]].tolist()
        stated_theta[r], stated_velocity[r] = a * theta[r] + b * velocity[r], c * theta[r] + d * velocity[r]
        stated_clocks[r] = 8
    kernels.catch_up(theta, velocity, clocks, rows, 8, powers)
    torch.testing.assert_close(theta, stated_theta, **_tolerance(dtype))
    torch.testing.assert_close(velocity, stated_velocity, **_tolerance(dtype))
    assert torch.equal(clocks, stated_clocks)


def _momentum_step(kernels: RowKernels, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(6)
    parameter, velocity, gradient = (torch.randn(70_000, generator=generator, dtype=dtype) for _ in range(3))
    stated_velocity = 0.9 * velocity + 0.1 * gradient - 0.001 * parameter
    stated_parameter = parameter + stated_velocity
    kernels.momentum_step(parameter, velocity, gradient, 0.9, 0.1, -0.001)
    torch.testing.assert_close(velocity, stated_velocity, **_tolerance(dtype))
    torch.testing.assert_close(parameter, stated_parameter, **_tolerance(dtype))


def _uniforms(kernels: RowKernels, dtype: torch.dtype) -> None:
    for count in (0, 1, 7, 4096):
        numpy_dtype = np.float64 if dtype == torch.float64 else np.float32
        expected_source, source = np.random.PCG64(11), np.random.PCG64(11)
        expected = np.random.Generator(expected_source).random(count, dtype=numpy_dtype)
        drawn = kernels.uniforms(source, count, dtype)
        assert np.array_equal(drawn.numpy(), expected)
        following = np.random.Generator(source).random(3, dtype=numpy_dtype)  # the stream goes on as NumPy's would
        assert np.array_equal(following, np.random.Generator(expected_source).random(3, dtype=numpy_dtype))


def _picked(units: torch.Tensor, counts: torch.Tensor, rows: int, width: int) -> torch.Tensor:
    """The dense 0/1 block (rows, width) of a draw of picks, checked to list each row's units ascending."""
    assert counts.shape == (rows,) and units.shape == (int(counts.sum()),)
    cases = torch.repeat_interleave(torch.arange(rows), counts)
    ascending = (units[1:] > units[:-1]) | (cases[1:] != cases[:-1])
    assert bool(ascending.all()) and bool(((units >= 0) & (units < width)).all())
    block = torch.zeros(rows, width)
    block[cases, units] = 1.0
    return block


def _draw_picks(kernels: RowKernels, dtype: torch.dtype) -> None:
    """By enumeration: the 8 joint outcomes of three watched units, over 20,000 rows with seeds of their own,
    against the product of their sigmoids (χ², 7 degrees of freedom). The three sit in different blocks of
    40 units, one likely (logit ≥ 0) and two unlikely, so a kernel's every path is crossed; the other units'
    logits are so low that they are never picked, and a unit at +40 always is."""
    rows, width = 20_000, 40
    watched, logits_watched = torch.tensor([3, 17, 35]), torch.tensor([-2.5, 0.7, -0.4], dtype=torch.float64)
    row = torch.full((width,), -60.0, dtype=dtype)
    row[watched], row[25] = logits_watched.to(dtype), 40.0
    logits = row.expand(rows, width).contiguous()
    seeds = torch.arange(rows, dtype=torch.int64) * 7919 + 12345
    block = _picked(*kernels.draw_picks(logits, seeds), rows, width)
    assert bool((block[:, 25] == 1).all())
    others = torch.ones(width, dtype=torch.bool)
    others[watched], others[25] = False, False
    assert float(block[:, others].sum()) == 0
    outcome = (block[:, watched] * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    observed = torch.bincount(outcome, minlength=8).double()
    p = torch.sigmoid(logits_watched)
    bits = torch.tensor([[(o >> 2) & 1, (o >> 1) & 1, o & 1] for o in range(8)], dtype=torch.float64)
    expected = rows * torch.where(bits == 1, p, 1 - p).prod(1)
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    assert chi_square < 24.32, (observed, expected)  # the 0.999 quantile of χ²(7)
    again = kernels.draw_picks(logits[:7].contiguous(), seeds[:7])  # a row's draw is its seed's, in any batch
    torch.testing.assert_close(_picked(*again, 7, width), block[:7])


def _draw_picks_over_a_catalogue(kernels: RowKernels, dtype: torch.dtype) -> None:
    """Marginals over 2,000 units of probabilities from 1e-5 to 0.9, 3,000 rows: the picks per bucket of 200
    units (by probability) within 5 standard deviations of their expectation."""
    rows, width = 3_000, 2_000
    generator = torch.Generator().manual_seed(9)
    logits = torch.linspace(-11.5, 2.2, width, dtype=torch.float64)[torch.randperm(width, generator=generator)]
    seeds = torch.randint(0, 1 << 48, (rows,), generator=generator)
    block = _picked(*kernels.draw_picks(logits.to(dtype).expand(rows, width).contiguous(), seeds), rows, width)
    p = torch.sigmoid(logits)
    order = torch.argsort(p)
    for bucket in order.view(10, -1):
        mean = rows * float(p[bucket].sum())
        deviation = (rows * float((p[bucket] * (1 - p[bucket])).sum())) ** 0.5
        assert abs(float(block[:, bucket].sum()) - mean) < 5 * deviation + 1e-9


OPERATIONS = {
    "block_products": _block_products,
    "sample_levels": _sample_levels,
    "draw_levels": _draw_levels,
    "add_rows": _add_rows,
    "catch_up": _catch_up,
    "momentum_step": _momentum_step,
    "uniforms": _uniforms,
    "draw_picks": _draw_picks,
    "draw_picks_over_a_catalogue": _draw_picks_over_a_catalogue,
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_every_implementation_computes_what_the_protocol_states(implementation, operation, dtype):
    """Each operation of each implementation (the reference included) against the operation written out."""
    OPERATIONS[operation](IMPLEMENTATIONS[implementation], dtype)
