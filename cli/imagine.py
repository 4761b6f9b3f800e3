"""``rbm-rec imagine``: whole plausible profiles sampled from the model with some movies' ratings held fixed.

Torch-free like ``recommend``: block Gibbs sampling runs in NumPy through the one
:class:`~recsys_rbm.recommender.scorer.Scorer` (:func:`~recsys_rbm.recommender.profiles.sample_profiles`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, echo_json, notice, one_line_errors, plural, warn_if_unfinished
from recsys_rbm_cli.movielens_options import ModelOption, model_path

from recsys_rbm.io.limits import MAX_SEED, MAX_TOP

if TYPE_CHECKING:
    import numpy as np
    from recsys_rbm_cli.catalogue import Catalogue

MAX_PROFILES = 10_000
MAX_STEPS = 100_000


@app.command("imagine", cls=RbmRecCommand)
@one_line_errors
def imagine(
    likes: Annotated[
        list[str] | None,
        typer.Option(
            "--likes",
            help="A movie (id or title, matched tolerantly) the imagined user rates at the top; repeat it.",
            show_default=False,
        ),
    ] = None,
    dislikes: Annotated[
        list[str] | None,
        typer.Option(
            "--dislikes",
            help="A movie the imagined user rates at the bottom of the scale; repeat it.",
            show_default=False,
        ),
    ] = None,
    profiles: Annotated[
        int, typer.Option("--profiles", min=1, max=MAX_PROFILES, help="How many profiles to sample.")
    ] = 5,
    steps: Annotated[
        int,
        typer.Option(
            "--steps",
            min=1,
            max=MAX_STEPS,
            help="Gibbs steps per profile. Short chains gave the most lifelike profiles "
            "(benchmarks/imagine_profiles.py); long ones drift to a mode of the model real users do not have.",
        ),
    ] = 3,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the sampler.")] = 0,
    top: Annotated[
        int,
        typer.Option("--top", "-n", min=1, max=MAX_TOP, help="How many of each profile's top-rated movies to show."),
    ] = 8,
    model: ModelOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (every sampled rating) instead of tables.")
    ] = False,
    former_profiles: Annotated[  # --n was --profiles until -n came to mean --top, as in every other command
        int | None, typer.Option("--n", min=1, max=MAX_PROFILES, hidden=True)
    ] = None,
) -> None:
    """Sample whole plausible user profiles from the model, with the given movies' ratings held fixed.

    Each profile is one chain of block Gibbs sampling in the joint model: the hidden units are drawn
    given the profile, then every movie's state given the hidden units (not picked, or picked and
    rated 1..5, from its exact conditional; a movie not picked has no rating), with the --likes movies
    held at the top rating and the --dislikes at the lowest. Chains start from the held movies alone
    and run --steps steps (3 by default: short chains give the profiles closest to real users', while
    long ones settle in a mode of the model that real users do not have); the same --seed gives the
    same profiles. Each profile shows its number of ratings, its mean rating and its top-rated movies
    (most-rated first among equal ratings), held movies left out. Needs the joint user-based model: a
    ratings-only model does not model which movies a user picks.

    Example: rbm-rec imagine --likes "Star Wars" --likes "Alien" --profiles 5 -n 10
    """
    import numpy as np
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.profiles import imagine as sample
    from recsys_rbm.recommender.scorer import Scorer

    if former_profiles is not None:
        notice("--n is now --profiles (-n is --top, how many movies to show, as in every command)")
        profiles = former_profiles
    model = model_path(model)
    scorer = Scorer.load(model)
    warn_if_unfinished(scorer.metadata, model)
    catalogue = Catalogue.of(scorer.state.item_ids.raw_ids, scorer.metadata)
    liked = np.asarray([catalogue.find(text) for text in likes or []], dtype=np.int64)
    disliked = np.asarray([catalogue.find(text) for text in dislikes or []], dtype=np.int64)
    check_held(catalogue, liked, disliked, scorer.is_implicit)
    sampled = sample(scorer, liked, disliked, n=profiles, steps=steps, seed=seed)  # (n, items) levels, -1 not picked
    values = scorer.rating_values
    held = np.zeros(scorer.n_items, dtype=bool)
    held[np.concatenate([liked, disliked])] = True
    popularity = scorer.item_counts
    summaries = []
    for levels in sampled:
        picked = np.flatnonzero(levels >= 0)
        shown = picked[~held[picked]]
        order = np.lexsort((shown, -popularity[shown], -levels[shown]))
        mean = float(values[levels[picked]].mean()) if picked.size else float("nan")
        summaries.append((picked, shown[order], mean))
    if as_json:
        data = {
            "model": str(model),
            "likes": [catalogue.record(int(i)) for i in liked],
            "dislikes": [catalogue.record(int(i)) for i in disliked],
            "steps": steps,
            "seed": seed,
            "profiles": [
                {
                    "n_ratings": int(picked.shape[0]),
                    "mean_rating": None if not picked.size else round(mean, 6),
                    "ratings": [
                        {**catalogue.record(int(item)), "rating": float(values[levels[item]])}
                        for item in np.concatenate([picked[held[picked]], ordered])
                    ],
                }
                for levels, (picked, ordered, mean) in zip(sampled, summaries, strict=True)
            ],
        }
        echo_json(data)
        return

    from rich.markup import escape
    from rich.table import Table

    clamp = [f"likes {catalogue.label(int(i))}" for i in liked]
    clamp += [f"dislikes {catalogue.label(int(i))}" for i in disliked]
    given = "; ".join(clamp) if clamp else "nothing held fixed"
    users = plural(profiles, "imagined user")
    console.print(escape(f"{users} ({given}), {plural(steps, 'Gibbs step')}, seed {seed}"), highlight=False)
    for number, (levels, (picked, ordered, mean)) in enumerate(zip(sampled, summaries, strict=True), start=1):
        summary = f"Profile {number}: {plural(picked.shape[0], 'rating')}" + (
            f", mean {mean:.2f}" if picked.size else ""
        )
        console.print(escape(summary + (f"; its top-rated {min(top, ordered.shape[0])}:" if ordered.size else "")))
        table = Table()
        table.add_column("movie")
        table.add_column("rating", justify="right")
        for item in ordered[:top]:
            table.add_row(escape(catalogue.label(int(item))), f"{values[levels[item]]:g}")
        console.print(table)


def check_held(catalogue: Catalogue, liked: np.ndarray, disliked: np.ndarray, implicit: bool) -> None:
    """The movies to hold, checked in the user's terms (titles, options) before any sampling."""
    from recsys_rbm_cli.common import fail

    for option, items in (("--likes", liked), ("--dislikes", disliked)):
        seen: set[int] = set()
        for item in items.tolist():
            if item in seen:
                raise fail(f"{catalogue.describe(item)} is given twice to {option}; give each movie once", code=2)
            seen.add(item)
    both = sorted(set(liked.tolist()) & set(disliked.tolist()))
    if both:
        raise fail(
            f"{catalogue.describe(both[0])} is in both --likes and --dislikes; give each movie to one of them",
            code=2,
        )
    if implicit and len(disliked):
        raise fail(
            "--dislikes needs a model of ratings, and this model was trained on implicit feedback (which movies "
            "users picked, not how they rated them); leave --dislikes out",
            code=2,
        )
