"""Whole user profiles under a user-based RBM: their free energy, each rating given the rest, and sampled ones.

Seen per unit, the visible layer is one categorical variable with ``S`` states (the "whole profiles"
notes of :mod:`~recsys_rbm.recommender.meanfield`): in the joint model an item is "not picked" or
"picked and rated at level k"; in a ratings-only model the rated set is given and each rated item
takes one of the ``K`` levels. On that view:

* :func:`free_energy` is ``F(v) = −b·v − Σ_j softplus(c_j + (vW)_j)``, so ``−F(v) = log p(v) + log Z``:
  differences of free energies are log-likelihood ratios between profiles;
* :func:`state_log_probabilities` is ``log p(one unit's state | the rest of the profile)``, exact (the
  hidden units summed out): the leave-one-out view of ``F``;
* :func:`sample_profiles` draws whole profiles by block Gibbs sampling of ``p(v) ∝ e^{−F(v)}`` with
  some units clamped, and :func:`imagine` holds liked and disliked items for it.

The formulas are :mod:`~recsys_rbm.recommender.meanfield`'s, tested against the core's torch ones
(:mod:`recsys_rbm.rbm.functional`); the sampler is written here rather than run through the core's
:mod:`recsys_rbm.rbm.gibbs` because the command line samples without importing torch. Every function
takes a :class:`~recsys_rbm.recommender.scorer.Scorer` over NumPy or torch arrays and returns NumPy;
ids are inner indices.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from recsys_rbm.data.ids import describe_id
from recsys_rbm.errors import DataError, RecsysRBMError
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.scorer import Scorer, check_ids, csr_rows

#: Gibbs steps of an imagined profile: short chains from the clamped items stay closest to real users'
#: profiles, while long ones drift to a mode of the contrastive-divergence-trained model that real users do
#: not have (``benchmarks/imagine_profiles.py`` measures this).
DEFAULT_STEPS = 3

PROFILE_BUDGET = 1 << 22  # (entry, state, hidden) products per chunk of leave-one-out conditionals


def n_states(scorer: Scorer) -> int:
    """States of one unit besides "not picked": the K rating levels, or 1 (picked) for implicit data."""
    return scorer.n_levels if scorer.layout.ratings else 1


def state_tables(scorer: Scorer, units: np.ndarray) -> tuple[Any, Any]:
    """Each state's row and bias for ``units`` (E,), in float64 ``xp``: ``(rows (E, S, H), bias (E, S))``.

    State ``k`` of unit ``g`` (picked and rated at level ``k``) adds the row ``W_x[g] + W_r[g, k]
    (+ D[g])`` to the hidden input and ``a_g + b[g, k]`` to ``b·v``, each term where the model has
    its block.
    """
    state, layout, xp = scorer.state, scorer.layout, scorer.xp
    units = np.asarray(units, dtype=np.int64)
    units_x = scorer.to_xp(units)
    shared = shared_bias = None
    if layout.interactions:
        shared, shared_bias = _float64(state.weights[units_x], xp), _float64(state.visible_bias[units_x], xp)
    if state.conditional is not None:
        d = _float64(state.conditional[units_x], xp)
        shared = d if shared is None else shared + d
    if not layout.ratings:
        return shared[:, None, :], shared_bias[:, None]
    k = layout.n_levels
    rows = scorer.to_xp(layout.rating_offset + units[:, None] * k + np.arange(k))  # (E, K)
    state_rows, bias = _float64(state.weights[rows], xp), _float64(state.visible_bias[rows], xp)
    if shared is not None:
        state_rows = state_rows + shared[:, None, :]
    if shared_bias is not None:
        bias = bias + shared_bias[:, None]
    return state_rows, bias


def free_energy(scorer: Scorer, units: np.ndarray, levels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``F(v) = −b·v − Σ_j softplus(c_j + (vW)_j)`` of ``B`` profiles (segments of (unit, level) entries of
    ``lengths`` (B,)); -> (B,) float64 NumPy.

    A profile's visible vector ``v`` is its interaction block (1 at each of its units, 0 at every
    other: all ``G`` units are present) and, at its units only, the one-hot ratings. Implicit data
    has levels 0. A ratings-only model's ``F`` is that of the ratings given the rated set.
    """
    units = np.asarray(units, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    bias = scorer.to_numpy(scorer.state.visible_bias).astype(np.float64)
    layout = scorer.layout
    visible = np.zeros(units.shape[0])
    if layout.interactions:
        visible += bias[units]
    if layout.ratings:
        visible += bias[layout.rating_offset + units * layout.n_levels + levels]
    owner = np.repeat(np.arange(lengths.shape[0]), lengths)
    visible_term = np.bincount(owner, weights=visible, minlength=lengths.shape[0])  # (B,) b·v
    hidden_input = scorer.to_numpy(scorer.profile_input(units, levels, lengths)).astype(np.float64)
    return mf.free_energy(hidden_input, visible_term, np)


def user_free_energy(scorer: Scorer, users: Any) -> np.ndarray:
    """``F`` of known users' whole profiles (user-based models); (B,) -> (B,) float64."""
    users = check_ids(users, scorer.n_users, "user")
    rows, lengths = csr_rows(scorer.state.profile_indptr, users)
    return free_energy(scorer, scorer.state.profile_items[rows], scorer.state.profile_levels[rows], lengths)


def state_log_probabilities(
    scorer: Scorer, units: np.ndarray, levels: np.ndarray, lengths: np.ndarray, budget: int = PROFILE_BUDGET
) -> np.ndarray:
    """Per entry of each profile, ``log p(its unit's state = s | the rest of the profile)`` for every ``s``.

    Exact (hidden units summed out): see :func:`meanfield.state_log_probabilities`. Columns:
    "not picked" then the ``S`` picked states for a model with an interaction block; the ``K``
    levels (given that the unit is rated) for a ratings-only model. The entry's own state is
    column ``levels + 1``, resp. ``levels``. Profiles are taken in chunks of about ``budget``
    (entry, state, hidden) products; -> (E, S + 1) or (E, K) float64 NumPy.
    """
    units = np.asarray(units, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    xp, absent, s = scorer.xp, scorer.layout.interactions, n_states(scorer)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    per_chunk = max(1, budget // ((s + 1) * scorer.state.n_hidden))
    parts, first, n_profiles = [], 0, lengths.shape[0]
    while first < n_profiles:
        last = int(np.searchsorted(indptr, indptr[first] + per_chunk, side="right")) - 1
        last = min(max(last, first + 1), n_profiles)
        lo, hi = indptr[first], indptr[last]
        chunk_units, chunk_levels = units[lo:hi], levels[lo:hi]
        total = _float64(scorer.profile_input(chunk_units, chunk_levels, lengths[first:last]), xp)
        rows, bias = state_tables(scorer, chunk_units)  # (E, S, H), (E, S)
        owner = scorer.to_xp(np.repeat(np.arange(last - first), lengths[first:last]))
        own = rows[scorer.to_xp(np.arange(hi - lo)), scorer.to_xp(chunk_levels)]  # (E, H): the entry's own row
        parts.append(scorer.to_numpy(mf.state_log_probabilities(total[owner] - own, rows, bias, absent, xp)))
        first = last
    width = s + int(absent)
    return np.concatenate(parts) if parts else np.zeros((0, width))


def sample_profiles(
    scorer: Scorer, clamped_units: Any, clamped_states: Any, n: int, steps: int, seed: int
) -> np.ndarray:
    """``n`` whole profiles by block Gibbs sampling with the given units held fixed; -> (n, G) int64 NumPy states.

    A state is 0 ("not picked": the interaction unit is 0 and the item's rating block absent) or
    ``1 + level`` ("picked, rated at that level"; 1 = picked for implicit data). Each chain starts
    from the clamped units alone and makes ``steps`` full steps: ``h ~ p(h | v)``, then every free
    unit's state from ``p(s | h)`` (:func:`meanfield.state_probability`); the clamped units keep
    ``clamped_states``. Every uniform is drawn from one NumPy generator seeded with ``seed``, so a
    NumPy and a torch scorer give the same profiles. Needs a user-based model with an interaction
    block (the joint model): only it models which items a user picks.
    """
    if scorer.mode != "user" or not scorer.layout.interactions:
        raise RecsysRBMError(
            "sampling whole profiles needs a user-based joint model (only its interaction block models which "
            "items a user picks; a ratings-only model is given them); train one with --model-kind joint --mode user"
        )
    xp, state = scorer.xp, scorer.state
    units = check_ids(clamped_units, scorer.n_items, "item")
    fixed = np.asarray(clamped_states, dtype=np.int64).reshape(-1)
    s, g, h = n_states(scorer), scorer.layout.n_units, state.n_hidden
    if fixed.shape != units.shape or (fixed.size and (fixed.min() < 0 or fixed.max() > s)):
        raise DataError(f"clamped states must be one per unit, each in 0..{s}")
    rows, bias = state_tables(scorer, np.arange(g))  # (G, S, H), (G, S)
    flat_rows = rows.reshape(g * s, h)  # row u·S + s − 1: unit u in state s
    hidden_bias = _float64(state.hidden_bias, xp)
    rng = np.random.default_rng(seed)
    states = np.zeros((n, g), dtype=np.int64)
    states[:, units] = fixed
    free = np.ones(g, dtype=bool)
    free[units] = False
    for _ in range(steps):
        chain, unit = np.nonzero(states)  # row-major: each chain's picked units in order
        picked = scorer.to_xp(unit * s + states[chain, unit] - 1)
        lengths = scorer.to_xp(np.bincount(chain, minlength=n))
        p_hidden = mf.hidden_probability(mf.segment_sum(flat_rows, picked, lengths, xp), hidden_bias, xp)  # (n, H)
        hidden = mf.bernoulli_from_uniforms(p_hidden, scorer.to_xp(rng.random((n, h))), xp)
        p_states = mf.state_probability(hidden, rows, bias, True, xp)  # (n, G, S + 1)
        draw = mf.categorical_from_uniforms(p_states, scorer.to_xp(rng.random((n, g, 1))), xp)
        states[:, free] = scorer.to_numpy(draw)[:, free]
    return states


def imagine(
    scorer: Scorer,
    liked: np.ndarray,
    disliked: np.ndarray,
    n: int = 5,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> np.ndarray:
    """``n`` whole profiles sampled with the ``liked`` items clamped at the top rating and the ``disliked``
    at the lowest (inner ids), by ``steps`` block Gibbs steps; -> (n, n_items) levels, −1 where not picked.

    A joint user-based model only (:func:`sample_profiles` says why). An item both liked and
    disliked is an error.
    """
    liked = check_ids(liked, scorer.n_items, "item")
    disliked = check_ids(disliked, scorer.n_items, "item")
    both = np.intersect1d(liked, disliked)
    if both.size:
        raw = describe_id(scorer.state.item_ids.raw_ids[int(both[0])].item())
        raise RecsysRBMError(f"item {raw} is both liked and disliked; clamp each item once")
    if scorer.is_implicit and disliked.size:
        raise RecsysRBMError(
            "this model was trained on implicit data: it has no ratings, so nothing can be disliked; "
            "give liked items only"
        )
    units = np.concatenate([liked, disliked])
    states = np.concatenate([np.full(liked.shape[0], n_states(scorer)), np.ones(disliked.shape[0], dtype=np.int64)])
    if np.unique(units).shape[0] != units.shape[0]:
        raise RecsysRBMError("an item is clamped twice; give each item once")
    return sample_profiles(scorer, units, states, n, steps, seed) - 1


def _float64(array: Any, xp: ModuleType) -> Any:
    """``array`` as float64 in its own namespace (NumPy or torch, on its device)."""
    return xp.asarray(array, dtype=xp.float64)
