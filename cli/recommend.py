"""``rbm-rec recommend``: the top items for a training user, or for a new user's ratings (fold-in).

Fast path: no torch. The checkpoint is read with NumPy into the one
:class:`~recsys_rbm.recommender.scorer.Scorer` (the torch model scores through it too), which
ranks; this command only reads the options and prints what the scorer returns, so the command
answers in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, fail, one_line_errors, warn_if_unfinished
from recsys_rbm_cli.movielens_options import MinRatingsOption, ModelOption, Score, TopOption, model_path

if TYPE_CHECKING:
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.scorer import Ranked, Scorer


@app.command("recommend", cls=RbmRecCommand)
@one_line_errors
def recommend(
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", help="Id of a user the model was trained on (as in the ratings data).", show_default=False
        ),
    ] = None,
    ratings: Annotated[
        Path | None,
        typer.Option(
            "--ratings",
            help="CSV of 'movie,rating' lines for a new user (movie: an id or a title; header optional), folded "
            "in through the hidden layer without retraining; needs a user-based model (the joint model is one).",
            show_default=False,
        ),
    ] = None,
    top: TopOption = 10,
    model: ModelOption = None,
    score: Annotated[
        Score,
        typer.Option(
            "--score",
            help="Rank by p_liked = P(picks it)·P(rates it ≥ 4 | picks it), the default; or p_interacted = "
            "P(picks it); p_high = P(rates it ≥ 4 | picks it); or the expected rating. A ratings-only model takes "
            "P(picks it) from the items' training popularity.",
            case_sensitive=False,
        ),
    ] = Score.p_liked,
    min_ratings: MinRatingsOption = 1,
    context: Annotated[
        int,
        typer.Option("--context", min=0, max=1000, help="How many of the user's own best-rated movies to show first."),
    ] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (ids, titles, scores and their parts) instead of tables.")
    ] = False,
) -> None:
    """Recommend items the user has not rated, best first, from a model saved by 'rbm-rec train'.

    For a training user (--user) the model's mean-field pass gives each item's chance of being
    picked and its rating distribution; --ratings FILE does the same for a new user from their
    ratings, with no retraining. The table shows each item's score and what it is made of, under
    the user's own best-rated items for context. Items with fewer than --min-ratings training
    ratings are not recommended. No data folder is needed: titles come from the checkpoint.

    Example: rbm-rec recommend --user 42 --top 10
    """
    from recsys_rbm_cli.catalogue import Catalogue, read_ratings_file

    from recsys_rbm.recommender.scorer import Scorer

    if (user is None) == (ratings is None):
        raise fail(
            "give either --user ID (a training user) or --ratings FILE (a new user) (see 'rbm-rec recommend --help')",
            code=2,
        )
    model = model_path(model)
    scorer = Scorer.load(model)
    warn_if_unfinished(scorer.metadata, model)
    catalogue = Catalogue.of(scorer.state.item_ids.raw_ids, scorer.metadata)
    raw_user: Any = None
    if user is not None:
        raw_user = typed_user(scorer, user)
        inner = int(scorer.state.user_ids.to_inner([raw_user])[0])
        rated, levels = scorer.rated_items(inner)
        predictions = scorer.catalogue([inner])
    else:
        assert ratings is not None
        rated, levels = read_ratings_file(ratings, catalogue, scorer.rating_values)
        predictions = scorer.fold_in(rated, levels)
    ranked = scorer.top(predictions, 0, exclude=rated, n=top, min_ratings=min_ratings, score=score.value)

    values = scorer.rating_values[levels]
    order = sorted(range(len(rated)), key=lambda i: (-values[i], catalogue.titles[int(rated[i])]))[:context]
    own = [(int(rated[i]), float(values[i])) for i in order]
    who = f"user {user}" if user is not None else f"the ratings in {ratings.name}"
    if as_json:
        _print_json(scorer, catalogue, model, raw_user, ratings, score, len(rated), own, ranked)
        return
    _print_tables(scorer, catalogue, who, score, len(rated), own, ranked)


def typed_user(scorer: Scorer, text: str) -> int | str:
    """A --user value typed as the model's user ids: an integer for integer ids (else a one-line error), or text."""
    from recsys_rbm.data.ids import is_canonical_integer

    ids = scorer.state.user_ids
    if ids.id_type == "str":
        return text
    if not is_canonical_integer(text.strip()):
        low, high = (int(ids.raw_ids[0]), int(ids.raw_ids[-1])) if len(ids) else (0, 0)
        raise fail(f"--user {text!r} is not a user id: this model's user ids are integers {low}..{high}; give one", 2)
    return int(text.strip())


def score_meaning(scorer: Scorer, score: Score) -> str:
    """What the score is, in words: ``P(picks it)·P(rates it ≥ 4 | picks it)`` and where P(picks it) comes from."""
    from recsys_rbm.recommender.meanfield import SCORE_MEANINGS

    if scorer.is_implicit and score is Score.p_liked:
        return "P(picks it)"
    meaning = SCORE_MEANINGS[score.value].format(t=f"{scorer.threshold:g}")
    if score in (Score.p_liked, Score.p_interacted) and not scorer.layout.interactions:
        meaning += ", P(picks it) from training popularity"
    return meaning


def _print_tables(
    scorer: Scorer,
    catalogue: Catalogue,
    who: str,
    score: Score,
    n_rated: int,
    own: list[tuple[int, float]],
    ranked: Ranked,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    name = scorer.metadata.get("name", "model")
    dataset = (scorer.metadata.get("dataset") or {}).get("name")
    source = f"{name}, {dataset}" if dataset else name
    if own and not scorer.is_implicit:
        mine = Table(title=escape(f"Best rated by {who} ({len(own)} of {n_rated} ratings)"), title_justify="left")
        mine.add_column("movie")
        mine.add_column("genres")
        mine.add_column("rating", justify="right")
        for item, value in own:
            mine.add_row(escape(catalogue.label(item)), ", ".join(catalogue.genres(item)), f"{value:g}")
        console.print(mine)
    elif n_rated == 0:
        console.print(escape(f"{who.capitalize()} has no training ratings: the list follows the model's base rates."))
    table = Table(
        title=escape(f"Recommended for {who} ({source}; score = {score_meaning(scorer, score)})"), title_justify="left"
    )
    table.add_column("#", justify="right")
    table.add_column("movie")
    table.add_column("genres")
    table.add_column("score", justify="right")
    table.add_column("pick", justify="right")
    if ranked.p_like is not None:
        table.add_column(f"≥{scorer.threshold:g}★", justify="right")
        table.add_column("mean★", justify="right")
    for rank, item in enumerate(ranked.items.tolist()):
        cells = [
            str(rank + 1),
            escape(catalogue.label(item)),
            ", ".join(catalogue.genres(item)),
            f"{ranked.score[rank]:.3g}",
            f"{ranked.p_interacted[rank]:.1%}" if scorer.layout.interactions else f"{ranked.p_interacted[rank]:.2%}*",
        ]
        if ranked.p_like is not None and ranked.expected is not None:
            cells += [f"{ranked.p_like[rank]:.0%}", f"{ranked.expected[rank]:.2f}"]
        table.add_row(*cells)
    console.print(table)
    if len(ranked.items):
        parts = ["pick: P(picks it)"]
        if ranked.p_like is not None:
            parts += [
                f"≥{scorer.threshold:g}★: P(rates it ≥ {scorer.threshold:g} | picks it)",
                "mean★: expected rating",
            ]
        console.print("; ".join(parts) + ".", highlight=False)
    if not scorer.layout.interactions and len(ranked.items):
        console.print("* P(picks it) of a ratings-only model: the item's share of training ratings (+1 smoothing).")
    if not len(ranked.items):
        console.print(
            "No movie is left to recommend: the others are rated already or have too few training ratings "
            "(see --min-ratings)."
        )


def _print_json(
    scorer: Scorer,
    catalogue: Catalogue,
    model: Path,
    user: int | str | None,
    ratings: Path | None,
    score: Score,
    n_rated: int,
    own: list[tuple[int, float]],
    ranked: Ranked,
) -> None:
    import json

    def optional(values: Any, rank: int) -> float | None:
        return None if values is None else round(float(values[rank]), 8)

    data = {
        "model": str(model),
        "dataset": (scorer.metadata.get("dataset") or {}).get("name"),
        "user": user,
        "ratings_file": None if ratings is None else str(ratings),
        "score": score.value,
        "score_meaning": score_meaning(scorer, score),
        "like_threshold": scorer.threshold,
        "n_rated": n_rated,
        "best_rated": [{**catalogue.record(item), "rating": value} for item, value in own],
        "recommendations": [
            {
                "rank": rank + 1,
                **catalogue.record(item),
                "score": round(float(ranked.score[rank]), 8),
                "p_interacted": round(float(ranked.p_interacted[rank]), 8),
                "p_interacted_from": "model" if scorer.layout.interactions else "popularity",
                "p_like": optional(ranked.p_like, rank),
                "expected_rating": optional(ranked.expected, rank),
            }
            for rank, item in enumerate(ranked.items.tolist())
        ],
    }
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
