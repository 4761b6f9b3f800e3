"""The MNIST exercise's library functions on a small generated MNIST: data, checkpoints, evaluation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from mnist_fakes import install_fake_mnist

from recsys_rbm.errors import ConfigError
from recsys_rbm.evaluation.exact import log_partition
from recsys_rbm.exercise.mnist import (
    DiversitySettings,
    EvaluationSettings,
    MnistData,
    digit_classifier,
    evaluate_mnist_rbm,
    load_binarized_mnist,
    matching_checkpoint,
    sample_diversity,
    train_mnist_rbm,
    train_or_load,
)
from recsys_rbm.io.checkpoint import load_rbm
from recsys_rbm.train.config import TrainConfig

CONFIG = TrainConfig(epochs=2, batch_size=20)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("data")
    return folder, install_fake_mnist(folder, n_train=180, n_test=24)


@pytest.fixture(scope="module")
def data(data_dir) -> MnistData:
    folder, files = data_dir
    return load_binarized_mnist(folder, "stochastic", 0, download=False, files=files)


def test_split_and_binarization(data_dir, data: MnistData) -> None:
    folder, files = data_dir
    assert data.train.shape == (150, 784) and data.validation.shape == (30, 784) and data.test.shape == (24, 784)
    assert set(torch.cat([data.train, data.test]).unique().tolist()) == {0.0, 1.0}
    assert "first 150 training images, validated on the last 30" in data.split_description
    same = load_binarized_mnist(folder, "stochastic", 0, download=False, files=files)
    other = load_binarized_mnist(folder, "stochastic", 1, download=False, files=files)
    assert torch.equal(same.train, data.train) and not torch.equal(other.train, data.train)
    threshold = load_binarized_mnist(folder, "threshold", 1, download=False, files=files)
    assert threshold.description == "binarized at threshold 0.5"
    assert data.description == "stochastic binarization (seed 0)"
    with pytest.raises(ConfigError, match="unknown binarization"):
        load_binarized_mnist(folder, "otsu", 0, download=False, files=files)


def test_checkpoint_every_epoch_and_interrupted_run_keeps_the_last(tmp_path: Path, data: MnistData) -> None:
    path = tmp_path / "model.safetensors"
    finished: list[int] = []

    def interrupt_in_second_epoch(batch: int, n_batches: int) -> None:
        if finished and batch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_mnist_rbm(
            data,
            5,
            CONFIG,
            checkpoint=path,
            on_epoch_end=lambda trainer, metrics: finished.append(trainer.epoch),
            on_batch_end=interrupt_in_second_epoch,
        )
    _, metadata, extra = load_rbm(path, expected_kind="mnist-rbm")
    assert metadata["epoch"] == 1 and metadata["complete"] is False and len(metadata["metrics"]) == 1
    assert set(extra) == set()  # CD: no chains, no offsets
    assert not matching_checkpoint(path, data, 5, CONFIG)  # unfinished: not reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_reuse_only_a_matching_finished_checkpoint(tmp_path: Path, data: MnistData) -> None:
    path = tmp_path / "model.safetensors"
    trained = train_or_load(data, 5, CONFIG, path)
    assert not trained.reused and matching_checkpoint(path, data, 5, CONFIG)
    reused = train_or_load(data, 5, CONFIG, path)
    assert reused.reused and torch.equal(reused.rbm.weights, trained.rbm.weights)
    assert [m.measures for m in reused.history] == [m.measures for m in trained.history]
    assert not matching_checkpoint(path, data, 6, CONFIG)
    assert not matching_checkpoint(path, data, 5, dataclasses.replace(CONFIG, learning_rate=0.01))
    assert not matching_checkpoint(path, dataclasses.replace(data, binarization="threshold"), 5, CONFIG)
    assert not matching_checkpoint(path, dataclasses.replace(data, fingerprint={"x": "y"}), 5, CONFIG)
    assert not train_or_load(data, 5, CONFIG, path, retrain=True).reused


def test_training_is_reproducible(data: MnistData) -> None:
    first = train_mnist_rbm(data, 4, CONFIG)
    second = train_mnist_rbm(data, 4, CONFIG)
    assert torch.equal(first.rbm.weights, second.rbm.weights)


def test_seed_of_config_and_data_must_agree(data: MnistData) -> None:
    with pytest.raises(ConfigError, match="seed"):
        train_mnist_rbm(data, 4, dataclasses.replace(CONFIG, seed=5))


def test_evaluation_exact_and_ais_agree(data: MnistData) -> None:
    rbm = train_mnist_rbm(data, 8, CONFIG).rbm
    exact = evaluate_mnist_rbm(rbm, data)
    assert exact.method == "exact" and exact.log_likelihood_bounds is None
    assert exact.log_z == pytest.approx(log_partition(rbm))
    ais = evaluate_mnist_rbm(rbm, data, EvaluationSettings(ais_runs=50, ais_temperatures=500, exact_max_hidden=4))
    assert ais.method == "AIS" and ais.ais_runs == 50
    lower, upper = ais.log_likelihood_bounds
    assert lower <= ais.test_log_likelihood <= upper
    assert abs(ais.test_log_likelihood - exact.test_log_likelihood) < 0.1
    assert ais.test_reconstruction_error == pytest.approx(exact.test_reconstruction_error)


def test_a_centred_model_saves_its_offsets_and_chains(tmp_path: Path, data: MnistData) -> None:
    config = dataclasses.replace(CONFIG, persistent=True, n_chains=10, centring=True)
    path = tmp_path / "centred.safetensors"
    trained = train_mnist_rbm(data, 5, config, checkpoint=path)
    _, metadata, extra = load_rbm(path, expected_kind="mnist-rbm")
    assert metadata["train_config"]["centring"] is True
    assert extra["offsets.visible"].shape == (784,) and extra["offsets.hidden"].shape == (5,)
    assert extra["chain.visible"].shape == (10, 784)
    assert trained.rbm.n_hidden == 5 and matching_checkpoint(path, data, 5, config)
    assert not matching_checkpoint(path, data, 5, dataclasses.replace(config, centring=False))


def test_sample_diversity_counts_every_chain(data: MnistData) -> None:
    classifier, accuracy = digit_classifier(data)
    assert accuracy > 0.8  # the generated digits are easy
    rbm = train_mnist_rbm(data, 6, CONFIG).rbm
    report = sample_diversity(rbm, data, classifier, DiversitySettings(n_chains=50, steps=4))
    assert report.n_chains == 50 and report.steps == 4  # more chains than the 24 test digits: drawn again
    assert report == sample_diversity(rbm, data, classifier, DiversitySettings(n_chains=50, steps=4))


def test_first_keeps_images_and_labels_together(data: MnistData) -> None:
    small = data.first(40)
    assert small.train.shape == (40, 784) and small.train_labels.shape == (40,)
    assert torch.equal(small.train_labels, data.train_labels[:40])
