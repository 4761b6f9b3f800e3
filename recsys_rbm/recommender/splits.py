"""Train / validation / test splits of ratings, every part in one shared id space.

Four protocols:

- **canonical** (:func:`canonical_split`): ml-100k's own files ``u1.base``/``u1.test`` …
  ``u5``, ``ua`` and ``ub``, mapped into the id space of the full ``u.data``, so a user or movie
  has the same inner index in training and test. The published ml-100k results use these.
- **random** (:func:`random_split`, :func:`random_splits`): the AutoRec / CF-NADE protocol. 10%
  of the ratings, drawn at random, are the test set; 5% of the rest is held out for validation.
  Repeated 5 times, fold ``i`` drawing with seed ``seed + i``; the five test sets are
  independent draws, so they overlap (this is not K-fold cross-validation).
- **per-user holdout** (:func:`per_user_holdout`), for ranking: a fraction (or a fixed number)
  of each user's ratings, the most recent or a random choice, is the test set, and every user
  keeps at least ``min_train`` ratings in training.
- **validation carve-out** (:func:`carve_validation`): a seeded random fraction of any training
  set, by rating; :func:`full_split` is that alone, with no test set (what a model for use trains on).

Every split is a :class:`Split` of three :class:`~recsys_rbm.data.ratings.Ratings` that
share their id maps and rating scale. Randomness comes from NumPy's seeded PCG64 generator (this
module, like the data loaders, does not import torch); the same seed gives the same split.

Test ratings whose user or movie has no rating in training ("cold" ones) cannot be predicted
from training data; :func:`cold_start` counts them and gives masks, and the model applies its
documented fallback to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from recsys_rbm.data.movielens import CANONICAL_SPLITS, MovieLensDataset, canonical_fold, load_movielens
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.errors import ConfigError, DataError

if TYPE_CHECKING:
    from recsys_rbm.data.download import ProgressCallback

FIVE_FOLDS = ("u1", "u2", "u3", "u4", "u5")
DEFAULT_VALIDATION_FRACTION = 0.05  # of the training part, as in the AutoRec / CF-NADE protocol

SeedLike = int | np.random.Generator


@dataclass(frozen=True)
class ColdStart:
    """Which ratings of an evaluation set fall outside what training saw.

    A rating is *cold* when its user or its movie has no rating in the training set; the masks
    are aligned with the evaluation set's rows.
    """

    cold_user: np.ndarray  # (N,) bool: the rating's user has no training rating
    cold_item: np.ndarray  # (N,) bool: the rating's movie has no training rating
    users: np.ndarray  # inner indices of the distinct cold users
    items: np.ndarray  # inner indices of the distinct cold movies

    @property
    def cold(self) -> np.ndarray:
        """(N,) bool: user or movie unseen in training."""
        return self.cold_user | self.cold_item

    @property
    def warm(self) -> np.ndarray:
        """(N,) bool: both user and movie seen in training."""
        return ~self.cold

    @property
    def n_ratings(self) -> int:
        return int(self.cold_user.shape[0])

    @property
    def n_cold(self) -> int:
        return int(self.cold.sum())

    def summary(self) -> dict[str, int]:
        """Counts for reports: ratings with an unseen user, an unseen movie, either, both; distinct unseen ids."""
        return {
            "ratings": self.n_ratings,
            "cold_ratings": self.n_cold,
            "cold_user_ratings": int(self.cold_user.sum()),
            "cold_movie_ratings": int(self.cold_item.sum()),
            "cold_both_ratings": int((self.cold_user & self.cold_item).sum()),
            "cold_users": int(self.users.shape[0]),
            "cold_movies": int(self.items.shape[0]),
        }

    def describe(self) -> str:
        """One line, e.g. "5 of 20,000 ratings are cold (0 unseen user, 5 unseen movie; 5 movies)"."""
        s = self.summary()
        return (
            f"{s['cold_ratings']:,} of {s['ratings']:,} ratings are cold "
            f"({s['cold_user_ratings']:,} with an unseen user, {s['cold_movie_ratings']:,} with an unseen movie; "
            f"{s['cold_users']:,} users, {s['cold_movies']:,} movies)"
        )


def _check_same_space(a: Ratings, b: Ratings) -> None:
    same_users = a.user_ids is b.user_ids or np.array_equal(a.user_ids.raw_ids, b.user_ids.raw_ids)
    same_items = a.item_ids is b.item_ids or np.array_equal(a.item_ids.raw_ids, b.item_ids.raw_ids)
    if not (same_users and same_items):
        raise ValueError("the two rating sets use different id maps; split them from one Ratings")


def cold_start(train: Ratings, evaluation: Ratings) -> ColdStart:
    """Masks and counts of the ``evaluation`` ratings whose user or movie never appears in ``train``."""
    _check_same_space(train, evaluation)
    seen_users = np.bincount(train.users, minlength=train.n_users) > 0  # (n_users,)
    seen_items = np.bincount(train.items, minlength=train.n_items) > 0  # (n_items,)
    cold_user = ~seen_users[evaluation.users]
    cold_item = ~seen_items[evaluation.items]
    return ColdStart(
        cold_user=cold_user,
        cold_item=cold_item,
        users=np.unique(evaluation.users[cold_user]),
        items=np.unique(evaluation.items[cold_item]),
    )


@dataclass(frozen=True)
class Split:
    """Training, validation and test ratings in one id space, with a name and a one-line description."""

    name: str  # "u1", "random-1", "holdout-time" …
    description: str  # how it was made, for reports
    train: Ratings
    validation: Ratings  # may be empty (len 0): then there is nothing to stop early on
    test: Ratings
    seed: int | None = None  # the seed its random draws used; None for the canonical files without carve-out

    @property
    def cold(self) -> ColdStart:
        """Cold test ratings (user or movie unseen in ``train``)."""
        return cold_start(self.train, self.test)

    def summary(self) -> dict[str, int | str | None]:
        """Sizes and cold-start counts, for reports and JSON output."""
        cold = self.cold.summary()
        return {
            "name": self.name,
            "seed": self.seed,
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
            "cold_test_ratings": cold["cold_ratings"],
            "cold_test_user_ratings": cold["cold_user_ratings"],
            "cold_test_movie_ratings": cold["cold_movie_ratings"],
        }


def _empty(ratings: Ratings) -> Ratings:
    return ratings.subset(np.zeros(0, dtype=np.int64))


def _generator(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))


def _check_fraction(name: str, value: float, allow_zero: bool = True) -> None:
    if not (0.0 <= value < 1.0) or (value == 0.0 and not allow_zero):
        bounds = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{name} must lie in {bounds}, got {value}")


def _random_partition(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``0..n-1`` split into (kept, drawn), ``round(fraction * n)`` drawn at random; both ascending."""
    order = rng.permutation(n)
    n_drawn = round(fraction * n)
    return np.sort(order[n_drawn:]), np.sort(order[:n_drawn])


def carve_validation(
    train: Ratings, fraction: float = DEFAULT_VALIDATION_FRACTION, seed: SeedLike = 0
) -> tuple[Ratings, Ratings]:
    """Hold out a random ``fraction`` of ``train``'s ratings for validation: returns (train, validation).

    Seeded (an int, or a NumPy generator to continue drawing from); rows keep their order. The
    draw is by rating, so a user with few ratings may lose them all to validation: such
    validation ratings are cold, and :func:`cold_start` counts them.
    """
    _check_fraction("validation fraction", fraction)
    if fraction == 0.0:
        return train, _empty(train)
    kept, drawn = _random_partition(len(train), fraction, _generator(seed))
    return train.subset(kept), train.subset(drawn)


def full_split(ratings: Ratings, validation_fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0) -> Split:
    """Every rating for the model, no test set: only a seeded ``validation_fraction`` is held out, for early
    stopping (the model puts it back into the users' profiles once trained)."""
    train, validation = carve_validation(ratings, validation_fraction, seed)
    held = "none held out"
    if len(validation):
        held = f"{validation_fraction:.0%} held out for early stopping (seed {seed})"
    return Split(
        name="full",
        description=f"every rating, no test set; {held}",
        train=train,
        validation=validation,
        test=_empty(ratings),
        seed=seed,
    )


def random_split(
    ratings: Ratings,
    fold: int = 0,
    *,
    test_fraction: float = 0.1,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
) -> Split:
    """Fold ``fold`` of the AutoRec / CF-NADE protocol: a random 90/10 split, then 5% of training for validation.

    All draws of fold ``i`` come from one generator seeded ``seed + i``, so any fold can be made
    alone and comes out the same.
    """
    _check_fraction("test fraction", test_fraction, allow_zero=False)
    fold_seed = seed + fold
    rng = np.random.default_rng(fold_seed)
    train_rows, test_rows = _random_partition(len(ratings), test_fraction, rng)
    train, validation = carve_validation(ratings.subset(train_rows), validation_fraction, rng)
    return Split(
        name=f"random-{fold + 1}",
        description=(
            f"random {1 - test_fraction:.0%}/{test_fraction:.0%} split of all ratings, fold {fold + 1} "
            f"(seed {fold_seed}); {validation_fraction:.0%} of training held out for validation"
        ),
        train=train,
        validation=validation,
        test=ratings.subset(test_rows),
        seed=fold_seed,
    )


def random_splits(
    ratings: Ratings,
    n_folds: int = 5,
    *,
    test_fraction: float = 0.1,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
) -> list[Split]:
    """The AutoRec / CF-NADE protocol: ``n_folds`` independent random 90/10 splits (fold ``i`` seeded ``seed + i``)."""
    if n_folds < 1:
        raise ConfigError(f"the number of folds must be at least 1, got {n_folds}")
    return [
        random_split(ratings, fold, test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed)
        for fold in range(n_folds)
    ]


def _per_user_mask(
    ratings: Ratings,
    fraction: float,
    count: int | None,
    by: Literal["random", "time"],
    min_train: int,
    rng: np.random.Generator,
    at_least_one: bool,
) -> np.ndarray:
    """(N,) bool: for each user, the last ``count`` (or ``fraction``) of their ratings in time or random order.

    Never takes more than ``n_u - min_train`` of a user's ``n_u`` ratings.
    """
    n = len(ratings)
    users = ratings.users
    if by == "time":
        if ratings.timestamps is None:
            raise DataError("a holdout by time needs timestamps, and these ratings have none")
        low = int(ratings.timestamps.min()) if n else 0
        span = int(ratings.timestamps.max()) - low + 1 if n else 1
        key, key_range = users * span + (ratings.timestamps - low), ratings.n_users * span  # by user, then time
    else:
        key, key_range = users, max(ratings.n_users, 1)  # by user only: the order within comes from the noise
    # Random low bits break ties at random: one int64 sort instead of a slower multi-key lexsort.
    noise_bits = min(32, 62 - int(key_range).bit_length())
    if noise_bits >= 8:
        order = np.argsort((key << noise_bits) | rng.integers(0, 1 << noise_bits, n))
    else:  # keys too wide for noise bits: shuffle, then sort stably
        shuffled = rng.permutation(n)
        order = shuffled[
            np.lexsort((ratings.timestamps[shuffled], users[shuffled]) if by == "time" else (users[shuffled],))
        ]
    counts = np.bincount(ratings.users, minlength=ratings.n_users)  # (n_users,)
    starts = np.cumsum(counts) - counts
    sorted_users = ratings.users[order]
    rank = np.arange(n) - starts[sorted_users]  # position within the user's ordered ratings
    if count is not None:
        wanted = np.full_like(counts, count)
    else:
        wanted = np.rint(fraction * counts).astype(counts.dtype)
        if at_least_one:
            wanted = np.maximum(wanted, 1)
    held = np.clip(wanted, 0, np.maximum(counts - min_train, 0))  # (n_users,)
    mask = np.zeros(n, dtype=bool)
    mask[order] = rank >= (counts - held)[sorted_users]
    return mask


def per_user_holdout(
    ratings: Ratings,
    *,
    test_fraction: float = 0.2,
    n_test: int | None = None,
    by: Literal["random", "time"] = "random",
    min_train: int = 1,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
) -> Split:
    """Hold out part of each user's ratings for ranking evaluation.

    Each user's test part is ``n_test`` ratings when given, else ``round(test_fraction * n_u)``
    (at least one) of their ``n_u`` ratings: the most recent ones with ``by="time"`` (ties broken
    at random), a random choice with ``by="random"``. No user gives up more than
    ``n_u - min_train``, so every user keeps at least ``min_train`` training ratings (users with
    ``min_train`` ratings or fewer are all training). Validation is carved the same way, at
    random, from what is left, so it too leaves every user ``min_train`` training ratings.
    """
    if n_test is None:
        _check_fraction("test fraction", test_fraction, allow_zero=False)
    elif n_test < 1:
        raise ConfigError(f"n_test must be at least 1, got {n_test}")
    _check_fraction("validation fraction", validation_fraction)
    if by not in ("random", "time"):
        raise ConfigError(f"unknown holdout order {by!r}; use 'random' or 'time'")
    if min_train < 1:
        raise ConfigError(f"min_train must be at least 1, got {min_train}")
    rng = np.random.default_rng(seed)
    test_mask = _per_user_mask(ratings, test_fraction, n_test, by, min_train, rng, at_least_one=True)
    train_rows = np.flatnonzero(~test_mask)
    rest = ratings.subset(train_rows)
    validation_mask = _per_user_mask(rest, validation_fraction, None, "random", min_train, rng, at_least_one=False)
    held = f"{n_test} ratings" if n_test is not None else f"{test_fraction:.0%} of the ratings"
    which = "most recent" if by == "time" else "randomly chosen"
    return Split(
        name=f"holdout-{by}",
        description=(
            f"per-user holdout: the {which} {held} of each user for test (seed {seed}), "
            f"{validation_fraction:.0%} of each user's rest for validation, at least {min_train} kept for training"
        ),
        train=rest.subset(np.flatnonzero(~validation_mask)),
        validation=rest.subset(np.flatnonzero(validation_mask)),
        test=ratings.subset(np.flatnonzero(test_mask)),
        seed=seed,
    )


def canonical_split(
    name: str = "u1",
    dataset: MovieLensDataset | None = None,
    *,
    data_dir: str | Path | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> Split:
    """One of ml-100k's own splits (``u1``…``u5``, ``ua``, ``ub``), read from ``<name>.base`` / ``<name>.test``.

    Both files are mapped into the id space and rating scale of the full ``u.data`` (``dataset``,
    loaded when not given), so training and test agree on every inner index. A seeded
    ``validation_fraction`` of the base file is held out for validation (0 keeps it all for
    training, as the published results do).
    """
    if name not in CANONICAL_SPLITS:  # before loading anything
        raise ConfigError(f"unknown ml-100k split {name!r}; use one of {', '.join(CANONICAL_SPLITS)}")
    if dataset is None:
        dataset = load_movielens("ml-100k", data_dir, download=download, progress=progress)
    base, test = canonical_fold(dataset, name)
    train, validation = carve_validation(base, validation_fraction, seed)
    described = "ua/ub: 10 ratings of each user for test" if name in ("ua", "ub") else "one of five 80/20 folds"
    carved = f"; {validation_fraction:.0%} of base held out for validation (seed {seed})" if validation_fraction else ""
    return Split(
        name=name,
        description=f"ml-100k canonical split {name} ({described}){carved}",
        train=train,
        validation=validation,
        test=test,
        seed=seed if validation_fraction else None,
    )


def canonical_splits(
    names: tuple[str, ...] = FIVE_FOLDS,
    dataset: MovieLensDataset | None = None,
    *,
    data_dir: str | Path | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> list[Split]:
    """Several canonical ml-100k splits (default the five folds u1–u5), reading ``u.data`` once."""
    if dataset is None:
        dataset = load_movielens("ml-100k", data_dir, download=download, progress=progress)
    return [canonical_split(name, dataset, validation_fraction=validation_fraction, seed=seed) for name in names]
