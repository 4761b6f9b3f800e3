"""The recommender's prediction formulas, written once for both NumPy and torch.

Every function takes its array namespace ``xp`` (the ``numpy`` or the ``torch`` module) and uses
only operations spelled identically in both (``@``, ``xp.tanh``, ``xp.exp``, ``xp.amax``,
``.sum(-1, keepdims=True)``, ``.reshape``, ``xp.moveaxis``), so the torch model
(:mod:`recsys_rbm.recommender.model`) and the torch-free command-line fast path
(:mod:`recsys_rbm.recommender.scoring`) cannot drift apart. This module must never import torch.

Notation. A *case* is one RBM input (a user in user-based mode, a movie in item-based mode); a
*unit* is one K-way softmax of the visible layer (a movie, resp. a user). With ``W`` (G·K, H)
group-major weights, ``b`` (G·K,) visible biases, ``c`` (H,) hidden biases and, for the conditional
RBM, ``D`` (G, H):

* mean-field hidden state of a case with rated units ``R`` at levels ``k_i`` and rated-set ``r``:
  ``p̂_j = sigmoid(c_j + Σ_{i∈R} W[i, k_i, j] + Σ_{i∈r} D[i, j])``;
* predicted distribution of unit ``g``: ``P(r_g = k) = softmax_k(b[g, k] + Σ_j W[g, k, j] p̂_j)``;
* expected rating ``Σ_k P(r = k)·value_k`` and ``P(r ≥ t) = Σ_{k: value_k ≥ t} P(r = k)``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

Array = Any  # a numpy.ndarray or a torch.Tensor; one namespace per call

#: Which prediction each (user, item) pair received (see :func:`fallback_codes`).
FALLBACK_NAMES = ("model", "item_distribution", "user_distribution", "global_distribution")
MODEL, ITEM_DISTRIBUTION, USER_DISTRIBUTION, GLOBAL_DISTRIBUTION = range(4)

#: Ranking scores (see :func:`ranking_score`); the first is the default.
SCORES = ("p_rated_high", "expected", "p_high")

#: Strength (in pseudo-ratings) of the global rating distribution mixed into each user's and each
#: item's empirical distribution, for the visible biases and the fallbacks.
PRIOR_STRENGTH = 2.0


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """``1 / (1 + e^{-x})`` written as ``(1 + tanh(x/2)) / 2``, which never overflows."""
    return 0.5 * (xp.tanh(0.5 * x) + 1.0)


def softmax(a: Array, xp: ModuleType) -> Array:
    """Softmax over the last axis in float64 (so rows sum to 1 to 1e-15), shifted by the maximum; shape kept."""
    a = xp.asarray(a, dtype=xp.float64)
    e = xp.exp(a - xp.amax(a, -1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def hidden_probability(summed_input: Array, hidden_bias: Array, xp: ModuleType) -> Array:
    """``p̂ = sigmoid(c + s)`` where ``s`` (C, H) is the summed weight rows of each case's ratings."""
    return sigmoid(summed_input + hidden_bias, xp)


def outer_distribution(hidden: Array, weights: Array, visible_bias: Array, n_levels: int, xp: ModuleType) -> Array:
    """``P(r = k)`` of every unit for every case, one dense product: ``softmax_k(b + p̂ Wᵀ)``.

    ``hidden`` (C, H), ``weights`` (U·K, H), ``visible_bias`` (U·K,) -> (C, U, K).
    """
    logits = hidden @ weights.T + visible_bias  # (C, U·K)
    return softmax(logits.reshape(hidden.shape[0], -1, n_levels), xp)


def catalogue_distribution(
    mode: str,
    query_hidden: Array,
    query_weights: Array,
    query_bias: Array,
    item_hidden: Array,
    weights: Array,
    visible_bias: Array,
    n_levels: int,
    xp: ModuleType,
) -> Array:
    """The predicted distribution of every item for a batch of B users; -> (B, n_items, K).

    User-based: the users are cases, ``query_hidden`` (B, H) their mean-field hidden states, and
    the items are all visible units (``weights``, ``visible_bias``). Item-based: the items are
    cases with hidden states ``item_hidden`` (n_items, H) and each user is one visible unit with
    weight rows ``query_weights`` (B·K, H) and biases ``query_bias`` (B·K,).
    """
    if mode == "user":
        return outer_distribution(query_hidden, weights, visible_bias, n_levels, xp)
    per_item = outer_distribution(item_hidden, query_weights, query_bias, n_levels, xp)  # (n_items, B, K)
    return xp.moveaxis(per_item, 1, 0)


def expected_rating(distribution: Array, rating_values: Array) -> Array:
    """``Σ_k P(r = k)·value_k``; ``(..., K), (K,) -> (...)``."""
    return (distribution * rating_values).sum(-1)


def probability_at_least(distribution: Array, rating_values: Array, threshold: float) -> Array:
    """``P(r ≥ threshold) = Σ_{k: value_k ≥ threshold} P(r = k)``; ``(..., K) -> (...)``."""
    return (distribution * (rating_values >= threshold)).sum(-1)


def ranking_score(
    distribution: Array, rating_values: Array, score: str, item_counts: Array, threshold: float = 4.0
) -> Array:
    """What items are ranked by, for ``distribution`` (..., n_items, K) -> (..., n_items).

    * ``"expected"``: the expected rating ``Σ_k P(r = k)·value_k``;
    * ``"p_high"``: ``P(r ≥ threshold)``, the chance the user likes the movie *if* they rate it;
    * ``"p_rated_high"``: ``(n_i + 1)·P(r ≥ threshold)``, proportional to the chance that the
      user both rates movie i and rates it ``≥ threshold``, when the chance of rating a movie at
      all is taken proportional to its training ratings ``n_i`` (+1): ``item_counts`` (n_items,).
      The RBM models ratings given that a movie is rated, not which movies get watched; this
      supplies the second part, and is the default because it ranks best (see ``RecommenderConfig``).
    """
    if score == "expected":
        return expected_rating(distribution, rating_values)
    if score == "p_high":
        return probability_at_least(distribution, rating_values, threshold)
    if score == "p_rated_high":
        return probability_at_least(distribution, rating_values, threshold) * (item_counts + 1.0)
    raise ValueError(f"unknown ranking score {score!r}; use one of {', '.join(SCORES)}")


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
    """Which prediction a (user, item) pair gets, as codes into :data:`FALLBACK_NAMES`.

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


def catalogue_fallbacks(
    distribution: Array,
    user_known: Array,
    item_known: Array,
    user_distribution: Array,
    item_distribution: Array,
    global_dist: Array,
    xp: ModuleType,
) -> Array:
    """:func:`apply_fallbacks` over a catalogue: ``distribution`` (B, n_items, K), ``user_known`` (B,),
    ``item_known`` (n_items,), the B users' smoothed distributions (B, K) and the items' (n_items, K)."""
    codes = fallback_codes(user_known[:, None], item_known[None, :])  # (B, n_items)
    return apply_fallbacks(
        distribution, codes, user_distribution[:, None, :], item_distribution[None, :, :], global_dist, xp
    )


def item_vectors(
    mode: str,
    weights: Array,
    rating_values: Array,
    n_levels: int,
    item_hidden: Array | None,
    item_known: Array,
) -> Array:
    """The learned vector of every item, for similar-item search (NumPy arrays); -> (n_items, H).

    User-based: ``w_i = Σ_k (value_k − mean value)·W[i, k]``, the hidden units that raise the
    item's predicted rating (the level-independent part of ``W_i`` only says "was rated").
    Item-based: an item is a case, its vector the mean-field hidden state ``p̂_i`` with each
    hidden unit standardised over the rated items (z-scores), so no one dominant unit decides.
    """
    if mode == "user":
        centred_values = rating_values - rating_values.mean()  # (K,)
        return weights.reshape(-1, n_levels, weights.shape[1]).transpose(0, 2, 1) @ centred_values
    centred = item_hidden - item_hidden[item_known].mean(0)
    return centred / (centred[item_known].std(0) + 1e-12)


def cosine_similarities(vectors: Array, item: int, item_known: Array) -> Array:
    """Cosine of every item's vector with ``item``'s; the item itself and unrated items get −inf."""
    norms = (vectors**2).sum(-1) ** 0.5
    cosine = vectors @ vectors[item] / (norms * norms[item]).clip(1e-12)
    cosine[item] = -float("inf")
    cosine[~item_known] = -float("inf")
    return cosine
