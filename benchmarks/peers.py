"""The usual peers behind our :class:`~recsys_rbm.recommender.protocol.Recommender` protocol, for the benchmarks.

scikit-surprise (SVD, SVD++, KNNBaseline, BaselineOnly) and implicit (ALS) are used through their
public APIs when they are importable; nothing here installs them (``pip install -e '.[bench]'``).
Each adapter fits on inner indices and answers ``predict_indices`` / ``score_items``, so the
evaluation harness scores peers, baselines and the RBMs with the same metric code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Self

import numpy as np

from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.evaluation import ModelFactory, TrainOnValidationToo

SURPRISE_PEERS = ("svd", "svdpp", "knn", "baseline")
IMPLICIT_PEERS = ("als",)
ALL_PEERS = SURPRISE_PEERS + IMPLICIT_PEERS
INSTALL_HINT = "pip install scikit-surprise implicit"


class SurpriseAdapter:
    """A scikit-surprise algorithm as a :class:`Recommender`. Inner indices are used as surprise's raw ids.

    ``predict`` calls ``algo.predict(u, i).est`` per pair (surprise clips to the rating scale and
    uses its own fallback for unknown users or items: the global mean, plus whatever baseline
    part is known). ``score_items`` does the same for the whole catalogue (slow; not used for the
    peers' rating-only rows).
    """

    def __init__(self, name: str, make_algorithm: Callable[[], Any]) -> None:
        self.name = name
        self._make_algorithm = make_algorithm
        self.algorithm: Any = None
        self.n_items = 0

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        import pandas as pd
        from surprise import Dataset, Reader

        frame = pd.DataFrame({"user": train.users, "item": train.items, "rating": train.values})
        reader = Reader(rating_scale=(float(train.rating_values[0]), float(train.rating_values[-1])))
        trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
        self.algorithm = self._make_algorithm()
        self.algorithm.fit(trainset)
        self.n_items = train.n_items
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        predict = self.algorithm.predict
        return np.array([predict(int(u), int(i)).est for u, i in zip(users, items, strict=True)], dtype=np.float64)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        items = np.arange(self.n_items)
        return np.stack([self.predict_indices(np.full(self.n_items, u), items) for u in users])  # (B, n_items)


class ImplicitALSAdapter:
    """implicit's ``AlternatingLeastSquares`` as a :class:`Recommender` (ranking only).

    Trained on the binary "user rated this movie" matrix (every training rating is a 1, whatever
    its value; implicit turns it into confidence ``1 + α``). Feeding the rating values instead
    (confidence ``1 + α·r``) gives much the same ranking on u1 (NDCG@10 0.355–0.362 over seeds
    0–3, against 0.351–0.358 binary). It predicts no ratings: ``predict`` returns NaN, which the
    harness reports as "no RMSE". Ranking scores are ``user_factors @ item_factorsᵀ``.
    """

    def __init__(
        self, factors: int = 64, regularization: float = 0.01, iterations: int = 15, alpha: float = 1.0, seed: int = 0
    ) -> None:
        self.name = "ALS (implicit)"
        self.factors, self.regularization, self.iterations, self.alpha, self.seed = (
            factors,
            regularization,
            iterations,
            alpha,
            seed,
        )
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def fit(self, train: Ratings, validation: Ratings | None = None) -> Self:
        from implicit.als import AlternatingLeastSquares
        from scipy.sparse import csr_matrix

        user_items = csr_matrix(
            (np.ones(len(train), dtype=np.float32), (train.users, train.items)), shape=(train.n_users, train.n_items)
        )
        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            iterations=self.iterations,
            alpha=self.alpha,
            random_state=self.seed,
            use_gpu=False,
        )
        model.fit(user_items, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float64)  # (n_users, f)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float64)  # (n_items, f)
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(np.asarray(users).shape, np.nan)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        assert self.user_factors is not None and self.item_factors is not None
        return self.user_factors[np.asarray(users)] @ self.item_factors.T  # (B, n_items)


def importable(module: str) -> bool:
    """Whether ``module`` imports (a broken or missing install both count as absent)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def peer_factories(peers: list[str], seed: int) -> tuple[dict[str, ModelFactory], list[str]]:
    """Factories for the requested peers that can be imported, and messages about those that cannot."""
    factories: dict[str, ModelFactory] = {}
    missing: list[str] = []
    has_surprise, has_implicit = importable("surprise"), importable("implicit.als")
    wanted_surprise = [p for p in peers if p in SURPRISE_PEERS]
    if wanted_surprise and not has_surprise:
        missing.append(f"scikit-surprise is not installed: skipping {', '.join(wanted_surprise)} ({INSTALL_HINT})")
    if "als" in peers and not has_implicit:
        missing.append(f"implicit is not installed: skipping als ({INSTALL_HINT})")
    if has_surprise:
        import surprise

        algorithms: dict[str, tuple[str, Callable[[], Any]]] = {
            "baseline": ("BaselineOnly", lambda: surprise.BaselineOnly(verbose=False)),
            "svd": ("SVD", lambda: surprise.SVD(random_state=seed)),
            "svdpp": ("SVD++", lambda: surprise.SVDpp(random_state=seed, cache_ratings=True)),
            "knn": (
                "KNNBaseline",
                lambda: surprise.KNNBaseline(
                    sim_options={"name": "pearson_baseline", "user_based": False},
                    bsl_options={"method": "als"},
                    verbose=False,
                ),
            ),
        }
        for key in SURPRISE_PEERS:
            if key in peers:
                label, make = algorithms[key]
                factories[label] = lambda label=label, make=make: TrainOnValidationToo(SurpriseAdapter(label, make))
    if has_implicit and "als" in peers:
        factories["ALS (implicit)"] = lambda: TrainOnValidationToo(ImplicitALSAdapter(seed=seed))
    return factories, missing
