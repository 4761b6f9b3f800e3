"""Imports every command module so that each registers its command."""

from recsys_rbm_cli import (  # noqa: F401
    anomalies,
    evaluate_movielens,
    explain,
    imagine,
    info,
    interactive,
    mnist_figures,
    recommend,
    similar,
    train_mnist,
    train_movielens,
    train_ratings,
)
