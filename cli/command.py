"""The command and group classes of the app: one-line usage errors and help that reads whole.

Click reports a bad option value as a usage block and a framed panel; the project's rule is one
clear line on stderr with a non-zero exit code. And Typer's rich help keeps the docstring's line
breaks after the first paragraph, so paragraphs are joined into single lines here (the docstring
stays the source of ``--help``). Commands opt in with ``@app.command(cls=RbmRecCommand)``, groups
(``rbm-rec``, ``rbm-rec train`` ...) with ``typer.Typer(cls=RbmRecGroup)``, so that an unknown
command or a bad global option is one line too.

Both make their help uniform (:class:`UniformHelp`): flags show no ``<bool>`` type, arguments
read ``PATH`` or ``[MODEL]`` in the usage line (not Typer's ``{path}``), and nothing is cut
to ``…``: rich's tables end a word too long for its column with an ellipsis, so the help's
cells are drawn folding such a word onto the next line instead, option names kept whole.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from recsys_rbm_cli.common import fail
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from rich.console import Console, ConsoleRenderable, RenderableType

try:  # Typer ≥ 0.2x vendors Click; older releases use the click package
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[no-redef]


def reflow(text: str | None) -> str | None:
    """Join the lines of each paragraph (paragraphs are separated by blank lines)."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class UniformHelp:
    """What every command and group of the app shares in its help (see the module docstring)."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperOption | TyperArgument):
                uniform_help(param)
            if isinstance(param, TyperArgument) and param.metavar is None and param.name:
                param.metavar = param.name.upper()

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:  # the --help option is added here, after __init__
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] PATH``: a required argument bare (Typer writes ``{PATH}``), an optional one in brackets."""
        pieces = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece for piece in pieces]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with whole_help():
            super().format_help(ctx, formatter)  # type: ignore[misc]


class RbmRecCommand(UniformHelp, TyperCommand):
    """A Typer command whose parsing errors print as ``error: <what> (see '<command> --help')``, exit 2.

    Its help is made uniform (:class:`UniformHelp`): a flag shows no ``<bool>`` type, and a default
    described in words (``show_default="…"``, which Typer prints in parentheses) reads
    ``[default: …]`` like every other default.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().parse_args(ctx, args)
        except UsageError as error:
            raise _one_line(error, ctx) from None


def uniform_help(option: TyperOption | TyperArgument) -> None:
    """Flags show no type column; a default given in words is written like a value default."""
    if getattr(option, "is_flag", False):
        option.metavar = ""
    if isinstance(option.show_default, str):
        option.help = f"{option.help or ''} \\[default: {option.show_default}]".strip()  # \\[: not rich markup
        option.show_default = False


class RbmRecGroup(UniformHelp, TyperGroup):
    """A Typer group whose parsing errors (unknown command, bad option) print as one line, exit 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise  # prints the help, as asked for
        except UsageError as error:
            raise _one_line(error, ctx) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as error:
            raise _one_line(error, ctx) from None


@contextlib.contextmanager
def whole_help() -> Iterator[None]:
    """While the block runs, Typer draws help at a usable width, on consoles that cut nothing (:class:`WholeCells`)."""
    from recsys_rbm_cli.terminal import usable_width
    from typer import rich_utils

    make_console = rich_utils._get_rich_console

    def console(stderr: bool = False) -> Console:
        made = make_console(stderr)
        made.width = usable_width()
        made.push_render_hook(WholeCells())
        return made

    rich_utils._get_rich_console = console
    try:
        yield
    finally:
        rich_utils._get_rich_console = make_console


class WholeCells:
    """A rich render hook for help: every table cell folds a word too long for its column onto the next line
    (rich's default ends it with ``…``); option names and switches never wrap; a cell made of pieces side by
    side (the help, its default) becomes one text that wraps as a paragraph."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        for renderable in renderables:
            self._fold(renderable)
        return renderables

    def _fold(self, renderable: RenderableType) -> None:
        from rich.table import Table

        inner = getattr(renderable, "renderable", None)  # Panel, Padding, Align
        if inner is not None:
            self._fold(inner)
        if not isinstance(renderable, Table):
            return
        for number, column in enumerate(renderable.columns):
            column.overflow = "fold"
            if number == 0 and len(renderable.columns) > 2:
                column.no_wrap = True  # the option names
            column._cells = [_joined(cell) for cell in column._cells]
            for cell in column._cells:
                self._fold(cell)


def _joined(cell: RenderableType) -> RenderableType:
    """Typer's help cell, pieces of text side by side (``Columns``), as one text; anything else as it is."""
    from rich.columns import Columns
    from rich.text import Text

    if isinstance(cell, Columns) and all(isinstance(piece, Text) for piece in cell.renderables):
        return Text(" ").join(piece for piece in cell.renderables if piece.plain)  # type: ignore[misc]
    return cell


def _one_line(error: UsageError, ctx: Any) -> Exception:
    message = " ".join(error.format_message().split())
    return fail(f"{message} (see '{ctx.command_path} --help')", code=2)
