"""The torch-free inference formulas agree with the training side's torch ones.

The scorer (:mod:`recsys_rbm.recommender.scorer`, :mod:`~recsys_rbm.recommender.profiles`) computes with
:mod:`recsys_rbm.recommender.meanfield`, written once for NumPy and torch; training computes with the
core (:mod:`recsys_rbm.rbm.functional`, :mod:`recsys_rbm.rbm.units`) and the recommender's sparse view of
it (:mod:`recsys_rbm.recommender.sparse`). Wherever both compute the same quantity, they must agree:
the hidden states of a trained model's users, the visible conditionals, the free energy, the Gibbs
conditional of one whole unit, and the samplers' rules.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_profiles import PROFILES, flat, random_state, torch_state
from test_recommender_model import dense_tastes, ratings_from_dense, small_config

from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import bernoulli
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.profiles import state_tables
from recsys_rbm.recommender.scorer import Scorer
from recsys_rbm.recommender.sparse import CaseMatrix, RecommenderRBM, SparseCases, visible_layer
from recsys_rbm.recommender.state import ModelState

USERS = np.arange(12)  # the users whose hidden states are compared


def dense_visible(state: ModelState, users: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The core's dense view of users' profiles: ``v`` (B, Dv), the per-group mask (B, G [+ G]) and ``x`` (B, G).

    ``v`` is ``[x | one-hot ratings]`` with the rating groups present at rated items only, as in training.
    """
    layout, indptr = state.layout, state.profile_indptr
    g, k = layout.n_units, max(layout.n_levels, 1)
    x = torch.zeros(len(users), g, dtype=torch.float64)
    ratings = torch.zeros(len(users), g, k, dtype=torch.float64)
    for row, user in enumerate(users):
        items = state.profile_items[indptr[user] : indptr[user + 1]]
        levels = state.profile_levels[indptr[user] : indptr[user + 1]]
        x[row, items] = 1.0
        ratings[row, items, levels] = 1.0
    blocks, masks = [], []
    if layout.interactions:
        blocks.append(x)
        masks.append(torch.ones(len(users), g, dtype=torch.bool))
    if layout.ratings:
        blocks.append(ratings.flatten(1))
        masks.append(x.bool())
    return torch.cat(blocks, 1), torch.cat(masks, 1), x


def training_cases(state: ModelState, users: np.ndarray) -> SparseCases:
    """Users' whole profiles as the training path sees a batch: the sparse cases of :mod:`sparse`."""
    rbm = RBM(state.weights, state.visible_bias, state.hidden_bias, visible_layer(state.layout))
    owner = np.repeat(np.arange(state.n_users), np.diff(state.profile_indptr))
    matrix = CaseMatrix.from_arrays(owner, state.profile_items, state.profile_levels, state.n_users, rbm.device)
    return RecommenderRBM(rbm, state.conditional).on(matrix.gather(torch.from_numpy(users)))


def training_hidden(state: ModelState, users: np.ndarray) -> torch.Tensor:
    """``p(h = 1 | v)`` of users' whole profiles by the training path."""
    cases = training_cases(state, users)
    return cases.hidden_probability(cases.data())


def core_hidden(state: ModelState, users: np.ndarray) -> torch.Tensor:
    """``p(h = 1 | v)`` by the core's dense formula, the conditional term ``x·D`` added to the hidden bias."""
    v, mask, x = dense_visible(state, users)
    weights = state.weights.to(torch.float64)
    hidden_bias = state.hidden_bias.to(torch.float64).expand(len(users), -1)
    if state.conditional is not None:
        hidden_bias = hidden_bias + x @ state.conditional.to(torch.float64)
    return fn.hidden_probability(v, weights, hidden_bias, visible_layer(state.layout), mask)


@pytest.fixture(
    scope="module",
    params=[("joint", False), ("ratings", False), ("ratings", True)],
    ids=["joint", "ratings", "ratings-conditional"],
)
def trained(request, tmp_path_factory) -> tuple[RBMRecommender, Scorer]:
    """A small user-based model of each kind (the ratings model with and without ``D``), and the torch-free scorer
    of its saved checkpoint."""
    kind, conditional = request.param
    config = small_config(kind, "user", conditional, epochs=5)
    model = RBMRecommender(config).fit(ratings_from_dense(*dense_tastes()), progress=False)
    path = model.save(tmp_path_factory.mktemp(kind) / "model.safetensors")
    return model, Scorer.load(path)


def test_hidden_states_at_inference_are_the_training_conditionals(trained):
    """For the same profile, the NumPy scorer's ``p̂`` is the training path's ``p(h = 1 | v)`` (and the core's)."""
    model, numpy_scorer = trained
    assert numpy_scorer.xp is np and isinstance(numpy_scorer.state.weights, np.ndarray)
    with torch.no_grad():
        training = training_hidden(model.scorer.state, USERS).numpy()
        dense = core_hidden(model.scorer.state, USERS).numpy()
    inference = numpy_scorer.user_hidden(USERS)
    assert inference.shape == (USERS.shape[0], model.config.hidden)
    np.testing.assert_allclose(inference, training, atol=1e-6, rtol=0)
    np.testing.assert_allclose(inference, dense, atol=1e-6, rtol=0)


def test_rating_distributions_at_inference_are_the_training_conditionals(trained):
    """At each rated entry, the scorer's ``P(r = k)`` from ``p̂`` is the training path's softmax of its level rows."""
    model, numpy_scorer = trained
    state = model.scorer.state
    with torch.no_grad():
        cases = training_cases(state, USERS)
        training = torch.softmax(cases.rated_logits(cases.hidden_probability(cases.data())), -1).numpy()  # (E, K)
    lengths = np.diff(state.profile_indptr)[USERS]
    owner = np.repeat(np.arange(USERS.shape[0]), lengths)
    items = np.concatenate([numpy_scorer.rated_items(user)[0] for user in USERS])
    distribution = numpy_scorer.predictions(USERS).distribution  # (B, n_items, K)
    np.testing.assert_allclose(distribution[owner, items], training, atol=1e-6, rtol=0)


def test_a_new_users_fold_in_hidden_state_is_a_training_users_for_the_same_ratings(trained):
    _, scorer = trained
    items, levels = scorer.rated_items(3)
    folded = scorer.profile_hidden(items, levels, np.asarray([items.shape[0]]))
    np.testing.assert_array_equal(folded, scorer.user_hidden(np.asarray([3])))


# --- the same formulas on small random models --------------------------------------------------------------------
@pytest.mark.parametrize("interactions", [True, False])
def test_visible_conditionals_are_the_cores_block_means(interactions):
    state = random_state(interactions=interactions)
    layout, layer = state.layout, visible_layer(state.layout)
    hidden = np.random.default_rng(1).random((6, state.n_hidden))  # mean-field states in [0, 1]
    mean = layer.mean(fn.visible_preactivation(*map(torch.from_numpy, (hidden, state.weights, state.visible_bias))))
    if interactions:
        rows = layout.interaction_rows()
        p_x = mf.interaction_probability(hidden, state.weights[rows], state.visible_bias[rows], np)
        np.testing.assert_allclose(p_x, mean[:, rows].numpy(), rtol=1e-12)
    rows = layout.rating_rows()
    distribution = mf.rating_distribution(hidden, state.weights[rows], state.visible_bias[rows], layout.n_levels, np)
    np.testing.assert_allclose(distribution.reshape(6, -1), mean[:, rows].numpy(), rtol=1e-12)


@pytest.mark.parametrize("interactions", [True, False])
def test_free_energy_formula_is_the_cores(interactions):
    state = random_state(interactions=interactions)
    v, mask, _ = dense_visible(state, np.arange(len(PROFILES)))
    weights, bias, hidden_bias = map(torch.from_numpy, (state.weights, state.visible_bias, state.hidden_bias))
    core = fn.free_energy(v, weights, bias, hidden_bias, visible_layer(state.layout), mask).numpy()
    v = fn.apply_mask(v, mask, visible_layer(state.layout)).numpy()
    formula = mf.free_energy(state.hidden_bias + v @ state.weights, v @ state.visible_bias, np)
    np.testing.assert_allclose(formula, core, rtol=1e-12)


@pytest.mark.parametrize("conditional", [False, True])
def test_the_gibbs_conditional_of_a_whole_unit_normalises_the_cores_energy(conditional):
    """``p(unit g in state s | h)`` is ``e^{−E(v_s, h)}`` over the unit's states, each ``v_s`` the profile with g in
    state s and every other unit not picked; the core's energy, with ``x·D`` added to the hidden bias."""
    state = random_state(conditional=conditional)
    layout, h = state.layout, state.n_hidden
    g, k = layout.n_units, layout.n_levels
    hidden = (np.random.default_rng(2).random((5, h)) < 0.5).astype(np.float64)
    rows, bias = state_tables(Scorer(state, np), np.arange(g))
    probability = mf.state_probability(hidden, rows, bias, True, np)  # (5, G, K + 1)
    weights, visible_bias, hidden_bias = map(torch.from_numpy, (state.weights, state.visible_bias, state.hidden_bias))
    h_t = torch.from_numpy(hidden)
    for unit in range(g):
        energies = []
        for s in range(k + 1):
            v = torch.zeros(layout.size, dtype=torch.float64)
            if s > 0:  # picked and rated at level s − 1; "not picked" leaves the unit's rating group absent
                v[unit] = 1.0
                v[layout.rating_offset + unit * k + s - 1] = 1.0
            energy = fn.energy(v.expand(5, -1), h_t, weights, visible_bias, hidden_bias)
            if conditional and s > 0:
                energy = energy - h_t @ torch.from_numpy(state.conditional[unit])
            energies.append(energy)
        expected = torch.softmax(-torch.stack(energies, -1), -1).numpy()  # (5, K + 1)
        np.testing.assert_allclose(probability[:, unit], expected, rtol=1e-10)


def test_the_binary_draw_is_the_cores_bernoulli_sampler():
    probability = torch.rand(40, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    drawn = bernoulli(probability, torch.Generator().manual_seed(5))
    uniform = torch.rand((40, 7), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(mf.bernoulli_from_uniforms(probability, uniform, torch), drawn.to(torch.float64))
    as_numpy = mf.bernoulli_from_uniforms(probability.numpy(), uniform.numpy(), np)
    np.testing.assert_array_equal(as_numpy, drawn.numpy())


def test_the_stable_primitives_are_torchs():
    x = torch.tensor([[-800.0, -30.0, -1.0, 0.0], [0.5, 3.0, 40.0, 800.0]], dtype=torch.float64)
    # the tanh form of the sigmoid is exact to 1e-16 absolute, not relative, far in its lower tail
    np.testing.assert_allclose(mf.sigmoid(x.numpy(), np), torch.sigmoid(x).numpy(), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(mf.softplus(x.numpy(), np), F.softplus(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(mf.logsumexp(x.numpy(), np), torch.logsumexp(x, -1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(mf.softmax(x.numpy(), np), torch.softmax(x, -1).numpy(), rtol=1e-12, atol=1e-300)


def test_the_scorers_hidden_state_of_a_profile_is_the_cores_on_a_random_model():
    """The same identity on a random model with every block and ``D``, NumPy and torch scorers alike."""
    state = random_state(conditional=True)
    units, levels, lengths = flat(PROFILES)
    expected = core_hidden(torch_state(state), np.arange(len(PROFILES))).numpy()
    for scorer in (Scorer(state, np), Scorer(torch_state(state), torch)):
        np.testing.assert_allclose(scorer.to_numpy(scorer.profile_hidden(units, levels, lengths)), expected, rtol=1e-12)


# --- ranking scores straight from the logits ---------------------------------------------------------------------
@pytest.mark.parametrize("score", mf.SCORES)
@pytest.mark.parametrize("interactions", [True, False])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_ranking_scores_are_those_of_the_full_predictions_fallbacks_included(score, interactions, backend):
    """``score_items`` (``P(r ≥ t)`` from the logits, in the parameters' precision) ranks by the numbers that
    :meth:`Scorer.scores` makes from the float64 distributions, for a user and an item without ratings too."""
    profiles = [[(0, 2), (2, 0)], [], [(3, 2), (2, 1)], [(0, 0)]]  # user 1 and item 1 have no rating
    state = random_state(g=5, k=4, h=6, interactions=interactions, profiles=profiles, seed=7, scale=2.0)
    if backend == "torch":
        state = torch_state(state)
    scorer = Scorer(state, torch if backend == "torch" else np)
    users = np.arange(len(profiles))
    expected = scorer.scores(scorer.predictions(users), score)
    with torch.no_grad():
        ranked = scorer.score_items(users, score)
    assert ranked.shape == expected.shape == (len(profiles), 5)
    np.testing.assert_allclose(ranked, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["user", "item"])
def test_ranking_scores_of_a_trained_float32_model_are_its_predictions_scores(mode):
    """On a trained (float32) model of either mode, the fast ranking scores are the predictions' to float32 rounding."""
    config = small_config("joint", mode, False, epochs=3)
    model = RBMRecommender(config).fit(ratings_from_dense(*dense_tastes()), progress=False)
    scorer, users = model.scorer, np.arange(model.scorer.n_users)
    with torch.no_grad():
        for score in mf.SCORES:
            expected = scorer.scores(scorer.predictions(users), score)
            np.testing.assert_allclose(scorer.score_items(users, score), expected, rtol=1e-5, atol=1e-6)
