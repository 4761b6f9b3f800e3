"""Why an item is recommended, and which items are alike, from a trained recommender's weights.

* :func:`explain` gives each of a user's ratings its leave-one-out effect on an item's ranking score
  through the hidden units: ``log s_t(p̂) − log s_t(p̂_{−j})``, the score with the whole profile
  against the score with rating ``j`` left out.
* :func:`similar_items` ranks items by the cosine of their learned vectors
  (:func:`~recsys_rbm.recommender.meanfield.item_vectors`).

Both take a :class:`~recsys_rbm.recommender.scorer.Scorer` over NumPy or torch arrays and return
NumPy; torch is never imported. Ids are inner indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys_rbm.errors import RecsysRBMError
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.scorer import Scorer, check_ids, check_score, top_n

SIMILAR_MIN_RATINGS = 20  # similar items: rarer items' vectors are mostly noise


def explain(scorer: Scorer, units: Any, levels: Any, items: Any, score: str = mf.SCORES[0]) -> np.ndarray:
    """How much each of a profile's ratings pushes each target item's score: ``(targets, ratings)``, NumPy.

    The effect of rating ``j`` on item ``t`` is ``log s_t(p̂) − log s_t(p̂_{−j})``: the score
    with the whole profile against the score with that one rating left out (``p̂_{−j}`` drops
    ``j``'s weight rows from the hidden input, as if it had never been rated). Positive means
    the rating raises the item's score. The profile is ``units`` and ``levels`` (M,) of a
    user-based model; item-based models have no per-user hidden state to explain through.
    """
    if scorer.mode != "user":
        raise RecsysRBMError(
            "explanations need a user-based model (its hidden units are computed from the user's own ratings); "
            "train one with --mode user (the joint model's default)"
        )
    check_score(score)
    state, layout, xp = scorer.state, scorer.layout, scorer.xp
    units = np.asarray(units, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)
    targets = check_ids(items, scorer.n_items, "item")
    units_x = scorer.to_xp(units)
    parts = []
    if layout.interactions:
        parts.append(state.weights[units_x])
    if layout.ratings:
        parts.append(state.weights[scorer.to_xp(layout.rating_offset + units * layout.n_levels + levels)])
    if state.conditional is not None:
        parts.append(state.conditional[units_x])
    each = sum(parts[1:], parts[0])  # (M, H): each rating's weight rows
    total = each.sum(0) + state.hidden_bias  # (H,): the whole profile's hidden input
    hidden = mf.sigmoid(xp.concatenate([total[None], total[None] - each]), xp)  # (M + 1, H)
    scores = target_scores(scorer, hidden, targets, score)  # (M + 1, T)
    return (np.log(scores[:1]) - np.log(scores[1:])).T  # (T, M)


def target_scores(scorer: Scorer, hidden: Any, targets: np.ndarray, score: str) -> np.ndarray:
    """Ranking scores of the ``targets`` only, for each row of hidden states; (R, H) -> (R, T), NumPy.

    Scores are floored at 1e-300, so that their logarithms stay finite.
    """
    state, layout, xp = scorer.state, scorer.layout, scorer.xp
    t = scorer.to_xp(targets)
    if layout.interactions:
        p_x = scorer.to_numpy(mf.interaction_probability(hidden, state.weights[t], state.visible_bias[t], xp))
    else:
        p_x = np.broadcast_to(mf.popularity_prior(scorer.item_counts)[targets], (hidden.shape[0], targets.shape[0]))
    distribution = None
    if layout.ratings:
        k = layout.n_levels
        rows = scorer.to_xp((layout.rating_offset + targets[:, None] * k + np.arange(k)).reshape(-1))
        dist = mf.rating_distribution(hidden, state.weights[rows], state.visible_bias[rows], k, xp)
        distribution = scorer.to_numpy(dist)
    scores = mf.ranking_score(
        score, np.asarray(p_x, dtype=np.float64), distribution, scorer.rating_values, scorer.threshold
    )
    return np.maximum(np.asarray(scores, dtype=np.float64), 1e-300)


def similar_min_ratings(scorer: Scorer) -> int:
    """The default floor of ratings for a similar item: :data:`SIMILAR_MIN_RATINGS`, or the median rated
    item's count where that is fewer (a small table would otherwise have no similar items at all)."""
    counts = scorer.item_counts[scorer.item_known]
    return int(min(SIMILAR_MIN_RATINGS, max(1, np.median(counts)))) if counts.size else 1


def similar_items(scorer: Scorer, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` items closest to ``item`` by the cosine of their learned vectors: ``(ids, cosines)``."""
    item = int(check_ids([item], scorer.n_items, "item")[0])
    state, layout = scorer.state, scorer.layout
    weights = scorer.to_numpy(state.weights).astype(np.float64)
    rating_weights = weights[layout.rating_offset :] if layout.ratings else None
    interaction_weights = weights[: layout.n_units] if layout.interactions else None
    item_hidden = None if state.case_input is None else scorer.to_numpy(state.case_input).astype(np.float64)
    vectors = mf.item_vectors(
        scorer.mode,
        rating_weights,
        interaction_weights,
        scorer.rating_values,
        layout.n_levels,
        item_hidden,
        scorer.item_known,
    )
    ids, cosines = top_n(mf.cosine_similarities(vectors, item, scorer.item_known)[None, :], n)
    return ids[0], cosines[0]
