"""Lazy momentum by row clocks against updating every row at every step."""

from __future__ import annotations

import pytest
import torch

from recsys_rbm.train.gradients import CaseFactors, SparseRows
from recsys_rbm.train.momentum import LazyMomentum, powers_of, transition


def test_the_powers_are_the_transition_multiplied_out():
    matrix = transition(0.01, 0.7)
    powers = powers_of(matrix, 5, torch.empty(0, dtype=torch.float64))
    for s in range(6):
        torch.testing.assert_close(powers[:, s].view(2, 2), torch.linalg.matrix_power(matrix, s))


def _dense_reference(theta, velocity, steps, decay, momentum, learning_rate):
    """Every row updated at every step: ``v ← m·v − d·θ + ε·g``, ``θ ← θ + v``, with repeated rows summed."""
    theta, velocity = theta.clone(), velocity.clone()
    for step in steps:
        g = step.dense()
        velocity = momentum * velocity - decay * theta + learning_rate * g
        theta = theta + velocity
    return theta, velocity


def _random_steps(n_rows, width, n_steps):
    """Row-sparse gradients with repeated rows, every other one given as per-case rows (:class:`CaseFactors`, with
    and without weights) rather than values; rows 0 and 1 alone every fourth step, so that others lag for long."""
    generator = torch.Generator().manual_seed(3)
    steps = []
    for step in range(n_steps):
        rows = torch.randint(0, n_rows, (5,), generator=generator)
        if step % 4 == 3:
            rows = torch.tensor([0, 0, 1])
        shape = torch.Size((n_rows, width))
        if step % 2:
            per_case = torch.randn(3, width, generator=generator, dtype=torch.float64)
            cases = torch.randint(0, 3, rows.shape, generator=generator)
            weights = torch.rand(rows.shape, generator=generator, dtype=torch.float64) if step % 4 == 1 else None
            steps.append(SparseRows(rows, None, shape, coalesced=False, factors=CaseFactors(per_case, cases, weights)))
        else:
            values = torch.randn(rows.shape[0], width, generator=generator, dtype=torch.float64)
            steps.append(SparseRows(rows, values, shape, coalesced=False))
    return steps


@pytest.mark.parametrize("momentum", [0.7, 0.0], ids=["momentum", "no-momentum"])
@pytest.mark.parametrize("reads", ["touched", "none"], ids=["rows-read-first", "rows-not-read"])
def test_reads_and_the_final_rows_equal_updating_every_row(momentum, reads, row_kernels):
    """Rows brought up to date mid-epoch, and every row at its end, equal the dense run's: with rows that repeat
    within a step, rows that lag for many steps, and gradients on rows that no read brought up to date first
    (as in data-parallel training, where the all-reduced gradient holds other processes' rows)."""
    decay, learning_rate, n_rows, width, n_steps = 0.01, 0.1, 12, 3, 24
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(n_rows, width, generator=generator, dtype=torch.float64)
    velocity = 0.1 * torch.randn(n_rows, width, generator=generator, dtype=torch.float64)
    start_theta, start_velocity = theta.clone(), velocity.clone()
    steps = _random_steps(n_rows, width, n_steps)
    lazy = LazyMomentum({"weights": theta}, {"weights": velocity})
    lazy.start_epoch(n_steps, momentum, {"weights": decay}, {"weights": theta})
    for number, step in enumerate(steps, start=1):
        if reads == "touched":
            lazy.catch_up("weights", torch.unique(step.rows))
        lazy.update_rows("weights", step, learning_rate)
        lazy.advance()
        if number % 6 == 0:  # read mid-epoch, against the dense run so far
            expected, _ = _dense_reference(start_theta, start_velocity, steps[:number], decay, momentum, learning_rate)
            rows = torch.tensor([0, 5, 11, 2])
            lazy.catch_up("weights", rows)
            torch.testing.assert_close(theta[rows], expected[rows], rtol=1e-12, atol=1e-12)
    lazy.finish()
    expected_theta, expected_velocity = _dense_reference(
        start_theta, start_velocity, steps, decay, momentum, learning_rate
    )
    torch.testing.assert_close(theta, expected_theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(velocity, expected_velocity, rtol=1e-12, atol=1e-12)
    assert not lazy.states and not lazy.in_epoch


def test_a_parameter_is_current_until_its_first_sparse_update_and_lags_after_it():
    theta, velocity = torch.ones(4, 2), torch.zeros(4, 2)
    lazy = LazyMomentum({"weights": theta}, {"weights": velocity})
    lazy.start_epoch(3, 0.9, {"weights": 0.0}, {"weights": theta})
    assert not lazy.is_lagging("weights")
    lazy.update_rows("weights", SparseRows(torch.tensor([1]), torch.ones(1, 2), theta.shape), 0.1)
    lazy.advance()
    assert lazy.is_lagging("weights")
    torch.testing.assert_close(theta, torch.ones(4, 2))  # stored: the step is taken when the row is next read
    lazy.catch_up("weights", torch.tensor([1]))
    torch.testing.assert_close(theta[1], torch.full((2,), 1.1))
    lazy.settle("weights")
    assert not lazy.is_lagging("weights")
