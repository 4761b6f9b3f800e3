"""Baselines on small generated ratings, and the evaluation harness end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.baselines import EASE, BiasBaseline, GlobalMean, MostPopular, fit_biases
from recsys_rbm.recommender.evaluation import (
    EvaluationReport,
    ProgressEvent,
    TrainOnValidationToo,
    concatenate,
    evaluate,
    rank_users,
)
from recsys_rbm.recommender.protocol import Recommender
from recsys_rbm.recommender.splits import Split

STARS = np.arange(1.0, 6.0)  # a 1..5 scale


def make_ratings(users: np.ndarray, items: np.ndarray, values: np.ndarray, n_users: int, n_items: int, scale=STARS):
    levels = np.searchsorted(scale, values)
    assert np.allclose(scale[levels], values), "values must lie on the scale"
    return Ratings(
        np.asarray(users, dtype=np.int64),
        np.asarray(items, dtype=np.int64),
        levels.astype(np.int64),
        IdMap(np.arange(1, n_users + 1)),
        IdMap(np.arange(1, n_items + 1)),
        np.asarray(scale, dtype=np.float64),
    )


def planted(seed: int = 0, n_users: int = 80, n_items: int = 50, density: float = 0.5, noise: float = 0.5):
    """Ratings ``round(3 + b_u + b_i + ε)`` clipped to 1..5, with the planted offsets."""
    rng = np.random.default_rng(seed)
    b_user = rng.normal(0, 0.6, n_users)
    b_item = rng.normal(0, 0.8, n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    values = np.clip(np.rint(3 + b_user[users] + b_item[items] + rng.normal(0, noise, users.size)), 1, 5)
    return make_ratings(users, items, values, n_users, n_items), b_user, b_item


def split_of(ratings: Ratings, seed: int, name: str) -> Split:
    rng = np.random.default_rng(seed)
    part = rng.choice(3, size=len(ratings), p=[0.75, 0.05, 0.2])  # train / validation / test
    return Split(
        name=name,
        description="generated",
        train=ratings.subset(part == 0),
        validation=ratings.subset(part == 1),
        test=ratings.subset(part == 2),
    )


# ---------------------------------------------------------------------------------------------
# Baselines


@pytest.mark.parametrize("model", [GlobalMean(), BiasBaseline(), MostPopular()])
def test_baselines_implement_the_protocol(model: Recommender) -> None:
    assert isinstance(model, Recommender)
    ratings, _, _ = planted()
    model.fit(ratings)
    assert model.predict_indices(np.array([0, 1]), np.array([2, 3])).shape == (2,)
    assert model.score_items(np.array([0, 1, 2])).shape == (3, ratings.n_items)


def test_global_mean() -> None:
    ratings = make_ratings([0, 0, 1], [0, 1, 1], np.array([1.0, 2.0, 5.0]), 2, 3)
    model = GlobalMean().fit(ratings)
    np.testing.assert_allclose(model.predict_indices(np.array([0, 1]), np.array([2, 0])), [8 / 3, 8 / 3])


def test_one_bias_pass_by_hand() -> None:
    # μ = 3; item 0: residuals (+2, 0) → b_0 = 2 / (λ_i + 2); item 1: residual −2 → b_1 = −2 / (λ_i + 1).
    ratings = make_ratings([0, 1, 1], [0, 0, 1], np.array([5.0, 3.0, 1.0]), 2, 2)
    mu, b_user, b_item = fit_biases(ratings, lambda_item=2.0, lambda_user=1.0, n_passes=1)
    assert mu == pytest.approx(3.0)
    np.testing.assert_allclose(b_item, [2 / 4, -2 / 3])
    # user 0: 5 − 3 − 1/2 over (1 + 1); user 1: (3 − 3 − 1/2) + (1 − 3 + 2/3) over (1 + 2).
    np.testing.assert_allclose(b_user, [1.5 / 2, (-0.5 - 4 / 3) / 3])


def test_biases_recover_planted_offsets_exactly_on_complete_noiseless_data() -> None:
    # Every user rates every item, r = μ + b_u + b_i with centred offsets: one undamped pass is exact.
    scale = np.round(np.arange(-2.0, 8.0001, 0.25), 2)
    b_user = np.array([-0.5, 0.0, 0.25, 0.25])
    b_item = np.array([1.0, -0.75, 0.0, -0.25])
    users, items = (grid.ravel() for grid in np.meshgrid(np.arange(4), np.arange(4), indexing="ij"))
    values = 3.0 + b_user[users] + b_item[items]
    ratings = make_ratings(users, items, values, 4, 4, scale=scale)
    mu, fitted_user, fitted_item = fit_biases(ratings, lambda_item=0.0, lambda_user=0.0, n_passes=1)
    assert mu == pytest.approx(3.0)
    np.testing.assert_allclose(fitted_user, b_user, atol=1e-12)
    np.testing.assert_allclose(fitted_item, b_item, atol=1e-12)


def test_biases_recover_planted_offsets_on_noisy_sparse_data() -> None:
    ratings, b_user, b_item = planted(seed=3)
    model = BiasBaseline().fit(ratings)
    assert np.corrcoef(model.item_bias, b_item)[0, 1] > 0.9
    assert np.corrcoef(model.user_bias, b_user)[0, 1] > 0.85
    # and it predicts better than the global mean on fresh draws from the same model
    test, _, _ = planted(seed=3, noise=0.5)
    assert np.sqrt(np.mean((model.predict_indices(test.users, test.items) - test.values) ** 2)) < np.std(test.values)


def test_damping_shrinks_rarely_rated_items_towards_zero() -> None:
    # Items 0 and 1 both have all ratings 5 (μ below); item 1 has one rating, item 0 twenty.
    users = np.concatenate([np.arange(20), [0], np.arange(20)])
    items = np.concatenate([np.zeros(20, int), [1], np.full(20, 2)])
    values = np.concatenate([np.full(21, 5.0), np.full(20, 1.0)])
    model = BiasBaseline(lambda_item=25.0, n_passes=1).fit(make_ratings(users, items, values, 20, 3))
    assert model.item_bias[0] > 0 and model.item_bias[1] > 0
    assert model.item_bias[1] < 0.2 * model.item_bias[0]


def test_bias_predictions_are_clipped_and_unknown_ids_fall_back() -> None:
    ratings, _, _ = planted()
    model = BiasBaseline(lambda_item=0.0, lambda_user=0.0).fit(ratings)
    predictions = model.predict_indices(np.repeat(np.arange(ratings.n_users), 3), np.tile([0, 1, 2], ratings.n_users))
    assert predictions.min() >= 1.0 and predictions.max() <= 5.0
    unknown = model.predict_indices(np.array([ratings.n_users + 5]), np.array([ratings.n_items + 5]))
    assert unknown[0] == pytest.approx(np.clip(model.mean, 1, 5))


def test_bias_tuning_picks_from_the_grid_by_validation() -> None:
    ratings, _, _ = planted(seed=5)
    split = split_of(ratings, 0, "s")
    model = BiasBaseline(tune=True, tune_grid=(0.0, 5.0, 50.0)).fit(split.train, split.validation)
    assert model.lambda_item in (0.0, 5.0, 50.0) and model.lambda_user in (0.0, 5.0, 50.0)


def test_most_popular_ranks_by_training_count() -> None:
    # item 2 rated 3 times, item 0 twice, item 1 once, item 3 never
    ratings = make_ratings([0, 1, 2, 0, 1, 2], [2, 2, 2, 0, 0, 1], np.array([1.0, 1, 1, 5, 5, 3]), 3, 4)
    model = MostPopular().fit(ratings)
    scores = model.score_items(np.array([0, 1]))
    assert np.argsort(-scores[0], kind="stable").tolist() == [2, 0, 1, 3]
    np.testing.assert_array_equal(scores[0], scores[1])
    mu = 16 / 6
    np.testing.assert_allclose(model.predict_indices(np.array([0, 0, 0, 0]), np.array([0, 1, 2, 3])), [5, 3, 1, mu])


def test_unfitted_models_say_so() -> None:
    with pytest.raises(RuntimeError, match="fitted"):
        BiasBaseline().predict_indices(np.array([0]), np.array([0]))


# ---------------------------------------------------------------------------------------------
# The harness


class NoRatings:
    """A ranker that predicts no ratings (NaN), like implicit-feedback ALS."""

    name = "ranker"

    def fit(self, train: Ratings, validation: Ratings | None = None) -> NoRatings:
        self.n_items = train.n_items
        return self

    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(np.asarray(users).shape, np.nan)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        return np.tile(np.arange(self.n_items, dtype=np.float64)[::-1], (len(users), 1))


def test_harness_reports_means_stds_and_counts(tmp_path: Path) -> None:
    ratings, _, _ = planted(seed=7, n_users=60, n_items=200, density=0.1)
    splits = [split_of(ratings, seed, f"fold{seed}") for seed in range(3)]
    events: list[ProgressEvent] = []
    report = evaluate(
        {"mean": GlobalMean, "biases": BiasBaseline, "ranker": NoRatings},
        splits,
        k=5,
        threshold=4,
        progress=events.append,
        rank=["biases", "ranker"],
    )
    assert report.models == ["mean", "biases", "ranker"]
    assert len(report.folds) == 9
    summary = report.summary()
    assert summary["mean"]["rmse"].n == 3
    assert summary["biases"]["rmse"].mean < summary["mean"]["rmse"].mean
    assert summary["biases"]["rmse"].std == pytest.approx(
        np.std([f.rmse for f in report.results_for("biases")], ddof=1)
    )
    assert "ndcg" not in summary["mean"]  # not ranked
    assert summary["ranker"]["rmse"] is None  # predicts no ratings
    assert 0 <= summary["biases"]["ndcg"].mean <= 1
    # cold counts come from the split: 200 items at density 0.1 leave some test items unseen
    for facts, split in zip(report.splits, splits, strict=True):
        seen = np.bincount(split.train.items, minlength=split.train.n_items) > 0
        assert facts["cold_test_item_ratings"] == int((~seen[split.test.items]).sum())
        assert facts["test"] == len(split.test)
    assert sum(facts["cold_test_ratings"] for facts in report.splits) > 0
    assert all(
        f.n_cold == facts["cold_test_ratings"]
        for f in report.folds
        for facts in report.splits
        if f.split == facts["name"]
    )
    assert [e.stage for e in events[:4]] == ["fit", "predict", "done", "fit"]
    assert events[-1].fold is not None and events[-1].split_index == 2

    path = report.to_json(tmp_path / "out" / "report.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]  # no temporary left over
    data = json.loads(path.read_text())
    assert data["k"] == 5 and data["summary"][1]["model"] == "biases"
    assert data["summary"][1]["rmse"]["n"] == 3
    loaded = EvaluationReport.from_json(path)
    assert loaded.folds == report.folds
    assert loaded.to_dict() == data


def test_rank_users_masks_training_items() -> None:
    # A model that would put training items first must have them removed from its lists.
    ratings = make_ratings([0, 0, 0, 0], [0, 1, 2, 3], np.array([5.0, 5, 5, 4]), 1, 6)
    seen, test = ratings.subset(np.array([0, 1])), ratings.subset(np.array([2, 3]))
    result = rank_users(NoRatings().fit(seen), seen, test, k=2)  # scores favour low indices
    assert result.precision == 1.0  # items 2 and 3, not the training items 0 and 1


def test_train_on_validation_too() -> None:
    ratings, _, _ = planted(seed=2)
    split = split_of(ratings, 1, "s")
    wrapped = TrainOnValidationToo(GlobalMean()).fit(split.train, split.validation)
    both = concatenate(split.train, split.validation)
    assert wrapped.model.mean == pytest.approx(both.values.mean())
    assert wrapped.name == "global mean"


def test_report_without_relevant_test_items_still_writes_json(tmp_path: Path) -> None:
    ratings, _, _ = planted(seed=4)
    split = split_of(ratings, 0, "low")
    low = split.test.subset(split.test.values < 4)  # nothing relevant at threshold 4
    split = Split(name="low", description="", train=split.train, validation=split.validation, test=low)
    report = evaluate({"biases": BiasBaseline}, [split], k=3)
    assert report.folds[0].ranking.n_users_evaluated == 0
    assert report.summary()["biases"]["ndcg"] is None
    loaded = EvaluationReport.from_json(report.to_json(tmp_path / "r.json"))
    assert math.isnan(loaded.folds[0].ranking.ndcg)


# --- EASE -------------------------------------------------------------------------------------------------


def test_ease_weights_solve_each_items_ridge_regression_on_the_others() -> None:
    """Column j of B minimises ‖X_j − X_{−j} b‖² + λ‖b‖² (diag(B) = 0): checked against a direct solve."""
    ratings, _, _ = planted(1, n_users=60, n_items=12, density=0.4)
    model = EASE(lambdas=(7.0,)).fit(ratings)
    x = np.zeros((60, 12))
    x[ratings.users, ratings.items] = 1.0
    for j in range(12):
        others = [i for i in range(12) if i != j]
        a = x[:, others]
        direct = np.linalg.solve(a.T @ a + 7.0 * np.eye(11), a.T @ x[:, j])
        np.testing.assert_allclose(model.weights[others, j], direct, atol=1e-10)
        assert model.weights[j, j] == 0.0
    np.testing.assert_allclose(model.score_items(np.arange(60)), x @ model.weights)


def test_ease_min_users_models_only_items_with_enough_users() -> None:
    ratings, _, _ = planted(2, n_users=60, n_items=20, density=0.3)
    counts = np.bincount(ratings.items, minlength=20)
    least = int(np.sort(counts)[5]) + 1  # leaves at least six items out
    rare = counts < least
    model = EASE(lambdas=(5.0,), min_users=least).fit(ratings)
    scores = model.score_items(np.arange(60))
    assert scores.shape == (60, 20) and rare.sum() >= 6
    assert np.isneginf(scores[:, rare]).all() and np.isfinite(scores[:, ~rare]).all()
    kept = ratings.subset(~rare[ratings.items])
    alone = EASE(lambdas=(5.0,)).fit(kept).score_items(np.arange(60))  # EASE on the kept items alone
    np.testing.assert_allclose(scores[:, ~rare], alone[:, ~rare], atol=1e-10)


def test_ease_chooses_lambda_on_validation_then_refits_on_everything() -> None:
    split = split_of(planted(3)[0], 0, "s")
    model = EASE(lambdas=(1.0, 30.0, 1000.0)).fit(split.train, split.validation)
    assert set(model.validation_ndcg) == {1.0, 30.0, 1000.0}
    assert model.chosen_lambda == max(model.validation_ndcg, key=model.validation_ndcg.get)
    both = concatenate(split.train, split.validation)
    refitted = EASE(lambdas=(model.chosen_lambda,)).fit(both)
    np.testing.assert_allclose(model.weights, refitted.weights)
