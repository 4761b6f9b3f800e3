"""``rbm-rec interactive``: rate a few movies at a terminal and watch the recommendations change.

A line-oriented session: each rating is folded in through the hidden layer at once, without
retraining, and the top list is shown again with the reason for each item. The first list, before
any rating, is the model's prior. At a terminal the lines are read with the standard library's
``readline`` (editing, Up and Down for earlier lines, Tab for the commands); piped input is read
line by line, so the session can be scripted and tested. Leaving with ratings not yet saved
(``quit``, Ctrl-D, Ctrl-C) asks once more first. Torch-free, like ``recommend``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import console, error_console, fail, one_line_errors, plural, warn_if_unfinished
from recsys_rbm_cli.movielens_options import ModelOption, TopOption, model_path, score_text

if TYPE_CHECKING:
    from recsys_rbm_cli.catalogue import Catalogue

    from recsys_rbm.recommender.scorer import Scorer

HELP = """Commands (a movie is an id or a title; titles match tolerantly):
  search WORDS         list the movies whose titles hold all the words ('search alien' finds Aliens too)
  rate MOVIE RATING    rate a movie (e.g. 'rate star wars 5'); the list updates
  unrate MOVIE         take a rating back
  ratings              the ratings so far
  top                  the recommendations again
  why MOVIE            which of your ratings push MOVIE up or down
  save FILE            write your ratings as a CSV that 'recommend --ratings' reads
                       ('save FILE --overwrite' replaces an existing FILE)
  help                 this text
  quit                 leave (so do Ctrl-D and Ctrl-C; with unsaved ratings, asked twice)
At a terminal, Up and Down recall earlier lines and Tab completes a command."""
COMMANDS = ("search", "rate", "unrate", "ratings", "top", "why", "save", "help", "quit")
MAX_SEARCH_RESULTS = 20
OVERWRITE_WORD = "--overwrite"


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

    It starts with the model's list for someone with no ratings yet (or, with --ratings, for those
    ratings). Each rating is folded in through the model's hidden layer at once, without
    retraining, and the top list is shown again with, for each movie, the rating of yours that
    raises it most. 'save FILE' writes the ratings as a CSV that 'rbm-rec recommend --ratings
    FILE' reads. At a terminal, lines can be edited and Up and Down recall earlier ones. Leaving
    with unsaved ratings asks you to confirm. Needs a user-based model (the joint model is one).

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
    session = Session(scorer, catalogue, top, model)
    if ratings is not None:
        items, levels = read_ratings_file(ratings, catalogue, scorer.rating_values)
        session.ratings = dict(zip(items.tolist(), levels.tolist(), strict=True))
        session.mark_saved()  # they are in the file already
    name = scorer.metadata.get("name", "model")
    console.print(f"{name}: {plural(scorer.n_items, 'movie')}. Type 'help' for the commands.", highlight=False)
    session.show_top()
    run_session(session, LineReader())
    unsaved = ", not saved" if session.unsaved else ""
    console.print(f"Bye: {plural(len(session.ratings), 'rating')} this session{unsaved}.", highlight=False)


def run_session(session: Session, reader: LineReader) -> None:
    """Read and carry out commands until the user leaves: ``quit``, end of input or Ctrl-C, each asked twice in a
    row when ratings would be lost (:meth:`Session.may_leave`). SIGTERM and SIGHUP end the session at once."""
    from recsys_rbm.errors import RecsysRBMError
    from recsys_rbm.io.signals import HungUp, Terminated, exit_code_of, install_interrupt_handlers

    while True:
        try:
            line = reader.read("> ")
            if line is None:  # end of input (Ctrl-D)
                console.print()
                if session.may_leave():
                    return
                continue
            if not session.run(line.strip()) and session.may_leave():
                return
        except (Terminated, HungUp) as interrupt:
            lost = f"; {plural(len(session.ratings), 'unsaved rating')} were lost" if session.unsaved else ""
            raise fail(f"interrupted{lost}", code=exit_code_of(interrupt)) from None
        except KeyboardInterrupt:
            install_interrupt_handlers()  # re-armed: the next Ctrl-C is seen too
            console.print()
            if session.may_leave():
                return
        except RecsysRBMError as error:
            error_console.print(f"[bold red]error:[/] {_escape(str(error))}", highlight=False, soft_wrap=True)


class LineReader:
    """Lines from standard input: through ``readline`` at a terminal (line editing, history, Tab completing the
    commands), plainly otherwise (a pipe, a file, a test), the prompt written before each."""

    def __init__(self) -> None:
        self.terminal = sys.stdin.isatty() and sys.stdout.isatty()
        if self.terminal:
            enable_line_editing()

    def read(self, prompt: str) -> str | None:
        """The next line without its newline, or ``None`` at the end of input."""
        if self.terminal:
            try:
                return input(prompt)
            except EOFError:
                return None
        console.print(prompt, end="", highlight=False, markup=False)
        line = sys.stdin.readline()
        return line if line else None


def enable_line_editing() -> None:
    """Load ``readline`` (``input`` then edits lines and keeps a history for Up and Down) and complete the
    commands on Tab; a Python without it (some builds, Windows) reads plain lines."""
    try:
        import readline
    except ImportError:
        return

    def complete(text: str, state: int) -> str | None:
        matches = [command + " " for command in COMMANDS if command.startswith(text)]
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" ")
    readline.parse_and_bind("bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class Session:
    """The new user's ratings (inner item id -> level) and the commands that read or change them."""

    def __init__(self, scorer: Scorer, catalogue: Catalogue, top: int, model: Path | None = None) -> None:
        self.scorer, self.catalogue, self.top, self.model = scorer, catalogue, top, model
        self.ratings: dict[int, int] = {}
        self.saved: dict[int, int] = {}  # the ratings as last saved (or read from --ratings)
        self.warned: dict[int, int] | None = None  # the ratings when leaving was last refused with a warning

    # --- leaving ----------------------------------------------------------------------------------
    @property
    def unsaved(self) -> bool:
        """Whether leaving now would lose ratings: they differ from the last ones saved."""
        return self.ratings != self.saved

    def mark_saved(self) -> None:
        self.saved = dict(self.ratings)

    def may_leave(self) -> bool:
        """Whether the session may end now (quit, Ctrl-D or Ctrl-C asked): at once when nothing would be lost, else
        only when asked again with the same ratings, after one warning line."""
        if not self.unsaved or self.warned == self.ratings:
            return True
        self.warned = dict(self.ratings)
        count = plural(len(self.ratings), "rating")
        error_console.print(
            f"[bold yellow]warning:[/] your {count} {'is' if len(self.ratings) == 1 else 'are'} not saved; "
            "'save FILE' keeps them for 'rbm-rec recommend --ratings FILE'; quit, Ctrl-D or Ctrl-C again leaves "
            "without saving",
            highlight=False,
            soft_wrap=True,
        )
        return False

    # --- commands ---------------------------------------------------------------------------------
    def run(self, line: str) -> bool:
        """Carry out one command line; ``False`` asks to end the session."""
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
            shown = command if command.isprintable() else command.encode("unicode_escape").decode("ascii")
            raise RecsysRBMError(f"unknown command {shown!r}; type 'help' for the commands")
        actions[command]()
        return True

    def _needs(self, text: str, what: str) -> str:
        from recsys_rbm.errors import RecsysRBMError

        if not text:
            raise RecsysRBMError(f"give {what}; type 'help' for the commands")
        return text

    def search(self, text: str) -> None:
        """Every movie whose title holds all the words (most rated first), else the near titles."""
        import numpy as np
        from recsys_rbm_cli.titles import match_title, titles_containing

        query = self._needs(text, "some words of a title, e.g. 'search star wars'")
        found = titles_containing(query, self.catalogue.titles)
        if found:
            popularity = np.asarray(self.scorer.item_counts)
            found.sort(key=lambda item: (-int(popularity[item]), self.catalogue.titles[item]))
            heading = f"{plural(len(found), 'title')} with {query!r}"
            if len(found) > MAX_SEARCH_RESULTS:
                heading += f", the {MAX_SEARCH_RESULTS} most rated (add a word to narrow it)"
            found = found[:MAX_SEARCH_RESULTS]
        else:
            positions = list(range(len(self.catalogue.titles)))
            near = match_title(query, positions, self.catalogue.titles, numbers_are_ids=False).suggestions
            if not near:
                console.print(_escape(f"No title holds {query!r}, and none is close."), highlight=False)
                return
            found, heading = list(near), f"No title holds {query!r}; near titles"
        console.print(_escape(f"{heading}:"), highlight=False)
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
        """The list for the ratings so far; with none yet, the model's prior (what it expects of anyone)."""
        from recsys_rbm_cli.movielens_options import Score
        from recsys_rbm_cli.recommend import reasons
        from rich.table import Table

        items, levels = self._profile()
        ranked = self.scorer.top(self.scorer.fold_in(items, levels), 0, exclude=items, n=self.top, min_ratings=1)
        because = reasons(self.scorer, items, levels, ranked.items, Score.p_liked)
        title = (
            "Recommended for you"
            if self.ratings
            else "To start: the model's list for someone with no ratings yet (rate movies to make it yours)"
        )
        table = Table(title=title, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("movie")
        table.add_column("score", justify="right")
        if self.ratings:
            table.add_column("because you rated")
        for rank, item in enumerate(ranked.items.tolist()):
            cells = [str(rank + 1), _escape(self.catalogue.label(item)), score_text(ranked.score[rank])]
            if self.ratings:
                cells.append(_escape(self.catalogue.label(because[rank][0])) if because[rank] else "")
            table.add_row(*cells)
        console.print(table)

    def why(self, text: str) -> None:
        import numpy as np

        from recsys_rbm.recommender.explain import explain

        item = self.catalogue.find(self._needs(text, "a movie, e.g. 'why fargo'"))
        items, levels = self._profile()
        if items.size == 0:
            console.print("Rate something first: with no ratings, every list follows the model's base rates.")
            return
        effects = explain(self.scorer, items, levels, [item])[0]
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
        """``save FILE`` writes the ratings as ``movie,rating`` lines, atomically; an existing FILE only with
        ``save FILE --overwrite``, and never the model itself."""
        import csv
        import io

        from recsys_rbm_cli.common import os_error_message

        from recsys_rbm.errors import RecsysRBMError
        from recsys_rbm.io.atomic import atomic_write_text
        from recsys_rbm.io.checkpoint_files import model_file
        from recsys_rbm.io.outputs import same_file

        words = self._needs(text, "a file name, e.g. 'save my-ratings.csv'").split(" ")
        overwrite = words[-1] == OVERWRITE_WORD
        name = " ".join(words[:-1] if overwrite else words).strip()
        path = Path(self._needs(name, "a file name before --overwrite, e.g. 'save my-ratings.csv --overwrite'"))
        path = path.expanduser()
        if self.model is not None and same_file(path, model_file(self.model)):
            raise RecsysRBMError(f"{path} is the model this session reads; save the ratings to another file")
        if path.is_dir():
            raise RecsysRBMError(f"{path} is a folder; give a file name, e.g. 'save {path / 'my-ratings.csv'}'")
        if path.exists() and not overwrite:
            raise RecsysRBMError(
                f"{path} already exists; 'save {name} {OVERWRITE_WORD}' replaces it, or give another file name"
            )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["movie", "rating"])
        for item in self.ratings:
            writer.writerow([self.catalogue.raw_ids[item].item(), f"{self._value(item):g}"])
        try:
            atomic_write_text(path, buffer.getvalue())
        except OSError as error:
            raise RecsysRBMError(os_error_message(error)) from None
        self.mark_saved()
        count = plural(len(self.ratings), "rating")
        console.print(_escape(f"Saved {count} to {path}: rbm-rec recommend --ratings {path}"), highlight=False)


def _scale(values: Any) -> str:
    return ", ".join(f"{value:g}" for value in values)
