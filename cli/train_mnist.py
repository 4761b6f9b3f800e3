"""``rbm-rec train mnist``: train a Bernoulli RBM on binarized MNIST."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from recsys_rbm_cli.app import train_app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import (
    DataDirOption,
    DeviceOption,
    OverwriteOption,
    console,
    fail,
    hidden_units_check,
    one_line_errors,
    progress_bar,
)
from recsys_rbm_cli.mnist_options import (
    BatchSizeOption,
    Binarization,
    BinarizationOption,
    CdKOption,
    CentringOption,
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
    hidden: Annotated[
        int,
        typer.Option("--hidden", min=1, callback=hidden_units_check(784), help="Number of hidden units (features)."),
    ] = 500,
    epochs: EpochsOption = None,
    cd_k: CdKOption = None,
    pcd: PcdOption = None,
    centring: CentringOption = None,
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
            show_default="mnist-h<hidden>.safetensors in the models folder ($RBM_REC_MODELS, else "
            "~/.local/share/rbm-rec/models)",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:
    """Train an RBM on MNIST with CD-k or PCD-k and save it.

    The first 50,000 training images train the model; the last 10,000 are held out to measure
    the free-energy gap (mean F(validation) − mean F(training subset)), which grows when the
    model overfits. The progress bar shows each epoch's reconstruction error and gap. An existing
    --output is never replaced without --overwrite. Every epoch is saved to a file of the run's
    own beside --output, moved into place at the end; if the run is interrupted (Ctrl-C, SIGTERM),
    the last finished epoch goes to --output only when that did not exist before, else it is kept
    beside it as <name>.partial.safetensors.

    Under torchrun (torchrun --nproc-per-node N -m recsys_rbm_cli train mnist ...) each process trains on
    its share of every batch and of the persistent chains, and the gradients are summed: the model is
    one process's, up to rounding. Rank 0 alone prints and saves.

    Example: rbm-rec train mnist --hidden 500 --epochs 20 --cd-k 1
    """

    from recsys_rbm_cli.processes import describe, kept_previous_line, local_rank_zero_first, training_run

    from recsys_rbm.exercise.mnist import check_training_memory, load_binarized_mnist, train_mnist_rbm
    from recsys_rbm.io.checkpoint import tensor_path
    from recsys_rbm.runtime import resolve_device

    settings = train_config(
        config,
        epochs=epochs,
        cd_k=cd_k,
        persistent=pcd,
        centring=centring,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    from recsys_rbm.data.paths import dataset_files, models_dir
    from recsys_rbm.io.outputs import check_distinct

    target = tensor_path(output if output is not None else models_dir() / f"mnist-h{hidden}.safetensors")
    check_distinct({"--output": target}, [("--config", config), *dataset_files(data_dir, ("mnist",))])
    with training_run(device, target, overwrite, default=output is None) as (
        run,
        parallel,
    ):  # output checked, locked before any work
        torch_device = resolve_device(device) if parallel is None else parallel.device
        downloads, on_download = download_progress(console)
        with downloads, local_rank_zero_first(parallel):
            data = load_binarized_mnist(data_dir, binarize.value, settings.seed, progress=on_download)
        check_training_memory(data, hidden, settings)
        method = f"PCD-{settings.cd_k}" if settings.persistent else f"CD-{settings.cd_k}"
        console.print(
            f"Training an RBM with {hidden} hidden units by {method} for {settings.epochs} epochs on {torch_device}"
            f"{describe(parallel)}: MNIST, {data.description}; {data.split_description}."
        )
        bar = progress_bar("metrics")
        tasks: list = []

        def on_batch_end(batch: int, n_batches: int) -> None:
            if not tasks or bar.tasks[-1].finished:
                tasks.append(bar.add_task(f"epoch {len(tasks) + 1}/{settings.epochs}", total=n_batches, metrics=""))
            bar.update(tasks[-1], completed=batch)

        def on_epoch_end(_trainer, record) -> None:
            measures = record.measures
            text = f"reconstruction error {measures['reconstruction_error']:.2f}"
            if measures.get("validation_reconstruction_error") is not None:
                text += f" (validation {measures['validation_reconstruction_error']:.2f})"
            if measures.get("free_energy_gap") is not None:
                text += f", free-energy gap {measures['free_energy_gap']:+.2f}"
            bar.update(tasks[-1], metrics=text)
            if not console.is_terminal:  # a file or a log keeps no bar: one whole line per epoch
                console.print(
                    f"epoch {record.epoch}/{settings.epochs}: {text}  {record.seconds:.1f} s", highlight=False
                )

        checkpoint = None if run is None else run.partial  # rank 0 saves
        try:
            with bar:
                train_mnist_rbm(data, hidden, settings, torch_device, checkpoint, on_epoch_end, on_batch_end, parallel)
        except KeyboardInterrupt as interrupt:
            if run is None:
                raise
            raise interrupted(run, interrupt) from None
        if run is not None:
            run.commit()
    if run is not None:  # rank 0, or the one process
        kept = kept_previous_line(run)
        console.print(f"Saved the model to {target}{f'; {kept}' if kept else ''}.", highlight=False)


def interrupted(run, interrupt: KeyboardInterrupt) -> typer.Exit:
    """The one line for an interrupted training run, after placing or keeping its last saved epoch."""
    from recsys_rbm_cli.processes import again_flag

    from recsys_rbm.io.checkpoint_files import read_metadata
    from recsys_rbm.io.signals import exit_code_of

    where = run.settle()
    code = exit_code_of(interrupt)
    if where is None:
        state = "left unchanged" if run.existed else "not created"
        return fail(
            f"interrupted before the first epoch finished; {run.target} was {state}; run the command again", code
        )
    epoch = read_metadata(where).get("epoch")  # what the file holds, whenever the signal came
    if run.placed:
        return fail(
            f"interrupted; saved the last finished epoch ({epoch}) to {run.target}, marked "
            f"unfinished (complete: false); run the command again{again_flag(run)} to train it fully",
            code,
        )
    return fail(
        f"interrupted; {run.target} was left unchanged, and the last finished epoch ({epoch}) was kept in {where}; "
        "use that file as the model, or delete it",
        code,
    )
