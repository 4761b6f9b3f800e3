"""The ``rbm-rec`` command-line application."""

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False)


def main() -> None:
    app()
