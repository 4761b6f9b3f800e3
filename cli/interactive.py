"""``rbm-rec interactive``: rate a few movies at a terminal and watch the recommendations change.

A line-oriented session on standard input (so it can be scripted and tested): each rating is
folded in through the hidden layer at once, without retraining, and the top list is shown again
with the reason for each item. Torch-free, like ``recommend``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, error_console, one_line_errors, warn_if_unfinished
from recsys_rbm_cli.movielens_options import ModelOption, TopOption, model_path

if TYPE_CHECKING:
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.scorer import Scorer

HELP = """Commands (a movie is an id or a title; titles match tolerantly):
  search TEXT          find movies whose title contains TEXT
  rate MOVIE RATING    rate a movie (e.g. 'rate star wars 5'); the list updates
  unrate MOVIE         take a rating back
  ratings              the ratings so far
  top                  the recommendations again
  why MOVIE            which of your ratings push MOVIE up or down
  save FILE            write your ratings as a CSV that 'recommend --ratings' reads
  help                 this text
  quit                 leave (end of input does too)"""


@app.command("interactive", cls=RbmRecCommand)
@one_line_errors
def interactive(
    model: ModelOption = None,
    top: TopOption = 10,
    ratings: Annotated[
        Path | None,
        typer.Option(
            "--ratings", help="Start from the ratings in this CSV file ('movie,rating' lines).", show_default=False
        ),
    ] = None,
) -> None:
    """Rate movies and watch your recommendations change, one command per line (type 'help').

    Each rating is folded in through the model's hidden layer at once, without retraining, and the
    top list is shown again with, for each movie, the rating of yours that raises it most. 'save
    FILE' writes the ratings as a CSV that 'rbm-rec recommend --ratings FILE' reads. Needs a
    user-based model (the joint model is one).

    Example: rbm-rec interactive --top 5
    """
    from recsys_rbm_cli.catalogue import Catalogue, read_ratings_file

    from recsys_rbm.errors import RecsysRBMError
    from recsys_rbm.recommender.scorer import Scorer

    model = model_path(model)
    scorer = Scorer.load(model)
    warn_if_unfinished(scorer.metadata, model)
    if scorer.mode != "user":
        raise RecsysRBMError(
            "the interactive session folds a new user in, which needs a user-based model; train one with --mode user"
        )
    catalogue = Catalogue.of(scorer.state.item_ids.raw_ids, scorer.metadata)
    session = Session(scorer, catalogue, top)
    if ratings is not None:
        items, levels = read_ratings_file(ratings, catalogue, scorer.rating_values)
        session.ratings = dict(zip(items.tolist(), levels.tolist(), strict=True))
    console.print(f"{scorer.metadata.get('name', 'model')}: {scorer.n_items:,} movies. Type 'help' for the commands.")
    if session.ratings:
        session.show_top()
    while True:
        console.print("> ", end="")
        line = sys.stdin.readline()
        if not line:  # end of input
            console.print()
            break
        try:
            if not session.run(line.strip()):
                break
        except RecsysRBMError as error:
            error_console.print(f"[bold red]error:[/] {_escape(str(error))}", highlight=False, soft_wrap=True)
    console.print(f"Bye: {len(session.ratings)} rating(s) this session.")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class Session:
    """The new user's ratings (inner item id -> level) and the commands that read or change them."""

    def __init__(self, scorer: Scorer, catalogue: Catalogue, top: int) -> None:
        self.scorer, self.catalogue, self.top = scorer, catalogue, top
        self.ratings: dict[int, int] = {}

    def run(self, line: str) -> bool:
        """Carry out one command line; ``False`` ends the session."""
        from recsys_rbm.errors import RecsysRBMError

        command, _, rest = line.partition(" ")
        command, rest = command.lower(), rest.strip()
        if not command:
            return True
        if command in ("quit", "exit", "q"):
            return False
        actions = {
            "help": lambda: console.print(HELP, highlight=False, markup=False),
            "search": lambda: self.search(rest),
            "rate": lambda: self.rate(rest),
            "unrate": lambda: self.unrate(rest),
            "ratings": self.show_ratings,
            "top": self.show_top,
            "why": lambda: self.why(rest),
            "save": lambda: self.save(rest),
        }
        if command not in actions:
            raise RecsysRBMError(f"unknown command {command!r}; type 'help' for the commands")
        actions[command]()
        return True

    def _needs(self, text: str, what: str) -> str:
        from recsys_rbm.errors import RecsysRBMError

        if not text:
            raise RecsysRBMError(f"give {what}; type 'help' for the commands")
        return text

    def search(self, text: str) -> None:
        from recsys_rbm_cli.titles import match_title

        query = self._needs(text, "some words of a title, e.g. 'search star wars'")
        positions = list(range(len(self.catalogue.titles)))
        match = match_title(query, positions, self.catalogue.titles, numbers_are_ids=False, max_candidates=10)
        found = list(match.ids) or list(match.suggestions)
        if not found:
            console.print(_escape(f"No title close to {query!r}."), highlight=False)
            return
        heading = "Matches" if match.ids else "No exact match; near titles"
        console.print(f"{heading}:", highlight=False)
        for item in found:
            mark = "" if item not in self.ratings else f"  (you rated it {self._value(item):g})"
            console.print(_escape(f"  {self.catalogue.describe(item)}{mark}"), highlight=False)

    def rate(self, text: str) -> None:
        from recsys_rbm.errors import RecsysRBMError

        movie, _, rating = self._needs(text, "a movie and a rating, e.g. 'rate star wars 5'").rpartition(" ")
        values = self.scorer.rating_values
        try:
            value = float(rating)
        except ValueError:
            raise RecsysRBMError(f"{rating!r} is not a rating; end the line with one of {_scale(values)}") from None
        matches = abs(values - value) < 1e-9
        if not movie.strip() or not matches.any():
            raise RecsysRBMError(f"give a movie and then a rating of {_scale(values)}, e.g. 'rate star wars 5'")
        item = self.catalogue.find(movie.strip())
        self.ratings[item] = int(matches.argmax())
        console.print(_escape(f"Rated {self.catalogue.label(item)}: {value:g}."), highlight=False)
        self.show_top()

    def unrate(self, text: str) -> None:
        from recsys_rbm.errors import RecsysRBMError

        item = self.catalogue.find(self._needs(text, "a movie, e.g. 'unrate star wars'"))
        if self.ratings.pop(item, None) is None:
            raise RecsysRBMError(f"you have not rated {self.catalogue.label(item)}; 'ratings' lists what you rated")
        console.print(_escape(f"Took back the rating of {self.catalogue.label(item)}."), highlight=False)
        self.show_top()

    def show_ratings(self) -> None:
        if not self.ratings:
            console.print("No ratings yet: 'rate MOVIE RATING' adds one.")
            return
        for item in self.ratings:
            console.print(_escape(f"  {self._value(item):g}  {self.catalogue.label(item)}"), highlight=False)

    def _value(self, item: int) -> float:
        return float(self.scorer.rating_values[self.ratings[item]])

    def _profile(self) -> tuple[Any, Any]:
        import numpy as np

        return np.asarray(list(self.ratings), dtype=np.int64), np.asarray(list(self.ratings.values()), dtype=np.int64)

    def show_top(self) -> None:
        from recsys_rbm_cli.movielens_options import Score
        from recsys_rbm_cli.recommend import reasons
        from rich.table import Table

        items, levels = self._profile()
        ranked = self.scorer.top(self.scorer.fold_in(items, levels), 0, exclude=items, n=self.top, min_ratings=1)
        because = reasons(self.scorer, items, levels, ranked.items, Score.p_liked)
        table = Table(title="Recommended for you", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("movie")
        table.add_column("score", justify="right")
        table.add_column("because you rated")
        for rank, item in enumerate(ranked.items.tolist()):
            reason = self.catalogue.label(because[rank][0]) if because[rank] else ""
            table.add_row(
                str(rank + 1), _escape(self.catalogue.label(item)), f"{ranked.score[rank]:.3g}", _escape(reason)
            )
        console.print(table)

    def why(self, text: str) -> None:
        import numpy as np

        item = self.catalogue.find(self._needs(text, "a movie, e.g. 'why fargo'"))
        items, levels = self._profile()
        if items.size == 0:
            console.print("Rate something first: with no ratings, every list follows the model's base rates.")
            return
        effects = self.scorer.explain(items, levels, [item])[0]
        console.print(_escape(f"What moves {self.catalogue.label(item)} in your list:"), highlight=False)
        for j in np.argsort(-np.abs(effects), kind="stable")[:5]:
            direction = "raises" if effects[j] > 0 else "lowers"
            console.print(
                _escape(
                    f"  {self.catalogue.label(int(items[j]))} ({self._value(int(items[j])):g}) {direction} it "
                    f"({effects[j]:+.3f})"
                ),
                highlight=False,
            )

    def save(self, text: str) -> None:
        import csv
        import io

        from recsys_rbm.atomic import atomic_write_text
        from recsys_rbm.errors import RecsysRBMError

        path = Path(self._needs(text, "a file name, e.g. 'save my-ratings.csv'")).expanduser()
        if path.exists():
            raise RecsysRBMError(f"{path} already exists; give another file name (nothing is ever overwritten)")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["movie", "rating"])
        for item in self.ratings:
            writer.writerow([self.catalogue.raw_ids[item].item(), f"{self._value(item):g}"])
        atomic_write_text(path, buffer.getvalue())
        console.print(_escape(f"Saved {len(self.ratings)} rating(s) to {path}: rbm-rec recommend --ratings {path}"))


def _scale(values: Any) -> str:
    return ", ".join(f"{value:g}" for value in values)
