"""The MNIST commands through Typer's CliRunner, on a small generated MNIST.

The generated files have the real file names but their own content, so the tests swap the
table of expected MD5s (``recsys_rbm.data.mnist.MNIST``) for one describing them, with an
unreachable mirror: verification stays on, exactly as a user's run has it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
from checkpoint_tools import rewrite_metadata
from mnist_fakes import install_fake_mnist
from PIL import Image
from recsys_rbm_cli.app import app
from typer.testing import CliRunner

import recsys_rbm.data.mnist as mnist
from recsys_rbm.io.checkpoint import load_rbm

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A generated MNIST in ``tmp_path/data`` (via $RBM_REC_DATA); the working folder is ``tmp_path``."""
    files = install_fake_mnist(tmp_path / "data", n_train=240, n_test=30)
    monkeypatch.setattr(mnist, "MNIST", mnist.MnistFiles(*files.all, mirrors=("file:///nonexistent/",)))
    monkeypatch.setenv("RBM_REC_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(path) as image:
        image.verify()
    assert matplotlib.image.imread(path).shape[0] > 50


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{output}"
    assert lines[0].startswith("error: ") and "Traceback" not in output
    return lines[0]


def test_train_mnist_saves_a_checkpoint_with_metadata(runner: CliRunner, fake_mnist: Path) -> None:
    args = ["train", "mnist", "--hidden", "8", "--epochs", "2", "--batch-size", "20", "--device", "cpu"]
    args += ["--binarize", "threshold", "--seed", "3", "--output", "models/tiny.safetensors"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "Saved the model to models/tiny.safetensors" in output
    assert "binarized at threshold 0.5" in output and "reconstruction error" in output
    rbm, metadata, _ = load_rbm(fake_mnist / "models" / "tiny.safetensors", expected_kind="mnist-rbm")
    assert rbm.n_hidden == 8 and rbm.n_visible == 784
    assert metadata["epoch"] == 2 and metadata["complete"] is True and len(metadata["metrics"]) == 2
    assert metadata["binarization"] == "threshold" and metadata["seed"] == 3
    assert metadata["train_config"]["batch_size"] == 20
    assert set(metadata["data"]["fingerprint_md5"]) == {f.name for f in mnist.MNIST.all}


def test_train_mnist_and_info_claim_no_test_figure_they_do_not_give(runner: CliRunner, fake_mnist: Path) -> None:
    """Neither the training run nor the model file measures the test images, so neither mentions them."""
    args = ["train", "mnist", "--hidden", "4", "--epochs", "2", "--batch-size", "20", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--output", "m.safetensors"])
    assert result.exit_code == 0, result.output
    assert "validated on the last 40" in flat(result.output) and "test" not in result.output
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]  # piped: a line per epoch
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"] and "reconstruction error" in epochs[0]
    info = runner.invoke(app, ["info", "m.safetensors"])
    assert info.exit_code == 0 and "test" not in info.stdout, info.output

    def claim_a_test(metadata: dict) -> None:  # as models of earlier versions recorded their split
        metadata["data"]["split"] += ", tested on the 30 test images"

    rewrite_metadata(fake_mnist / "m.safetensors", claim_a_test, rehash=True)
    info = runner.invoke(app, ["info", "m.safetensors"])
    assert info.exit_code == 0 and "validated on the last 40" in flat(info.stdout) and "test" not in info.stdout


def test_training_the_default_mnist_model_again_keeps_the_previous_one(
    runner: CliRunner, fake_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys_rbm.data.paths import models_dir

    monkeypatch.setenv("RBM_REC_MODELS", str(fake_mnist / "models"))
    args = ["train", "mnist", "--hidden", "4", "--epochs", "1", "--batch-size", "20", "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    first = (models_dir() / "mnist-h4.safetensors").read_bytes()
    again = runner.invoke(app, [*args, "--seed", "5"])
    assert again.exit_code == 0, again.output
    assert "kept the previous model as" in flat(again.output)
    assert (models_dir() / "mnist-h4.previous.safetensors").read_bytes() == first


def test_train_mnist_config_file_is_overridden_by_options(runner: CliRunner, fake_mnist: Path) -> None:
    (fake_mnist / "train.toml").write_text("[train]\nepochs = 5\nlearning_rate = 0.01\nbatch_size = 40\n")
    args = ["train", "mnist", "--hidden", "4", "--epochs", "1", "--config", "train.toml", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    from recsys_rbm.data.paths import models_dir

    _, metadata, _ = load_rbm(models_dir() / "mnist-h4.safetensors")  # the documented default: the models folder
    assert metadata["train_config"]["epochs"] == 1  # the option wins
    assert metadata["train_config"]["learning_rate"] == 0.01 and metadata["train_config"]["batch_size"] == 40


def test_mnist_figures_writes_figures_and_a_table(runner: CliRunner, fake_mnist: Path) -> None:
    args = ["mnist-figures", "--hidden", "30", "--hidden", "6", "--epochs", "2", "--batch-size", "20"]
    args += ["--ais-runs", "4", "--ais-temperatures", "60", "--sample-every", "3", "--output", "figs"]
    args += ["--diversity-chains", "40", "--diversity-steps", "5", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    names = [
        "mnist-filters-h30.png",
        "mnist-samples-h30.png",
        "mnist-filters-h6.png",
        "mnist-samples-h6.png",
        "mnist-fewer-features.png",
        "mnist-sample-diversity.png",
        "mnist-training-curves.png",
    ]
    for name in names:
        assert f"figs/{name}" in result.output
        assert_valid_png(fake_mnist / "figs" / name)
    output = flat(result.output)
    assert "MNIST RBMs on the test set, stochastic binarization (seed 0)" in output
    assert "log p(v)" in output and "exact" in output and "AIS" in output and "4 runs, 60 intermediate" in output
    assert "2 epochs of PCD-1, centred" in output  # the exercise's recipe, shortened
    assert "Sample diversity: 40 Gibbs chains from test digits, labelled after 5 steps" in output
    assert "logistic regression fitted to the training images and labels (test accuracy" in output
    assert (fake_mnist / "runs" / "mnist-h30-stochastic-e2-s0.safetensors").is_file()

    refused = runner.invoke(app, args)  # the figures exist: nothing is replaced without --overwrite
    assert refused.exit_code == 1 and "figs/mnist-filters-h30.png already exists; pass --overwrite" in refused.output
    again = runner.invoke(app, [*args, "--overwrite"])  # same settings: both models are reused
    assert again.exit_code == 0, again.output
    assert again.output.count("reusing the matching checkpoint") == 2
    retrained = runner.invoke(app, [*args, "--retrain", "--overwrite"])
    assert retrained.exit_code == 0 and "reusing" not in retrained.output
    assert sorted(p.name for p in (fake_mnist / "runs").iterdir()) == [
        "mnist-h30-stochastic-e2-s0.safetensors",
        "mnist-h6-stochastic-e2-s0.safetensors",
    ]  # no lock, run or temporary file is left behind


@pytest.mark.parametrize(
    "args",
    [
        ["train", "mnist", "--hidden", "0"],
        ["train", "mnist", "--epochs", "-1"],
        ["train", "mnist", "--binarize", "otsu"],
        ["train", "mnist", "--learning-rate", "0"],
        ["train", "mnist", "--no-such-option"],
        ["mnist-figures", "--hidden", "0"],
        ["mnist-figures", "--hidden", "5", "--hidden", "5"],
        ["mnist-figures", "--epochs", "-1"],
        ["mnist-figures", "--binarize", "x"],
        ["mnist-figures", "--ais-runs", "1"],
    ],
)
def test_bad_option_values_give_one_line_errors(runner: CliRunner, fake_mnist: Path, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    one_error_line(result.output)


def test_missing_data_offline_is_one_line_naming_the_files(runner: CliRunner, fake_mnist: Path) -> None:
    result = runner.invoke(app, ["train", "mnist", "--data-dir", "empty", "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert "train-images-idx3-ubyte.gz" in line and "t10k-labels-idx1-ubyte.gz" in line
    assert str((fake_mnist / "empty" / "mnist").resolve()) in flat(result.output)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["train", "mnist", "--help"], "Train an RBM on MNIST"),
        (["mnist-figures", "--help"], "Train (or reuse) an RBM per hidden size"),
    ],
)
def test_help(runner: CliRunner, args: list[str], text: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and text in result.output and "--binarize" in result.output


def test_mnist_figures_help_shows_the_recipe_it_uses(runner: CliRunner) -> None:
    from recsys_rbm_cli.mnist_figures import RECIPE_EPOCHS, RECIPE_LEARNING_RATE

    from recsys_rbm.exercise.mnist import EXERCISE_TRAIN_CONFIG

    assert (EXERCISE_TRAIN_CONFIG.epochs, EXERCISE_TRAIN_CONFIG.learning_rate) == (RECIPE_EPOCHS, RECIPE_LEARNING_RATE)
    assert EXERCISE_TRAIN_CONFIG.centring and EXERCISE_TRAIN_CONFIG.persistent
    result = runner.invoke(app, ["mnist-figures", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0 and "--centring" in result.output
    epochs_line = next(line for line in result.output.splitlines() if "--epochs" in line)
    assert "[default: 200]" in epochs_line
