"""Shared pieces of the command-line interface: consoles, one-line errors, common options."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from recsys_rbm.errors import RecsysRBMError

try:  # Typer ≥ 0.2x vendors Click; older releases use the click package
    from typer._click.exceptions import ClickException
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover
    from click import get_current_context  # type: ignore[no-redef]
    from click.exceptions import ClickException  # type: ignore[no-redef]

if TYPE_CHECKING:
    from rich.progress import Progress

BROKEN_PIPE_EXIT_CODE = 141  # 128 + SIGPIPE, as a shell reports a process a closed pipe ended
PLAIN_PROGRESS_SECONDS = 10.0  # where stdout is not a terminal, a progress line at most this often


class _Console(Console):
    """rich's console, ending the command quietly with exit code 141 when the reader of stdout goes away
    (``rbm-rec recommend … | head``), as a closed pipe ends other tools."""

    def on_broken_pipe(self) -> None:
        from recsys_rbm_cli.terminal import silence_stdout

        silence_stdout()
        raise SystemExit(BROKEN_PIPE_EXIT_CODE)


console = _Console()
error_console = _Console(stderr=True)

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
    str,
    typer.Option(
        "--device", help="Where to compute: auto (CUDA when available), cpu, cuda or cuda:N.", show_default=True
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace output files that already exist (without it, an existing one stops the command before any work).",
    ),
]
SeedOption = Annotated[
    int,
    typer.Option("--seed", min=0, max=2**63 - 1, help="The one seed of the run (initialisation, batches, sampling)."),
]


DEBUG_VARIABLE = "RBM_REC_DEBUG"  # RBM_REC_DEBUG=1 does what --debug does
_debug = False  # set by the app's --debug option for the current invocation


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def debugging() -> bool:
    """Whether errors should show their Python traceback (--debug or RBM_REC_DEBUG=1)."""
    return _debug or os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one line on stderr and return the exit to raise.

    Whatever the encoding of stderr (see :mod:`recsys_rbm_cli.terminal`); a stderr that cannot be
    written any more (its terminal closed) loses the line, never the exit code.
    """
    from recsys_rbm_cli.terminal import prepare_streams

    prepare_streams()
    line = " ".join(message.split())  # one line, whatever the message held
    with contextlib.suppress(OSError):
        error_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def notice(message: str) -> None:
    """One ``note:`` line on stderr: something the user should know that is not an error."""
    line = " ".join(message.split())
    with contextlib.suppress(OSError):
        error_console.print(f"[bold]note:[/] {escape(line)}", highlight=False, soft_wrap=True)


class _NoticeHandler(logging.Handler):
    """The library's log records (``recsys_rbm`` loggers, e.g. leftovers removed) as ``note:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        notice(record.getMessage())


def configure_output() -> None:
    """For each invocation: streams that never fail on a symbol, a usable width whatever ``COLUMNS`` says (whole
    lines where a stream is not a terminal), and the library's notices shown as ``note:`` lines (see
    :mod:`recsys_rbm_cli.terminal`)."""
    from recsys_rbm_cli.terminal import output_width, prepare_streams, spell_for_streams, titles_as_lines

    prepare_streams()
    spell_for_streams(console, error_console)
    titles_as_lines(console, error_console)  # after the spelling, which reaches into the tables' titles
    for stream in (console, error_console):
        stream.width = output_width(stream.is_terminal)
    library = logging.getLogger("recsys_rbm")
    if not any(isinstance(handler, _NoticeHandler) for handler in library.handlers):
        library.addHandler(_NoticeHandler())
    library.setLevel(logging.INFO)


def echo_json(data: Any) -> None:
    """``data`` as indented JSON on stdout: non-ASCII text as it is where stdout can carry it, else escaped."""
    import json

    unicode = (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("-", "").startswith("utf")
    typer.echo(json.dumps(data, ensure_ascii=not unicode, indent=2, default=str))


def unexpected_error_message(error: BaseException) -> str:
    """The line for an error nothing else explains: what it was, and how to see and report the rest."""
    detail = " ".join(str(error).split())
    if len(detail) > 300:
        detail = detail[:300] + " …"
    what = type(error).__name__ + (f": {detail}" if detail else "")
    seen = (
        "the traceback is above; " if debugging() else "rerun with --debug (or RBM_REC_DEBUG=1) to see the traceback, "
    )
    return f"unexpected error ({what}); {seen}and please report it at the project's issue tracker"


def memory_error_message(needed: int) -> str:
    from recsys_rbm.io.resources import available_memory, format_bytes

    asked = f": one step needed about {format_bytes(needed)} more" if needed else ""
    available = available_memory()
    has = f", and about {format_bytes(available)} is available" if available is not None else ""
    return f"ran out of memory{asked}{has}; use fewer --hidden units or a smaller --batch-size, or free some memory"


def os_error_message(error: OSError) -> str:
    """``OSError`` in plain words, naming the file and what to do about it."""
    name = f" {error.filename}" if error.filename else ""
    advice = {
        errno.ENOSPC: f"no space left on the device while writing{name}; free some space or write elsewhere",
        errno.EDQUOT: f"disk quota exceeded while writing{name}; free some space or write elsewhere",
        errno.EACCES: f"permission denied for{name}; fix its permissions or choose another path",
        errno.EPERM: f"operation not permitted on{name}; fix its permissions or choose another path",
        errno.EROFS: f"{name.strip() or 'the file'} is on a read-only file system; choose another path",
        errno.ENOENT: f"{name.strip() or 'a file'} does not exist; check the path",
        errno.EISDIR: f"{name.strip() or 'the path'} is a folder, not a file; give a file path",
        errno.ENOTDIR: f"part of the path{name} is a file, not a folder; check the path",
        errno.EIO: f"the device reported an input/output error on{name}; check the disk and try again",
    }.get(error.errno or 0)
    return advice or f"{error.strerror or error}{name and ':' + name}; check the path and try again"


def report(error: BaseException) -> typer.Exit:
    """The one line (and, when debugging, the traceback before it) for an error a command raised."""
    from recsys_rbm.io.resources import allocation_failure
    from recsys_rbm.io.signals import exit_code_of

    if isinstance(error, OSError) and error.errno == errno.EPIPE:  # the reader of stdout went away (| head)
        from recsys_rbm_cli.terminal import silence_stdout

        silence_stdout()
        return typer.Exit(BROKEN_PIPE_EXIT_CODE)
    if isinstance(error, KeyboardInterrupt):
        return fail(
            "interrupted; every file is written whole or not at all, so run the command again to finish",
            code=exit_code_of(error),
        )
    if isinstance(error, ClickException):  # e.g. a BadParameter raised inside a command
        return fail(error.format_message(), code=error.exit_code)
    if debugging():
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, RecsysRBMError):
        return fail(str(error))
    needed = allocation_failure(error)
    if needed is not None:
        return fail(memory_error_message(needed))
    if isinstance(error, OSError):
        return fail(os_error_message(error))
    return fail(unexpected_error_message(error))


def one_line_errors(command: F) -> F:
    """Turn any error a command raises (and Ctrl-C, and SIGTERM) into one line on stderr and an exit code.

    The library's errors print as they are; interruptions exit 130 (SIGINT) or 143 (SIGTERM);
    memory and file-system errors are put in plain words; anything else is named as unexpected,
    with its traceback only under --debug or RBM_REC_DEBUG=1.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BaseException as error:
            if isinstance(error, SystemExit | GeneratorExit):
                raise
            raise report(error) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def options_named(flags: dict[str, str]) -> Iterator[None]:
    """While settings are built from command-line options, an error about one of them names its option, not the
    setting's field, and is a usage error (exit 2): ``--learning-rate must be positive``, not ``learning_rate …``.

    ``flags`` maps each field given on the command line to its option (fields read from a --config file are
    left out: there the field's own name is what the user wrote). An error that names the option already
    (``--cd-schedule 'soon:3' is not …``) is a usage error too.
    """
    from recsys_rbm.errors import ConfigError

    try:
        yield
    except ConfigError as error:
        message = str(error)
        field = next((name for name in flags if message.startswith(f"{name} ")), None)
        if field is not None:
            message = flags[field] + message[len(field) :]
        elif not any(message.startswith(f"{flag} ") for flag in flags.values()):
            raise
        context = get_current_context(silent=True)
        see = f" (see '{context.command_path} --help')" if context is not None else ""
        raise fail(f"{message}{see}", code=2) from None


def hidden_units_check(n_visible: int | None) -> Callable[[Any], Any]:
    """A Typer callback refusing more hidden units than :data:`recsys_rbm.io.limits.MAX_HIDDEN`, with what
    they would cost in memory (for ``n_visible`` visible units, or per 1,000 when that depends on the data)."""

    def check(value: Any) -> Any:
        from recsys_rbm.io.limits import MAX_HIDDEN
        from recsys_rbm.io.resources import format_bytes, rbm_training_bytes

        for n in value if isinstance(value, list) else [value]:
            if n is None or n <= MAX_HIDDEN:
                continue
            if n_visible is not None:
                needed = format_bytes(rbm_training_bytes(n_visible, n, 100, 5000))
                cost = f"with {n_visible:,} visible units training would need at least {needed}"
            else:
                cost = f"the weights alone would take {format_bytes(4 * 1000 * n)} per 1,000 visible units"
            raise typer.BadParameter(f"{n:,} hidden units is more than the {MAX_HIDDEN:,} allowed ({cost}); use fewer")
        return value

    return check


def warn_if_unfinished(metadata: dict[str, Any], path: Path) -> None:
    """One warning line on stderr when a model's training was cut short (its metadata says complete: false)."""
    if metadata.get("complete") is False:
        epoch = metadata.get("best_epoch", metadata.get("epoch"))
        at = f" (best epoch {epoch})" if epoch is not None else ""
        error_console.print(
            f"[bold yellow]warning:[/] {escape(str(path))} is an unfinished model: its training was interrupted{at}; "
            "train it again for full accuracy",
            highlight=False,
            soft_wrap=True,
        )


def is_interactive() -> bool:
    return sys.stderr.isatty()


def progress_bar(field: str = "note", transient: bool = False, lines: bool = True) -> Progress:
    """The commands' progress display: description, bar, done/total, the task's ``field`` text, time.

    Each task must carry ``field`` (e.g. ``note=""``) among its fields; rich is imported here, on
    use, so that commands which never show progress start fast. Where stdout is not a terminal (a
    file, a log) the display is a :class:`~recsys_rbm_cli.plain_progress.PlainProgress` instead:
    a plain line now and then (none when ``lines`` is false: the command prints its own lines).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{{task.fields[{field}]}}"),
        TimeElapsedColumn(),
    )
    if not console.is_terminal:
        from recsys_rbm_cli.plain_progress import PlainProgress

        return PlainProgress(*columns, console=console, field=field, every=PLAIN_PROGRESS_SECONDS if lines else None)
    return Progress(*columns, console=console, transient=transient)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 user``, ``2 users``, ``1,500 users``: a count and its noun, singular only for one."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"
