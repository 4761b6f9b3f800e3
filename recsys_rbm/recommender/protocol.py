"""What every recommender (the RBM and the baselines) offers, so one harness evaluates them all."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

import numpy as np

from recsys_rbm.data.ratings import Ratings


@runtime_checkable
class Recommender(Protocol):
    """A model fitted on training ratings that predicts ratings and ranks items, in inner indices.

    This is the evaluation harness's interface (tensor rows ``0..n-1`` of the split's id maps);
    people use a model's own API with their raw ids (e.g. ``RBMRecommender.predict``).
    """

    name: str

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        """Learn from ``train``; ``validation`` (same id space) may drive early stopping."""
        ...

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Expected ratings (on the data's scale, e.g. 1..5) for the (user, item) pairs; ``(N,) -> (N,)``."""
        ...

    def score_items(self, users: np.ndarray) -> np.ndarray:
        """Ranking scores of every item for each user, higher is better; ``(B,) -> (B, n_items)``."""
        ...
