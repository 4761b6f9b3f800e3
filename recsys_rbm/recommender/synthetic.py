"""Generated ratings with MovieLens-like shape, for scale benchmarks and tests (no data download).

:func:`long_tailed_ratings` makes ``n_ratings`` distinct (user, movie) pairs with long-tailed
movie popularity (``p_i ∝ (rank_i + a)^(-s)``) and long-tailed user activity (at least
``min_per_user`` ratings each, the rest log-normal), rated by a planted low-rank model
``μ + b_u + b_i + p_u·q_i + ε`` rounded onto the rating scale. The defaults have the shape of
MovieLens 25M: 162,000 users, 59,000 movies, 25 million half-star ratings.
"""

from __future__ import annotations

import numpy as np

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.errors import ConfigError

HALF_STARS = np.arange(1, 11) / 2.0  # 0.5, 1.0, ..., 5.0 (K = 10), as in MovieLens 10M and later


def long_tailed_ratings(
    n_users: int = 162_000,
    n_items: int = 59_000,
    n_ratings: int = 25_000_000,
    *,
    rating_values: np.ndarray = HALF_STARS,
    min_per_user: int = 20,
    popularity_exponent: float = 1.2,
    popularity_offset: float = 50.0,
    activity_sigma: float = 1.2,
    rank: int = 8,
    noise: float = 0.8,
    seed: int = 0,
) -> Ratings:
    """A seeded, long-tailed ratings set; raw ids are ``1..n_users`` and ``1..n_items``.

    Memory is a few arrays of ``n_ratings`` int64 (about 1.5 GB at 25 M while generating).
    """
    values = np.sort(np.asarray(rating_values, dtype=np.float64))
    if n_users < 1 or n_items < 2 or values.shape[0] < 2:
        raise ConfigError("need at least 1 user, 2 movies and 2 rating values")
    if not n_users * min_per_user <= n_ratings <= n_users * n_items // 2:
        raise ConfigError(
            f"n_ratings must lie in {n_users * min_per_user}..{n_users * n_items // 2} for this many users and movies"
        )
    rng = np.random.default_rng(seed)
    per_user = _ratings_per_user(n_users, n_items, n_ratings, min_per_user, activity_sigma, rng)
    popularity = (np.arange(n_items) + popularity_offset) ** -popularity_exponent
    popularity = popularity[rng.permutation(n_items)]  # popular movies anywhere in the id range
    users, items = _distinct_pairs(per_user, popularity / popularity.sum(), rng)
    levels = _planted_levels(users, items, n_users, n_items, values, rank, noise, rng)
    return Ratings(
        users,
        items,
        levels,
        IdMap(np.arange(1, n_users + 1, dtype=np.int64), "user"),
        IdMap(np.arange(1, n_items + 1, dtype=np.int64), "movie"),
        values,
    )


def _ratings_per_user(
    n_users: int, n_items: int, n_ratings: int, minimum: int, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """``minimum`` + a log-normal share of the rest, capped at half the catalogue, summing to ``n_ratings``."""
    cap = n_items // 2
    weights = rng.lognormal(0.0, sigma, n_users)
    extra = n_ratings - minimum * n_users
    counts = np.minimum(minimum + np.floor(extra * weights / weights.sum()).astype(np.int64), cap)
    shortfall = n_ratings - int(counts.sum())
    while shortfall > 0:  # hand out what rounding and the cap left over, one rating each to the busiest
        room = np.flatnonzero(counts < cap)
        chosen = room[np.argsort(-weights[room], kind="stable")[:shortfall]]
        counts[chosen] += 1
        shortfall = n_ratings - int(counts.sum())
    return counts


def _distinct_pairs(
    per_user: np.ndarray, popularity: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For each user ``u``, ``per_user[u]`` distinct movies drawn ∝ popularity; sorted by user, movie.

    Draws with replacement and drops repeats, then draws each user's shortfall again. A heavy
    user who has taken most popular movies would repeat them for ever, so later rounds mix the
    popularity with a uniform draw (weight 1/3, 2/3, then 1), which ends in a few rounds since no
    user rates more than half the catalogue.
    """
    n_users, n_items = per_user.shape[0], popularity.shape[0]
    keys = np.empty(0, dtype=np.int64)
    wanted = per_user.copy()
    for round_ in range(1000):
        if wanted.sum() == 0:
            break
        uniform_share = min(1.0, round_ / 3)
        cumulative = np.cumsum((1 - uniform_share) * popularity + uniform_share / n_items)
        users = np.repeat(np.arange(n_users, dtype=np.int64), wanted)
        draws = np.searchsorted(cumulative, rng.random(users.shape[0]) * cumulative[-1]).clip(max=n_items - 1)
        keys = np.sort(np.concatenate([keys, users * n_items + draws]))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # repeats dropped
        wanted = np.maximum(per_user - np.bincount(keys // n_items, minlength=n_users), 0)
    return keys // n_items, keys % n_items


def _planted_levels(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    values: np.ndarray,
    rank: int,
    noise: float,
    rng: np.random.Generator,
    chunk: int = 1 << 22,
) -> np.ndarray:
    """Levels of ``round(μ + b_u + b_i + p_u·q_i + ε)`` on the scale ``values``; (N,) int64."""
    low, high = values[0], values[-1]
    mid, spread = (low + high) / 2 + 0.5, (high - low) / 4
    user_bias, item_bias = rng.normal(0, 0.4 * spread, n_users), rng.normal(0, 0.5 * spread, n_items)
    user_factors = rng.normal(0, spread / np.sqrt(rank), (n_users, rank))
    item_factors = rng.normal(0, 1.0, (n_items, rank))
    midpoints = (values[1:] + values[:-1]) / 2
    levels = np.empty(users.shape[0], dtype=np.int64)
    for start in range(0, users.shape[0], chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        score = mid + user_bias[u] + item_bias[i] + np.einsum("nr,nr->n", user_factors[u], item_factors[i])
        score += rng.normal(0, noise * spread, u.shape[0])
        levels[start : start + chunk] = np.searchsorted(midpoints, score)  # the nearest value's level
    return levels
