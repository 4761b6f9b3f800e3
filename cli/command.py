"""The command class of the MNIST commands: one-line usage errors and reflowed help paragraphs.

Click reports a bad option value as a usage block and a framed panel; the project's rule is one
clear line on stderr with a non-zero exit code. And Typer's rich help keeps the docstring's line
breaks after the first paragraph, so paragraphs are joined into single lines here (the docstring
stays the source of ``--help``). Commands opt in with ``@app.command(cls=RbmRecCommand)``.
"""

from __future__ import annotations

import re
from typing import Any

from recsys_rbm_cli.common import fail
from typer.core import TyperCommand

try:  # Typer ≥ 0.2x vendors Click; older releases use the click package
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError  # type: ignore[no-redef]


def reflow(text: str | None) -> str | None:
    """Join the lines of each paragraph (paragraphs are separated by blank lines)."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class RbmRecCommand(TyperCommand):
    """A Typer command whose parsing errors print as ``error: <what> (see '<command> --help')``, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().parse_args(ctx, args)
        except UsageError as error:
            message = " ".join(error.format_message().split())
            raise fail(f"{message} (see '{ctx.command_path} --help')", code=2) from None
