"""The ``rbm-rec`` command-line application: one Typer app, one module per command."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rbm-rec",
    help="Restricted Boltzmann Machines: the MNIST course exercise and a MovieLens recommender.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
train_app = typer.Typer(help="Train a model.", no_args_is_help=True)
app.add_typer(train_app, name="train")
evaluate_app = typer.Typer(help="Evaluate models against baselines.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


def main() -> None:
    app()


# Each command module attaches its command to ``app`` or a sub-app on import. Command modules import
# torch and other heavy libraries inside their functions, so `rbm-rec recommend` starts fast.
from recsys_rbm_cli import commands  # noqa: E402, F401
