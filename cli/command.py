"""The command and group classes of the app: one-line usage errors and reflowed help paragraphs.

Click reports a bad option value as a usage block and a framed panel; the project's rule is one
clear line on stderr with a non-zero exit code. And Typer's rich help keeps the docstring's line
breaks after the first paragraph, so paragraphs are joined into single lines here (the docstring
stays the source of ``--help``). Commands opt in with ``@app.command(cls=RbmRecCommand)``, groups
(``rbm-rec``, ``rbm-rec train`` ...) with ``typer.Typer(cls=RbmRecGroup)``, so that an unknown
command or a bad global option is one line too.
"""

from __future__ import annotations

import re
from typing import Any

from recsys_rbm_cli.common import fail
from typer.core import TyperCommand, TyperGroup, TyperOption

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


class RbmRecCommand(TyperCommand):
    """A Typer command whose parsing errors print as ``error: <what> (see '<command> --help')``, exit 2.

    Its help is made uniform here, once for every command: a flag shows no ``<bool>`` type, and a
    default described in words (``show_default="…"``, which Typer prints in parentheses) reads
    ``[default: …]`` like every other default.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)
        for param in self.params:
            if isinstance(param, TyperOption):
                uniform_help(param)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:  # the --help option is added here, after __init__
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().parse_args(ctx, args)
        except UsageError as error:
            raise _one_line(error, ctx) from None


def uniform_help(option: TyperOption) -> None:
    """Flags show no type column; a default given in words is written like a value default."""
    if option.is_flag:
        option.metavar = ""
    if isinstance(option.show_default, str):
        option.help = f"{option.help or ''} \\[default: {option.show_default}]".strip()  # \\[: not rich markup
        option.show_default = False


class RbmRecGroup(TyperGroup):
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


def _one_line(error: UsageError, ctx: Any) -> Exception:
    message = " ".join(error.format_message().split())
    return fail(f"{message} (see '{ctx.command_path} --help')", code=2)
