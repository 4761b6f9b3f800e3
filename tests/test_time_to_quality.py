"""benchmarks/time_to_quality.py reads a validation curve right: the first best epoch, the first within 1%."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from time_to_quality import time_to_quality


def test_first_best_and_first_within_one_percent_on_a_made_up_curve() -> None:
    epochs = [1, 2, 3, 4, 5, 6, 7]
    ndcg = [0.10, 0.30, 0.3962, 0.399, 0.400, 0.400, 0.380]  # within 1%: ≥ 0.99 · 0.400 = 0.396
    seconds = [1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5]
    curve = time_to_quality(epochs, ndcg, seconds)
    assert curve.best_ndcg == pytest.approx(0.400)
    assert (curve.best_epoch, curve.best_seconds) == (5, 7.5)  # the first of the two epochs at the best
    assert (curve.near_epoch, curve.near_seconds) == (3, 4.5)
    assert curve.stopped_epoch == 7


def test_just_outside_one_percent_does_not_count() -> None:
    curve = time_to_quality([1, 2, 3], [0.3959, 0.40, 0.39], [1.0, 2.0, 3.0])
    assert (curve.near_epoch, curve.best_epoch) == (2, 2)
    assert time_to_quality([1, 2], [0.3959, 0.40], [1.0, 2.0], tolerance=0.02).near_epoch == 1


def test_a_curve_of_one_epoch_and_an_empty_one() -> None:
    curve = time_to_quality([1], [0.25], [2.0])
    assert (curve.best_epoch, curve.near_epoch, curve.stopped_epoch) == (1, 1, 1)
    with pytest.raises(ValueError, match="at least one epoch"):
        time_to_quality([], [], [])
