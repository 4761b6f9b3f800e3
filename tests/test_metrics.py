"""Metrics against hand-computed examples, edge cases, and a plain per-user reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_rbm.recommender.metrics import (
    RankingAccumulator,
    catalogue_coverage,
    hit_rate_at_k,
    mae,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    rmse,
    top_k,
)

INF = np.inf


def test_rmse_and_mae_by_hand() -> None:
    predicted, actual = np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0])  # errors -1, 0, 2
    assert rmse(predicted, actual) == pytest.approx(math.sqrt(5 / 3))
    assert mae(predicted, actual) == pytest.approx(1.0)


def test_accuracy_rejects_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError, match="differ"):
        rmse(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="no ratings"):
        mae(np.zeros(0), np.zeros(0))


def test_per_user_metrics_by_hand() -> None:
    # hits at positions 1 and 3 of a 5-long list; the user has 4 relevant items.
    hits = np.array([[1, 0, 1, 0, 0]], dtype=bool)
    n_relevant = np.array([4])
    assert precision_at_k(hits, 5)[0] == pytest.approx(2 / 5)
    assert recall_at_k(hits, n_relevant)[0] == pytest.approx(2 / 4)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = sum(1 / math.log2(j + 1) for j in range(1, 5))  # min(k=5, R=4) = 4 ideal hits
    assert ndcg_at_k(hits, n_relevant, 5)[0] == pytest.approx(dcg / idcg)
    assert map_at_k(hits, n_relevant, 5)[0] == pytest.approx((1 / 1 + 2 / 3) / 4)
    assert hit_rate_at_k(hits)[0] == 1.0


def test_per_user_denominators_with_many_relevant_items() -> None:
    # R = 10 > k = 2, both places hits: precision, NDCG and AP are perfect, recall is 2/10.
    hits = np.array([[1, 1]], dtype=bool)
    n_relevant = np.array([10])
    assert precision_at_k(hits, 2)[0] == 1.0
    assert recall_at_k(hits, n_relevant)[0] == pytest.approx(0.2)
    assert ndcg_at_k(hits, n_relevant, 2)[0] == pytest.approx(1.0)
    assert map_at_k(hits, n_relevant, 2)[0] == pytest.approx(1.0)


def test_per_user_metrics_are_nan_without_relevant_items() -> None:
    hits = np.zeros((1, 3), dtype=bool)
    n_relevant = np.array([0])
    assert np.isnan(recall_at_k(hits, n_relevant)[0])
    assert np.isnan(ndcg_at_k(hits, n_relevant, 3)[0])
    assert np.isnan(map_at_k(hits, n_relevant, 3)[0])


def test_top_k_orders_by_score_and_breaks_ties_by_lower_index() -> None:
    scores = np.array([[0.5, 2.0, 2.0, 1.0, 2.0]])
    items, valid = top_k(scores, 2)
    assert items.tolist() == [[1, 2]]  # three items tie at 2.0: the two lowest indices win
    items, _ = top_k(scores, 4)
    assert items.tolist() == [[1, 2, 4, 3]]
    assert valid.all()


def test_top_k_pads_when_k_exceeds_the_candidates() -> None:
    scores = np.array([[-INF, 3.0, -INF, 1.0], [-INF, -INF, -INF, -INF]])
    items, valid = top_k(scores, 3)
    assert items[0, :2].tolist() == [1, 3]
    assert valid.tolist() == [[True, True, False], [False, False, False]]
    items, valid = top_k(scores, 10)  # k > n_items: lists have n_items places
    assert items.shape == (2, 4)
    assert valid.sum(axis=1).tolist() == [2, 0]


def test_top_k_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([[1.0, np.nan]]), 1)


def test_top_k_matches_a_full_stable_sort() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        n_rows, n_items, k = int(rng.integers(1, 6)), int(rng.integers(1, 25)), int(rng.integers(1, 30))
        scores = rng.integers(0, 4, (n_rows, n_items)).astype(np.float64)  # many ties
        scores[rng.random((n_rows, n_items)) < 0.3] = -INF
        items, valid = top_k(scores, k)
        reference = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, n_items)]
        np.testing.assert_array_equal(items, reference)
        np.testing.assert_array_equal(valid, np.take_along_axis(scores, reference, axis=1) > -INF)


def test_ranking_metrics_by_hand() -> None:
    scores = np.array([[4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
    relevant = np.array([[0, 1, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=bool)
    exclude = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=bool)  # rated in training
    result = ranking_metrics(scores, relevant, k=2, exclude=exclude)
    # user 0: list [1, 2], hits [1, 0], R = 2 (items 1, 4). user 1: list [3, 2], no hit, R = 1.
    assert result.precision == pytest.approx((1 / 2 + 0) / 2)
    assert result.recall == pytest.approx((1 / 2 + 0) / 2)
    assert result.ndcg == pytest.approx((1 / (1 + 1 / math.log2(3)) + 0) / 2)
    assert result.map == pytest.approx((1 / 2 + 0) / 2)  # AP_0 = (1 · 1/1) / min(2, 2)
    assert result.hit_rate == pytest.approx(0.5)
    assert result.coverage == pytest.approx(3 / 5)  # items 1, 2, 3
    assert (result.n_users_evaluated, result.n_users_without_relevant) == (2, 0)
    assert scores[0, 0] == 4.0  # the caller's scores are not masked in place


def test_users_without_relevant_items_are_excluded_and_counted() -> None:
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    relevant = np.array([[1, 0, 0], [0, 0, 0]], dtype=bool)  # user 1 has nothing relevant
    result = ranking_metrics(scores, relevant, k=1)
    assert result.precision == 1.0 and result.ndcg == 1.0 and result.hit_rate == 1.0  # user 0 alone
    assert result.n_users_ranked == 2
    assert result.n_users_evaluated == 1
    assert result.n_users_without_relevant == 1


def test_k_larger_than_the_candidate_list() -> None:
    # 4 items, 2 rated in training, k = 3: one candidate place stays empty.
    scores = np.array([[1.0, 2.0, 3.0, 4.0]])
    exclude = np.array([[0, 0, 1, 1]], dtype=bool)
    relevant = np.array([[1, 1, 0, 0]], dtype=bool)
    result = ranking_metrics(scores, relevant, k=3, exclude=exclude)
    assert result.precision == pytest.approx(2 / 3)  # denominator k, not the 2 candidates
    assert result.recall == 1.0
    assert result.ndcg == pytest.approx(1.0)  # ideal DCG over min(k, R) = 2 places
    assert result.map == pytest.approx(1.0)
    assert result.coverage == pytest.approx(2 / 4)  # empty places recommend nothing
    assert result.n_users_short_lists == 1


def test_user_with_every_item_rated_in_training() -> None:
    scores = np.array([[1.0, 2.0], [1.0, 2.0]])
    exclude = np.array([[1, 1], [1, 1]], dtype=bool)
    relevant = np.array([[0, 0], [1, 0]], dtype=bool)  # user 1's relevant item was also in training
    result = ranking_metrics(scores, relevant, k=2, exclude=exclude)
    assert result.n_users_evaluated == 1 and result.n_users_without_relevant == 1
    assert result.precision == 0.0 and result.recall == 0.0 and result.ndcg == 0.0 and result.map == 0.0
    assert result.hit_rate == 0.0
    assert result.coverage == 0.0
    assert result.n_users_short_lists == 2


def test_no_user_with_relevant_items_gives_nan_averages() -> None:
    result = ranking_metrics(np.array([[1.0, 0.0]]), np.zeros((1, 2), dtype=bool), k=1)
    assert math.isnan(result.ndcg) and result.n_users_evaluated == 0
    assert result.coverage == 0.5


def test_catalogue_coverage_counts_valid_places_once() -> None:
    items = np.array([[0, 1], [1, 2]])
    valid = np.array([[True, True], [True, False]])
    assert catalogue_coverage(items, valid, 10) == pytest.approx(2 / 10)


def _reference(scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray, k: int) -> dict[str, float]:
    """Per-user Python loop straight from the definitions, for comparison."""
    totals = dict.fromkeys(("precision", "recall", "ndcg", "map", "hit_rate"), 0.0)
    evaluated, recommended = 0, set()
    for u in range(scores.shape[0]):
        candidates = [i for i in range(scores.shape[1]) if not exclude[u, i]]
        ranked = sorted(candidates, key=lambda i, u=u: (-scores[u, i], i))[:k]
        recommended.update(ranked)
        rel = set(np.flatnonzero(relevant[u]).tolist())
        if not rel:
            continue
        evaluated += 1
        hits = [i in rel for i in ranked]
        totals["precision"] += sum(hits) / k
        totals["recall"] += sum(hits) / len(rel)
        dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
        totals["ndcg"] += dcg / idcg
        totals["map"] += sum(sum(hits[: j + 1]) / (j + 1) for j, h in enumerate(hits) if h) / min(k, len(rel))
        totals["hit_rate"] += float(any(hits))
    out = {name: value / evaluated for name, value in totals.items()}
    out["coverage"] = len(recommended) / scores.shape[1]
    return out


def test_batched_accumulator_matches_a_per_user_reference() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items, k = 37, 23, 5
    scores = rng.integers(0, 6, (n_users, n_items)).astype(np.float64)
    exclude = rng.random((n_users, n_items)) < 0.4
    exclude[3] = True  # every item rated in training
    relevant = (rng.random((n_users, n_items)) < 0.2) & ~exclude
    relevant[5] = False  # nothing relevant
    expected = _reference(scores, relevant, exclude, k)

    masked = np.where(exclude, -INF, scores)
    users, items = np.nonzero(relevant)
    accumulator = RankingAccumulator(k, n_items, users, items)
    for start in range(0, n_users, 8):  # uneven batches
        batch = np.arange(start, min(start + 8, n_users))
        accumulator.add(batch, masked[batch])
    result = accumulator.result()
    for name, value in expected.items():
        assert getattr(result, name) == pytest.approx(value), name
    assert result.n_users_evaluated + result.n_users_without_relevant == n_users
    assert result.n_users_evaluated == int(relevant.any(axis=1).sum())


def test_accumulator_rejects_a_badly_shaped_batch() -> None:
    accumulator = RankingAccumulator(2, 5, np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="shape"):
        accumulator.add(np.array([0, 1]), np.zeros((2, 4)))
