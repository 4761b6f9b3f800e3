"""The trainer's update rule: sparse-row gradients are applied lazily, yet exactly as dense ones would be."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.gradients import SparseRows
from recsys_rbm.train.trainer import Trainer


class RandomRowsObjective:
    """A stand-in model whose gradients touch a few random rows per batch (as the recommender's do)."""

    decayed = ("weights",)
    validation_measure = None
    validation_goal = "min"

    def __init__(self, sparse: bool, names_its_rows: bool = True) -> None:
        generator = torch.Generator().manual_seed(0)
        self.weights = torch.randn(30, 4, generator=generator, dtype=torch.float64)
        self.visible_bias = torch.randn(30, generator=generator, dtype=torch.float64)
        self.hidden_bias = torch.zeros(4, dtype=torch.float64)
        self.sparse, self.names_its_rows = sparse, names_its_rows
        self.seen: list[torch.Tensor] = []  # the weights as each batch read them
        self.expected: Iterator[torch.Tensor] | None = None  # … or what they must read

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights, "visible_bias": self.visible_bias, "hidden_bias": self.hidden_bias}

    def start(self, generator: torch.Generator) -> None:
        pass

    def batches(self, generator: torch.Generator) -> list[int]:
        return list(range(7))

    def rows_read(self, batch: int) -> dict[str, torch.Tensor]:
        rows = torch.randperm(30, generator=torch.Generator().manual_seed(batch))[: 3 + batch % 4]
        return {"weights": rows, "visible_bias": rows} if self.names_its_rows else {}

    def gradient(self, batch: int, steps: int, random: object) -> dict:
        draw = torch.Generator().manual_seed(batch)
        rows = torch.randperm(30, generator=draw)[: 3 + batch % 4]
        self.seen.append(self.weights.clone())
        if self.expected is not None:  # the rows this batch reads are current
            torch.testing.assert_close(self.weights[rows], next(self.expected)[rows], rtol=1e-12, atol=1e-12)
        weights = SparseRows(
            rows, torch.randn(rows.shape[0], 4, generator=draw, dtype=torch.float64), self.weights.shape
        )
        bias = SparseRows(
            rows, torch.randn(rows.shape[0], generator=draw, dtype=torch.float64), self.visible_bias.shape
        )
        gradient = {
            "weights": weights,
            "visible_bias": bias,
            "hidden_bias": torch.randn(4, generator=draw, dtype=torch.float64),
        }
        if not self.sparse:
            gradient["weights"], gradient["visible_bias"] = weights.dense(), bias.dense()
        return gradient

    def measure(self) -> dict:
        return {}

    def divergence(self, measures: dict) -> None:
        return None


@pytest.mark.parametrize("initial_momentum", [0.5, 0.0], ids=["momentum", "none-at-first"])
@pytest.mark.parametrize("names_its_rows", [True, False], ids=["rows-named", "read-whole"])
def test_lazy_momentum_on_touched_rows_equals_updating_every_row(initial_momentum, names_its_rows, row_kernels):
    """Changing learning rates and momenta across epochs (none at first: the singular transition), weight decay
    on one parameter only; every batch reads current rows, whether the objective names them or not."""
    config = TrainConfig(
        epochs=4,
        learning_rate=0.3,
        lr_schedule="linear",
        initial_momentum=initial_momentum,
        final_momentum=0.9,
        momentum_switch_epoch=2,
        weight_decay=0.05,
    )
    lazy, dense = RandomRowsObjective(sparse=True, names_its_rows=names_its_rows), RandomRowsObjective(sparse=False)
    Trainer(dense, config, make_generator(0)).fit()
    lazy.expected = iter(dense.seen)
    Trainer(lazy, config, make_generator(0)).fit()
    for name, parameter in dense.parameters().items():
        torch.testing.assert_close(lazy.parameters()[name], parameter, rtol=1e-12, atol=1e-12)
    assert not torch.equal(dense.weights, RandomRowsObjective(sparse=False).weights)  # training moved them


def test_sparse_rows_sum_repeated_rows_and_densify():
    rows = torch.tensor([4, 1, 4, 0])
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 20.0], [5.0, 6.0]])
    gradient = SparseRows.accumulate(rows, values, torch.Size((6, 2)))
    assert gradient.rows.tolist() == [0, 1, 4] and gradient.coalesced
    expected = torch.zeros(6, 2)
    expected[0], expected[1], expected[4] = (
        torch.tensor([5.0, 6.0]),
        torch.tensor([3.0, 4.0]),
        torch.tensor([11.0, 22.0]),
    )
    torch.testing.assert_close(gradient.dense(), expected)


def test_sparse_rows_with_repeated_rows_densify_and_coalesce_to_their_sums():
    rows = torch.tensor([4, 1, 4])
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 20.0]])
    repeated = SparseRows(rows, values, torch.Size((6, 2)), coalesced=False)
    expected = torch.zeros(6, 2)
    expected[1], expected[4] = torch.tensor([3.0, 4.0]), torch.tensor([11.0, 22.0])
    torch.testing.assert_close(repeated.dense(), expected)
    coalesced = repeated.coalesce()
    assert coalesced.coalesced and coalesced.rows.tolist() == [1, 4]
    torch.testing.assert_close(coalesced.dense(), expected)
