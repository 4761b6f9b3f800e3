"""``rbm-rec recommend``: the top movies for a training user, or for a new user's ratings (fold-in).

Fast path: no torch. The checkpoint is read with NumPy (:class:`recsys_rbm.recommender.scoring.ScoringModel`)
and the mean-field pass is two matrix products, so the command answers in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, fail, one_line_errors, warn_if_unfinished
from recsys_rbm_cli.movielens_options import DEFAULT_MODEL, MinRatingsOption, ModelOption, Score, TopOption

if TYPE_CHECKING:
    import numpy as np
    from recsys_rbm_cli.catalogue import Catalogue

HIGH_RATING = 4.0  # the P(r ≥ 4) column, and what --score p_high ranks by


@app.command("recommend", cls=RbmRecCommand)
@one_line_errors
def recommend(
    user: Annotated[
        int | None,
        typer.Option(
            "--user", "-u", min=0, max=2**63 - 1, help="MovieLens user id of a user the model was trained on."
        ),
    ] = None,
    ratings: Annotated[
        Path | None,
        typer.Option(
            "--ratings",
            help="CSV of 'movie,rating' lines for a new user (movie: an id or a title; header optional), folded "
            "in through the hidden layer without retraining; needs a user-based model (--mode user).",
            show_default=False,
        ),
    ] = None,
    top: TopOption = 10,
    model: ModelOption = DEFAULT_MODEL,
    score: Annotated[
        Score,
        typer.Option(
            "--score",
            help="Rank by p_rated_high = (training ratings + 1)·P(rating ≥ 4), the best ranker on validation "
            "(it adds how likely a movie is to be watched at all); or by the expected rating; or by P(rating ≥ 4).",
            case_sensitive=False,
        ),
    ] = Score.p_rated_high,
    min_ratings: MinRatingsOption = 1,
    context: Annotated[
        int, typer.Option("--context", min=0, help="How many of the user's own best-rated movies to show first.")
    ] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (ids, titles, scores) instead of tables.")
    ] = False,
) -> None:
    """Recommend movies the user has not rated, best first, from a model saved by 'rbm-rec train movielens'.

    For a training user (--user) the model's mean-field pass gives each movie's predicted rating
    distribution; --ratings FILE does the same for a new user from their ratings, with no
    retraining. The table shows title (year), genres, expected rating and P(≥ 4 stars), under the
    user's own best-rated movies for context. Movies with fewer than --min-ratings training ratings
    (and those nobody rated) are not recommended.
    No data folder is needed: titles come from the checkpoint.

    Example: rbm-rec recommend --user 42 --top 10
    """
    import numpy as np
    from recsys_rbm.recommender.scoring import ScoringModel
    from recsys_rbm_cli.catalogue import Catalogue, read_ratings_file

    from recsys_rbm.recommender import meanfield as mf

    if (user is None) == (ratings is None):
        raise fail(
            "give either --user ID (a training user) or --ratings FILE (a new user) (see 'rbm-rec recommend --help')",
            code=2,
        )
    scoring = ScoringModel.load(model)
    warn_if_unfinished(scoring.metadata, model)
    catalogue = Catalogue.of(scoring.item_ids.raw_ids, scoring.metadata)
    if user is not None:
        inner = int(scoring.user_ids.to_inner([user])[0])
        rated, levels = scoring.rated_items(inner)
        distribution = scoring.catalogue_distribution([inner])[0]  # (n_items, K)
    else:
        assert ratings is not None
        rated, levels = read_ratings_file(ratings, catalogue, scoring.rating_values)
        distribution = scoring.fold_in(rated, levels)  # (n_items, K)
    expected = mf.expected_rating(distribution, scoring.rating_values)  # (n_items,)
    p_high = mf.probability_at_least(distribution, scoring.rating_values, HIGH_RATING)  # (n_items,)
    popularity = np.bincount(scoring.rated, minlength=scoring.n_items)  # (n_items,) training ratings per movie
    ranking = mf.ranking_score(distribution, scoring.rating_values, score.value, popularity, HIGH_RATING)
    ranking[rated] = -float("inf")  # already rated
    ranking[popularity < min_ratings] = -float("inf")  # never fewer than 1: nothing is learned of an unrated movie
    chosen = [int(item) for item in _best(ranking, top)]

    values = scoring.rating_values[levels]
    order = sorted(range(len(rated)), key=lambda i: (-values[i], catalogue.titles[int(rated[i])]))[:context]
    own = [(int(rated[i]), float(values[i])) for i in order]
    who = f"user {user}" if user is not None else f"the ratings in {ratings.name}"
    if as_json:
        _print_json(scoring, catalogue, model, user, ratings, score, len(rated), own, chosen, expected, p_high)
        return
    _print_tables(scoring, catalogue, who, score, len(rated), own, chosen, expected, p_high)


def _best(ranking: np.ndarray, n: int) -> np.ndarray:
    """Inner ids of the ``n`` best finite scores, best first."""
    from recsys_rbm.recommender.scoring import top_n

    ids, scores = top_n(ranking[None, :], n)
    return ids[0][scores[0] > -float("inf")]


def _stars(value: float) -> str:
    return f"{value:g}"


def _print_tables(
    scoring: Any,
    catalogue: Catalogue,
    who: str,
    score: Score,
    n_rated: int,
    own: list[tuple[int, float]],
    chosen: list[int],
    expected: np.ndarray,
    p_high: np.ndarray,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    name = scoring.metadata.get("name", "model")
    dataset = (scoring.metadata.get("dataset") or {}).get("name")
    source = f"{name}, {dataset}" if dataset else name
    if own:
        mine = Table(title=escape(f"Best rated by {who} ({len(own)} of {n_rated} ratings)"), title_justify="left")
        mine.add_column("movie")
        mine.add_column("genres")
        mine.add_column("rating", justify="right")
        for item, value in own:
            mine.add_row(escape(catalogue.label(item)), ", ".join(catalogue.genres(item)), _stars(value))
        console.print(mine)
    elif n_rated == 0:
        console.print(
            escape(f"{who.capitalize()} has no training ratings: each movie gets its own rating distribution.")
        )
    ranked_by = {
        Score.expected: "expected rating",
        Score.p_high: f"P(rating ≥ {HIGH_RATING:g})",
        Score.p_rated_high: f"(training ratings + 1)·P(rating ≥ {HIGH_RATING:g})",
    }[score]
    table = Table(title=escape(f"Recommended for {who} ({source}, by {ranked_by})"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("movie")
    table.add_column("genres")
    table.add_column("expected", justify="right")
    table.add_column(f"P(≥{HIGH_RATING:g}★)", justify="right")
    for rank, item in enumerate(chosen, start=1):
        table.add_row(
            str(rank),
            escape(catalogue.label(item)),
            ", ".join(catalogue.genres(item)),
            f"{expected[item]:.2f}",
            f"{p_high[item]:.0%}",
        )
    console.print(table)
    if not chosen:
        console.print(
            "No movie is left to recommend: the others are rated already or have too few training ratings "
            "(see --min-ratings)."
        )


def _print_json(
    scoring: Any,
    catalogue: Catalogue,
    model: Path,
    user: int | None,
    ratings: Path | None,
    score: Score,
    n_rated: int,
    own: list[tuple[int, float]],
    chosen: list[int],
    expected: np.ndarray,
    p_high: np.ndarray,
) -> None:
    import json

    data = {
        "model": str(model),
        "dataset": (scoring.metadata.get("dataset") or {}).get("name"),
        "user": user,
        "ratings_file": None if ratings is None else str(ratings),
        "score": score.value,
        "n_rated": n_rated,
        "best_rated": [{**catalogue.record(item), "rating": value} for item, value in own],
        "recommendations": [
            {
                "rank": rank,
                **catalogue.record(item),
                "expected_rating": round(float(expected[item]), 6),
                "p_high": round(float(p_high[item]), 6),
            }
            for rank, item in enumerate(chosen, start=1)
        ],
    }
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
