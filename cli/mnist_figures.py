"""``rbm-rec mnist-figures``: the course exercise's figures and numbers for one or more hidden sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import (
    DataDirOption,
    DeviceOption,
    OverwriteOption,
    console,
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
    SeedOption,
    download_progress,
    train_config,
)

from recsys_rbm.io.limits import MAX_EPOCHS

DEFAULT_HIDDEN = (500, 100, 20)
RECIPE_EPOCHS = 200  # shown in --help: recsys_rbm.exercise.mnist.EXERCISE_TRAIN_CONFIG's (a test checks they agree)
RECIPE_LEARNING_RATE = 0.2


@app.command("mnist-figures", cls=RbmRecCommand)
@one_line_errors
def mnist_figures(
    hidden: Annotated[
        list[int] | None,
        typer.Option(
            "--hidden",
            min=1,
            callback=hidden_units_check(784),
            help="Hidden units of a model; repeat for several (fewer features).",
            show_default=" ".join(map(str, DEFAULT_HIDDEN)),
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            max=MAX_EPOCHS,
            help="Passes over the 50,000 training images (the learning rate decays to 0 over them).",
            show_default=str(RECIPE_EPOCHS),
        ),
    ] = None,
    cd_k: CdKOption = None,
    pcd: Annotated[
        bool | None,
        typer.Option(
            "--pcd/--no-pcd",
            help="Persistent chains (PCD-k, the default here) or chains restarted at the data (CD-k).",
            show_default="--pcd",
        ),
    ] = None,
    centring: Annotated[
        bool | None,
        typer.Option(
            "--centring/--no-centring",
            help=CentringOption.__metadata__[0].help,
            show_default="--centring",
        ),
    ] = None,
    batch_size: BatchSizeOption = None,
    learning_rate: Annotated[
        float | None,
        typer.Option(
            "--learning-rate", help="Step size on the batch-mean gradient.", show_default=str(RECIPE_LEARNING_RATE)
        ),
    ] = None,
    binarize: BinarizationOption = Binarization.stochastic,
    seed: SeedOption = None,
    device: DeviceOption = "auto",
    data_dir: DataDirOption = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNG figures.")] = Path("figures"),
    checkpoint_dir: Annotated[
        Path,
        typer.Option("--checkpoint-dir", help="Folder for the models, reused when their settings match."),
    ] = Path("runs"),
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain", help="Train again even when a matching checkpoint exists (replacing it needs --overwrite)."
        ),
    ] = False,
    overwrite: OverwriteOption = False,
    ais_runs: Annotated[
        int,
        typer.Option("--ais-runs", min=2, max=100_000, help="AIS runs for models with more than 25 hidden units."),
    ] = 100,
    ais_temperatures: Annotated[
        int,
        typer.Option(
            "--ais-temperatures", min=3, max=10_000_000, help="AIS intermediate distributions (S&M 2008's schedule)."
        ),
    ] = 14_500,
    sample_every: Annotated[
        int,
        typer.Option(
            "--sample-every", min=1, max=1_000_000, help="Gibbs steps between the rows of the samples figure."
        ),
    ] = 1_000,
    diversity_chains: Annotated[
        int,
        typer.Option("--diversity-chains", min=1, max=1_000_000, help="Gibbs chains of the sample-diversity measure."),
    ] = 1_000,
    diversity_steps: Annotated[
        int,
        typer.Option(
            "--diversity-steps", min=1, max=1_000_000, help="Gibbs steps before the diversity chains are labelled."
        ),
    ] = 1_000,
    config: ConfigOption = None,
) -> None:
    """Train (or reuse) an RBM per hidden size and draw the MNIST exercise's figures.

    For each size it writes mnist-filters-h<H>.png (100 hidden units' weight vectors as 28×28
    tiles) and mnist-samples-h<H>.png (20 Gibbs chains started from test digits, a row every
    --sample-every steps), then mnist-fewer-features.png (all sizes side by side),
    mnist-sample-diversity.png and mnist-training-curves.png. It prints the files, a table of
    each model's training time, test reconstruction error and test log-likelihood (exact up to 25
    hidden units, else estimated by annealed importance sampling (AIS) with ±3σ bounds), and a
    table of sample diversity: which digit each of --diversity-chains Gibbs chains, started from
    test digits, shows after --diversity-steps steps, as a logistic regression trained on the
    training labels sees it, and the largest share. Models are trained on the first 50,000
    training images (the last 10,000 measure the free-energy gap) as a centred RBM by PCD-1 with
    100 persistent chains, learning rate 0.2 decaying linearly to 0, weight decay 0.001, no
    momentum (a --config file replaces these settings; options override both), and saved in
    --checkpoint-dir; a later run with the same settings, seed, binarization and data reuses
    them. Existing figures, and checkpoints that cannot be reused, are replaced only with
    --overwrite; every output is checked before any work.

    Example: rbm-rec mnist-figures --hidden 500 --hidden 100 --hidden 20 --output docs/figures
    """
    from rich.table import Table

    from recsys_rbm.exercise.mnist import (
        EXERCISE_TRAIN_CONFIG,
        DiversitySettings,
        EvaluationSettings,
        ExerciseProgress,
        SampleSettings,
        check_figure_outputs,
        check_hidden_sizes,
        figure_paths,
        load_binarized_mnist,
        run_mnist_figures,
    )
    from recsys_rbm.io.outputs import check_distinct, probe_writable
    from recsys_rbm.runtime import resolve_device

    sizes = list(hidden) if hidden else list(DEFAULT_HIDDEN)
    check_hidden_sizes(sizes)
    settings = train_config(
        config,
        EXERCISE_TRAIN_CONFIG,
        epochs=epochs,
        cd_k=cd_k,
        persistent=pcd,
        centring=centring,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    evaluation = EvaluationSettings(ais_runs=ais_runs, ais_temperatures=ais_temperatures)
    samples = SampleSettings(every=sample_every)
    diversity = DiversitySettings(n_chains=diversity_chains, steps=diversity_steps)
    torch_device = resolve_device(device)
    check_distinct([("--output", path) for path in figure_paths(output, sizes)], {"--config": config})
    check_figure_outputs(output, sizes, overwrite)  # before any work: the figures, then the checkpoints' folder
    probe_writable(checkpoint_dir / "model.safetensors", "--checkpoint-dir")
    downloads, on_download = download_progress(console)
    with downloads:
        data = load_binarized_mnist(data_dir, binarize.value, settings.seed, progress=on_download)

    bar = progress_bar()

    class ShowProgress(ExerciseProgress):
        """One bar per model: the batches of the current epoch, with the last epoch's metrics."""

        def __init__(self) -> None:
            self.task = None
            self.epoch = 0

        def model_started(self, n_hidden: int, reused: bool) -> None:
            self.epoch = 0
            if reused:
                bar.console.print(f"{n_hidden} hidden units: reusing the matching checkpoint in {checkpoint_dir}")
            else:
                self.task = bar.add_task(f"{n_hidden} hidden, epoch 1/{settings.epochs}", total=None, note="")

        def batch_done(self, n_hidden: int, batch: int, n_batches: int) -> None:
            if batch == 1:
                self.epoch += 1
                description = f"{n_hidden} hidden, epoch {self.epoch}/{settings.epochs}"
                bar.update(self.task, description=description, total=n_batches, completed=0)
            bar.update(self.task, completed=batch)

        def epoch_done(self, n_hidden: int, metrics, epochs: int) -> None:
            measures = metrics.measures
            gap = measures.get("free_energy_gap")
            gap_text = "" if gap is None else f", free-energy gap {gap:+.2f}"
            bar.update(self.task, note=f"reconstruction error {measures['reconstruction_error']:.2f}{gap_text}")

        def evaluation_started(self, n_hidden: int, method: str) -> None:
            if method == "AIS":
                self.task = bar.add_task(
                    f"{n_hidden} hidden, AIS log Z", total=ais_temperatures, note=f"{ais_runs} runs"
                )

        def ais_step(self, n_hidden: int, done: int, total: int) -> None:
            bar.update(self.task, completed=done, total=total)

        def classifier_started(self) -> None:
            bar.console.print("Fitting the digit classifier of the sample-diversity measure to the training labels")

        def diversity_started(self, n_hidden: int, n_chains: int, steps: int) -> None:
            bar.console.print(f"{n_hidden} hidden units: {n_chains:,} Gibbs chains of {steps:,} steps for diversity")

    method = f"{'PCD' if settings.persistent else 'CD'}-{settings.cd_k}" + (", centred" if settings.centring else "")
    console.print(
        f"MNIST, {data.description}; {data.split_description}, {data.test_description}. "
        f"Hidden sizes {', '.join(map(str, sizes))}; "
        f"{settings.epochs} epochs of {method} on {torch_device}."
    )
    with bar:
        result = run_mnist_figures(
            data,
            sizes,
            settings,
            output,
            checkpoint_dir,
            torch_device,
            retrain=retrain,
            overwrite=overwrite,
            evaluation=evaluation,
            samples=samples,
            diversity=diversity,
            progress=ShowProgress(),
        )

    console.print("Wrote:")
    for path in result.figures:
        console.print(f"  {path}", highlight=False)
    for outcome in result.outcomes:
        model = outcome.model
        console.print(f"  {model.checkpoint} ({'reused' if model.reused else 'trained'})", highlight=False)
    table = Table(
        title=f"MNIST RBMs on the test set, {result.binarization}",
        caption=f"{result.split}. Reconstruction error: squared error per image. log p(v): nats per image: exact up to "
        f"{evaluation.exact_max_hidden} hidden units, else AIS ({ais_runs} runs, {ais_temperatures:,} "
        "intermediate distributions) with the ±3σ bounds of its log Z.",
    )
    table.add_column("hidden", justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("train s", justify="right")
    table.add_column("recon. error", justify="right")
    table.add_column("log p(v)", justify="right")
    table.add_column("±3σ bounds", justify="right", no_wrap=True)
    table.add_column("log Z", justify="left")
    for outcome in result.outcomes:
        report = outcome.report
        bounds = "" if report.log_likelihood_bounds is None else "{:.2f} … {:.2f}".format(*report.log_likelihood_bounds)
        table.add_row(
            str(report.n_hidden),
            str(report.epochs),
            f"{outcome.training_seconds:.0f}",
            f"{report.test_reconstruction_error:.2f}",
            f"{report.test_log_likelihood:.2f}",
            bounds,
            report.method,
        )
    console.print(table)
    console.print(diversity_table(result, diversity))


def diversity_table(result, settings):
    """Per model: how many chains end on each digit, the largest share, and how many digits are reached."""
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,  # no vertical rules: 13 columns fit 80 characters
        padding=(0, 1),
        collapse_padding=True,
        title=f"Sample diversity: {settings.n_chains:,} Gibbs chains from test digits, labelled after "
        f"{settings.steps:,} steps",
        caption=f"The label of p(v|h) by a logistic regression fitted to the training images and labels "
        f"(test accuracy {result.classifier_accuracy:.1%}). Largest: the share of the commonest digit.",
    )
    table.add_column("hidden", justify="right", no_wrap=True)
    for digit in range(10):
        table.add_column(str(digit), justify="right")
    table.add_column("largest", justify="right", no_wrap=True)
    table.add_column("digits", justify="right", no_wrap=True)
    for outcome in result.outcomes:
        report = outcome.diversity
        table.add_row(
            str(outcome.report.n_hidden),
            *map(str, report.counts),
            f"{report.largest_share:.1%}",
            str(report.n_classes),
        )
    return table
