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

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.movies import Movies
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    RecsysRBMError,
    TrainingDiverged,
    UnknownIdError,
    UnknownItemsWarning,
)
from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.gibbs import Chain
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import UniformStream
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits, VisibleLayer
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.config import RecommenderConfig, like_threshold
from recsys_rbm.recommender.explain import explain, similar_items, similar_min_ratings
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.objective import statistics
from recsys_rbm.recommender.protocol import Recommender
from recsys_rbm.recommender.results import ScoredItem, TopItems
from recsys_rbm.recommender.scorer import Scorer
from recsys_rbm.recommender.sparse import CaseMatrix, CaseState, Picks, RecommenderRBM, visible_layer
from recsys_rbm.recommender.state import Layout, ProfileArrays
from recsys_rbm.recommender.synthetic import long_tailed_ratings
from recsys_rbm.train.dense import contrastive_gradient
from recsys_rbm.train.gradients import dense_gradient

STARS = np.arange(1.0, 6.0)
VARIANTS = [
    ("joint", "user", False),
    ("joint", "item", False),
    ("ratings", "user", True),
    ("ratings", "item", False),
    ("ratings", "item", True),
]
VARIANT_IDS = [f"{model}-{mode}{'-conditional' if conditional else ''}" for model, mode, conditional in VARIANTS]


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


def small_config(model: str, mode: str, conditional: bool, **overrides) -> RecommenderConfig:
    settings = dict(
        kind=model,
        mode=mode,
        conditional=conditional,
        hidden=8,
        epochs=40,
        batch_size=10,
        learning_rate=0.05,
        cd_schedule=((0, 1), (20, 3)),
        patience=40,
        patience_updates=0,  # these tests count patience in epochs alone
        averaging=0.0,  # over a few dozen epochs an average over epochs lags behind: off for these tiny models
        seed=3,
    )
    return RecommenderConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def data() -> tuple[Ratings, Ratings, Ratings]:
    return split_three(ratings_from_dense(*dense_tastes()))


@pytest.fixture(scope="module", params=VARIANTS, ids=VARIANT_IDS)
def fitted(request, data) -> RBMRecommender:
    train, validation, _ = data
    model, mode, conditional = request.param
    return RBMRecommender(small_config(model, mode, conditional)).fit(train, validation)


def rmse(predicted: np.ndarray, ratings: Ratings) -> float:
    return float(np.sqrt(np.mean((predicted - ratings.values) ** 2)))


# --- the contract, over every variant ------------------------------------------------------------
class TestContract:
    def test_implements_the_protocol(self, fitted):
        assert isinstance(fitted, Recommender)
        expected = "joint RBM" if fitted.config.kind == "joint" else ("U-RBM", "I-RBM")[fitted.config.mode == "item"]
        assert fitted.name.startswith(expected)

    def test_distributions_are_proper(self, fitted, data):
        _, _, test = data
        distribution = fitted.scorer.predict_distribution(test.users, test.items)
        assert distribution.shape == (len(test), 5)
        assert (distribution >= 0).all()
        np.testing.assert_allclose(distribution.sum(1), 1.0, atol=1e-9)
        expected = fitted.predict_indices(test.users, test.items)
        assert ((expected >= 1.0) & (expected <= 5.0)).all()
        np.testing.assert_allclose(expected, distribution @ STARS)
        np.testing.assert_allclose(
            fitted.scorer.probability_at_least(test.users, test.items), distribution[:, 3:].sum(1)
        )
        catalogue = fitted.scorer.predictions(np.arange(fitted.n_users))
        np.testing.assert_allclose(catalogue.distribution.sum(-1), 1.0, atol=1e-9)
        assert catalogue.p_interacted.shape == (fitted.n_users, fitted.n_items)
        assert ((catalogue.p_interacted > 0) & (catalogue.p_interacted < 1)).all()
        assert catalogue.interaction_model == (fitted.config.kind == "joint")

    def test_ranking_scores_compose_as_documented(self, fitted, data):
        """p_liked = P(interacted)·P(r ≥ 4); without an interaction block P(interacted) is the popularity prior
        over the profiles (training and validation ratings)."""
        train, validation, test = data
        users = np.arange(fitted.n_users)
        expected = fitted.score_items(users, score="expected")
        np.testing.assert_allclose(
            expected[test.users, test.items], fitted.predict_indices(test.users, test.items), atol=1e-6
        )
        high = fitted.score_items(users, score="p_high")
        np.testing.assert_allclose(
            high[test.users, test.items], fitted.scorer.probability_at_least(test.users, test.items), atol=1e-6
        )
        interacted = fitted.score_items(users, score="p_interacted")
        if fitted.config.kind == "ratings":
            known = np.concatenate([train.items, validation.items])
            counts = np.bincount(known, minlength=fitted.n_items) + 1.0
            np.testing.assert_allclose(interacted, np.broadcast_to(counts / counts.sum(), interacted.shape))
        np.testing.assert_allclose(fitted.score_items(users), interacted * high)

    def test_missing_entries_never_influence_anything(self, fitted, data):
        """Rewriting every unobserved entry of the dense matrix changes nothing: they are never read."""
        values, observed = dense_tastes()
        scrambled = values.copy()
        scrambled[~observed] = np.random.default_rng(9).choice(STARS, int((~observed).sum()))
        original, rewritten = (split_three(ratings_from_dense(v, observed)) for v in (values, scrambled))
        config = replace(fitted.config, epochs=4)
        first = RBMRecommender(config).fit(original[0], original[1])
        second = RBMRecommender(config).fit(rewritten[0], rewritten[1])
        users = np.arange(first.n_users)
        np.testing.assert_array_equal(first.score_items(users), second.score_items(users))

    def test_fold_in_reproduces_training_prediction(self, fitted):
        user = 7
        items, levels = fitted.scorer.rated_items(user)
        if fitted.config.mode == "item":
            with pytest.raises(RecsysRBMError, match="user-based model"):
                fitted.scorer.fold_in(items, levels)
            return
        folded, trained = fitted.scorer.fold_in(items, levels), fitted.scorer.predictions(np.asarray([user]))
        np.testing.assert_allclose(folded.distribution, trained.distribution, atol=1e-6)
        np.testing.assert_allclose(folded.p_interacted, trained.p_interacted, atol=1e-6)

    def test_numpy_path_matches_torch(self, fitted, tmp_path):
        path = fitted.save(tmp_path / "model")
        fast = Scorer.load(path)
        assert fast.xp is np
        users = np.arange(fitted.n_users)
        fast_catalogue, torch_catalogue = fast.predictions(users), fitted.scorer.predictions(users)
        np.testing.assert_allclose(fast_catalogue.distribution, torch_catalogue.distribution, atol=1e-5, rtol=0)
        np.testing.assert_allclose(fast_catalogue.p_interacted, torch_catalogue.p_interacted, atol=1e-5, rtol=0)
        for score in mf.SCORES:
            np.testing.assert_allclose(
                fast.score_items(users[:5], score), fitted.score_items(users[:5], score), atol=1e-5
            )
        _, scores_fast = fast.recommend(users[:5], n=5)
        _, scores_torch = fitted.scorer.recommend(users[:5], n=5)
        np.testing.assert_allclose(scores_fast, scores_torch, atol=1e-5)
        _, cosines_fast = similar_items(fast, 0, n=5)
        _, cosines_torch = similar_items(fitted.scorer, 0, n=5)
        np.testing.assert_allclose(cosines_fast, cosines_torch, atol=1e-5)
        if fitted.config.mode == "user":
            items, levels = np.asarray([0, 3, 8]), np.asarray([4, 0, 2])
            np.testing.assert_allclose(
                fast.fold_in(items, levels).p_interacted, fitted.scorer.fold_in(items, levels).p_interacted, atol=1e-5
            )
        else:
            with pytest.raises(RecsysRBMError, match="user-based model"):
                fast.fold_in([0], [4])

    def test_save_load_round_trip(self, fitted, data, tmp_path):
        _, _, test = data
        movies = Movies.from_rows([1, 2], ["One (1990)", "Two (1991)"], [["Drama"], []]).to_dict()
        path = fitted.save(tmp_path / "model", {"dataset": "generated", "movies": movies})
        loaded = RBMRecommender.load(path)
        np.testing.assert_array_equal(
            loaded.predict_indices(test.users, test.items), fitted.predict_indices(test.users, test.items)
        )
        np.testing.assert_array_equal(loaded.score_items(np.arange(4)), fitted.score_items(np.arange(4)))
        assert loaded.config == fitted.config
        assert loaded.best_epoch == fitted.best_epoch
        assert [r.as_dict() for r in loaded.history] == [r.as_dict() for r in fitted.history]
        assert loaded.metadata["movies"] == movies and loaded.metadata["dataset"] == "generated"
        assert Scorer.load(path).metadata["training_fingerprint"] == fitted.fingerprint
        np.testing.assert_array_equal(loaded.users, fitted.users)

    def test_learns_the_structure(self, fitted, data):
        """Ratings: far better than the global mean. Every model: each user's top items are mostly ones they like."""
        train, _, test = data
        if fitted.config.kind == "ratings":
            global_mean = rmse(np.full(len(test), train.values.mean()), test)
            model = rmse(fitted.predict_indices(test.users, test.items), test)
            assert model < 0.8 * global_mean, (model, global_mean)
        users = np.arange(fitted.n_users)
        ids, _ = fitted.scorer.recommend(users, n=5)
        same_group = (ids % 2) == (users[:, None] % 2)  # dense_tastes: users like the items of their own parity
        assert same_group.mean() > 0.8
        assert fitted.best_record is not None and len(fitted.history) >= fitted.best_epoch

    def test_recommend(self, fitted):
        users = np.arange(4)
        ids, scores = fitted.scorer.recommend(users, n=6)
        assert ids.shape == scores.shape == (4, 6)
        assert (np.diff(scores, axis=1) <= 0).all()
        for row, user in enumerate(users):
            rated, _ = fitted.scorer.rated_items(user)
            assert not set(ids[row]) & set(rated)
        everything, everything_scores = fitted.scorer.recommend(users[:1], n=10_000)
        n_candidates = fitted.n_items - fitted.scorer.rated_items(0)[0].size
        assert everything.shape[1] == fitted.n_items
        assert (everything[0, n_candidates:] == -1).all() and np.isneginf(everything_scores[0, n_candidates:]).all()
        unfiltered, _ = fitted.scorer.recommend(users[:1], n=fitted.n_items, exclude_rated=False)
        assert sorted(unfiltered[0]) == list(range(fitted.n_items))

    def test_similar_items_follow_the_taste_groups(self, fitted):
        ids, cosines = similar_items(fitted.scorer, 0, n=5)
        assert 0 not in ids and (np.diff(cosines) <= 0).all()
        assert (ids % 2 == 0).mean() >= 0.8  # items of the same group (even ids) are closest


# --- the public API: the data's own ids -----------------------------------------------------------
def text_id_frame(seed: int = 0) -> tuple[list[str], list[str], list[float]]:
    """dense_tastes as columns with text ids: users "u0"…, items "i00"…; users like items of their parity."""
    values, observed = dense_tastes(seed)
    users, items = np.nonzero(observed)
    return [f"u{u}" for u in users], [f"i{i:02d}" for i in items], values[users, items].tolist()


@pytest.fixture(scope="module")
def public() -> RBMRecommender:
    users, items, ratings = text_id_frame()
    import polars as pl

    frame = pl.DataFrame({"user": users, "item": items, "rating": ratings})
    titles = Movies.from_rows([f"i{i:02d}" for i in range(40)], [f"Item {i} ({1980 + i})" for i in range(40)])
    return RBMRecommender(small_config("joint", "user", False)).fit(frame, items=titles)


def test_fit_takes_a_dataframe_and_every_method_speaks_raw_ids(public):
    assert public.users.dtype.kind == "U" and "u7" in public.users.tolist()
    assert len(public.history) >= 1 and public.best_record.measures["validation_ndcg"] is not None  # 5% held out
    predicted = public.predict(["u0", "u1"], ["i00", "i00"])
    assert predicted.shape == (2,) and ((predicted >= 1) & (predicted <= 5)).all()
    assert predicted[0] > predicted[1]  # u0 likes even items, u1 odd ones
    items, scores = public.recommend("u0", n=5)
    assert items.shape == scores.shape == (5,) and all(isinstance(item, str) for item in items.tolist())
    assert (np.diff(scores) <= 0).all() and sum(int(item[1:]) % 2 == 0 for item in items) >= 4
    assert public.title(items[0]).startswith("Item ") and public.title("nothing") is None
    with pytest.raises(UnknownIdError, match="unknown user 'nobody'"):
        public.recommend("nobody")
    with pytest.raises(UnknownIdError, match="unknown item 'i99'"):
        public.predict(["u0"], ["i99"])
    with pytest.raises(UnknownIdError):
        public.predict([0], [0])  # inner indices are not ids here: the mistake the issue describes


def test_recommend_takes_many_users_at_once_as_one_list_each(public):
    users = ["u0", "u3", "u10"]
    lists = public.recommend(users, n=4)
    assert isinstance(lists, TopItems) and len(lists) == 3 and lists.users == users
    for user, items, scores in lists:
        alone_items, alone_scores = public.recommend(user, n=4)
        assert items.tolist() == alone_items.tolist()
        np.testing.assert_allclose(scores, alone_scores, rtol=1e-6)  # float32 sums in another order
    frame = lists.to_frame()
    assert frame.columns == ["user", "item", "rank", "score"] and frame.height == 12
    assert frame["rank"].to_list()[:4] == [1, 2, 3, 4] and set(frame["user"].to_list()) == set(users)
    assert public.recommend(np.asarray(users), n=4).users == users  # an array of ids is many users too


def test_recommend_candidates_and_exclusions_are_raw_ids(public):
    every, _ = public.recommend("u0", n=public.n_items)
    chosen = every[-3:].tolist()  # the three least recommended candidates
    only, _ = public.recommend("u0", n=10, items=chosen)
    assert sorted(only.tolist()) == sorted(chosen)
    without, _ = public.recommend("u0", n=5, exclude=[*every[:2].tolist(), "not-an-item"])  # unknown ids: ignored
    assert without.tolist() == every[2:7].tolist()
    with pytest.warns(UnknownItemsWarning, match="left out 1 asked-for candidate item"):
        some, _ = public.recommend("u0", n=10, items=[*chosen, "i99"])
    assert sorted(some.tolist()) == sorted(chosen)


def test_describe_gives_each_scores_parts_and_the_users_reasons(public):
    items, scores = public.recommend("u0", n=3)
    described = public.describe("u0", items)
    assert [entry.item for entry in described] == items.tolist()
    for entry, score in zip(described, scores, strict=True):
        assert isinstance(entry, ScoredItem) and entry.score == pytest.approx(score)
        assert entry.score == pytest.approx(entry.p_interacted * entry.p_like)
        assert entry.title.startswith("Item ") and 1 <= entry.expected_rating <= 5
        assert entry.because and all(item in public.items.tolist() for item in entry.because)


def test_filter_rated_false_lists_the_users_own_items_too(public):
    everything, _ = public.recommend("u0", n=public.n_items, filter_rated=False)
    assert sorted(everything.tolist()) == sorted(public.items.tolist())


def test_no_list_names_an_item_the_user_has_in_the_table(public):
    """fit held 5% of the table out for early stopping; those ratings are in the profiles and never recommended."""
    users, items, _ = text_id_frame()
    own: dict[str, set[str]] = {}
    for user, item in zip(users, items, strict=True):
        own.setdefault(user, set()).add(item)
    assert public.scorer.state.part_counts()["validation"] > 0
    lists = public.recommend(public.users, n=public.n_items)
    for user, listed, _ in lists:
        assert len(listed) and not set(listed.tolist()) & own[user], user
        assert len(listed) == public.n_items - len(own[user])  # everything else is a candidate


def test_test_ratings_put_back_join_the_profiles_and_leave_the_lists():
    ratings = ratings_from_dense(*dense_tastes())
    train, validation, test = split_three(ratings)
    model = RBMRecommender(small_config("joint", "user", False, epochs=3)).fit(train, validation)
    user = int(test.users[0])
    held = {model.items[i] for i in test.items[test.users == user]}
    before, _ = model.recommend(model.users[user], n=model.n_items)
    model.add_to_profiles(test)
    after, _ = model.recommend(model.users[user], n=model.n_items)
    assert held <= set(before.tolist()) and not held & set(after.tolist())
    counts = model.scorer.state.part_counts()
    assert counts == {"trained": len(train), "validation": len(validation), "held_out": len(test)}
    items, _ = model.scorer.rated_items(user)
    everything = [train, validation, test]
    expected = np.concatenate([r.items for r in everything])[np.concatenate([r.users for r in everything]) == user]
    assert set(items.tolist()) == set(expected.tolist())
    with pytest.raises(DataError, match="one item twice"):
        model.add_to_profiles(test)  # a rating is in a profile once


def test_a_pandas_dataframe_trains_the_same_model_as_polars_and_recommends(public):
    import pandas as pd

    users, items, ratings = text_id_frame()
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})  # the rows of the polars frame
    titles = Movies.from_rows([f"i{i:02d}" for i in range(40)], [f"Item {i} ({1980 + i})" for i in range(40)])
    fitted = RBMRecommender(small_config("joint", "user", False)).fit(frame, items=titles)
    assert fitted.users.tolist() == public.users.tolist()
    pairs = [(user, item) for user in ("u0", "u1", "u5") for item in sorted(set(items))]
    every_user, every_item = zip(*pairs, strict=True)
    expected = public.predict(every_user, every_item)
    np.testing.assert_allclose(fitted.predict(every_user, every_item), expected, atol=1e-5)
    listed, _ = fitted.recommend("u3", n=5)
    assert listed.tolist() == public.recommend("u3", n=5)[0].tolist()
    assert all(fitted.title(item).startswith("Item ") for item in listed)


def test_recommend_new_user_folds_in_raw_ratings_and_checks_the_scale(public):
    profile = {"i00": 5, "i02": 5, "i04": 5, "i01": 1, "i03": 1}  # picks both groups, likes the even one
    likes_even, _ = public.recommend_new_user(profile, n=5, score="p_high")
    assert set(likes_even.tolist()).isdisjoint({"i00", "i01", "i02", "i03", "i04"})
    assert sum(int(item[1:]) % 2 == 0 for item in likes_even) >= 4
    with pytest.raises(DataError, match="off the model's scale"):
        public.recommend_new_user({"i00": 7})
    with pytest.warns(UnknownItemsWarning, match="left out 1 rated item\\(s\\) the model does not know: 'i99'"):
        with_unknown, _ = public.recommend_new_user({**profile, "i99": 5}, n=5, score="p_high")
    assert with_unknown.tolist() == likes_even.tolist()  # the unknown item is dropped, the rest used
    described = public.describe_new_user(profile, likes_even[:2], score="p_high")
    assert [entry.item for entry in described] == likes_even[:2].tolist()


def test_similar_and_explain_speak_raw_ids(public):
    similar, similarities = public.similar_items("i00", n=5)
    assert len(similar) == 5 and sum(int(item[1:]) % 2 == 0 for item in similar) >= 4
    assert (np.diff(similarities) <= 0).all() and "i00" not in similar.tolist()
    floor = similar_min_ratings(public.scorer)  # the default: 20, or the median item's count where fewer
    counts = public.scorer.item_counts
    assert floor == min(20, int(np.median(counts[counts > 0])))
    default, _ = public.similar_items("i00", n=public.n_items)
    assert len(default) and all(counts[public.items.tolist().index(item)] >= floor for item in default)
    reasons = public.explain("u0", "i06", n=3)
    assert len(reasons) == 3 and abs(reasons[0].effect) >= abs(reasons[-1].effect)
    rated = set(public.items[public.scorer.rated_items(0)[0]].tolist())
    assert {r.item for r in reasons} <= rated and all(r.rating in STARS for r in reasons)


def test_explanations_are_leave_one_out_differences_of_the_score():
    """The effect of a rating is log score(profile) − log score(profile without it), checked by refolding."""
    train, validation, _ = split_three(ratings_from_dense(*dense_tastes()))
    model = RBMRecommender(small_config("joint", "user", False, epochs=10)).fit(train, validation)
    scorer = model.scorer
    units, levels = scorer.rated_items(3)
    effects = explain(scorer, units, levels, [10, 11])  # (2, M)
    full = scorer.scores(scorer.fold_in(units, levels))[0]
    for j in (0, 4):
        keep = np.arange(units.size) != j
        without = scorer.scores(scorer.fold_in(units[keep], levels[keep]))[0]
        np.testing.assert_allclose(effects[:, j], np.log(full[[10, 11]]) - np.log(without[[10, 11]]), rtol=1e-4)


def test_the_package_exports_the_recommender_lazily():
    code = (
        "import sys, recsys_rbm; assert 'torch' not in sys.modules; "
        "from recsys_rbm import RBMRecommender; assert RBMRecommender.__name__ == 'RBMRecommender'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --- implicit feedback ---------------------------------------------------------------------------
def implicit_tastes(seed: int = 0) -> Ratings:
    """Users pick mostly items of their own parity: every interaction is a 1 (K = 1)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 40
    same = (np.arange(n_users)[:, None] % 2) == (np.arange(n_items)[None, :] % 2)
    picked = rng.random((n_users, n_items)) < np.where(same, 0.6, 0.05)
    users, items = np.nonzero(picked)
    return Ratings(
        users.astype(np.int64),
        items.astype(np.int64),
        np.zeros(users.shape[0], dtype=np.int64),
        IdMap(np.arange(1, n_users + 1), "user"),
        IdMap(np.arange(1, n_items + 1), "item"),
        np.asarray([1.0]),
    )


def test_implicit_data_trains_the_interaction_block_alone_and_ranks_by_it():
    train, validation, _ = split_three(implicit_tastes())
    model = RBMRecommender(small_config("joint", "user", False, epochs=30)).fit(train, validation)
    assert model.scorer.layout == Layout(40, 0, interactions=True)
    assert "validation_ndcg" in model.best_record.measures and "validation_rmse" not in model.best_record.measures
    users = np.arange(model.n_users)
    ids, _ = model.scorer.recommend(users, n=5)
    assert ((ids % 2) == (users[:, None] % 2)).mean() > 0.8
    np.testing.assert_allclose(model.score_items(users), model.score_items(users, "p_interacted"))
    assert np.isnan(model.predict_indices(np.asarray([0, 1]), np.asarray([0, 2]))).all()  # a ranker, to the harness
    with pytest.raises(RecsysRBMError, match="implicit data"):
        model.predict([model.users[0]], [model.items[0]])  # said in one line to a person
    with pytest.raises(DataError, match="joint model"):
        RBMRecommender(small_config("ratings", "item", False)).fit(train)


# --- fallbacks and errors ------------------------------------------------------------------------
def test_fallbacks_for_users_and_items_without_training_ratings():
    values, observed = dense_tastes()
    observed[:, 5] = False  # movie 5 never rated
    observed[3, :] = False  # user 3 never rated
    train = ratings_from_dense(values, observed)
    model = RBMRecommender(small_config("ratings", "user", False, epochs=2)).fit(train)
    users, items = np.asarray([0, 3, 0, 3]), np.asarray([1, 1, 5, 5])
    codes = model.scorer.fallback(users, items)
    assert [mf.FALLBACK_NAMES[c] for c in codes] == [
        "model",
        "item_distribution",
        "user_distribution",
        "global_distribution",
    ]
    distribution = model.scorer.predict_distribution(users, items)
    scorer = model.scorer
    np.testing.assert_allclose(distribution[1], scorer.item_distribution[1])
    np.testing.assert_allclose(distribution[2], scorer.user_distribution[0])
    np.testing.assert_allclose(distribution[3], scorer.global_distribution)
    counts = np.bincount(train.levels[train.items == 1], minlength=5)
    global_dist = scorer.global_distribution
    np.testing.assert_allclose(scorer.item_distribution[1], (counts + 2.0 * global_dist) / (counts.sum() + 2.0))
    catalogue = model.scorer.predictions(np.asarray([0, 3])).distribution
    np.testing.assert_allclose(catalogue[:, [1, 5]].reshape(4, 5), distribution[[0, 2, 1, 3]], atol=1e-6)


def test_unknown_indices_and_bad_input_are_one_line_errors(data):
    train, _, _ = data
    model = RBMRecommender(small_config("joint", "user", False, epochs=1)).fit(train)
    with pytest.raises(DataError, match="out of range"):
        model.predict_indices(np.asarray([0]), np.asarray([10_000]))
    with pytest.raises(DataError, match="pair up"):
        model.predict_indices(np.asarray([0, 1]), np.asarray([0]))
    with pytest.raises(DataError, match="levels must lie"):
        model.scorer.fold_in(np.asarray([0]), np.asarray([7]))
    with pytest.raises(DataError, match="twice"):
        model.scorer.fold_in(np.asarray([0, 0]), np.asarray([1, 2]))
    with pytest.raises(RecsysRBMError, match="unknown ranking score"):
        model.score_items(np.asarray([0]), score="best")
    with pytest.raises(RecsysRBMError, match="not trained"):
        RBMRecommender().predict(np.asarray([0]), np.asarray([0]))
    empty = train.subset(np.zeros(len(train), dtype=bool))
    with pytest.raises(DataError, match="empty"):
        RBMRecommender().fit(empty)


def test_wrong_kind_and_corrupt_files_fail_with_checkpoint_error(data, tmp_path):
    train, _, _ = data
    model = RBMRecommender(small_config("joint", "user", False, epochs=1)).fit(train)
    path = model.save(tmp_path / "model")
    original = path.read_bytes()
    for loader in (RBMRecommender.load, Scorer.load):
        with pytest.raises(CheckpointError, match="does not exist"):
            loader(tmp_path / "missing")
    rewrite_metadata(path, lambda metadata: metadata.update(kind="mnist-rbm"), rehash=True)
    for loader in (RBMRecommender.load, Scorer.load):
        with pytest.raises(CheckpointError, match="'mnist-rbm' model"):
            loader(path)
    data_bytes = bytearray(original)
    data_bytes[-3] ^= 0xFF
    path.write_bytes(bytes(data_bytes))
    for loader in (RBMRecommender.load, Scorer.load):
        with pytest.raises(CheckpointError, match="does not match the checksum"):
            loader(path)
    path.write_bytes(b"{not a model}")
    for loader in (RBMRecommender.load, Scorer.load):
        with pytest.raises(CheckpointError, match="not a safetensors model file"):
            loader(path)


def test_extra_metadata_cannot_override_model_fields(data, tmp_path):
    model = RBMRecommender(small_config("ratings", "item", False, epochs=1)).fit(data[0])
    with pytest.raises(RecsysRBMError, match="override"):
        model.save(tmp_path / "model", {"kind": "other"})


@pytest.mark.parametrize(("model", "mode", "conditional"), VARIANTS, ids=VARIANT_IDS)
def test_reproducible_with_a_seed(data, model, mode, conditional):
    train, validation, _ = data
    config = small_config(model, mode, conditional, epochs=5)
    first = RBMRecommender(config).fit(train, validation)
    second = RBMRecommender(config).fit(train, validation)
    users = np.arange(first.n_users)
    np.testing.assert_array_equal(first.score_items(users), second.score_items(users))
    other = RBMRecommender(replace(config, seed=4)).fit(train, validation)
    assert not np.array_equal(first.score_items(users), other.score_items(users))


def test_early_stopping_restores_the_best_epoch(data):
    train, validation, _ = data
    config = small_config("ratings", "item", False, epochs=60, patience=3, learning_rate=0.2)
    model = RBMRecommender(config).fit(train, validation)
    best = min(r.measures["validation_rmse"] for r in model.history)
    assert model.best_validation_rmse == pytest.approx(best)
    assert len(model.history) - model.best_epoch == 3
    as_measured = model.scorer.with_profiles(training_profiles(train))  # validation was measured from training alone
    with torch.no_grad():
        predicted = as_measured.predict(validation.users, validation.items)
    assert rmse(predicted, validation) == pytest.approx(best, abs=1e-12)


def training_profiles(train: Ratings) -> ProfileArrays:
    return ProfileArrays.of(
        train.users, train.items, train.levels, np.zeros(len(train)), (train.n_users, train.n_items, train.n_levels)
    )


def test_a_diverging_run_stops_with_one_line(data):
    train, validation, _ = data
    with pytest.raises(TrainingDiverged) as caught:
        RBMRecommender(small_config("ratings", "item", False, learning_rate=1e6)).fit(train, validation)
    assert "\n" not in str(caught.value) and "learning rate" in str(caught.value)


# --- the sparse mathematics against the core's dense mathematics -------------------------------------
def _tiny_problem(conditional: bool, interactions: bool = True, seed: int = 0):
    """4 units (× 3 levels), 5 hidden, 3 cases with some units unrated; garbage in the unrated rating groups.

    Returns the recommender RBM, the batch's two chain ends (data and a model sample) and their dense
    counterparts over the core's mixed layer ``[interactions (G) | ratings (G·K)]``, the per-group
    mask of that layer (interaction units always present, rating groups at rated units only) and the
    hidden bias each case sees (``c + r·D``).
    """
    generator = torch.Generator().manual_seed(seed)
    g, k, h = 4, 3, 5
    layout = Layout(g, k, interactions)
    layer = visible_layer(layout)
    rbm = RBM(
        torch.randn(layer.size, h, generator=generator, dtype=torch.float64),
        torch.randn(layer.size, generator=generator, dtype=torch.float64),
        torch.randn(h, generator=generator, dtype=torch.float64),
        layer,
    )
    d = torch.randn(g, h, generator=generator, dtype=torch.float64) if conditional else None
    model = RecommenderRBM(rbm, d)
    cases = np.asarray([0, 0, 1, 1, 1, 2])
    rated = np.asarray([0, 2, 1, 2, 3, 3])
    levels = np.asarray([2, 0, 1, 1, 0, 2])
    matrix = CaseMatrix.from_arrays(cases, rated, levels, 3, torch.device("cpu"))
    batch = matrix.gather(torch.arange(3))
    view = model.on(batch)
    rated_mask = torch.zeros(3, g, dtype=torch.bool)
    rated_mask[torch.from_numpy(cases), torch.from_numpy(rated)] = True
    model_interactions = (torch.rand(3, g, generator=generator) < 0.5).to(torch.float64)
    data_state = view.data()
    model_state = CaseState(model_interactions if interactions else None, torch.tensor([0, 0, 2, 1, 1, 0]))

    def dense(state: CaseState) -> torch.Tensor:
        garbage = torch.randint(0, k, (3, g), generator=generator)  # whatever sits in unrated groups
        full = garbage.clone()
        full[torch.from_numpy(cases), torch.from_numpy(rated)] = state.levels
        ratings = torch.nn.functional.one_hot(full, k).to(torch.float64).flatten(1)  # (B, G·K)
        if not interactions:
            return ratings
        block = state.interactions if state.interactions is not None else batch.interactions(g, torch.float64)
        return torch.cat([block, ratings], 1)

    mask = torch.cat([torch.ones(3, g, dtype=torch.bool), rated_mask], 1) if interactions else rated_mask
    hidden_bias = rbm.hidden_bias + (rated_mask.to(torch.float64) @ d if d is not None else 0.0)  # (B, H)
    return view, (data_state, model_state), (dense(data_state), dense(model_state)), mask, hidden_bias


def _chains(view, states):
    return tuple(Chain(state, view.hidden_probability(state), None) for state in states)


@pytest.mark.parametrize(("conditional", "interactions"), [(False, True), (True, True), (True, False)])
def test_sparse_statistics_equal_the_core_dense_gradient(conditional, interactions):
    view, states, (v_data, v_model), mask, hidden_bias = _tiny_problem(conditional, interactions)
    rbm = view.model.rbm
    p_data = fn.hidden_probability(v_data, rbm.weights, hidden_bias, rbm.units, mask)
    p_model = fn.hidden_probability(v_model, rbm.weights, hidden_bias, rbm.units, mask)
    positive, negative = _chains(view, states)
    torch.testing.assert_close(positive.hidden_probability, p_data)
    torch.testing.assert_close(negative.hidden_probability, p_model)
    reference = contrastive_gradient(
        fn.apply_mask(v_data, mask, rbm.units), p_data, fn.apply_mask(v_model, mask, rbm.units), p_model
    )
    sparse = dense_gradient(statistics(view, positive, negative))
    for name in ("weights", "visible_bias", "hidden_bias"):
        torch.testing.assert_close(sparse[name], reference[name])


def test_the_data_state_sums_over_its_rated_entries_what_the_dense_interaction_product_gives():
    """The data's interactions are its rated units: its hidden input and statistics run over the entries."""
    view, (data_state, model_state), *_ = _tiny_problem(conditional=True, interactions=True)
    as_dense = CaseState(view.batch.interactions(view.layout.n_units, torch.float64), data_state.levels)
    assert data_state.interactions is None and data_state.picked is not None and as_dense.picked is None
    torch.testing.assert_close(view.hidden_input(data_state), view.hidden_input(as_dense))
    negative = _chains(view, (model_state,))[0]
    by_entries = dense_gradient(statistics(view, _chains(view, (data_state,))[0], negative))
    by_product = dense_gradient(statistics(view, _chains(view, (as_dense,))[0], negative))
    for name, value in by_product.items():
        torch.testing.assert_close(by_entries[name], value)


def test_a_drawn_interaction_block_is_summed_over_its_ones_as_the_dense_product_gives():
    """The model phase draws every interaction unit and keeps its ones: summed over them, the same input and
    statistics as the dense block they stand for."""
    view, (data_state, _), *_ = _tiny_problem(conditional=True, interactions=True)
    drawn = view.sample_visible(view.hidden_probability(data_state), UniformStream(3, dtype=torch.float64))
    assert drawn.interactions is None  # the draw gives its ones only
    dense = torch.zeros(view.batch.n_cases, view.layout.n_units, dtype=torch.float64)
    dense[drawn.picked.cases, drawn.picked.units] = 1.0
    as_picks = Picks.of(dense)  # (case, unit) pairs ordered by case, then unit
    assert torch.equal(drawn.picked.cases, as_picks.cases) and torch.equal(drawn.picked.units, as_picks.units)
    assert torch.equal(drawn.picked.offsets, as_picks.offsets)
    dense_only = CaseState(dense, drawn.levels)
    torch.testing.assert_close(view.hidden_input(drawn), view.hidden_input(dense_only))
    positive = _chains(view, (data_state,))[0]
    by_ones = dense_gradient(statistics(view, positive, _chains(view, (drawn,))[0]))
    by_product = dense_gradient(statistics(view, positive, _chains(view, (dense_only,))[0]))
    for name, value in by_product.items():
        torch.testing.assert_close(by_ones[name], value)


@pytest.mark.parametrize(("conditional", "interactions"), [(False, True), (True, True), (True, False)])
def test_sparse_statistics_equal_autograd_of_the_free_energy_gap(conditional, interactions):
    """``mean F(v_model) − mean F(v_data)`` differentiated, unrated groups masked (garbage inside)."""
    view, states, (v_data, v_model), mask, _ = _tiny_problem(conditional, interactions)
    model = view.model
    rbm = model.rbm
    weights, visible_bias, hidden_bias = (t.clone().requires_grad_(True) for t in rbm.parameters().values())
    d = model.conditional.clone().requires_grad_(True) if conditional else None
    rated = mask[:, -4:].to(torch.float64)
    bias = hidden_bias + (rated @ d if d is not None else 0.0)

    def free(v):
        return fn.free_energy(v, weights, visible_bias, bias, rbm.units, mask).mean()

    (free(v_model) - free(v_data)).backward()
    sparse = dense_gradient(statistics(view, *_chains(view, states)))
    torch.testing.assert_close(sparse["weights"], weights.grad)
    torch.testing.assert_close(sparse["visible_bias"], visible_bias.grad)
    torch.testing.assert_close(sparse["hidden_bias"], hidden_bias.grad)
    if conditional:
        torch.testing.assert_close(sparse["conditional_weights"], d.grad)


def test_raters_scaling_divides_each_units_rating_rows_by_its_raters_in_the_batch():
    view, states, _, _, _ = _tiny_problem(conditional=True)
    positive, negative = _chains(view, states)
    cases = dense_gradient(statistics(view, positive, negative, "cases"))
    raters = dense_gradient(statistics(view, positive, negative, "raters"))
    layout, batch = view.layout, view.batch
    per_unit = batch.n_cases / torch.bincount(batch.units, minlength=layout.n_units).clamp_min(1).double()
    rows = slice(layout.rating_offset, None)
    scale = per_unit.repeat_interleave(layout.n_levels)
    torch.testing.assert_close(raters["weights"][rows], cases["weights"][rows] * scale[:, None])
    torch.testing.assert_close(raters["visible_bias"][rows], cases["visible_bias"][rows] * scale)
    torch.testing.assert_close(raters["conditional_weights"], cases["conditional_weights"] * per_unit[:, None])
    torch.testing.assert_close(raters["weights"][: layout.n_units], cases["weights"][: layout.n_units])


def test_negative_phase_resamples_only_the_rated_entries_and_every_interaction_unit():
    view, (data_state, _), _, _, _ = _tiny_problem(conditional=False)
    sample = view.sample_visible(torch.ones(3, 5, dtype=torch.float64), UniformStream(0))
    assert sample.levels.shape == data_state.levels.shape
    picked = sample.picked
    assert picked.cases.shape == picked.units.shape and bool(((picked.units >= 0) & (picked.units < 4)).all())
    assert bool((picked.cases[1:] >= picked.cases[:-1]).all()) and picked.offsets.shape == (3,)


def test_rated_logits_equal_the_gathered_formula():
    view, _, _, _, _ = _tiny_problem(conditional=False)
    rbm, layout, batch = view.model.rbm, view.layout, view.batch
    hidden = torch.rand(batch.n_cases, rbm.n_hidden, dtype=torch.float64)
    rows = slice(layout.rating_offset, None)
    weights = rbm.weights[rows].view(layout.n_units, layout.n_levels, -1)  # (G, K, H)
    bias = rbm.visible_bias[rows].view(layout.n_units, layout.n_levels)
    expected = bias[batch.units] + torch.einsum("ekh,eh->ek", weights[batch.units], hidden[batch.case_of_entry])
    torch.testing.assert_close(view.rated_logits(hidden), expected)


def test_the_recommender_layer_is_the_cores_mixed_layer():
    assert visible_layer(Layout(4, 3, True)) == VisibleLayer((BernoulliUnits(4), SoftmaxUnits(4, 3)))
    assert visible_layer(Layout(4, 0, True)) == VisibleLayer((BernoulliUnits(4),))
    assert visible_layer(Layout(4, 3, False)) == VisibleLayer((SoftmaxUnits(4, 3),))


def test_mean_field_formulas_agree_in_numpy_and_torch():
    rng = np.random.default_rng(0)
    hidden, weights, bias = rng.random((3, 4)), rng.normal(size=(6 * 5, 4)), rng.normal(size=30)
    x_weights, x_bias = rng.normal(size=(6, 4)), rng.normal(size=6)
    values = STARS
    for xp, convert in ((np, np.asarray), (torch, torch.from_numpy)):
        out = np.asarray(mf.rating_distribution(convert(hidden), convert(weights), convert(bias), 5, xp))
        np.testing.assert_allclose(out.sum(-1), 1.0)
        logits = (hidden @ weights.T + bias).reshape(3, 6, 5)
        np.testing.assert_allclose(out, np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), atol=1e-12)
        p_x = np.asarray(mf.interaction_probability(convert(hidden), convert(x_weights), convert(x_bias), xp))
        np.testing.assert_allclose(p_x, 1 / (1 + np.exp(-(hidden @ x_weights.T + x_bias))), atol=1e-12)
        for score, formula in (
            ("expected", out @ values),
            ("p_high", out[..., 3:].sum(-1)),
            ("p_interacted", p_x),
            ("p_liked", p_x * out[..., 3:].sum(-1)),
        ):
            scores = np.asarray(mf.ranking_score(score, convert(p_x), convert(out), convert(values), 4.0))
            np.testing.assert_allclose(scores, formula)
        table, rows, lengths = rng.normal(size=(7, 3)), np.asarray([1, 4, 4, 6, 0]), np.asarray([2, 0, 3])
        summed = np.asarray(mf.segment_sum(convert(table), convert(rows), convert(lengths), xp))
        np.testing.assert_allclose(summed, [table[1] + table[4], np.zeros(3), table[4] + table[6] + table[0]])
    assert float(mf.sigmoid(np.asarray(-1000.0), np)) == 0.0  # no overflow warning


def test_scoring_never_imports_torch():
    modules = ", ".join(f"recsys_rbm.recommender.{name}" for name in ("scorer", "profiles", "anomalies", "explain"))
    code = f"import sys, {modules}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_like_threshold_is_three_quarters_up_the_scale_unless_set():
    assert like_threshold(np.arange(1.0, 6.0)) == 4.0
    assert like_threshold(np.arange(0.5, 5.01, 0.5)) == 4.0
    assert like_threshold(np.arange(1.0, 11.0)) == 8.0
    assert like_threshold(np.arange(1.0, 6.0), 3.0) == 3.0
    assert like_threshold(np.asarray([1.0])) == 1.0


# --- configuration ---------------------------------------------------------------------------------
def test_config_presets_validation_and_schedule():
    joint, ratings = RecommenderConfig(), RecommenderConfig(kind="ratings")
    assert (joint.kind, joint.mode, joint.conditional) == ("joint", "user", False)
    assert (ratings.mode, ratings.hidden, ratings.conditional, ratings.averaging) == ("item", 100, True, 0.9)
    assert RecommenderConfig(kind="ratings", mode="user").mode == "user"  # an explicit value wins
    config = RecommenderConfig(cd_schedule=[[0, 1], [3, 3], [6, 5]])
    assert config.cd_schedule == ((0, 1), (3, 3), (6, 5))
    assert [config.cd_steps(e) for e in (0, 2, 3, 5, 6, 100)] == [1, 1, 3, 3, 5, 5]
    for bad in (
        {"kind": "both"},
        {"mode": "both"},
        {"hidden": 0},
        {"hidden": 10**9},
        {"learning_rate": 0},
        {"momentum": 1.0},
        {"cd_schedule": [[1, 1]]},
        {"cd_schedule": [[0, 1], [0, 3]]},
        {"cd_schedule": [[0, 0]]},
        {"cd_schedule": [[0, 10**20]]},
        {"cd_schedule": "fast"},
        {"gradient_scale": "none"},
        {"device": "tpu"},
        {"conditional": 1},
        {"seed": 2**64},
    ):
        with pytest.raises(ConfigError):
            RecommenderConfig(**bad)


def test_the_default_batch_follows_the_tables_size_and_explicit_settings_win():
    """At most the model's batch, and at least five batches an epoch; a batch size given is kept."""
    joint, ratings = RecommenderConfig(), RecommenderConfig(kind="ratings")
    assert joint.batch_size is None and joint.train_config().batch_size == 100
    assert joint.for_data(943).batch_size == 100 and joint.for_data(290).batch_size == 58
    assert ratings.for_data(1_682).batch_size == 300 and ratings.for_data(300).batch_size == 60
    assert ratings.for_data(3).batch_size == 1
    assert RecommenderConfig(batch_size=7).for_data(290).batch_size == 7


def test_settings_are_keywords_and_old_names_still_read():
    model = RBMRecommender(hidden=12, epochs=3, kind="ratings")
    assert (model.config.hidden, model.config.epochs, model.config.kind, model.config.mode) == (
        12,
        3,
        "ratings",
        "item",
    )
    assert RBMRecommender(small_config("joint", "user", False), hidden=5).config.hidden == 5
    with pytest.raises(ConfigError, match="unknown RecommenderConfig field"):
        RBMRecommender(n_hiden=12)
    from recsys_rbm.train.config import config_from_dict

    old = config_from_dict(RecommenderConfig, {"model": "ratings", "n_hidden": 40})  # as checkpoints before 0.3
    assert (old.kind, old.hidden) == ("ratings", 40)


def test_load_refuses_stored_settings_it_cannot_validate(tmp_path):
    model = RBMRecommender(small_config("joint", "user", False, epochs=1)).fit(
        split_three(ratings_from_dense(*dense_tastes()))[0]
    )
    path = model.save(tmp_path / "m")
    rewrite_metadata(path, lambda metadata: metadata["config"].update(hidden=-3), rehash=True)  # a verified file
    with pytest.raises(CheckpointError, match="stored settings do not validate"):
        RBMRecommender.load(path)


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


class _DenseGradients:
    """The recommender's objective with its row-sparse gradients made dense: the trainer updates every row."""

    def __init__(self, objective) -> None:
        self.inner = objective
        self.decayed, self.validation_measure, self.validation_goal = objective.decayed, None, "min"

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def gradient(self, batch, steps, random):
        return dense_gradient(self.inner.gradient(batch, steps, random))


def _float64_recommender(model_kind: str):
    """A 6-unit float64 recommender RBM (seeded) and its objective over the small taste data, user-based."""
    from recsys_rbm.recommender.objective import RecommenderObjective

    train, _, _ = split_three(ratings_from_dense(*dense_tastes()))
    layout = Layout(train.n_items, 5, interactions=model_kind == "joint")
    config = small_config(model_kind, "user", model_kind == "ratings", hidden=6, batch_size=8)
    generator = torch.Generator().manual_seed(0)
    rbm = RBM.initialise(visible_layer(layout), 6, generator, weight_std=0.1, dtype=torch.float64)
    conditional = torch.zeros(layout.n_units, 6, dtype=torch.float64) if model_kind == "ratings" else None
    model = RecommenderRBM(rbm, conditional)
    matrix = CaseMatrix.from_arrays(train.users, train.items, train.levels, train.n_users, torch.device("cpu"))
    return model, RecommenderObjective(model, matrix, config, lambda: {}, None)


@pytest.mark.parametrize("model_kind", ["joint", "ratings"])
def test_lazy_row_updates_train_the_same_recommender_as_dense_updates(model_kind, row_kernels):
    """Momentum and decay applied lazily to the rated rows (each batch's rows brought up to date before it reads
    them; the native row kernels or the reference) give the model that updating every row every step gives
    (float64, so the same Gibbs samples are drawn)."""
    from recsys_rbm.train.config import TrainConfig
    from recsys_rbm.train.trainer import Trainer

    models = []
    for dense in (False, True):
        model, objective = _float64_recommender(model_kind)
        settings = TrainConfig(
            epochs=3,
            batch_size=8,
            learning_rate=0.05,
            initial_momentum=0.9,
            final_momentum=0.9,
            weight_decay=0.01,
            seed=0,
        )
        trained = _DenseGradients(objective) if dense else objective
        trainer = Trainer(trained, settings, torch.Generator().manual_seed(1))
        trainer.fit()
        models.append(model)
    for name, parameter in models[1].parameters().items():
        torch.testing.assert_close(models[0].parameters()[name], parameter, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model_kind", ["joint", "ratings"])
def test_a_batch_reads_current_rows_once_the_trainer_brings_them_up_to_date(model_kind):
    """Mid-epoch, the stored rows lag behind; the trainer brings the rows a batch reads up to date first, and the
    batch's hidden inputs and rated logits then equal those of the model with every row brought up to date."""
    from recsys_rbm.train.config import TrainConfig
    from recsys_rbm.train.trainer import Trainer

    model, objective = _float64_recommender(model_kind)
    settings = TrainConfig(epochs=1, batch_size=8, learning_rate=0.05, final_momentum=0.9, weight_decay=0.01)
    trainer = Trainer(objective, settings, torch.Generator().manual_seed(1))
    batches = list(objective.batches(torch.Generator().manual_seed(2)))
    trainer._lazy.start_epoch(len(batches), 0.9, trainer._decays(0.05), objective.parameters())
    for batch in batches[:4]:
        trainer.step(batch, 0.05, 0.9, 1)
    lazily_updated = {"weights", "visible_bias"} | ({"conditional_weights"} if model_kind == "ratings" else set())
    assert {name for name in objective.parameters() if trainer._lazy.is_lagging(name)} == lazily_updated

    batch = batches[4]
    state = model.on(batch).data()
    hidden = torch.bernoulli(torch.full((batch.n_cases, 6), 0.5, dtype=torch.float64), generator=torch.Generator())
    stale_input = model.on(batch).hidden_input(state)
    trainer._bring_up_to_date(batch)
    read_input, read_logits = model.on(batch).hidden_input(state), model.on(batch).rated_logits(hidden)
    trainer._lazy.finish()  # every row brought up to date
    current = model.on(batch)
    torch.testing.assert_close(read_input, current.hidden_input(state), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(read_logits, current.rated_logits(hidden), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(stale_input, read_input, atol=1e-6)  # the lag was there, and bringing up to date ended it


def test_fit_shows_a_progress_bar_on_a_terminal_and_nothing_elsewhere(tmp_path):
    """progress=True draws on a terminal's stderr; piped, the same fit prints nothing."""
    import os
    import pty

    script = tmp_path / "fit.py"
    tests = str(Path(__file__).parent)
    script.write_text(
        f"import sys\nsys.path.insert(0, {tests!r})\n"
        "from test_recommender_model import dense_tastes, ratings_from_dense, small_config\n"
        "from recsys_rbm import RBMRecommender\n"
        "RBMRecommender(small_config('joint', 'user', False, epochs=3)).fit(ratings_from_dense(*dense_tastes()))\n"
    )
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done writing
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0
    os.close(leader)
    assert b"training" in shown and b"validation NDCG@10" in shown
    piped = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == b"" and piped.stdout == b""
