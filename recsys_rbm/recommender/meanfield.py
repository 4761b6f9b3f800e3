"""The recommender's prediction formulas, written once for both NumPy and torch.

Every function takes its array namespace ``xp`` (the ``numpy`` or the ``torch`` module) and uses
only operations spelled identically in both (``@``, ``xp.tanh``, ``xp.exp``, ``xp.amax``,
``.sum(-1, keepdims=True)``, ``.reshape``, ``xp.moveaxis``), so the torch model and the torch-free
command-line path (both through :class:`~recsys_rbm.recommender.scorer.Scorer`) cannot drift
apart, and the training side's torch formulas are tested against them
(``tests/test_inference_formulas.py``). This module must never import torch.

Notation. A *case* is one RBM input (a user in user-based mode, an item in item-based mode); a
*unit* is one position of its visible layer (an item, resp. a user). ``W`` (Dv, H) holds the
interaction rows ``W_x`` (G, H) and the rating rows ``W_r`` (G·K, H), with biases ``a`` (G,) and
``b`` (G·K,); ``c`` (H,) is the hidden bias and ``D`` (G, H) the conditional term. For a case that
rated units ``R`` at levels ``k_i``:

* mean-field hidden state ``p̂ = sigmoid(c + Σ_{i∈R} (W_x[i] + W_r[i, k_i] + D[i]))`` (each
  term present when its block is);
* ``P(interacted with g) = sigmoid(a_g + W_x[g]·p̂)``;
* ``P(r_g = k) = softmax_k(b[g, k] + W_r[g, k]·p̂)``, the rating *if* the case rates g;
* expected rating ``Σ_k P(r = k)·value_k``, ``P(r ≥ t)``, and the ranking score
  ``P(liked) = P(interacted) · P(r ≥ t)``: the chance of choosing the item and liking it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

Array = Any  # a numpy.ndarray or a torch.Tensor; one namespace per call

#: Which prediction each (user, item) pair received (see :func:`fallback_codes`).
FALLBACK_NAMES = ("model", "item_distribution", "user_distribution", "global_distribution")
MODEL, ITEM_DISTRIBUTION, USER_DISTRIBUTION, GLOBAL_DISTRIBUTION = range(4)

#: Ranking scores (see :func:`ranking_score`); the first is the default.
SCORES = ("p_liked", "p_interacted", "p_high", "expected")

#: What each score is, in words, for tables and JSON (``{t}``: the like threshold).
SCORE_MEANINGS = {
    "p_liked": "P(picks it)·P(rates it ≥ {t} | picks it)",
    "p_interacted": "P(picks it)",
    "p_high": "P(rates it ≥ {t} | picks it)",
    "expected": "expected rating",
}

#: Strength (in pseudo-ratings) of the global rating distribution mixed into each user's and each
#: item's empirical distribution, for the visible biases and the fallbacks.
PRIOR_STRENGTH = 2.0


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """``1 / (1 + e^{-x})``: torch's own, and in NumPy as ``(1 + tanh(x/2)) / 2``, which never overflows."""
    if _is_torch(xp):
        return xp.sigmoid(x)
    return 0.5 * (xp.tanh(0.5 * x) + 1.0)


def affine(x: Array, weights: Array, bias: Array, xp: ModuleType) -> Array:
    """``b + x Wᵀ``; (C, H), (G, H), (G,) -> (C, G), one fused call in torch."""
    if _is_torch(xp):
        return xp.addmm(bias, x, weights.T)
    return x @ weights.T + bias


def _is_torch(xp: ModuleType) -> bool:
    return xp.__name__ == "torch"


def softmax(a: Array, xp: ModuleType) -> Array:
    """Softmax over the last axis in float64 (so rows sum to 1 to 1e-15), shifted by the maximum; shape kept."""
    a = xp.asarray(a, dtype=xp.float64)
    e = xp.exp(a - xp.amax(a, -1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def segment_sum(table: Array, rows: Array, lengths: Array, xp: ModuleType) -> Array:
    """``Σ`` of ``table`` rows per segment: ``rows`` (E,) cut into consecutive segments of ``lengths`` (B,); -> (B, H).

    The one operation spelled differently in NumPy (``add.reduceat``) and torch (``embedding_bag``).
    Empty segments give 0.
    """
    n_segments, width = int(lengths.shape[0]), int(table.shape[1])
    if xp.__name__ == "numpy":
        out = xp.zeros((n_segments, width), dtype=table.dtype)
        nonempty = lengths > 0
        if rows.shape[0]:
            starts = (xp.cumsum(lengths) - lengths)[nonempty]
            out[nonempty] = xp.add.reduceat(table[rows], starts, axis=0)
        return out
    offsets = xp.cumsum(lengths, 0) - lengths
    return xp.nn.functional.embedding_bag(rows, table, offsets, mode="sum")


def hidden_probability(summed_input: Array, hidden_bias: Array, xp: ModuleType) -> Array:
    """``p̂ = sigmoid(c + s)`` where ``s`` (C, H) is the summed weight rows of each case's ratings."""
    return sigmoid(summed_input + hidden_bias, xp)


def interaction_probability(hidden: Array, weights: Array, bias: Array, xp: ModuleType) -> Array:
    """``P(x_g = 1) = sigmoid(a_g + W_x[g]·p̂)`` of every unit for every case; (C, H), (G, H), (G,) -> (C, G)."""
    return sigmoid(affine(hidden, weights, bias, xp), xp)


def rating_logits(hidden: Array, weights: Array, bias: Array, n_levels: int, xp: ModuleType) -> Array:
    """``b + p̂ W_rᵀ`` of every unit for every case, one dense product; (C, H), (G·K, H), (G·K,) -> (C, G, K)."""
    return affine(hidden, weights, bias, xp).reshape(hidden.shape[0], -1, n_levels)


def rating_distribution(hidden: Array, weights: Array, bias: Array, n_levels: int, xp: ModuleType) -> Array:
    """``P(r = k)`` of every unit for every case: ``softmax_k(b + p̂ W_rᵀ)``.

    ``hidden`` (C, H), ``weights`` (G·K, H), ``bias`` (G·K,) -> (C, G, K).
    """
    return softmax(rating_logits(hidden, weights, bias, n_levels, xp), xp)


def probability_at_least_of_logits(logits: Array, rating_values: Array, threshold: float, xp: ModuleType) -> Array:
    """:func:`probability_at_least` straight from the logits (..., K): ``Σ_{liked k} e^{a_k} / Σ_k e^{a_k}``.

    The levels ascend, so the liked ones are a tail. Kept in the logits' precision (shifted by the
    row maximum, so nothing overflows): ranking needs no float64 distribution.
    """
    first_liked = sum(float(value) < threshold for value in rating_values)  # the liked levels follow
    shifted = xp.exp(logits - xp.amax(logits, -1, keepdims=True))
    return shifted[..., first_liked:].sum(-1) / shifted.sum(-1)


def expected_rating(distribution: Array, rating_values: Array) -> Array:
    """``Σ_k P(r = k)·value_k``; ``(..., K), (K,) -> (...)``."""
    return (distribution * rating_values).sum(-1)


def probability_at_least(distribution: Array, rating_values: Array, threshold: float) -> Array:
    """``P(r ≥ threshold) = Σ_{k: value_k ≥ threshold} P(r = k)``; ``(..., K) -> (...)``."""
    return (distribution * (rating_values >= threshold)).sum(-1)


def ranking_score(
    score: str,
    p_interacted: Array,
    distribution: Array | None,
    rating_values: Array,
    threshold: float,
) -> Array:
    """What items are ranked by; ``p_interacted`` (..., n_items), ``distribution`` (..., n_items, K) or ``None``.

    * ``"p_liked"``: ``P(interacted) · P(r ≥ threshold)``, the chance the user picks the item and
      likes it (``P(interacted)`` alone for implicit data);
    * ``"p_interacted"``: ``P(interacted)``, what the user is likely to pick;
    * ``"p_high"``: ``P(r ≥ threshold)``, how likely they like it *if* they rate it;
    * ``"expected"``: the expected rating.

    For a model without an interaction block, ``p_interacted`` is the popularity prior
    ``(n_i + 1) / Σ (n + 1)`` (see :func:`popularity_prior`).
    """
    if score == "p_interacted" or (score == "p_liked" and distribution is None):
        return p_interacted
    if distribution is None:
        raise ValueError(f"score {score!r} needs ratings; implicit data ranks by p_liked or p_interacted")
    if score == "p_liked":
        return p_interacted * probability_at_least(distribution, rating_values, threshold)
    if score == "p_high":
        return probability_at_least(distribution, rating_values, threshold)
    if score == "expected":
        return expected_rating(distribution, rating_values)
    raise ValueError(f"unknown ranking score {score!r}; use one of {', '.join(SCORES)}")


def popularity_prior(item_counts: Array) -> Array:
    """``(n_i + 1) / Σ_j (n_j + 1)``: the chance of choosing an item, from training counts alone; (I,) -> (I,)."""
    smoothed = item_counts + 1.0
    return smoothed / smoothed.sum()


def smoothed_distribution(level_counts: Array, global_distribution: Array) -> Array:
    """``(n_k + α·π_k) / (n + α)``: empirical level frequencies shrunk towards the global ``π``.

    ``level_counts`` (..., K) counts of each level, ``global_distribution`` (K,), ``α`` =
    :data:`PRIOR_STRENGTH`; a row with no ratings gets ``π`` itself.
    """
    return (level_counts + PRIOR_STRENGTH * global_distribution) / (
        level_counts.sum(-1, keepdims=True) + PRIOR_STRENGTH
    )


def global_distribution(level_counts: Array) -> Array:
    """The rating distribution of all training ratings from per-row level counts (R, K) -> (K,)."""
    total = level_counts.sum(0)
    return total / total.sum()


def fallback_codes(user_known: Array, item_known: Array) -> Array:
    """Which rating prediction a (user, item) pair gets, as codes into :data:`FALLBACK_NAMES`.

    The model predicts when both the user and the item have training ratings (``MODEL``).
    Otherwise the pair gets a smoothed empirical distribution instead, through the same
    expected-rating and ``P(r ≥ t)`` formulas: the item's when only the user is unseen
    (``ITEM_DISTRIBUTION``), the user's when only the item is unseen (``USER_DISTRIBUTION``), the
    global distribution when both are (``GLOBAL_DISTRIBUTION``). Boolean (N,) -> integer (N,).
    """
    return (~user_known) * ITEM_DISTRIBUTION + (~item_known) * USER_DISTRIBUTION


def apply_fallbacks(
    distribution: Array,
    codes: Array,
    user_distribution: Array,
    item_distribution: Array,
    global_dist: Array,
    xp: ModuleType,
) -> Array:
    """Replace the model's rows by the fallback distribution named by ``codes``.

    ``distribution``, ``user_distribution``, ``item_distribution`` (..., K) aligned with
    ``codes`` (...), ``global_dist`` (K,); returns (..., K).
    """
    codes = codes[..., None]
    out = xp.where(codes == ITEM_DISTRIBUTION, item_distribution, distribution)
    out = xp.where(codes == USER_DISTRIBUTION, user_distribution, out)
    return xp.where(codes == GLOBAL_DISTRIBUTION, global_dist + 0 * out, out)


def item_vectors(
    mode: str,
    rating_weights: Array | None,
    interaction_weights: Array | None,
    rating_values: Array,
    n_levels: int,
    item_hidden: Array | None,
    item_known: Array,
) -> Array:
    """The learned vector of every item, for similar-item search (NumPy arrays); -> (n_items, ·).

    User-based: the item's interaction weights ``W_x[i]`` ("who picks it", when the model has
    them) beside its expected-rating direction ``Σ_k (value_k − mean value)·W_r[i, k]`` ("who rates
    it highly"), each standardised over the items. Item-based: an item is a case, its vector its
    hidden input ``c + Σ W`` (``item_hidden``: before the sigmoid, which saturates at 0 and 1 for
    popular items and would make their cosines all 1) with each hidden unit standardised over
    the rated items.
    """
    if mode == "user":
        parts = []
        if interaction_weights is not None:
            parts.append(interaction_weights)
        if rating_weights is not None:
            centred_values = rating_values - rating_values.mean()  # (K,)
            parts.append(
                rating_weights.reshape(-1, n_levels, rating_weights.shape[1]).transpose(0, 2, 1) @ centred_values
            )
        vectors = parts[0] if len(parts) == 1 else _standardised_concat(parts, item_known)
        return vectors
    centred = item_hidden - item_hidden[item_known].mean(0)
    return centred / (centred[item_known].std(0) + 1e-12)


def _standardised_concat(parts: list[Array], known: Array) -> Array:
    import numpy as np  # item_vectors works on NumPy arrays

    scaled = [(p - p[known].mean(0)) / (p[known].std() + 1e-12) for p in parts]
    return np.concatenate(scaled, axis=1)


def cosine_similarities(vectors: Array, item: int, item_known: Array) -> Array:
    """Cosine of every item's vector with ``item``'s; the item itself and unrated items get −inf."""
    norms = (vectors**2).sum(-1) ** 0.5
    cosine = vectors @ vectors[item] / (norms * norms[item]).clip(1e-12)
    cosine[item] = -float("inf")
    cosine[~item_known] = -float("inf")
    return cosine


# --- whole profiles: free energy, leave-one-out conditionals, sampling ----------------------------
#
# Seen per unit, the visible layer is one categorical variable with ``S`` states. In the joint model
# (user-based) item ``g`` is "not picked" (``x_g = 0``; its rating block is then absent, so the
# state adds nothing to the energy) or "picked and rated at level k" (``x_g = 1`` with the one-hot
# rating ``k``), which adds the *state row* ``W_x[g] + W_r[g, k] (+ D[g])`` to the hidden input and
# the *state bias* ``a_g + b[g, k]`` to ``b·v``: an RBM with (K + 1)-way softmax visible units whose
# state 0 has zero weights and bias. A ratings-only model has no "not picked" state: its rated set
# is given, and each rated unit takes one of the K levels (rows ``W_r[g, k] (+ D[g])``).
#
# These are the formulas of :mod:`recsys_rbm.recommender.profiles`: the free energy, the exact
# leave-one-out conditionals, and the two halves of a block Gibbs step (``p(h | v)`` is
# :func:`hidden_probability` of the summed state rows; ``p(s | h)`` is :func:`state_probability`).
# ``tests/test_inference_formulas.py`` checks them against the core's torch formulas.


def softplus(x: Array, xp: ModuleType) -> Array:
    """``log(1 + e^x)``, stable for any ``x``: ``max(x, 0) + log1p(e^{-|x|})``; shape kept."""
    return xp.clip(x, 0, None) + xp.log1p(xp.exp(-xp.abs(x)))


def logsumexp(a: Array, xp: ModuleType) -> Array:
    """``log Σ e^a`` over the last axis, shifted by the maximum; ``(..., S) -> (...)``."""
    top = xp.amax(a, -1, keepdims=True)
    return (top + xp.log(xp.exp(a - top).sum(-1, keepdims=True)))[..., 0]


def free_energy(hidden_input: Array, visible_term: Array, xp: ModuleType) -> Array:
    """``F(v) = −b·v − Σ_j softplus(c_j + (vW)_j)`` from the hidden input ``c + vW`` (B, H) and ``b·v`` (B,); -> (B,).

    ``F(v) = −log Σ_h e^{−E(v, h)}``, so ``−F(v) = log p(v) + log Z``: the difference of two
    profiles' free energies is the log-likelihood ratio ``log p(v') − log p(v)`` under the model.
    """
    return -visible_term - softplus(hidden_input, xp).sum(-1)


def state_log_probabilities(
    rest_input: Array, state_rows: Array, state_bias: Array, absent_state: bool, xp: ModuleType
) -> Array:
    """``log p(unit in state s | the rest of the profile)`` of one unit per row, exactly, for every state.

    ``rest_input`` (E, H) is the hidden input ``c + Σ`` of the profile's *other* entries' state rows;
    ``state_rows`` (E, S, H) and ``state_bias`` (E, S) are the unit's states' rows and biases. With
    the rest fixed, each state's free energy differs only by ``ℓ_s = bias_s + Σ_j softplus(rest_j +
    row_sj)``, so ``log p(s | rest) = ℓ_s − log Σ_t e^{ℓ_t}`` (hidden units summed out, no mean-field).
    ``absent_state`` adds "not picked" as state 0 with ``ℓ_0 = Σ_j softplus(rest_j)``; -> (E, S [+ 1]).
    """
    logits = state_bias + softplus(rest_input[:, None, :] + state_rows, xp).sum(-1)  # (E, S)
    if absent_state:
        logits = xp.concatenate([softplus(rest_input, xp).sum(-1)[:, None], logits], -1)
    return logits - logsumexp(logits, xp)[:, None]


def state_probability(hidden: Array, state_rows: Array, state_bias: Array, absent_state: bool, xp: ModuleType) -> Array:
    """``p(unit g in state s | h) ∝ e^{bias_gs + row_gs·h}`` for every unit and state: the visible half of a Gibbs step.

    ``hidden`` (n, H) binary states, ``state_rows`` (G, S, H) and ``state_bias`` (G, S); ``absent_state`` adds
    "not picked" as state 0 with ``e^0`` (no row, no bias). Units are independent given ``h``, so each one's
    states are one softmax; -> (n, G, S [+ 1]) float64.
    """
    g, s, h = state_rows.shape
    logits = (hidden @ state_rows.reshape(g * s, h).T + state_bias.reshape(1, g * s)).reshape(-1, g, s)
    if absent_state:
        logits = xp.concatenate([logits[..., :1] * 0.0, logits], -1)
    return softmax(logits, xp)


def bernoulli_from_uniforms(probability: Array, uniform: Array, xp: ModuleType) -> Array:
    """Binary states ``1[u < p]`` given ``uniform`` of the same shape, as float64: the rule of the core's
    :func:`recsys_rbm.rbm.rng.bernoulli`, so both give the same draw from the same uniforms (tested)."""
    return xp.asarray(uniform < probability, dtype=xp.float64)


def categorical_from_uniforms(probability: Array, uniform: Array, xp: ModuleType) -> Array:
    """One draw per row from ``probability`` (..., S) by the inverse CDF, given ``uniform`` (..., 1) in [0, 1).

    The index of the first state whose cumulative probability exceeds the uniform: the same rule as
    the core's torch sampler :func:`recsys_rbm.rbm.units.sample_levels`, so both give the same draw from
    the same uniform (tested). -> (...) integer.
    """
    below = xp.cumsum(probability, -1) < uniform
    return xp.clip(below.sum(-1), None, probability.shape[-1] - 1)
