"""Whole profiles: free energy, leave-one-out conditionals and Gibbs sampling against exact references,
NumPy against torch, and the anomaly score and imagined profiles on a small trained model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from test_recommender_model import dense_tastes, ratings_from_dense, small_config

from recsys_rbm.data.ids import IdMap
from recsys_rbm.errors import RecsysRBMError
from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.units import sample_levels
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.anomalies import (
    LengthFit,
    atypicality,
    profile_atypicality,
    surprises,
    surprising_ratings,
)
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.profiles import (
    free_energy,
    imagine,
    sample_profiles,
    state_log_probabilities,
    user_free_energy,
)
from recsys_rbm.recommender.scorer import Scorer
from recsys_rbm.recommender.sparse import visible_layer
from recsys_rbm.recommender.state import Layout, ModelState

# Three users' profiles over 4 items: (item, level) entries, ascending items.
PROFILES = [[(0, 2), (2, 0)], [(1, 1), (2, 1), (3, 0)], [(3, 2)]]


def random_state(
    g: int = 4,
    k: int = 3,
    h: int = 5,
    interactions: bool = True,
    conditional: bool = False,
    profiles: list = PROFILES,
    seed: int = 0,
    scale: float = 1.0,
) -> ModelState:
    """A user-based model with N(0, scale²) parameters, whose training users are ``profiles``."""
    rng = np.random.default_rng(seed)
    layout = Layout(g, k, interactions)
    items = np.asarray([item for profile in profiles for item, _ in profile], dtype=np.int64)
    levels = np.asarray([level for profile in profiles for _, level in profile], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum([len(p) for p in profiles])]).astype(np.int64)
    counts = np.bincount(items * k + levels, minlength=g * k).reshape(g, k)
    return ModelState(
        model="joint" if interactions else "ratings",
        mode="user",
        layout=layout,
        weights=rng.normal(0, scale, (layout.size, h)),
        visible_bias=rng.normal(0, scale, layout.size),
        hidden_bias=rng.normal(0, scale, h),
        conditional=rng.normal(0, scale, (g, h)) if conditional else None,
        rating_values=np.arange(1.0, k + 1),
        profile_indptr=indptr,
        profile_items=items,
        profile_levels=levels,
        profile_parts=np.zeros_like(items),
        item_level_counts=counts,
        user_ids=IdMap(np.arange(1, len(profiles) + 1), "user"),
        item_ids=IdMap(np.arange(1, g + 1), "item"),
    )


def torch_state(state: ModelState) -> ModelState:
    from dataclasses import replace

    def convert(array):
        return None if array is None else torch.from_numpy(array)

    return replace(
        state,
        weights=convert(state.weights),
        visible_bias=convert(state.visible_bias),
        hidden_bias=convert(state.hidden_bias),
        conditional=convert(state.conditional),
    )


def flat(profiles: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    units = np.asarray([item for profile in profiles for item, _ in profile], dtype=np.int64)
    levels = np.asarray([level for profile in profiles for _, level in profile], dtype=np.int64)
    return units, levels, np.asarray([len(p) for p in profiles], dtype=np.int64)


def dense_free_energy(state: ModelState, profiles: list) -> np.ndarray:
    """The core's ``F(v)`` on the mixed layer ``[x (G) | ratings (G·K)]``: interactions all present, rating groups
    at rated units only (garbage in the others), the conditional term in the hidden bias."""
    layout, generator = state.layout, torch.Generator().manual_seed(1)
    g, k = layout.n_units, layout.n_levels
    n = len(profiles)
    rated = torch.zeros(n, g, dtype=torch.bool)
    full = torch.randint(0, k, (n, g), generator=generator)
    for row, profile in enumerate(profiles):
        for item, level in profile:
            rated[row, item], full[row, item] = True, level
    ratings = torch.nn.functional.one_hot(full, k).to(torch.float64).flatten(1)
    x = rated.to(torch.float64)
    v = torch.cat([x, ratings], 1) if layout.interactions else ratings
    mask = torch.cat([torch.ones(n, g, dtype=torch.bool), rated], 1) if layout.interactions else rated
    weights, bias = torch.from_numpy(state.weights), torch.from_numpy(state.visible_bias)
    hidden_bias = torch.from_numpy(state.hidden_bias).expand(n, -1)
    if state.conditional is not None:
        hidden_bias = hidden_bias + x @ torch.from_numpy(state.conditional)
    return fn.free_energy(v, weights, bias, hidden_bias, visible_layer(layout), mask).numpy()


VARIANTS = [(True, False), (True, True), (False, False), (False, True)]  # (interactions, conditional)


@pytest.mark.parametrize(("interactions", "conditional"), VARIANTS)
def test_free_energy_equals_the_cores_dense_free_energy(interactions, conditional):
    state = random_state(interactions=interactions, conditional=conditional)
    profiles = [*PROFILES, []]  # and the empty profile
    expected = dense_free_energy(state, profiles)
    for scorer in (Scorer(state, np), Scorer(torch_state(state), torch)):
        np.testing.assert_allclose(free_energy(scorer, *flat(profiles)), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(user_free_energy(Scorer(state, np), [0, 1, 2]), expected[:3], rtol=1e-10)


def all_profiles(g: int, states: int) -> list:
    """Every joint profile over ``g`` units, each unit in 0 (not picked) or 1..states (picked at level s − 1)."""
    out = []
    for combination in itertools.product(range(states + 1), repeat=g):
        out.append([(unit, s - 1) for unit, s in enumerate(combination) if s > 0])
    return out


def enumerated(state: ModelState) -> tuple[list, np.ndarray, np.ndarray]:
    """Every profile, its exact probability ``e^{−F} / Z`` and its states as an array (P, G)."""
    g, k = state.layout.n_units, state.layout.n_levels
    profiles = all_profiles(g, k)
    free = free_energy(Scorer(state, np), *flat(profiles))
    p = np.exp(-(free - free.min()))
    states = np.asarray(list(itertools.product(range(k + 1), repeat=g)))
    return profiles, p / p.sum(), states


@pytest.mark.parametrize("conditional", [False, True])
def test_leave_one_out_conditionals_equal_exact_enumeration(conditional):
    state = random_state(g=3, k=2, h=3, conditional=conditional, profiles=[[(0, 1)]])
    profiles, p, states = enumerated(state)
    index = {tuple(row): i for i, row in enumerate(states.tolist())}
    scorer = Scorer(state, np)
    chosen = [profile for profile in profiles if profile][::3]
    table = state_log_probabilities(scorer, *flat(chosen))  # (E, K + 1)
    row = 0
    for profile in chosen:
        config = np.zeros(3, dtype=np.int64)
        for item, level in profile:
            config[item] = level + 1
        for item, _ in profile:
            alternatives = []
            for s in range(3):
                other = config.copy()
                other[item] = s
                alternatives.append(p[index[tuple(other.tolist())]])
            np.testing.assert_allclose(np.exp(table[row]), np.asarray(alternatives) / sum(alternatives), atol=1e-12)
            row += 1
    assert row == table.shape[0]


def test_ratings_only_conditionals_are_over_the_levels_given_the_rated_set():
    state = random_state(interactions=False, conditional=True)
    scorer = Scorer(state, np)
    units, levels, lengths = flat(PROFILES)
    table = state_log_probabilities(scorer, units, levels, lengths)
    assert table.shape == (units.shape[0], 3)
    np.testing.assert_allclose(np.exp(table).sum(1), 1.0)
    # entry 0 (user 0, item 0): compare the profiles that differ in its level only
    variants = [[(0, level), (2, 0)] for level in range(3)]
    free = free_energy(scorer, *flat(variants))
    np.testing.assert_allclose(np.exp(table[0]), np.exp(-free) / np.exp(-free).sum(), atol=1e-12)


def test_gibbs_samples_follow_the_exact_distribution_and_respect_clamped_units():
    state = random_state(g=3, k=2, h=3, profiles=[[(0, 1)]], seed=4)
    _, p, states = enumerated(state)
    scorer = Scorer(state, np)
    n = 20_000
    samples = sample_profiles(scorer, [], [], n, steps=30, seed=0)
    codes = samples @ np.asarray([9, 3, 1])  # the enumeration's order: base 3, first unit most significant
    empirical = np.bincount(codes, minlength=27) / n
    assert 0.5 * np.abs(empirical - p).sum() < 0.03
    clamped = sample_profiles(scorer, [1], [2], n, steps=30, seed=1)
    assert (clamped[:, 1] == 2).all()
    conditional = np.where(states[:, 1] == 2, p, 0.0)
    conditional /= conditional.sum()
    empirical = np.bincount(clamped @ np.asarray([9, 3, 1]), minlength=27) / n
    assert 0.5 * np.abs(empirical - conditional).sum() < 0.03


def test_numpy_and_torch_scorers_agree_on_profiles():
    state = random_state(conditional=True)
    numpy_scorer, torch_scorer = Scorer(state, np), Scorer(torch_state(state), torch)
    units, levels, lengths = flat(PROFILES)
    np.testing.assert_allclose(
        state_log_probabilities(numpy_scorer, units, levels, lengths),
        state_log_probabilities(torch_scorer, units, levels, lengths),
        atol=1e-12,
    )
    for scorer in (numpy_scorer, torch_scorer):
        assert sample_profiles(scorer, [2], [1], 7, steps=5, seed=3).dtype == np.int64
    np.testing.assert_array_equal(
        sample_profiles(numpy_scorer, [2], [1], 50, steps=10, seed=3),
        sample_profiles(torch_scorer, [2], [1], 50, steps=10, seed=3),
    )


def test_the_categorical_draw_is_the_cores_softmax_sampler():
    logits = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    drawn = sample_levels(logits, torch.Generator().manual_seed(7))
    uniform = torch.rand((6, 4, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    probability = torch.softmax(logits, -1)
    torch.testing.assert_close(mf.categorical_from_uniforms(probability, uniform, torch), drawn)
    as_numpy = mf.categorical_from_uniforms(probability.numpy(), uniform.numpy(), np)
    np.testing.assert_array_equal(as_numpy, drawn.numpy())


def test_softplus_and_logsumexp_are_stable():
    x = np.asarray([-1000.0, -1.0, 0.0, 3.0, 1000.0])
    np.testing.assert_allclose(
        mf.softplus(x, np), [0.0, np.log1p(np.exp(-1.0)), np.log(2.0), np.log1p(np.exp(3.0)), 1000.0]
    )
    np.testing.assert_allclose(mf.logsumexp(np.asarray([[1000.0, 1000.0]]), np), [1000.0 + np.log(2.0)])


def test_length_fit_removes_a_trend_and_scales_by_the_spread():
    rng = np.random.default_rng(0)
    n = rng.integers(20, 400, 500).astype(np.float64)
    free = -200 + 2.0 * n + rng.normal(0, 1, 500) * (5 + 0.2 * n)
    score = LengthFit.of(n, free).score(n, free)
    assert abs(np.corrcoef(score, n)[0, 1]) < 0.05
    short, long = score[n < 210], score[n >= 210]
    assert 0.8 < short.std() / long.std() < 1.25  # the same scale at every length
    with pytest.raises(RecsysRBMError, match="at least 4 users"):
        LengthFit.of(n[:3], free[:3])


# --- a small trained model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def joint() -> RBMRecommender:
    return RBMRecommender(small_config("joint", "user", False, hidden=10)).fit(ratings_from_dense(*dense_tastes()))


def test_an_odd_profile_is_the_most_atypical(joint):
    """A profile that rates 20 random items 5 or 1 at random, with no regard to either taste, scores above every
    training user (typical users score about 0 by construction)."""
    rng = np.random.default_rng(0)
    items = np.sort(rng.choice(joint.n_items, 20, replace=False))
    levels = rng.permutation(np.repeat([4, 0], 10))
    with torch.no_grad():
        scored = atypicality(joint.scorer)
        _, score = profile_atypicality(joint.scorer, items, levels, [20])
    np.testing.assert_allclose(scored.free_energy, user_free_energy(joint.scorer, scored.users))
    assert abs(scored.score.mean()) < 0.2 and scored.score.max() < 4
    assert score[0] > scored.score.max() + 1
    with torch.no_grad():  # a training user's own profile, scored as if new, gets its training score
        own_items, own_levels = joint.scorer.rated_items(5)
        _, own = profile_atypicality(joint.scorer, own_items, own_levels, [own_items.shape[0]])
    np.testing.assert_allclose(own, scored.score[scored.users == 5])


def test_surprising_ratings_are_the_least_likely_given_the_rest(joint):
    with torch.no_grad():
        log_pick, log_rating, owner = surprises(joint.scorer, np.asarray([0, 1]))
        listed = surprising_ratings(joint.scorer, 1, n=3)
    assert (log_pick <= 0).all() and (log_rating <= 0).all()
    theirs = (log_pick + log_rating)[owner == 1]
    np.testing.assert_allclose([s.log_p for s in listed], np.sort(theirs)[:3])
    assert all(abs(s.log_p - s.log_p_pick - s.log_p_rating) < 1e-12 for s in listed)
    items, _ = joint.scorer.rated_items(1)
    assert {s.item for s in listed} <= set(items.tolist())


def test_imagined_profiles_keep_the_clamped_ratings_and_follow_the_tastes(joint):
    scorer = joint.scorer
    with torch.no_grad():
        profiles = imagine(scorer, liked=[0], disliked=[1], n=60, steps=30, seed=5)
        again = imagine(scorer, liked=[0], disliked=[1], n=60, steps=30, seed=5)
        other = imagine(scorer, liked=[0], disliked=[1], n=60, steps=30, seed=6)
    assert profiles.shape == (60, scorer.n_items)
    assert (profiles[:, 0] == 4).all() and (profiles[:, 1] == 0).all()  # liked: top level, disliked: lowest
    np.testing.assert_array_equal(profiles, again)
    assert not np.array_equal(profiles, other)
    values = np.where(profiles >= 0, profiles + 1.0, np.nan)
    group_0, group_1 = np.nanmean(values[:, 2::2]), np.nanmean(values[:, 3::2])  # item i is in taste group i % 2
    assert group_0 - group_1 > 1.5  # liking a group-0 item and disliking a group-1 item: a group-0 user
    counts = (profiles >= 0).sum(1)
    assert 5 < np.median(counts) < 40  # the data's users rate about 14 of 40 items


def test_models_that_cannot_imagine_or_score_users_say_so_in_one_line(joint):
    ratings_state = random_state(interactions=False)
    with pytest.raises(RecsysRBMError, match="needs a user-based joint model") as caught:
        imagine(Scorer(ratings_state, np), [0], [])
    assert "\n" not in str(caught.value)
    with pytest.raises(RecsysRBMError, match="both liked and disliked"):
        imagine(joint.scorer, [0], [0])
    from dataclasses import replace

    item_based = Scorer(replace(random_state(), mode="item", case_input=np.zeros((4, 5))), np)
    with pytest.raises(RecsysRBMError, match="needs a user-based model"):
        atypicality(item_based)


def test_the_library_model_speaks_raw_ids(joint):
    found = joint.anomalies(n=3, reasons=2)
    assert [a.score for a in found] == sorted((a.score for a in found), reverse=True) and len(found) == 3
    assert all(isinstance(a.user, int) and 1 <= a.user <= 60 and len(a.surprising) == 2 for a in found)
    assert found[0].surprising[0].effect <= found[0].surprising[1].effect <= 0
    profiles = joint.imagine(likes=[1], dislikes=[2], n=4, steps=10, seed=0)
    assert len(profiles) == 4
    for profile in profiles:
        ratings = dict(profile)
        assert ratings[1] == 5.0 and ratings[2] == 1.0
        assert [r for _, r in profile] == sorted((r for _, r in profile), reverse=True)
    assert joint.imagine(likes=[1], dislikes=[2], n=4, steps=10, seed=0) == profiles
