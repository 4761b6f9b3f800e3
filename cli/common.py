"""Shared pieces of the command-line interface: consoles, one-line errors, common options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from recsys_rbm.errors import RecsysRBMError

if TYPE_CHECKING:
    from rich.progress import Progress

console = Console()
error_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Dataset folder (default: $RBM_REC_DATA, else ./data). Missing datasets are downloaded into it.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.", show_default=True)
]
SeedOption = Annotated[int, typer.Option("--seed", help="The one seed of the run (initialisation, batches, sampling).")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one line on stderr and return the exit to raise."""
    error_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(command: F) -> F:
    """Turn the library's errors (and Ctrl-C) into one line on stderr with a non-zero exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RecsysRBMError as error:
            raise fail(str(error)) from None
        except KeyboardInterrupt:
            raise fail("interrupted; the last completed checkpoint (if any) was kept", code=130) from None
        except (OSError, MemoryError) as error:
            raise fail(f"{type(error).__name__}: {error}") from None

    return wrapper  # type: ignore[return-value]


def is_interactive() -> bool:
    return sys.stderr.isatty()


def progress_bar(field: str = "note", transient: bool = False) -> Progress:
    """The commands' progress display: description, bar, done/total, the task's ``field`` text, time.

    Each task must carry ``field`` (e.g. ``note=""``) among its fields; rich is imported here, on
    use, so that commands which never show progress start fast.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{{task.fields[{field}]}}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
