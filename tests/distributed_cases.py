"""Small training runs for the data-parallel test, in one process or as one of several under torchrun.

``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_cases.py OUT`` runs
:func:`run_cases` in each process and saves its results to ``OUT/rank<r>.pt``; the test runs the same
cases in one process and compares. The global batches are chosen so that their last batch is
short: with 2 processes one of them gets a single case, or none.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import DenseObjective
from recsys_rbm.train.distributed import DenseSharding, Parallel, data_parallel, process_group
from recsys_rbm.train.trainer import Trainer

#: name -> (persistent, n_chains): 49 images in batches of 12 end with a batch of 1.
DENSE_CASES = {"dense CD-2": (False, 0), "dense PCD-1": (True, 0), "dense PCD-1, 5 chains": (True, 5)}
#: name -> (model, mode, conditional, gradient scale, batch size): 40 items or 60 users.
RECOMMENDER_CASES = {
    "ratings I-RBM, conditional, raters": ("ratings", "item", True, "raters", 13),  # 13·3 + 1 items
    "joint U-RBM, cases": ("joint", "user", False, "cases", 7),  # 7·8 + 4 users
}


def dense_data(seed: int = 0) -> torch.Tensor:
    """49 binary images of 16 pixels from two prototypes with noise; float64."""
    generator = make_generator(seed)
    prototypes = (torch.rand(2, 16, generator=generator) < 0.5).double()
    which = torch.arange(49) % 2
    flips = (torch.rand(49, 16, generator=generator) < 0.1).double()
    return (prototypes[which] - flips).abs()


def train_dense(parallel: Parallel | None, persistent: bool, n_chains: int) -> dict[str, torch.Tensor]:
    data = dense_data()
    steps = 1 if persistent else 2
    config = TrainConfig(
        epochs=3, batch_size=12, learning_rate=0.1, cd_k=steps, persistent=persistent, n_chains=n_chains, seed=5
    )
    generator = make_generator(config.seed)
    rbm = RBM.initialise(BernoulliUnits(16), 8, generator, visible_mean=data.mean(0), dtype=torch.float64)
    objective, all_reduce = DenseObjective(rbm, data, config, validation=data[:10]), None
    if parallel is not None:
        objective, all_reduce = data_parallel(objective, parallel, DenseSharding())
    Trainer(objective, config, generator, all_reduce).fit()
    return {name: p.clone() for name, p in rbm.parameters().items()}


def tastes(seed: int = 0, n_users: int = 60, n_items: int = 40) -> tuple[Ratings, Ratings]:
    """Two user groups with opposite tastes over two item groups: (training, validation) ratings 1..5."""
    rng = np.random.default_rng(seed)
    likes = (np.arange(n_users)[:, None] % 2) == (np.arange(n_items)[None, :] % 2)
    values = np.where(likes, rng.choice([4, 5], (n_users, n_items)), rng.choice([1, 2], (n_users, n_items)))
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    ratings = Ratings(
        users.astype(np.int64),
        items.astype(np.int64),
        (values[users, items] - 1).astype(np.int64),
        IdMap(np.arange(1, n_users + 1), "user"),
        IdMap(np.arange(1, n_items + 1), "movie"),
        np.arange(1.0, 6.0),
    )
    held_out = rng.random(len(ratings)) < 0.1
    return ratings.subset(~held_out), ratings.subset(held_out)


def train_recommender(parallel: Parallel | None, case: tuple[str, str, bool, str, int]) -> dict[str, Any]:
    model, mode, conditional, scale, batch_size = case
    config = RecommenderConfig(
        kind=model,
        mode=mode,
        conditional=conditional,
        gradient_scale=scale,
        hidden=6,
        epochs=4,
        batch_size=batch_size,
        learning_rate=0.05,
        cd_schedule=((0, 1), (2, 2)),
        patience=10,
        seed=3,
    )
    train, validation = tastes()
    fitted = RBMRecommender(config).fit(train, validation, parallel=parallel)
    state = fitted.scorer.state
    parameters = {"weights": state.weights, "visible_bias": state.visible_bias, "hidden_bias": state.hidden_bias}
    if state.conditional is not None:
        parameters["conditional_weights"] = state.conditional
    return {
        "parameters": {name: p.detach().clone() for name, p in parameters.items()},
        "measures": [record.measures for record in fitted.history],
        "best_epoch": fitted.best_epoch,
    }


def run_cases(parallel: Parallel | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, (persistent, n_chains) in DENSE_CASES.items():
        results[name] = {"parameters": train_dense(parallel, persistent, n_chains)}
    results["dense CD-2, again"] = {"parameters": train_dense(parallel, False, 0)}
    for name, case in RECOMMENDER_CASES.items():
        results[name] = train_recommender(parallel, case)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    with process_group("cpu") as group:
        assert group is not None, "run this under torchrun with several processes"
        outcome = run_cases(group)
        torch.save(outcome, Path(sys.argv[1]) / f"rank{group.rank}.pt")
