"""``rbm-rec train mnist``: train a Bernoulli RBM on binarized MNIST."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from recsys_rbm_cli.app import train_app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import DataDirOption, DeviceOption, console, one_line_errors, progress_bar
from recsys_rbm_cli.mnist_options import (
    BatchSizeOption,
    Binarization,
    BinarizationOption,
    CdKOption,
    ConfigOption,
    EpochsOption,
    LearningRateOption,
    PcdOption,
    SeedOption,
    download_progress,
    train_config,
)


@train_app.command("mnist", cls=RbmRecCommand)
@one_line_errors
def train_mnist(
    hidden: Annotated[int, typer.Option("--hidden", min=1, help="Number of hidden units (features).")] = 500,
    epochs: EpochsOption = None,
    cd_k: CdKOption = None,
    pcd: PcdOption = None,
    batch_size: BatchSizeOption = None,
    learning_rate: LearningRateOption = None,
    binarize: BinarizationOption = Binarization.stochastic,
    seed: SeedOption = None,
    device: DeviceOption = "auto",
    data_dir: DataDirOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Checkpoint path (one .safetensors file, metadata inside).",
            show_default="runs/mnist-h<hidden>.safetensors",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Train an RBM on MNIST with CD-k or PCD-k and save it after every epoch.

    The first 50,000 training images train the model; the last 10,000 are held out to measure
    the free-energy gap (mean F(validation) − mean F(training subset)), which grows when the
    model overfits. The progress bar shows each epoch's reconstruction error and gap. The
    checkpoint is rewritten atomically after every epoch, so an interrupted run keeps its last
    finished epoch.

    Example: rbm-rec train mnist --hidden 500 --epochs 20 --cd-k 1
    """

    from recsys_rbm.mnist_exercise import load_binarized_mnist, train_mnist_rbm
    from recsys_rbm.runtime import resolve_device

    settings = train_config(
        config,
        epochs=epochs,
        cd_k=cd_k,
        persistent=pcd,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    target = output if output is not None else Path("runs") / f"mnist-h{hidden}.safetensors"
    torch_device = resolve_device(device)
    downloads, on_download = download_progress(console)
    with downloads:
        data = load_binarized_mnist(data_dir, binarize.value, settings.seed, progress=on_download)
    method = f"PCD-{settings.cd_k}" if settings.persistent else f"CD-{settings.cd_k}"
    console.print(
        f"Training an RBM with {hidden} hidden units by {method} for {settings.epochs} epochs on {torch_device}: "
        f"MNIST, {data.description}; {data.split_description}."
    )
    bar = progress_bar("metrics")
    tasks: list = []

    def on_batch_end(batch: int, n_batches: int) -> None:
        if not tasks or bar.tasks[-1].finished:
            tasks.append(bar.add_task(f"epoch {len(tasks) + 1}/{settings.epochs}", total=n_batches, metrics=""))
        bar.update(tasks[-1], completed=batch)

    def on_epoch_end(_trainer, metrics) -> None:
        text = f"reconstruction error {metrics.reconstruction_error:.2f}"
        if metrics.validation_reconstruction_error is not None:
            text += f" (validation {metrics.validation_reconstruction_error:.2f})"
        if metrics.free_energy_gap is not None:
            text += f", free-energy gap {metrics.free_energy_gap:+.2f}"
        bar.update(tasks[-1], metrics=text)

    with bar:
        trained = train_mnist_rbm(data, hidden, settings, torch_device, target, on_epoch_end, on_batch_end)
    console.print(f"Saved the model to {trained.checkpoint}.")
