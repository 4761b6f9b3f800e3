"""Early stopping: ``patience`` epochs without a better validation measure, never before ``patience_updates`` updates.

A scripted objective reports a given validation curve, one value an epoch, so the epoch at which the
trainer stops, and the one it keeps, follow from the rule alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import torch

from recsys_rbm.rbm.rng import RandomSource
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.gradients import Gradient
from recsys_rbm.train.trainer import Trainer


class ScriptedCurve:
    """An objective with one parameter, no gradient and the validation curve ``curve`` (higher is better)."""

    decayed: tuple[str, ...] = ()
    validation_measure = "score"
    validation_goal = "max"

    def __init__(self, curve: list[float], batches_per_epoch: int) -> None:
        self.curve, self.batches_per_epoch = curve, batches_per_epoch
        self.theta = torch.zeros(1)
        self.measured = 0

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"theta": self.theta}

    def start(self, generator: torch.Generator) -> None:
        pass

    def batches(self, generator: torch.Generator) -> Iterable[int]:
        return range(self.batches_per_epoch)

    def rows_read(self, batch: int) -> dict[str, torch.Tensor]:
        return {}

    def gradient(self, batch: int, steps: int, random: RandomSource) -> Gradient:
        return {"theta": torch.ones(1)}  # θ counts the updates: θ = learning rate · updates (no momentum)

    def measure(self) -> dict[str, float | None]:
        value = self.curve[min(self.measured, len(self.curve) - 1)]
        self.measured += 1
        return {"score": value}

    def divergence(self, measures: dict[str, float | None]) -> str | None:
        return None


def train(curve: list[float], batches_per_epoch: int, patience: int, patience_updates: int) -> Trainer:
    config = TrainConfig(
        epochs=len(curve),
        batch_size=1,
        learning_rate=1.0,
        initial_momentum=0.0,
        final_momentum=0.0,
        weight_decay=0.0,
        patience=patience,
        patience_updates=patience_updates,
    )
    trainer = Trainer(ScriptedCurve(curve, batches_per_epoch), config, torch.Generator().manual_seed(0))
    trainer.fit()
    return trainer


RISING_THEN_FLAT = [0.1, 0.2, 0.3, 0.4] + [0.35] * 40  # best at epoch 4


def test_training_stops_patience_epochs_after_the_best_and_keeps_the_best():
    trainer = train(RISING_THEN_FLAT, batches_per_epoch=10, patience=5, patience_updates=0)
    assert len(trainer.history) == 4 + 5
    assert trainer.best_epoch == 4 and trainer.best_measure == pytest.approx(0.4)
    assert float(trainer.objective.theta) == pytest.approx(4 * 10)  # the parameters of the best epoch


def test_the_update_floor_counts_from_the_start_not_from_the_best():
    """Past the floor, patience alone decides: a late best is not followed by the floor again."""
    trainer = train(RISING_THEN_FLAT, batches_per_epoch=10, patience=5, patience_updates=60)
    assert len(trainer.history) == 9  # 90 updates ≥ 60 by then: the floor is met, patience ends it
    trainer = train(RISING_THEN_FLAT, batches_per_epoch=10, patience=5, patience_updates=200)
    assert len(trainer.history) == 20  # never before 200 updates, then at once (16 epochs past the best)


def test_a_small_table_trains_through_its_early_plateau():
    """A flat start, then an improvement: the floor keeps training until the improvement comes."""
    curve = [0.2] * 12 + [0.3, 0.4] + [0.35] * 40  # best at epoch 14
    assert len(train(curve, batches_per_epoch=2, patience=5, patience_updates=0).history) == 6  # stops on the plateau
    trainer = train(curve, batches_per_epoch=2, patience=5, patience_updates=30)
    assert trainer.best_epoch == 14 and len(trainer.history) == 19
