"""``rbm-rec anomalies``: the users whose rating profiles are least typical under the model, and why.

Torch-free like ``recommend``: the checkpoint is read with NumPy into the one
:class:`~recsys_rbm.recommender.scorer.Scorer`, and the scores are
:mod:`recsys_rbm.recommender.anomalies`'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, echo_json, one_line_errors, plural, warn_if_unfinished
from recsys_rbm_cli.movielens_options import ModelOption, model_path

from recsys_rbm.io.limits import MAX_TOP

if TYPE_CHECKING:
    from recsys_rbm.recommender.scorer import Scorer

SCORE_MEANING = "(F − F̂(n)) / spread(n): the profile's free energy against users with as many ratings"


@app.command("anomalies", cls=RbmRecCommand)
@one_line_errors
def anomalies(
    model: ModelOption = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, max=MAX_TOP, help="How many users to list.")] = 10,
    reasons: Annotated[
        int, typer.Option("--reasons", min=0, max=100, help="How many surprising ratings to show per user.")
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the users whose rating profiles are least typical under the model, with their most surprising ratings.

    The model is a generative model of whole profiles: the free energy F of a profile is −log p(profile)
    up to one constant, so a higher F is a less likely profile. F grows with the number of ratings n, so
    each user's F is compared with F̂(n), the least-squares fit of F on 1, n and log n over all the
    model's users, in units of the fitted spread at that length: the score is a z-score, about 0 for a
    typical user. The reasons are the user's ratings with the lowest probability given the rest of
    their profile: p(picks the movie and rates it so | the other ratings), exact. Needs a user-based
    model (the joint model is one). A profile made up to push a movie (a shilling attack) scores high.

    Example: rbm-rec anomalies --top 10
    """
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.anomalies import atypicality, surprising_ratings
    from recsys_rbm.recommender.scorer import Scorer

    model = model_path(model)
    scorer = Scorer.load(model)
    warn_if_unfinished(scorer.metadata, model)
    catalogue = Catalogue.of(scorer.state.item_ids.raw_ids, scorer.metadata)
    scored = atypicality(scorer)
    chosen = scored.ranking()[:top]
    raw_ids = scorer.state.user_ids.raw_ids
    rows = []
    for rank, position in enumerate(chosen.tolist(), start=1):
        user = int(scored.users[position])
        why = surprising_ratings(scorer, user, reasons) if reasons else []
        rows.append((rank, raw_ids[user].item(), position, why))
    values = scorer.rating_values
    if as_json:
        data = {
            "model": str(model),
            "users_scored": int(scored.users.shape[0]),
            "score_meaning": SCORE_MEANING,
            "p_meaning": _p_meaning(scorer),
            "users": [
                {
                    "rank": rank,
                    "user": user,
                    "score": round(float(scored.score[position]), 6),
                    "n_ratings": int(scored.n_ratings[position]),
                    "free_energy": round(float(scored.free_energy[position]), 4),
                    "expected_free_energy": round(float(scored.expected[position]), 4),
                    "surprising_ratings": [
                        {
                            **catalogue.record(s.item),
                            "rating": float(values[s.level]),
                            "log_p": round(s.log_p, 6),
                            "log_p_pick": round(s.log_p_pick, 6),
                            "log_p_rating": round(s.log_p_rating, 6),
                        }
                        for s in why
                    ],
                }
                for rank, user, position, why in rows
            ],
        }
        echo_json(data)
        return

    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(f"The {len(rows)} least typical of {plural(scored.users.shape[0], 'user')}"), title_justify="left"
    )
    table.add_column("#", justify="right")
    table.add_column("user", justify="right")
    table.add_column("score", justify="right")
    table.add_column("ratings", justify="right")
    table.add_column("F", justify="right")
    table.add_column("F̂(n)", justify="right")
    table.add_column("most surprising ratings (rating, p given the rest)")
    for rank, user, position, why in rows:
        reasons_text = "\n".join(f"{catalogue.label(s.item)}: {values[s.level]:g}, p {_p(s.log_p)}" for s in why)
        table.add_row(
            str(rank),
            escape(str(user)),
            f"{scored.score[position]:.2f}",
            str(int(scored.n_ratings[position])),
            f"{scored.free_energy[position]:.1f}",
            f"{scored.expected[position]:.1f}",
            escape(reasons_text),
        )
    console.print(table)
    console.print(
        "score: (F − F̂(n)) / spread(n), F the profile's free energy (−log p up to a constant), F̂(n) its fit on "
        f"the number of ratings; p: {_p_meaning(scorer)}.",
        highlight=False,
    )


def _p_meaning(scorer: Scorer) -> str:
    if scorer.layout.interactions:
        return "P(picks the movie and rates it so | the rest of the profile)"
    return (
        "P(rates the movie so | it is rated, and the rest of the profile): a ratings-only model is given the rated set"
    )


def _p(log_p: float) -> str:
    import math

    p = math.exp(log_p)
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
