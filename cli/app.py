"""The ``rbm-rec`` command-line application: one Typer app, one module per command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from recsys_rbm_cli.command import RbmRecGroup
from recsys_rbm_cli.common import DEBUG_VARIABLE, configure_output, report, set_debug

app = typer.Typer(
    name="rbm-rec",
    help="Restricted Boltzmann Machines: the MNIST course exercise and a MovieLens recommender.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    cls=RbmRecGroup,
)
train_app = typer.Typer(help="Train a model.", no_args_is_help=True, cls=RbmRecGroup)
app.add_typer(train_app, name="train")
evaluate_app = typer.Typer(help="Evaluate models against baselines.", no_args_is_help=True, cls=RbmRecGroup)
app.add_typer(evaluate_app, name="evaluate")


def _print_version(value: bool) -> None:
    if value:
        from recsys_rbm import __version__

        typer.echo(f"rbm-rec {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help=f"On an error, print the Python traceback before the one-line message (or set {DEBUG_VARIABLE}=1).",
        ),
    ] = False,
) -> None:
    """Restricted Boltzmann Machines: the MNIST course exercise and a MovieLens recommender."""
    set_debug(debug)
    configure_output()


def main() -> None:
    """The ``rbm-rec`` entry point: SIGTERM and SIGHUP are handled like Ctrl-C, and no error escapes as a traceback.

    Commands turn their own errors into one line (see ``common.one_line_errors``); this is the net
    for anything outside them. Once the command is over, interruptions are ignored and stdout is
    flushed here, so that neither a late Ctrl-C nor a closed pipe makes Python's exit print a traceback.
    """
    from recsys_rbm_cli.terminal import prepare_streams

    from recsys_rbm.io.signals import ignore_interrupts, install_interrupt_handlers

    install_interrupt_handlers()
    prepare_streams()
    try:
        app()
    except SystemExit:
        ignore_interrupts()
        _flush_stdout()
        raise
    except BaseException as error:
        ignore_interrupts()
        exit_error = report(error)
        _flush_stdout()
        sys.exit(exit_error.exit_code)


def _flush_stdout() -> None:
    """Flush stdout now; if its reader (a pipe, a terminal) is gone, point it at /dev/null rather than fail at exit."""
    from recsys_rbm_cli.terminal import silence_stdout

    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        silence_stdout()


# Each command module attaches its command to ``app`` or a sub-app on import. Command modules import
# torch and other heavy libraries inside their functions, so `rbm-rec recommend` starts fast.
from recsys_rbm_cli import commands  # noqa: E402, F401
