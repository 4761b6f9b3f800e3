"""``rbm-rec info``: what a checkpoint holds, read from its header alone (no tensors, no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from recsys_rbm_cli.app import app
from recsys_rbm_cli.command import RbmRecCommand
from recsys_rbm_cli.common import OverwriteOption, console, echo_json, one_line_errors
from recsys_rbm_cli.movielens_options import MODELS_HELP, model_path

INFO_ADVICE = "give its path: rbm-rec info PATH"  # info takes its model as an argument, not --model


@app.command("info", cls=RbmRecCommand)
@one_line_errors
def info(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="A checkpoint written by 'rbm-rec train'.",
            show_default=f"movielens-ml-100k.safetensors in the models folder ({MODELS_HELP})",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Draw the training curve (every measure per epoch) to this PNG file.", show_default=False
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checkpoint's metadata as JSON.")] = False,
) -> None:
    """Print what a model file holds: the data it was trained on, its size and settings, its validation and
    test figures, and its training curve.

    The whole file is verified first, as every command that uses a model does: its size against its
    header, every tensor's dtype and shape, and the checksum over the metadata and the tensors.

    Without MODEL it reads the default model, as every other command does: the one 'rbm-rec train
    movielens' writes with its defaults.

    Example: rbm-rec info runs/movielens-ml-100k.safetensors --plot curve.png
    """
    from safetensors.numpy import load_file

    from recsys_rbm.io.checkpoint_files import model_file, read_verified

    model = model_path(model)

    if plot is not None:
        from recsys_rbm.io.outputs import check_distinct, check_new_output

        check_distinct({"--plot": plot}, {"the model": model_file(model)})
        check_new_output(plot, overwrite, option="--plot", example="curve.png")
    _, metadata = read_verified(model, None, load_file, advice=INFO_ADVICE)
    curve = training_curve(metadata)
    if plot is not None:
        draw_curve(curve, plot, str(metadata.get("name") or metadata.get("kind")))
    if as_json:
        echo_json(metadata)
        return
    print_info(model, metadata, curve)
    if plot is not None:
        console.print(f"Drew the training curve to {plot}.", highlight=False)


def shown_number(value: Any, spec: str) -> str:
    """``value`` formatted by ``spec`` when it is a number, else ``?`` (an old or foreign model's odd field)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "?"
    return format(value, spec)


def untested(text: str) -> str:
    """``text`` without the "tested on the 10,000 test images" that MNIST models of earlier versions recorded: no model
    file holds a test figure of MNIST, so ``info`` must not claim one (``mnist-figures`` prints them)."""
    import re

    return re.sub(r",? tested on the [\d,]+ test images", "", text)


def training_curve(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per epoch: its number and measures (recommender ``history`` or MNIST ``metrics``)."""
    records = metadata.get("history") or metadata.get("metrics") or []
    if not isinstance(records, list):
        return []
    curve = []
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("measures"), dict):
            curve.append({"epoch": record.get("epoch"), "seconds": record.get("seconds"), **record["measures"]})
    return curve


def print_info(path: Path, metadata: dict[str, Any], curve: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()

    def row(name: str, value: Any) -> None:
        if value not in (None, "", {}, []):
            table.add_row(name, escape(str(value)))

    row("file", path)
    row("kind", metadata.get("kind"))
    row("model", metadata.get("name"))
    config = metadata.get("config") or metadata.get("train_config") or {}
    if metadata.get("kind") in ("recommender-rbm", "movielens-rbm"):
        row(
            "size",
            f"{shown_number(metadata.get('n_users'), ',')} users × {shown_number(metadata.get('n_items'), ',')} items, "
            f"{metadata.get('n_hidden')} hidden units, {metadata.get('mode')}-based, rating values "
            f"{', '.join(shown_number(v, 'g') for v in metadata.get('rating_values', []))}",
        )
        parts = metadata.get("profile_ratings")
        if isinstance(parts, dict) and all(isinstance(v, int) for v in parts.values()):
            from recsys_rbm_cli.train_recommender import describe_parts

            row("ratings", describe_parts(parts))
        else:  # written before profiles: the training ratings were all it knew
            row("ratings", f"trained on {shown_number(metadata.get('n_train_ratings', 0), ',')}")
    else:
        row("size", f"{metadata.get('n_hidden')} hidden units")
    dataset = metadata.get("dataset") or metadata.get("data") or {}
    if isinstance(dataset, dict):
        row("data", untested(", ".join(f"{k} {v}" for k, v in dataset.items() if not isinstance(v, (dict, list)))))
    split = metadata.get("split") or {}
    if isinstance(split, dict):
        row("split", split.get("description") or split.get("name"))
    row("settings", ", ".join(f"{k}={v}" for k, v in config.items()) if isinstance(config, dict) else config)
    row("seed", metadata.get("seed"))
    row("finished", {True: "yes", False: "no: training was interrupted"}.get(metadata.get("complete")))
    if metadata.get("best_epoch") is not None:
        row("best epoch", f"{metadata.get('best_epoch')} of {len(curve)} ({metadata.get('validation_measure', '')})")
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    measures = metrics.get("validation")
    if isinstance(measures, dict):
        row(
            "validation",
            "  ".join(
                f"{name.replace('_', ' ')} {value:.4f}"
                for name, value in measures.items()
                if isinstance(value, (int, float))
            ),
        )
    baseline = metrics.get("baseline")
    if isinstance(baseline, dict) and isinstance(baseline.get("value"), (int, float)):
        row(
            "baseline",
            f"{baseline.get('name')}: {str(baseline.get('measure')).replace('_', ' ')} {baseline['value']:.4f}",
        )
    if isinstance(metrics.get("test_rmse"), (int, float)):
        row("test RMSE / MAE", f"{metrics['test_rmse']:.4f} / {shown_number(metrics.get('test_mae'), '.4f')}")
    ranking = metrics.get("test_ranking")
    if isinstance(ranking, dict) and isinstance(ranking.get("ndcg"), (int, float)):
        row(
            "test ranking",
            f"NDCG@{ranking.get('k')} {ranking['ndcg']:.4f}, P {shown_number(ranking.get('precision'), '.4f')}, "
            f"coverage {shown_number(ranking.get('coverage'), '.4f')}",
        )
    seconds = [point.get("seconds") for point in curve]
    if curve and all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in seconds):
        from recsys_rbm_cli.train_recommender import describe_time

        best = metadata.get("best_epoch")
        row("training time", describe_time(seconds, best if isinstance(best, int) else None))  # as the summary said
    elif metadata.get("fit_seconds") is not None:
        row("training time", f"{shown_number(metadata['fit_seconds'], '.1f')} s")
    row("package version", metadata.get("package_version"))
    console.print(table, highlight=False)
    if curve:
        names = [key for key in curve[0] if key not in ("epoch", "seconds")]
        last = curve[-10:]
        history = Table(title=f"Training curve (last {len(last)} of {len(curve)} epochs)", title_justify="left")
        history.add_column("epoch", justify="right")
        for name in names:
            history.add_column(name.replace("_", " "), justify="right")
        history.add_column("s", justify="right")
        for point in last:
            cells = [str(point.get("epoch"))]
            cells += ["" if point.get(name) is None else shown_number(point[name], ".4f") for name in names]
            cells.append("" if point.get("seconds") is None else shown_number(point["seconds"], ".2f"))
            history.add_row(*cells)
        console.print(history)


def draw_curve(curve: list[dict[str, Any]], path: Path, title: str) -> None:
    """Every measure per epoch, one panel each, saved atomically as a PNG."""
    from recsys_rbm.io.matplotlib_home import ensure_config_dir

    ensure_config_dir()  # before matplotlib is imported: a read-only home must cost no warning
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recsys_rbm.errors import RecsysRBMError
    from recsys_rbm.io.atomic import atomic_path

    names = [key for key in (curve[0] if curve else {}) if key not in ("epoch", "seconds")]
    if not names:
        raise RecsysRBMError("the model records no training curve to draw (no per-epoch history); retrain it")
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    epochs = [point["epoch"] if isinstance(point["epoch"], int) else n for n, point in enumerate(curve, start=1)]
    for axis, name in zip(axes[0], names, strict=True):
        values = [point.get(name) for point in curve]
        numbers = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan") for v in values]
        axis.plot(epochs, numbers, marker=".")
        axis.set_title(name.replace("_", " "), fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
