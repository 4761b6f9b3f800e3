"""``rbm-rec similar``: the movies closest to a given one by the model's learned vectors."""

from __future__ import annotations

from typing import Annotated

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, echo_json, one_line_errors, warn_if_unfinished
from recsys_rbm_cli.movielens_options import MinRatingsOption, ModelOption, TopOption, model_path


@app.command("similar", cls=RbmRecCommand)
@one_line_errors
def similar(
    movie: Annotated[
        str,
        typer.Option(
            "--movie",
            help="A movie id or title; case, punctuation, articles ('The') and the year may be left out.",
            show_default=False,
        ),
    ],
    top: TopOption = 10,
    model: ModelOption = None,
    min_ratings: MinRatingsOption = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (ids, titles, similarities) instead of a table.")
    ] = False,
) -> None:
    """List the movies most similar to one, by the cosine of their learned weight vectors.

    A user-based model compares each movie's learned weights (who picks it, and who rates it
    highly), an item-based one each movie's hidden input (before the sigmoid, which saturates).
    Movies with fewer than --min-ratings training ratings are left out: their vectors are noise.
    Titles match tolerantly: "star wars", "Usual Suspects" and "the usual suspects (1995)" all
    work; an ambiguous title lists the candidates, an unknown one suggests near titles.

    Example: rbm-rec similar --movie "Star Wars" --top 10
    """
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.explain import similar_items
    from recsys_rbm.recommender.scorer import Scorer

    model = model_path(model)
    scoring = Scorer.load(model)  # torch-free: a bad model or an unknown title is reported at once
    warn_if_unfinished(scoring.metadata, model)
    catalogue = Catalogue.of(scoring.state.item_ids.raw_ids, scoring.metadata)
    item = catalogue.find(movie)
    ids, cosines = similar_items(scoring, item, scoring.n_items)  # every movie, most similar first
    popularity = scoring.item_counts  # (n_items,) training ratings per movie
    keep = ids >= 0
    ids, cosines = ids[keep], cosines[keep]
    keep = popularity[ids] >= min_ratings
    ids, cosines = ids[keep][:top].tolist(), cosines[keep][:top].tolist()
    if as_json:
        data = {
            "model": str(model),
            "movie": catalogue.record(item),
            "similar": [
                {"rank": rank, **catalogue.record(other), "similarity": round(cosine, 6)}
                for rank, (other, cosine) in enumerate(zip(ids, cosines, strict=True), start=1)
            ],
        }
        echo_json(data)
        return

    from rich.markup import escape
    from rich.table import Table

    model_name = scoring.metadata.get("name", "model")
    table = Table(
        title=escape(f"Closest to {catalogue.describe(item)} ({model_name}, cosine of learned vectors)"),
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("movie")
    table.add_column("genres")
    table.add_column("similarity", justify="right")
    for rank, (other, cosine) in enumerate(zip(ids, cosines, strict=True), start=1):
        table.add_row(str(rank), escape(catalogue.label(other)), ", ".join(catalogue.genres(other)), f"{cosine:.3f}")
    console.print(table)
    if not ids:
        console.print(
            f"No other movie has at least {min_ratings} training ratings; lower --min-ratings to see rarer ones."
        )
