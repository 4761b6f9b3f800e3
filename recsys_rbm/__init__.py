"""recsys_rbm: restricted Boltzmann machines on the GPU and the CPU, and a recommender built on them.

``from recsys_rbm import RBMRecommender`` gives the recommender (raw ids in and out). The names
below are imported on first use (PEP 562), so importing the package alone stays light: the
torch-free ``rbm-rec recommend`` path imports submodules of this package without pulling in torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "RBMRecommender": "recsys_rbm.recommender.model",
    "RecommenderConfig": "recsys_rbm.recommender.config",
    "TopItems": "recsys_rbm.recommender.results",
    "ScoredItem": "recsys_rbm.recommender.results",
    "Ratings": "recsys_rbm.data.ratings",
    "read_ratings_table": "recsys_rbm.data.tables",
    "RBM": "recsys_rbm.rbm.model",
    "TrainConfig": "recsys_rbm.train.config",
    "Trainer": "recsys_rbm.train.trainer",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recsys_rbm' has no attribute {name!r}")
