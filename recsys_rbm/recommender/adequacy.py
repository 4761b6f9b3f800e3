"""Whether a split can train and select a recommender at all: degenerate data refused with the reason.

A table of one user (or one item) has nothing for a collaborative model to share between users;
a table whose ratings are all one value says nothing about taste; a table too small to hold
anything out leaves early stopping nothing to measure; and validation ratings of which none is
liked leave NDCG@10 undefined (0 / 0). Trained anyway, each gives a model chosen by a NaN measure
("best epoch None"), silently. :func:`check_trainable` says which it is, before any work, in the
user's terms (the file, the ids, the options).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recsys_rbm.data.ids import describe_id
from recsys_rbm.errors import DataError
from recsys_rbm.recommender.config import like_threshold

if TYPE_CHECKING:
    from recsys_rbm.data.ratings import Ratings
    from recsys_rbm.data.tables import RatingsTable
    from recsys_rbm.recommender.config import RecommenderConfig
    from recsys_rbm.recommender.splits import Split

MEASURE_WORDS = {"joint": "validation NDCG@10", "ratings": "validation RMSE"}


def smallest_table(fraction: float) -> int:
    """The fewest ratings of which a seeded ``fraction`` holds out at least one (``round`` as the splits draw)."""
    return next(n for n in range(1, 1_000_000) if round(fraction * n) >= 1)


def check_table(ratings: Ratings, source: str) -> None:
    """A table a collaborative model can learn from: at least two users and two items (one line naming them)."""
    for kind, ids, other in (("user", ratings.user_ids, "users"), ("item", ratings.item_ids, "items")):
        if len(ids) < 2:
            only = describe_id(ids.raw_ids[0].item()) if len(ids) else "none"
            raise DataError(
                f"{source} holds the ratings of one {kind} only ({kind} {only}); a recommender learns what "
                f"several {other} share: add the ratings of more {other}"
            )


def check_rating_column(table: RatingsTable, implicit: bool) -> None:
    """A rating column read (not ``--implicit``) whose ratings are all one value is refused: it was likely
    meant as implicit feedback, or the wrong column was read."""
    column = table.columns.get("rating")
    if table.is_implicit and column is not None and not implicit:
        raise DataError(
            f"{table.source}: {table.scale.text} (column {column!r}), and one value says nothing about taste; "
            "pass --implicit to read each row as an interaction, or name the rating column with --rating-col"
        )


def check_trainable(split: Split, config: RecommenderConfig, source: str, validation_fraction: float) -> None:
    """Refuse, with the reason, a split that cannot train or select a model (see the module docstring).

    ``source`` names the data as the user gave it; ``validation_fraction`` is the share held out
    for early stopping (for the advice on how many ratings are needed).
    """
    train, validation = split.train, split.validation
    check_table(train, source)
    if not train.is_implicit:
        values = np.unique(np.concatenate([train.values, validation.values, split.test.values]))
        if values.shape[0] == 1:
            raise DataError(
                f"every rating in {source} is {values[0]:g}: one value says nothing about taste; if each row is "
                "an interaction, read it as implicit feedback (--implicit), else check the rating column"
            )
    measure = MEASURE_WORDS.get(config.kind, "the validation measure")
    if len(validation) == 0:
        total = len(train) + len(split.test)
        raise DataError(
            f"{source} has {total:,} ratings, too few to hold any out for early stopping ({validation_fraction:.0%} "
            f"of them rounds to none), so {measure} cannot be measured; give at least "
            f"{smallest_table(validation_fraction):,} ratings"
        )
    if config.kind == "joint":
        threshold = like_threshold(train.rating_values, config.like_threshold)
        if not bool((validation.values >= threshold - 1e-9).any()):
            raise DataError(
                f"none of the {len(validation):,} validation ratings held out of {source} is a liked one (rated "
                f"{threshold:g} or more), so {measure} cannot be measured; give more ratings, or lower "
                "like_threshold in the --config file"
            )


def check_measured(measures: dict[str, float | None], key: str, epoch: int, source: str) -> None:
    """A validation measure that is not a number ends the run: a model can never be chosen by it."""
    value = measures.get(key)
    if value is None or not np.isfinite(value):
        words = {"validation_ndcg": "validation NDCG@10", "validation_rmse": "validation RMSE"}.get(key, key)
        raise DataError(
            f"{words} of epoch {epoch} is not a number ({value}), so no epoch can be chosen by it; check {source}: "
            "the validation ratings held out of it must include liked ones and ratings of trained users and items"
        )
