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
from recsys_rbm_cli.common import (
    OverwriteOption,
    console,
    echo_json,
    fail,
    one_line_errors,
    plural,
    warn_if_unfinished,
)
from recsys_rbm_cli.movielens_options import MinRatingsOption, ModelOption, Score, TopOption, model_path, score_text

if TYPE_CHECKING:
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.scorer import Ranked, Scorer


@app.command("recommend", cls=RbmRecCommand)
@one_line_errors
def recommend(
    user: Annotated[
        list[str] | None,
        typer.Option(
            "--user",
            "-u",
            help="Id of a user the model was trained on (as in the ratings data); repeat it for several users.",
            show_default=False,
        ),
    ] = None,
    users_file: Annotated[
        Path | None,
        typer.Option(
            "--users", help="A file of user ids, one per line (a first line 'user' is a header).", show_default=False
        ),
    ] = None,
    all_users: Annotated[
        bool, typer.Option("--all-users", help="Every user the model was trained on (with --output).")
    ] = False,
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
    include_rated: Annotated[
        bool,
        typer.Option(
            "--include-rated",
            help="Also list items the user already has in the model (re-recommendation); by default every item of "
            "the user's profile, whatever part it played in training, is left out.",
        ),
    ] = False,
    context: Annotated[
        int,
        typer.Option("--context", min=0, max=1000, help="How many of the user's own best-rated movies to show first."),
    ] = 5,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the lists to this file, one row per (user, item): user,item,rank,score,title. The format "
            "follows the extension: .csv, .parquet or .jsonl.",
            show_default=False,
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (ids, titles, scores and their parts) instead of tables.")
    ] = False,
) -> None:
    """Recommend items the user has not rated, best first, from a model saved by 'rbm-rec train'.

    A known user's (--user) list is conditioned on every rating the model was given for them (the
    ones that trained it and the ones held out for early stopping or testing) and recommends none
    of them (unless --include-rated). The model's mean-field pass gives each item's chance of being
    picked and its rating distribution; --ratings FILE does the same for a new user from their
    ratings, with no retraining. The table shows each item's score and what it is made of, and
    "because": the user's own rated item that raises it most (user-based models), under the
    user's own best-rated items for context. Several --user values give one table each; --users
    FILE or --all-users with --output write every list to a CSV, Parquet or JSON-lines file, in
    batches, with a progress bar. Items with fewer than --min-ratings training ratings are not
    recommended. No data folder is needed: titles come from the checkpoint.

    Example: rbm-rec recommend --user 42 --top 10
    """
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.scorer import Scorer

    sources = [bool(user), users_file is not None, all_users, ratings is not None]
    if sum(sources) != 1:
        raise fail(
            "give one of --user ID (training users), --users FILE, --all-users, or --ratings FILE (a new user) "
            "(see 'rbm-rec recommend --help')",
            code=2,
        )
    if (users_file is not None or all_users) and output is None:
        raise fail("--users and --all-users write a file: add --output recs.csv (or .parquet, .jsonl)", code=2)
    if output is not None:
        if ratings is not None:
            raise fail("--output writes the lists of training users; give --user, --users or --all-users", code=2)
        check_output_format(output)
        from recsys_rbm.io.checkpoint_files import model_file
        from recsys_rbm.io.outputs import check_distinct, check_new_output

        check_distinct({"--output": output}, {"--users": users_file, "the model": model_file(model_path(model))})
        check_new_output(output, overwrite, example="recs.csv")  # before any work
    model = model_path(model)
    scorer = Scorer.load(model)
    warn_if_unfinished(scorer.metadata, model)
    check_score(scorer, score)
    catalogue = Catalogue.of(scorer.state.item_ids.raw_ids, scorer.metadata)
    if output is not None or (user is not None and len(user) > 1):
        chosen = _chosen_users(scorer, user, users_file, all_users)
        if output is not None:
            write_lists(scorer, catalogue, chosen, output, top, min_ratings, score, as_json, include_rated)
            return
        for raw in chosen:
            _one_user(scorer, catalogue, model, raw, None, top, min_ratings, score, context, as_json, include_rated)
        return
    raw_user = None if not user else typed_user(scorer, user[0])
    _one_user(scorer, catalogue, model, raw_user, ratings, top, min_ratings, score, context, as_json, include_rated)


def _one_user(
    scorer: Scorer,
    catalogue: Catalogue,
    model: Path,
    raw_user: Any,
    ratings: Path | None,
    top: int,
    min_ratings: int,
    score: Score,
    context: int,
    as_json: bool,
    include_rated: bool = False,
) -> None:
    """The table (or JSON) for one known user (``raw_user``) or for the new user of a ratings file."""
    from recsys_rbm_cli.catalogue import read_ratings_file

    if raw_user is not None:
        inner = int(scorer.state.user_ids.to_inner([raw_user])[0])
        rated, levels = scorer.rated_items(inner)
        predictions = scorer.predictions([inner])
    else:
        assert ratings is not None
        rated, levels = read_ratings_file(ratings, catalogue, scorer.rating_values)
        predictions = scorer.fold_in(rated, levels)
    exclude = () if include_rated else rated
    ranked = scorer.top(predictions, 0, exclude=exclude, n=top, min_ratings=min_ratings, score=score.value)
    because = reasons(scorer, rated, levels, ranked.items, score)

    values = scorer.rating_values[levels]
    order = sorted(range(len(rated)), key=lambda i: (-values[i], catalogue.titles[int(rated[i])]))[:context]
    own = [(int(rated[i]), float(values[i])) for i in order]
    who = f"user {raw_user}" if raw_user is not None else f"the ratings in {ratings.name}"  # type: ignore[union-attr]
    if as_json:
        _print_json(scorer, catalogue, model, raw_user, ratings, score, len(rated), own, ranked, because)
        return
    _print_tables(scorer, catalogue, who, score, len(rated), own, ranked, because)


def reasons(scorer: Scorer, rated: Any, levels: Any, items: Any, score: Score) -> list[list[int]]:
    """For each recommended item, the user's own items that raise its score most (inner ids, at most two).

    Leave-one-out effects through the hidden units (:func:`~recsys_rbm.recommender.explain.explain`); empty for
    item-based models, whose hidden states belong to items rather than users.
    """
    import numpy as np

    from recsys_rbm.recommender.explain import explain

    if scorer.mode != "user" or len(rated) == 0 or len(items) == 0:
        return [[] for _ in items]
    effects = explain(scorer, rated, levels, items, score.value)  # (n, M)
    out = []
    for row in effects:
        order = np.argsort(-row, kind="stable")[:2]
        out.append([int(rated[j]) for j in order if row[j] > 0])
    return out


OUTPUT_FORMATS = (".csv", ".parquet", ".jsonl")


def check_output_format(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise fail(
            f"--output {path} has no known format; end it in {', '.join(OUTPUT_FORMATS)} "
            "(see 'rbm-rec recommend --help')",
            code=2,
        )


def _chosen_users(scorer: Scorer, user: list[str] | None, users_file: Path | None, all_users: bool) -> list[Any]:
    """The raw ids of the users asked for, each checked now (an unknown one is one line before any work)."""
    ids = scorer.state.user_ids
    if all_users:
        return ids.raw_ids.tolist()
    if users_file is None:
        raw = [typed_user(scorer, text) for text in user or []]
        ids.to_inner(raw)
        return raw
    from recsys_rbm.data.text_files import read_text_file
    from recsys_rbm.errors import DataError, UnknownIdError
    from recsys_rbm.io.inputs import require_regular

    require_regular(users_file, "users file")
    text = read_text_file(users_file, "users file").data.decode("utf-8-sig")
    lines = [(number, line.split(",")[0].strip()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if lines and lines[0][1].lower() in ("user", "userid", "user_id"):
        lines = lines[1:]
    if not lines:
        raise DataError(f"users file {users_file} lists no user; write one user id per line")
    raw = []
    for number, line in lines:
        value = typed_user(scorer, line, f"{users_file}:{number}:")
        try:
            ids.to_inner([value])
        except UnknownIdError as error:
            raise DataError(f"{users_file}:{number}: {error}") from None
        raw.append(value)
    return raw


def write_lists(
    scorer: Scorer,
    catalogue: Catalogue,
    users: list[Any],
    output: Path,
    top: int,
    min_ratings: int,
    score: Score,
    as_json: bool,
    include_rated: bool = False,
) -> None:
    """Every user's top list, in batches with a progress bar, to ``output`` (CSV, Parquet or JSON lines), atomically."""
    import time

    import numpy as np
    import polars as pl
    from recsys_rbm_cli.common import progress_bar

    from recsys_rbm.io.atomic import atomic_path

    started = time.perf_counter()
    inner = scorer.state.user_ids.to_inner(users)
    batch = max(1, (1 << 22) // max(scorer.n_items * max(scorer.n_levels, 1), 1))
    frames = []
    bar = progress_bar()
    task = bar.add_task("recommending", total=len(users), note="")
    with bar:
        for start in range(0, len(users), batch):
            rows = inner[start : start + batch]
            ids, scores = scorer.recommend(
                rows, n=top, exclude_rated=not include_rated, min_ratings=min_ratings, score=score.value
            )
            keep = ids >= 0
            owner = np.repeat(np.arange(rows.shape[0]), keep.sum(1))
            frames.append(
                pl.DataFrame(
                    {
                        "user": scorer.state.user_ids.raw_ids[rows][owner],
                        "item": scorer.state.item_ids.raw_ids[ids[keep]],
                        "rank": (np.cumsum(keep, axis=1) - 1)[keep] + 1,
                        "score": scores[keep],
                        "title": [catalogue.titles[i] for i in ids[keep].tolist()],
                    }
                )
            )
            bar.update(task, advance=rows.shape[0])
    table = pl.concat(frames)
    with atomic_path(output) as temporary:
        suffix = output.suffix.lower()
        if suffix == ".csv":
            table.write_csv(temporary)
        elif suffix == ".parquet":
            table.write_parquet(temporary)
        else:
            table.write_ndjson(temporary)
    seconds = time.perf_counter() - started
    if as_json:
        import json

        summary = {"output": str(output), "users": len(users), "rows": table.height, "seconds": round(seconds, 3)}
        typer.echo(json.dumps(summary))
        return
    console.print(
        f"Wrote {plural(table.height, 'recommendation')} for {plural(len(users), 'user')} to {output} in "
        f"{seconds:.1f} s.",
        highlight=False,
    )


def check_score(scorer: Scorer, score: Score) -> None:
    """A --score the model can give: a score of ratings needs a model that was given ratings."""
    if scorer.is_implicit and score in (Score.p_high, Score.expected):
        raise fail(
            f"--score {score.value} needs a model of ratings, and this model was trained on implicit feedback "
            "(which items users picked, not how they rated them); use --score p_liked or p_interacted",
            code=2,
        )


def typed_user(scorer: Scorer, text: str, origin: str = "--user") -> int | str:
    """A --user value (or a line of ``origin``, a users file) typed as the model's user ids: an integer for
    integer ids (else a one-line error), or text."""
    from recsys_rbm.data.ids import is_canonical_integer

    ids = scorer.state.user_ids
    if ids.id_type == "str":
        return text
    if not is_canonical_integer(text.strip()):
        low, high = (int(ids.raw_ids[0]), int(ids.raw_ids[-1])) if len(ids) else (0, 0)
        raise fail(f"{origin} {text!r} is not a user id: this model's user ids are integers {low}..{high}; give one", 2)
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
    because: list[list[int]],
) -> None:
    from rich.markup import escape
    from rich.table import Table

    name = scorer.metadata.get("name", "model")
    dataset = (scorer.metadata.get("dataset") or {}).get("name")
    source = f"{name}, {dataset}" if dataset else name
    if own and not scorer.is_implicit:
        mine = Table(
            title=escape(f"Best rated by {who} ({len(own)} of {plural(n_rated, 'rating')})"), title_justify="left"
        )
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
    explained = any(because)
    if explained:
        table.add_column("because")
    for rank, item in enumerate(ranked.items.tolist()):
        cells = [
            str(rank + 1),
            escape(catalogue.label(item)),
            ", ".join(catalogue.genres(item)),
            score_text(ranked.score[rank]),
            f"{ranked.p_interacted[rank]:.1%}" if scorer.layout.interactions else f"{ranked.p_interacted[rank]:.2%}*",
        ]
        if ranked.p_like is not None and ranked.expected is not None:
            cells += [f"{ranked.p_like[rank]:.0%}", f"{ranked.expected[rank]:.2f}"]
        if explained:
            cells.append(escape(catalogue.label(because[rank][0])) if because[rank] else "")
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
    because: list[list[int]],
) -> None:
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
                "because": [catalogue.record(other) for other in because[rank]],
            }
            for rank, item in enumerate(ranked.items.tolist())
        ],
    }
    echo_json(data)
