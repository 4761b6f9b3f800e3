"""The trainer's update rule: sparse-row gradients are applied lazily, yet exactly as dense ones would be."""

from __future__ import annotations

import pytest
import torch

from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.trainer import SparseRows, Trainer


class RandomRowsObjective:
    """A stand-in model whose gradients touch a few random rows per batch (as the recommender's do)."""

    decayed = ("weights",)
    validation_measure = None
    validation_goal = "min"

    def __init__(self, sparse: bool) -> None:
        generator = torch.Generator().manual_seed(0)
        self.weights = torch.randn(30, 4, generator=generator, dtype=torch.float64)
        self.visible_bias = torch.randn(30, generator=generator, dtype=torch.float64)
        self.hidden_bias = torch.zeros(4, dtype=torch.float64)
        self.sparse = sparse

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights, "visible_bias": self.visible_bias, "hidden_bias": self.hidden_bias}

    def start(self, generator: torch.Generator) -> None:
        pass

    def batches(self, generator: torch.Generator) -> list[int]:
        return list(range(7))

    def gradient(self, batch: int, steps: int, random: object) -> dict:
        draw = torch.Generator().manual_seed(batch)
        rows = torch.randperm(30, generator=draw)[: 3 + batch % 4]
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


@pytest.mark.parametrize("eigenbasis", [True, False], ids=["eigenbasis", "row-clocks"])
def test_lazy_momentum_on_touched_rows_equals_updating_every_row(eigenbasis):
    """Changing learning rates and momenta across epochs, weight decay on one parameter only."""
    config = TrainConfig(
        epochs=4,
        learning_rate=0.3,
        lr_schedule="linear",
        initial_momentum=0.5,
        final_momentum=0.9,
        momentum_switch_epoch=2,
        weight_decay=0.05,
    )
    lazy, dense = RandomRowsObjective(sparse=True), RandomRowsObjective(sparse=False)
    trainer = Trainer(lazy, config, make_generator(0))
    trainer._lazy.prefer_eigenbasis = eigenbasis
    trainer.fit()
    Trainer(dense, config, make_generator(0)).fit()
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
