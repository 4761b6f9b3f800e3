"""``rbm-rec explain``: which of a user's own ratings push one item's score up or down, through the hidden units."""

from __future__ import annotations

from typing import Annotated

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, echo_json, one_line_errors, plural, warn_if_unfinished
from recsys_rbm_cli.movielens_options import ModelOption, Score, TopOption, model_path, score_text


@app.command("explain", cls=RbmRecCommand)
@one_line_errors
def explain(
    user: Annotated[str, typer.Option("--user", "-u", help="Id of a training user.", show_default=False)],
    movie: Annotated[
        str,
        typer.Option("--movie", help="The item to explain: its id or title (matched tolerantly).", show_default=False),
    ],
    top: TopOption = 5,
    model: ModelOption = None,
    score: Annotated[
        Score,
        typer.Option("--score", help="The score to explain (see 'rbm-rec recommend --help').", case_sensitive=False),
    ] = Score.p_liked,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Name the user's own ratings that raise or lower one item's score most.

    For each of the user's ratings the model recomputes the user's hidden state without it and
    reports how the item's score changes: the effect is log(score with the rating) − log(score
    without it), so +0.69 means the rating doubles the score and −0.69 halves it. Needs a
    user-based model (the joint model is one): an item-based model has no hidden state of the user.

    Example: rbm-rec explain --user 42 --movie "Fargo"
    """
    import numpy as np
    from recsys_rbm_cli.catalogue import Catalogue
    from recsys_rbm_cli.recommend import check_score, score_meaning, typed_user

    from recsys_rbm.recommender import explain as explanations
    from recsys_rbm.recommender.scorer import Scorer

    model = model_path(model)
    scorer = Scorer.load(model)
    warn_if_unfinished(scorer.metadata, model)
    check_score(scorer, score)
    catalogue = Catalogue.of(scorer.state.item_ids.raw_ids, scorer.metadata)
    raw_user = typed_user(scorer, user)
    inner = int(scorer.state.user_ids.to_inner([raw_user])[0])
    item = catalogue.find(movie)
    rated, levels = scorer.rated_items(inner)
    target_score = float(scorer.scores(scorer.predictions([inner]), score.value)[0, item])
    effects = explanations.explain(scorer, rated, levels, [item], score.value)[0] if len(rated) else np.zeros(0)
    order = np.argsort(-np.abs(effects), kind="stable")[:top]
    values = scorer.rating_values[levels]
    rows = [(int(rated[j]), float(values[j]), float(effects[j])) for j in order]
    already = bool(np.isin(item, rated))
    if as_json:
        data = {
            "model": str(model),
            "user": raw_user,
            "item": catalogue.record(item),
            "rated_by_user": already,
            "score": score.value,
            "score_meaning": score_meaning(scorer, score),
            "value": round(target_score, 8),
            "reasons": [
                {**catalogue.record(other), "rating": rating, "effect": round(effect, 6)}
                for other, rating, effect in rows
            ],
        }
        echo_json(data)
        return

    from rich.markup import escape
    from rich.table import Table

    note = " (the user rated it in training)" if already else ""
    console.print(
        escape(
            f"{catalogue.describe(item)} for user {raw_user}: score {score_text(target_score)} = "
            f"{score_meaning(scorer, score)}{note}."
        ),
        highlight=False,
    )
    table = Table(
        title=escape(f"What moves it most, of the user's {plural(len(rated), 'rating')}"), title_justify="left"
    )
    table.add_column("movie")
    table.add_column("rating", justify="right")
    table.add_column("effect", justify="right")
    table.add_column("")
    for other, rating, effect in rows:
        direction = "raises it" if effect > 0 else "lowers it"
        table.add_row(escape(catalogue.label(other)), f"{rating:g}", f"{effect:+.3f}", direction)
    console.print(table)
    console.print("effect: log(score with the rating) − log(score without it); +0.69 doubles the score.")
