"""Lazy momentum, both ways (eigenbasis and row clocks), against updating every row at every step."""

from __future__ import annotations

import pytest
import torch

from recsys_rbm.train import momentum as lazy_momentum
from recsys_rbm.train.momentum import ClockedRows, CurrentRows, Eigenbasis, EigenbasisRows, LazyMomentum, transition
from recsys_rbm.train.trainer import CaseFactors, SparseRows


@pytest.mark.parametrize(("decay", "momentum"), [(0.0, 0.5), (0.001, 0.9), (0.015, 0.5), (1e-5, 0.99)])
def test_the_eigenbasis_diagonalises_the_transition(decay, momentum):
    matrix = transition(decay, momentum)
    basis = Eigenbasis.of(matrix)
    assert basis is not None
    as_tensor = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    vectors, inverse = as_tensor(basis.vectors), as_tensor(basis.inverse)
    torch.testing.assert_close(vectors @ torch.diag(as_tensor(basis.values)) @ inverse, matrix)
    torch.testing.assert_close(inverse @ vectors, torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(as_tensor(basis.entry), inverse @ as_tensor([1.0, 1.0]))
    assert basis.values[0] >= basis.values[1]


@pytest.mark.parametrize(
    ("decay", "momentum", "why"),
    [(0.0, 0.0, "no momentum"), (0.001, 0.1, "an eigenvalue below 0.25"), (0.5, 0.9, "complex eigenvalues")],
)
def test_the_eigenbasis_is_refused_where_it_would_not_serve(decay, momentum, why):
    assert Eigenbasis.of(transition(decay, momentum)) is None, why


def _dense_reference(theta, velocity, steps, decay, momentum, learning_rate):
    """Every row updated at every step: ``v ← m·v − d·θ + ε·g``, ``θ ← θ + v``, with repeated rows summed."""
    theta, velocity = theta.clone(), velocity.clone()
    for step in steps:
        g = step.dense()
        velocity = momentum * velocity - decay * theta + learning_rate * g
        theta = theta + velocity
    return theta, velocity


def _random_steps(n_rows, width, n_steps, repeated):
    """Row-sparse gradients, every other one given as per-case rows (:class:`CaseFactors`, with and without
    weights) rather than values."""
    generator = torch.Generator().manual_seed(3)
    steps = []
    for step in range(n_steps):
        rows = torch.randint(0, n_rows, (5,), generator=generator) if repeated else torch.randperm(n_rows)[:5]
        if step % 4 == 3:
            rows = torch.tensor([0, 0, 1]) if repeated else torch.tensor([0, 1])  # some rows lag for long
        shape = torch.Size((n_rows, width))
        if step % 2:
            per_case = torch.randn(3, width, generator=generator, dtype=torch.float64)
            cases = torch.randint(0, 3, rows.shape, generator=generator)
            weights = torch.rand(rows.shape, generator=generator, dtype=torch.float64) if step % 4 == 1 else None
            factors = CaseFactors(per_case, cases, weights)
            steps.append(SparseRows(rows, None, shape, coalesced=not repeated, factors=factors))
        else:
            values = torch.randn(rows.shape[0], width, generator=generator, dtype=torch.float64)
            steps.append(SparseRows(rows, values, shape, coalesced=not repeated))
    return steps


@pytest.mark.parametrize(
    ("eigenbasis", "rescale_below"),
    [(True, 2.0**-40), (True, 0.5), (False, 2.0**-40)],
    ids=["eigenbasis", "eigenbasis-rescaled-often", "row-clocks"],
)
def test_reads_and_the_final_rows_equal_updating_every_row(eigenbasis, rescale_below, row_kernels, monkeypatch):
    """Mid-epoch reads (rows, bags, block products) and the end of the epoch, with rows that repeat within a
    step (the eigenbasis adds them; the clocks get them coalesced) and rows that lag for many steps."""
    monkeypatch.setattr(lazy_momentum, "RESCALE_BELOW", rescale_below)
    decay, momentum, learning_rate, n_rows, width, n_steps = 0.01, 0.7, 0.1, 12, 3, 24
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(n_rows, width, generator=generator, dtype=torch.float64)
    velocity = 0.1 * torch.randn(n_rows, width, generator=generator, dtype=torch.float64)
    start_theta, start_velocity = theta.clone(), velocity.clone()
    steps = _random_steps(n_rows, width, n_steps, repeated=eigenbasis)
    lazy = LazyMomentum({"weights": theta}, {"weights": velocity})
    lazy.prefer_eigenbasis = eigenbasis
    lazy.start_epoch(n_steps, momentum, {"weights": decay}, {"weights": theta})
    for number, step in enumerate(steps, start=1):
        lazy.advance()
        lazy.update_rows("weights", step, learning_rate)
        if number % 6 == 0:  # read mid-epoch, against the dense run so far
            expected, _ = _dense_reference(start_theta, start_velocity, steps[:number], decay, momentum, learning_rate)
            reader = lazy.reader("weights")
            assert isinstance(reader, EigenbasisRows if eigenbasis else ClockedRows)
            rows = torch.tensor([0, 5, 5, 11, 2])
            torch.testing.assert_close(reader.gather(rows), expected[rows], rtol=1e-12, atol=1e-12)
            offsets = torch.tensor([0, 2])
            bags = torch.stack([expected[rows[:2]].sum(0), expected[rows[2:]].sum(0)])
            torch.testing.assert_close(reader.bag(rows, offsets), bags, rtol=1e-12, atol=1e-12)
            hidden = torch.randn(2, width, generator=generator, dtype=torch.float64)
            base, cases = torch.tensor([0, 5, 9, 5]), torch.tensor([0, 0, 1, 1])  # blocks of 3 rows, one per entry
            products = torch.stack([expected[b : b + 3] @ hidden[c] for b, c in zip(base, cases, strict=True)])
            torch.testing.assert_close(reader.block_products(base, cases, hidden, 3), products, rtol=1e-12, atol=1e-12)
            biases = torch.randn(n_rows, generator=generator, dtype=torch.float64)  # offsets read as stored
            with_biases = products + torch.stack([biases[b : b + 3] for b in base])
            torch.testing.assert_close(
                reader.block_products(base, cases, hidden, 3, CurrentRows(biases)), with_biases, rtol=1e-12, atol=1e-12
            )
    lazy.finish()
    expected_theta, expected_velocity = _dense_reference(
        start_theta, start_velocity, steps, decay, momentum, learning_rate
    )
    torch.testing.assert_close(theta, expected_theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(velocity, expected_velocity, rtol=1e-12, atol=1e-12)
    assert not lazy.states and not lazy.in_epoch


def test_a_parameter_is_read_as_stored_until_its_first_sparse_update():
    theta, velocity = torch.ones(4, 2), torch.zeros(4, 2)
    lazy = LazyMomentum({"weights": theta}, {"weights": velocity})
    lazy.start_epoch(3, 0.9, {"weights": 0.0}, {"weights": theta})
    lazy.advance()
    torch.testing.assert_close(lazy.reader("weights").gather(torch.tensor([1, 2])), torch.ones(2, 2))
    assert lazy.will_use_eigenbasis("weights")
    lazy.prefer_eigenbasis = False
    assert not lazy.will_use_eigenbasis("weights")
