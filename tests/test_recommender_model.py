"""The MovieLens RBM: sparse mathematics against dense references, and a contract suite over every variant."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_tools import rewrite_metadata

from recsys_rbm import functional as fn
from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.errors import CheckpointError, ConfigError, DataError, RecsysRBMError
from recsys_rbm.model import RBM
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import (
    CaseMatrix,
    Parameters,
    RBMRecommender,
    contrastive_statistics,
    hidden_probability,
    negative_levels,
    rated_logits,
)
from recsys_rbm.recommender.protocol import Recommender
from recsys_rbm.recommender.scoring import ScoringModel
from recsys_rbm.recommender.synthetic import long_tailed_ratings
from recsys_rbm.rng import UniformStream
from recsys_rbm.training import contrastive_gradient
from recsys_rbm.units import SoftmaxUnits

STARS = np.arange(1.0, 6.0)
VARIANTS = [("user", False), ("user", True), ("item", False), ("item", True)]
VARIANT_IDS = [f"{mode}{'-conditional' if conditional else ''}" for mode, conditional in VARIANTS]


# --- generated data -------------------------------------------------------------------------------
def dense_tastes(seed: int = 0, n_users: int = 60, n_items: int = 40, density: float = 0.5):
    """Two user groups with opposite tastes over two item groups: (values (U, I) in 1..5, observed mask)."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(n_users) % 2
    item_group = np.arange(n_items) % 2
    likes = user_group[:, None] == item_group[None, :]
    values = np.where(likes, rng.choice([4.0, 5.0], (n_users, n_items)), rng.choice([1.0, 2.0], (n_users, n_items)))
    noisy = rng.random((n_users, n_items)) < 0.1
    values[noisy] = 3.0
    return values, rng.random((n_users, n_items)) < density


def ratings_from_dense(values: np.ndarray, observed: np.ndarray) -> Ratings:
    """Ratings of the observed entries only (raw ids 1..n); what sits in unobserved entries is never read."""
    users, items = np.nonzero(observed)
    return Ratings(
        users.astype(np.int64),
        items.astype(np.int64),
        (values[users, items] - 1).astype(np.int64),
        IdMap(np.arange(1, values.shape[0] + 1), "user"),
        IdMap(np.arange(1, values.shape[1] + 1), "movie"),
        STARS.copy(),
    )


def split_three(ratings: Ratings, seed: int = 1) -> tuple[Ratings, Ratings, Ratings]:
    part = np.random.default_rng(seed).choice(3, size=len(ratings), p=[0.7, 0.1, 0.2])
    return ratings.subset(part == 0), ratings.subset(part == 1), ratings.subset(part == 2)


def small_config(mode: str, conditional: bool, **overrides) -> RecommenderConfig:
    settings = dict(
        mode=mode,
        conditional=conditional,
        n_hidden=8,
        epochs=40,
        batch_size=10,
        learning_rate=0.05,
        cd_schedule=((0, 1), (20, 3)),
        patience=40,
        seed=3,
    )
    return RecommenderConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def data() -> tuple[Ratings, Ratings, Ratings]:
    return split_three(ratings_from_dense(*dense_tastes()))


@pytest.fixture(scope="module", params=VARIANTS, ids=VARIANT_IDS)
def fitted(request, data) -> RBMRecommender:
    train, validation, _ = data
    mode, conditional = request.param
    return RBMRecommender(small_config(mode, conditional)).fit(train, validation)


def rmse(predicted: np.ndarray, ratings: Ratings) -> float:
    return float(np.sqrt(np.mean((predicted - ratings.values) ** 2)))


# --- the contract, over every variant ------------------------------------------------------------
class TestContract:
    def test_implements_the_protocol(self, fitted):
        assert isinstance(fitted, Recommender)
        assert fitted.name.startswith("U-RBM" if fitted.config.mode == "user" else "I-RBM")

    def test_distributions_are_proper(self, fitted, data):
        _, _, test = data
        distribution = fitted.predict_distribution(test.users, test.items)
        assert distribution.shape == (len(test), 5)
        assert (distribution >= 0).all()
        np.testing.assert_allclose(distribution.sum(1), 1.0, atol=1e-9)
        expected = fitted.predict(test.users, test.items)
        assert ((expected >= 1.0) & (expected <= 5.0)).all()
        np.testing.assert_allclose(expected, distribution @ STARS)
        np.testing.assert_allclose(fitted.probability_at_least(test.users, test.items), distribution[:, 3:].sum(1))
        catalogue = fitted.catalogue_distribution(np.arange(fitted.n_users))
        np.testing.assert_allclose(catalogue.sum(-1), 1.0, atol=1e-9)

    def test_catalogue_agrees_with_pairs(self, fitted, data):
        _, _, test = data
        scores = fitted.score_items(np.arange(fitted.n_users), score="expected")
        np.testing.assert_allclose(scores[test.users, test.items], fitted.predict(test.users, test.items), atol=1e-6)
        high = fitted.score_items(np.arange(fitted.n_users), score="p_high")
        np.testing.assert_allclose(
            high[test.users, test.items], fitted.probability_at_least(test.users, test.items), atol=1e-6
        )
        rated_high = fitted.score_items(np.arange(fitted.n_users))  # the default: (n_i + 1)·P(r ≥ 4)
        n_ratings = np.bincount(data[0].items, minlength=fitted.n_items)
        np.testing.assert_allclose(rated_high, high * (n_ratings + 1.0))

    def test_missing_entries_never_influence_anything(self, fitted, data):
        """Rewriting every unobserved entry of the dense matrix changes nothing: they are never read."""
        values, observed = dense_tastes()
        scrambled = values.copy()
        scrambled[~observed] = np.random.default_rng(9).choice(STARS, int((~observed).sum()))
        original, rewritten = (split_three(ratings_from_dense(v, observed)) for v in (values, scrambled))
        config = replace(fitted.config, epochs=4)
        first = RBMRecommender(config).fit(original[0], original[1])
        second = RBMRecommender(config).fit(rewritten[0], rewritten[1])
        np.testing.assert_array_equal(
            first.catalogue_distribution(np.arange(first.n_users)),
            second.catalogue_distribution(np.arange(second.n_users)),
        )

    def test_negative_phase_touches_only_rated_entries(self, fitted, data):
        """The reconstruction resamples exactly the rated entries; unrated rows get no gradient at all."""
        params, matrix = fitted.params, fitted._matrix
        batch = matrix.gather(torch.arange(min(5, matrix.n_cases)))
        levels = negative_levels(params, batch, 3, UniformStream(0))
        assert levels.shape == batch.levels.shape
        gradient = contrastive_statistics(params, batch, levels)
        k = params.n_levels
        untouched = torch.ones(params.n_units, dtype=torch.bool)
        untouched[batch.units] = False
        assert untouched.any()
        assert (gradient.weights.view(params.n_units, k, -1)[untouched] == 0).all()
        assert (gradient.visible_bias.view(params.n_units, k)[untouched] == 0).all()
        if gradient.conditional is not None:
            assert (gradient.conditional[untouched] == 0).all()

    def test_fold_in_reproduces_training_prediction(self, fitted):
        user = 7
        items, levels = fitted.rated_items(user)
        if fitted.config.mode == "item":
            with pytest.raises(RecsysRBMError, match="user-based model"):
                fitted.fold_in(items, levels)
            return
        folded = fitted.fold_in(items, levels)
        np.testing.assert_allclose(folded, fitted.catalogue_distribution(np.asarray([user]))[0], atol=1e-6)

    def test_numpy_path_matches_torch(self, fitted, tmp_path):
        path = fitted.save(tmp_path / "model")
        fast = ScoringModel.load(path)
        users = np.arange(fitted.n_users)
        np.testing.assert_allclose(
            fast.catalogue_distribution(users), fitted.catalogue_distribution(users), atol=1e-5, rtol=0
        )
        np.testing.assert_allclose(
            fast.score_items(users[:5], "p_high"), fitted.score_items(users[:5], "p_high"), atol=1e-5
        )
        _, scores_fast = fast.recommend(users[:5], n=5)
        _, scores_torch = fitted.recommend(users[:5], n=5)
        np.testing.assert_allclose(scores_fast, scores_torch, atol=1e-5)
        _, cosines_fast = fast.similar_items(0, n=5)
        _, cosines_torch = fitted.similar_items(0, n=5)
        np.testing.assert_allclose(cosines_fast, cosines_torch, atol=1e-5)
        if fitted.config.mode == "user":
            items, levels = np.asarray([0, 3, 8]), np.asarray([4, 0, 2])
            np.testing.assert_allclose(fast.fold_in(items, levels), fitted.fold_in(items, levels), atol=1e-5)
        else:
            with pytest.raises(RecsysRBMError, match="user-based model"):
                fast.fold_in([0], [4])

    def test_save_load_round_trip(self, fitted, data, tmp_path):
        _, _, test = data
        movies = {"1": {"title": "One (1990)", "genres": ["Drama"]}}
        path = fitted.save(tmp_path / "model", {"dataset": "generated", "movies": movies})
        loaded = RBMRecommender.load(path)
        np.testing.assert_array_equal(loaded.predict(test.users, test.items), fitted.predict(test.users, test.items))
        assert loaded.config == fitted.config
        assert loaded.best_epoch == fitted.best_epoch
        assert [r.as_dict() for r in loaded.history] == [r.as_dict() for r in fitted.history]
        assert loaded.metadata["movies"] == movies and loaded.metadata["dataset"] == "generated"
        assert ScoringModel.load(path).metadata["training_fingerprint"] == fitted.fingerprint
        np.testing.assert_array_equal(loaded.user_ids.raw_ids, fitted.user_ids.raw_ids)

    def test_learns_the_structure(self, fitted, data):
        train, _, test = data
        global_mean = rmse(np.full(len(test), train.values.mean()), test)
        model = rmse(fitted.predict(test.users, test.items), test)
        assert model < 0.8 * global_mean, (model, global_mean)
        assert fitted.best_validation_rmse is not None and len(fitted.history) >= fitted.best_epoch

    def test_recommend(self, fitted):
        users = np.arange(4)
        ids, scores = fitted.recommend(users, n=6)
        assert ids.shape == scores.shape == (4, 6)
        assert (np.diff(scores, axis=1) <= 0).all()
        for row, user in enumerate(users):
            rated, _ = fitted.rated_items(user)
            assert not set(ids[row]) & set(rated)
        everything, everything_scores = fitted.recommend(users[:1], n=10_000)
        n_candidates = fitted.n_items - fitted.rated_items(0)[0].size
        assert everything.shape[1] == fitted.n_items
        assert (everything[0, n_candidates:] == -1).all() and np.isneginf(everything_scores[0, n_candidates:]).all()
        unfiltered, _ = fitted.recommend(users[:1], n=fitted.n_items, filter_rated=False)
        assert sorted(unfiltered[0]) == list(range(fitted.n_items))

    def test_similar_items_follow_the_taste_groups(self, fitted):
        ids, cosines = fitted.similar_items(0, n=5)
        assert 0 not in ids and (np.diff(cosines) <= 0).all()
        assert (ids % 2 == 0).mean() >= 0.8  # items of the same group (even ids) are closest


# --- fallbacks and errors ------------------------------------------------------------------------
def test_fallbacks_for_users_and_items_without_training_ratings():
    values, observed = dense_tastes()
    observed[:, 5] = False  # movie 5 never rated
    observed[3, :] = False  # user 3 never rated
    train = ratings_from_dense(values, observed)
    model = RBMRecommender(small_config("user", False, epochs=2)).fit(train)
    users, items = np.asarray([0, 3, 0, 3]), np.asarray([1, 1, 5, 5])
    codes = model.fallback(users, items)
    assert [mf.FALLBACK_NAMES[c] for c in codes] == [
        "model",
        "item_distribution",
        "user_distribution",
        "global_distribution",
    ]
    distribution = model.predict_distribution(users, items)
    user_dist, item_dist, global_dist = model._empirical_distributions()
    np.testing.assert_allclose(distribution[1], item_dist[1])
    np.testing.assert_allclose(distribution[2], user_dist[0])
    np.testing.assert_allclose(distribution[3], global_dist)
    counts = np.bincount(train.levels[train.items == 1], minlength=5)
    np.testing.assert_allclose(item_dist[1], (counts + 2.0 * global_dist) / (counts.sum() + 2.0))
    catalogue = model.catalogue_distribution(np.asarray([0, 3]))
    np.testing.assert_allclose(catalogue[:, [1, 5]].reshape(4, 5), distribution[[0, 2, 1, 3]], atol=1e-6)


def test_unknown_indices_and_bad_input_are_one_line_errors(data):
    train, _, _ = data
    model = RBMRecommender(small_config("user", False, epochs=1)).fit(train)
    with pytest.raises(DataError, match="out of range"):
        model.predict(np.asarray([0]), np.asarray([10_000]))
    with pytest.raises(DataError, match="pair up"):
        model.predict(np.asarray([0, 1]), np.asarray([0]))
    with pytest.raises(DataError, match="levels must lie"):
        model.fold_in(np.asarray([0]), np.asarray([7]))
    with pytest.raises(RecsysRBMError, match="unknown ranking score"):
        model.score_items(np.asarray([0]), score="best")
    with pytest.raises(RecsysRBMError, match="not trained"):
        RBMRecommender().predict(np.asarray([0]), np.asarray([0]))
    empty = train.subset(np.zeros(len(train), dtype=bool))
    with pytest.raises(DataError, match="empty"):
        RBMRecommender().fit(empty)


def test_wrong_kind_and_corrupt_files_fail_with_checkpoint_error(data, tmp_path):
    train, _, _ = data
    model = RBMRecommender(small_config("user", False, epochs=1)).fit(train)
    path = model.save(tmp_path / "model")
    original = path.read_bytes()
    for loader in (RBMRecommender.load, ScoringModel.load):
        with pytest.raises(CheckpointError, match="does not exist"):
            loader(tmp_path / "missing")
    rewrite_metadata(path, lambda metadata: metadata.update(kind="mnist-rbm"), rehash=True)
    for loader in (RBMRecommender.load, ScoringModel.load):
        with pytest.raises(CheckpointError, match="'mnist-rbm' model"):
            loader(path)
    data_bytes = bytearray(original)
    data_bytes[-3] ^= 0xFF
    path.write_bytes(bytes(data_bytes))
    for loader in (RBMRecommender.load, ScoringModel.load):
        with pytest.raises(CheckpointError, match="does not match the checksum"):
            loader(path)
    path.write_bytes(b"{not a model}")
    for loader in (RBMRecommender.load, ScoringModel.load):
        with pytest.raises(CheckpointError, match="not a safetensors model file"):
            loader(path)


def test_extra_metadata_cannot_override_model_fields(data, tmp_path):
    model = RBMRecommender(small_config("item", False, epochs=1)).fit(data[0])
    with pytest.raises(RecsysRBMError, match="override"):
        model.save(tmp_path / "model", {"kind": "other"})


@pytest.mark.parametrize(("mode", "conditional"), VARIANTS, ids=VARIANT_IDS)
def test_reproducible_with_a_seed(data, mode, conditional):
    train, validation, test = data
    config = small_config(mode, conditional, epochs=5)
    first = RBMRecommender(config).fit(train, validation)
    second = RBMRecommender(config).fit(train, validation)
    np.testing.assert_array_equal(first.predict(test.users, test.items), second.predict(test.users, test.items))
    other = RBMRecommender(replace(config, seed=4)).fit(train, validation)
    assert not np.array_equal(first.predict(test.users, test.items), other.predict(test.users, test.items))


def test_early_stopping_restores_the_best_epoch(data):
    train, validation, _ = data
    model = RBMRecommender(small_config("item", False, epochs=60, patience=3, learning_rate=0.2)).fit(train, validation)
    best = min(r.validation_rmse for r in model.history)
    assert model.best_validation_rmse == pytest.approx(best)
    assert len(model.history) - model.best_epoch == 3
    assert model._rmse_of(validation) == pytest.approx(best, abs=1e-12)


# --- the sparse mathematics against dense references -------------------------------------------
def _tiny_problem(conditional: bool, seed: int = 0):
    """4 units × 3 levels, 5 hidden, 3 cases with some units missing; dense garbage in missing groups."""
    generator = torch.Generator().manual_seed(seed)
    g, k, h = 4, 3, 5
    units = SoftmaxUnits(g, k)
    rbm = RBM(
        torch.randn(g * k, h, generator=generator, dtype=torch.float64),
        torch.randn(g * k, generator=generator, dtype=torch.float64),
        torch.randn(h, generator=generator, dtype=torch.float64),
        units,
    )
    d = torch.randn(g, h, generator=generator, dtype=torch.float64) if conditional else None
    params = Parameters(rbm, d)
    cases = np.asarray([0, 0, 1, 1, 1, 2])
    rated = np.asarray([0, 2, 1, 2, 3, 3])
    levels = np.asarray([2, 0, 1, 1, 0, 2])
    model_levels = torch.tensor([0, 0, 2, 1, 1, 0])
    matrix = CaseMatrix.from_arrays(cases, rated, levels, 3, torch.device("cpu"))
    batch = matrix.gather(torch.arange(3))
    mask = torch.zeros(3, g, dtype=torch.bool)
    mask[torch.from_numpy(cases), torch.from_numpy(rated)] = True

    def dense(level_values: torch.Tensor) -> torch.Tensor:
        garbage = torch.randint(0, k, (3, g), generator=generator)  # whatever sits in missing groups
        full = garbage.clone()
        full[torch.from_numpy(cases), torch.from_numpy(rated)] = level_values
        return torch.nn.functional.one_hot(full, k).to(torch.float64).flatten(1)  # (B, G·K)

    r = mask.to(torch.float64)  # the rated-set vector of each case
    hidden_bias = rbm.hidden_bias + (r @ d if d is not None else 0.0)  # (B, H): c + r D
    return params, batch, model_levels, dense(batch.levels), dense(model_levels), mask, hidden_bias


@pytest.mark.parametrize("conditional", [False, True])
def test_sparse_statistics_equal_the_core_dense_gradient(conditional):
    params, batch, model_levels, v_data, v_model, mask, hidden_bias = _tiny_problem(conditional)
    rbm = params.rbm
    p_data = fn.hidden_probability(v_data, rbm.weights, hidden_bias, rbm.units, mask)
    p_model = fn.hidden_probability(v_model, rbm.weights, hidden_bias, rbm.units, mask)
    torch.testing.assert_close(hidden_probability(params, batch, batch.levels), p_data)
    reference = contrastive_gradient(
        fn.apply_mask(v_data, mask, rbm.units), p_data, fn.apply_mask(v_model, mask, rbm.units), p_model
    )
    sparse = contrastive_statistics(params, batch, model_levels)
    n = batch.n_cases
    torch.testing.assert_close(sparse.weights, n * reference.weights)
    torch.testing.assert_close(sparse.visible_bias, n * reference.visible_bias)
    torch.testing.assert_close(sparse.hidden_bias, n * reference.hidden_bias)


@pytest.mark.parametrize("conditional", [False, True])
def test_sparse_statistics_equal_autograd_of_the_free_energy_gap(conditional):
    """``Σ_cases [F(v_model) − F(v_data)]`` differentiated, with missing groups masked (garbage inside)."""
    params, batch, model_levels, v_data, v_model, mask, _ = _tiny_problem(conditional)
    rbm = params.rbm
    weights, visible_bias, hidden_bias = (t.clone().requires_grad_(True) for t in rbm.parameters().values())
    d = params.conditional.clone().requires_grad_(True) if conditional else None
    bias = hidden_bias + (mask.to(torch.float64) @ d if d is not None else 0.0)

    def free(v):
        return fn.free_energy(v, weights, visible_bias, bias, rbm.units, mask).sum()

    gap = free(v_model) - free(v_data)
    gap.backward()
    sparse = contrastive_statistics(params, batch, model_levels)
    torch.testing.assert_close(sparse.weights, weights.grad)
    torch.testing.assert_close(sparse.visible_bias, visible_bias.grad)
    torch.testing.assert_close(sparse.hidden_bias, hidden_bias.grad)
    if conditional:
        torch.testing.assert_close(sparse.conditional, d.grad)


@pytest.mark.parametrize("gradient_scale", ["cases", "raters"])
def test_update_step_is_the_scaled_statistics_minus_decay(gradient_scale):
    """With no momentum: ``Δθ = ε (Δ_stats / n − λ W)``, n = cases in the batch or raters of the unit."""
    params, batch, _, _, _, _, _ = _tiny_problem(conditional=True)
    params = Parameters(params.rbm.to(dtype=torch.float32), params.conditional.float())
    expected_levels = negative_levels(params, batch, 2, UniformStream(5))
    statistics = contrastive_statistics(params, batch, expected_levels)
    config = RecommenderConfig(momentum=0.0, weight_decay=0.01, gradient_scale=gradient_scale)
    before = params.clone()
    velocity = {name: torch.zeros_like(t) for name, t in params.tensors().items()}
    RBMRecommender(config)._update(params, batch, velocity, 2, 0.1, UniformStream(5))
    k = params.n_levels
    if gradient_scale == "cases":
        per_unit = torch.full((params.n_units,), float(batch.n_cases))
    else:
        per_unit = torch.bincount(batch.units, minlength=params.n_units).clamp_min(1).float()
    expected_w = 0.1 * (statistics.weights / per_unit.repeat_interleave(k)[:, None] - 0.01 * before.rbm.weights)
    torch.testing.assert_close(params.rbm.weights - before.rbm.weights, expected_w)
    torch.testing.assert_close(
        params.rbm.visible_bias - before.rbm.visible_bias, 0.1 * statistics.visible_bias / per_unit.repeat_interleave(k)
    )
    torch.testing.assert_close(
        params.rbm.hidden_bias - before.rbm.hidden_bias, 0.1 * statistics.hidden_bias / batch.n_cases
    )
    expected_d = 0.1 * (statistics.conditional / per_unit[:, None] - 0.01 * before.conditional)
    torch.testing.assert_close(params.conditional - before.conditional, expected_d)


def test_rated_logits_equal_the_gathered_formula():
    params, batch, _, _, _, _, _ = _tiny_problem(conditional=False)
    hidden = torch.rand(batch.n_cases, params.rbm.n_hidden, dtype=torch.float64)
    weights = params.rbm.weights.view(params.n_units, params.n_levels, -1)  # (G, K, H)
    bias = params.rbm.visible_bias.view(params.n_units, params.n_levels)
    expected = bias[batch.units] + torch.einsum("ekh,eh->ek", weights[batch.units], hidden[batch.case_of_entry])
    torch.testing.assert_close(rated_logits(params, batch, hidden), expected)


def test_mean_field_formulas_agree_in_numpy_and_torch():
    rng = np.random.default_rng(0)
    hidden, weights, bias = rng.random((3, 4)), rng.normal(size=(6 * 5, 4)), rng.normal(size=30)
    values = STARS
    for xp, convert in ((np, np.asarray), (torch, torch.from_numpy)):
        out = mf.outer_distribution(convert(hidden), convert(weights), convert(bias), 5, xp)
        result = np.asarray(out)
        np.testing.assert_allclose(result.sum(-1), 1.0)
        logits = (hidden @ weights.T + bias).reshape(3, 6, 5)
        expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        np.testing.assert_allclose(result, expected, atol=1e-12)
        counts = np.arange(6.0)
        for score, formula in (
            ("expected", result @ values),
            ("p_high", result[..., 3:].sum(-1)),
            ("p_rated_high", result[..., 3:].sum(-1) * (counts + 1)),
        ):
            scores = np.asarray(mf.ranking_score(convert(result), convert(values), score, convert(counts)))
            np.testing.assert_allclose(scores, formula)
    assert float(mf.sigmoid(np.asarray(-1000.0), np)) == 0.0  # no overflow warning


def test_scoring_never_imports_torch():
    code = "import sys, recsys_rbm.recommender.scoring; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --- configuration ---------------------------------------------------------------------------------
def test_config_validation_and_schedule():
    config = RecommenderConfig(cd_schedule=[[0, 1], [3, 3], [6, 5]])
    assert config.cd_schedule == ((0, 1), (3, 3), (6, 5))
    assert [config.cd_steps(e) for e in (0, 2, 3, 5, 6, 100)] == [1, 1, 3, 3, 5, 5]
    for bad in (
        {"mode": "both"},
        {"n_hidden": 0},
        {"learning_rate": 0},
        {"momentum": 1.0},
        {"cd_schedule": [[1, 1]]},
        {"cd_schedule": [[0, 1], [0, 3]]},
        {"cd_schedule": [[0, 0]]},
        {"cd_schedule": "fast"},
        {"gradient_scale": "none"},
        {"device": "tpu"},
        {"conditional": 1},
    ):
        with pytest.raises(ConfigError):
            RecommenderConfig(**bad)


# --- generated long-tailed data --------------------------------------------------------------------
def test_long_tailed_ratings_have_the_requested_shape():
    ratings = long_tailed_ratings(300, 200, 12_000, seed=1, popularity_offset=5)
    assert (len(ratings), ratings.n_users, ratings.n_items, ratings.n_levels) == (12_000, 300, 200, 10)
    keys = ratings.users * ratings.n_items + ratings.items
    assert np.unique(keys).shape[0] == len(ratings)  # distinct (user, movie) pairs
    per_user = np.bincount(ratings.users, minlength=300)
    assert per_user.min() >= 20 and per_user.max() <= 100
    per_item = np.sort(np.bincount(ratings.items, minlength=200))[::-1]
    assert per_item[:20].sum() > 0.25 * len(ratings)  # the top 10 % of movies hold over a quarter: long-tailed
    again = long_tailed_ratings(300, 200, 12_000, seed=1, popularity_offset=5)
    assert np.array_equal(again.items, ratings.items) and np.array_equal(again.levels, ratings.levels)
    with pytest.raises(ConfigError):
        long_tailed_ratings(300, 200, 1_000)  # fewer than 20 per user
