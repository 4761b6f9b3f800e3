"""Figures of the MNIST exercise: filters, Gibbs samples, the fewer-features comparison, sample
diversity, curves.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, so no global
figure state and no display), with an Agg canvas; :func:`save_png` writes it atomically.
Images are drawn one array pixel to a few screen pixels, so the PNGs stay small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recsys_rbm.io.matplotlib_home import ensure_config_dir

ensure_config_dir()  # before matplotlib is imported: a read-only home must cost no warning

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image  # noqa: E402

from recsys_rbm.exercise.diversity import DiversityReport  # noqa: E402
from recsys_rbm.io.atomic import atomic_path  # noqa: E402
from recsys_rbm.rbm.model import RBM  # noqa: E402
from recsys_rbm.train.trainer import EpochRecord  # noqa: E402

TILE = (28, 28)
DPI = 100


def tile_images(
    images: np.ndarray | torch.Tensor,
    rows: int,
    columns: int,
    tile_shape: tuple[int, int] = TILE,
    spacing: int = 1,
    scale_each: bool = True,
    gap: float = 0.5,
    blank: float | None = None,
) -> np.ndarray:
    """Lay flat images ``(N, h*w)`` out row-major on a ``rows × columns`` grid; returns a 2-D array.

    With ``scale_each`` every tile is mapped to ``[0, 1]`` by its own minimum and maximum (the
    way weight vectors are shown); otherwise values are clipped to ``[0, 1]``. The lines between
    tiles have the value ``gap``; missing tiles (``N < rows * columns``) the value ``blank``
    (default: ``gap``).
    """
    array = images.detach().to("cpu", torch.float64).numpy() if isinstance(images, torch.Tensor) else images
    array = np.asarray(array, dtype=np.float64)
    height, width = tile_shape
    if array.ndim != 2 or array.shape[1] != height * width:
        raise ValueError(f"expected images of shape (N, {height * width}), got {array.shape}")
    if array.shape[0] > rows * columns:
        raise ValueError(f"{array.shape[0]} images do not fit a {rows}×{columns} grid")
    canvas = np.full((rows * (height + spacing) - spacing, columns * (width + spacing) - spacing), gap)
    # The unused area after the last image (rest of its row, then all rows below) is one block of ``blank``.
    fill = gap if blank is None else blank
    full_rows, partial = divmod(array.shape[0], columns)
    if partial:
        canvas[full_rows * (height + spacing) :, partial * (width + spacing) - spacing :] = fill
    first_empty_row = full_rows + (1 if partial else 0)
    canvas[max(0, first_empty_row * (height + spacing) - spacing) :, :] = fill
    for index, flat in enumerate(array):
        tile = flat.reshape(height, width)
        if scale_each:
            low, high = tile.min(), tile.max()
            tile = (tile - low) / (high - low) if high > low else np.zeros_like(tile)
        else:
            tile = np.clip(tile, 0.0, 1.0)
        r, c = divmod(index, columns)
        canvas[
            r * (height + spacing) : r * (height + spacing) + height,
            c * (width + spacing) : c * (width + spacing) + width,
        ] = tile
    return canvas


def grid_shape(n: int, max_columns: int = 10) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles, ``max_columns`` to a row (100 → 10×10, 20 → 2×10, 5 → 1×5)."""
    columns = max(1, min(n, max_columns))
    return math.ceil(n / columns), columns


def filter_images(rbm: RBM, n_filters: int = 100) -> torch.Tensor:
    """The weight vectors ``W[:, j]`` of the first ``min(n_filters, H)`` hidden units; ``(n, D)``."""
    return rbm.weights[:, : min(n_filters, rbm.n_hidden)].T.detach().to("cpu")


def _new_figure(width_px: float, height_px: float) -> Figure:
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _image_figure(image: np.ndarray, scale: float, margin: float = 20, title_space: float = 50) -> Figure:
    """A figure holding one image at ``scale`` screen pixels per array pixel, room above for a title."""
    width, height = image.shape[1] * scale + 2 * margin, image.shape[0] * scale + 2 * margin + title_space
    figure = _new_figure(width, height)
    axes = figure.add_axes(
        (margin / width, margin / height, 1 - 2 * margin / width, 1 - (2 * margin + title_space) / height)
    )
    _show(axes, image)
    return figure


def _show(axes, image: np.ndarray, title: str | None = None, fontsize: float = 9) -> None:
    axes.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=fontsize)


def filters_figure(rbm: RBM, binarization: str, n_filters: int = 100, scale: float = 2) -> Figure:
    """The first ``n_filters`` hidden units' weight vectors as 28×28 grey tiles (10 per row).

    Each tile is scaled to its own range, white for the largest weight. ``binarization``
    (e.g. "stochastic binarization (seed 0)") is stated in the title.
    """
    filters = filter_images(rbm, n_filters)
    rows, columns = grid_shape(filters.shape[0])
    image = tile_images(filters, rows, columns, gap=0.0, blank=1.0)
    figure = _image_figure(image, scale)
    figure.suptitle(
        f"Filters W[:, j] of {filters.shape[0]} of {rbm.n_hidden} hidden units\nMNIST, {binarization}", fontsize=9
    )
    return figure


def samples_image(snapshots: torch.Tensor) -> np.ndarray:
    """Snapshots ``(S, M, D)`` as one image: one row of ``M`` chains per snapshot."""
    n_rows, n_chains, _ = snapshots.shape
    return tile_images(snapshots.reshape(n_rows * n_chains, -1), n_rows, n_chains, scale_each=False)


def samples_figure(
    snapshots: torch.Tensor, steps_between: int, binarization: str, n_hidden: int, scale: float = 1
) -> Figure:
    """Gibbs chains shown as images: row 0 the test digits they start from, then one row every
    ``steps_between`` steps (as in the Theano tutorial's sample figure).

    ``snapshots`` is the ``(S + 1, M, 784)`` output of :func:`recsys_rbm.rbm.gibbs.sample_snapshots`
    (visible means ``p(v | h)``).
    """
    image = samples_image(snapshots)
    figure = _image_figure(image, scale)
    figure.suptitle(
        f"{snapshots.shape[1]} Gibbs chains of a {n_hidden}-hidden-unit RBM: top row the test digits they start\n"
        f"from, then p(v|h) every {steps_between:,} steps. MNIST, {binarization}",
        fontsize=9,
    )
    return figure


@dataclass
class ComparisonEntry:
    """One column of the fewer-features figure."""

    rbm: RBM
    snapshots: torch.Tensor  # (S + 1, M, 784) from sample_snapshots
    label: str = ""  # extra text under the size, e.g. a log-likelihood


def _pad(image: np.ndarray, height: int, width: int, value: float = 1.0) -> np.ndarray:
    """``image`` at the top centre of a ``height × width`` canvas of ``value``."""
    left = (width - image.shape[1]) // 2
    return np.pad(image, ((0, height - image.shape[0]), (left, width - image.shape[1] - left)), constant_values=value)


def comparison_figure(
    entries: Sequence[ComparisonEntry],
    steps_between: int,
    binarization: str,
    n_filters: int = 100,
    n_chains: int = 10,
    scale: float = 1,
) -> Figure:
    """Side by side, one column per model (e.g. 500, 100 and 20 hidden units): filters on top,
    the first ``n_chains`` Gibbs chains below, so the effect of fewer features shows at a glance."""
    if not entries:
        raise ValueError("comparison_figure needs at least one model")
    filter_grids = []
    for entry in entries:
        filters = filter_images(entry.rbm, n_filters)
        filter_grids.append(tile_images(filters, *grid_shape(filters.shape[0]), gap=0.0, blank=1.0))
    # Pad every filter grid with white to the largest one, so tiles are the same size in every column.
    height, width = max(g.shape[0] for g in filter_grids), max(g.shape[1] for g in filter_grids)
    filter_grids = [_pad(g, height, width) for g in filter_grids]
    sample_grids = [samples_image(entry.snapshots[:, :n_chains]) for entry in entries]
    column_px = max(max(g.shape[1] for g in filter_grids), max(g.shape[1] for g in sample_grids)) * scale
    top_px = max(g.shape[0] for g in filter_grids) * scale
    bottom_px = max(g.shape[0] for g in sample_grids) * scale
    figure = _new_figure(len(entries) * (column_px + 20) + 20, top_px + bottom_px + 150)
    grid = figure.add_gridspec(
        2, len(entries), height_ratios=[top_px, bottom_px], left=0.01, right=0.99, top=0.86, bottom=0.01, hspace=0.12
    )
    for column, (entry, filters, samples) in enumerate(zip(entries, filter_grids, sample_grids, strict=True)):
        title = f"{entry.rbm.n_hidden} hidden units" + (f"\n{entry.label}" if entry.label else "")
        _show(figure.add_subplot(grid[0, column]), filters, title)
        _show(figure.add_subplot(grid[1, column]), samples)
    figure.suptitle(
        f"Fewer features: filters (top) and Gibbs chains from test digits, a row every {steps_between:,} steps "
        f"(bottom)\nMNIST, {binarization}",
        fontsize=9,
    )
    return figure


def training_curves_figure(histories: Mapping[str, Sequence[EpochRecord]], binarization: str) -> Figure:
    """Per-epoch reconstruction error (training monitor subset solid, validation dashed) and
    free-energy gap (mean F(validation) − mean F(training subset)), one colour per model."""
    figure = _new_figure(900, 380)
    error_axes, gap_axes = figure.subplots(1, 2)
    for index, (label, history) in enumerate(histories.items()):
        colour = f"C{index % 10}"
        epochs = [m.epoch for m in history]
        error_axes.plot(
            epochs, [m.measures["reconstruction_error"] for m in history], color=colour, label=f"{label} train"
        )
        validation = [m.measures.get("validation_reconstruction_error") for m in history]
        if any(v is not None for v in validation):
            error_axes.plot(epochs, validation, color=colour, linestyle="--", label=f"{label} validation")
        gaps = [m.measures.get("free_energy_gap") for m in history]
        if any(g is not None for g in gaps):
            gap_axes.plot(epochs, gaps, color=colour, marker=".", label=label)
    error_axes.set(xlabel="epoch", ylabel="squared error per image", title="Reconstruction error")
    gap_axes.set(xlabel="epoch", ylabel="nats", title="Free-energy gap (validation − training)")
    gap_axes.axhline(0.0, color="grey", linewidth=0.5)
    for axes in (error_axes, gap_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.title.set_fontsize(10)
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
    figure.suptitle(f"Training curves, MNIST, {binarization}", fontsize=10)
    figure.tight_layout()
    return figure


def diversity_figure(reports: Mapping[str, DiversityReport], binarization: str) -> Figure:
    """The share of chains labelled with each digit, one group of bars per digit and a colour per model.

    ``reports`` maps a label (e.g. "500 hidden") to a :class:`~recsys_rbm.exercise.diversity.DiversityReport`.
    A dotted line marks 10% (every digit alike), a dashed one 25% (the most one digit should take).
    """
    if not reports:
        raise ValueError("diversity_figure needs at least one model")
    figure = _new_figure(900, 400)
    axes = figure.add_subplot()
    digits = np.arange(10)
    width = 0.8 / len(reports)
    for index, (label, report) in enumerate(reports.items()):
        offset = (index - (len(reports) - 1) / 2) * width
        text = f"{label}: largest {report.largest_share:.0%}, {report.n_classes} digits"
        axes.bar(digits + offset, 100 * np.asarray(report.shares), width, color=f"C{index % 10}", label=text)
    largest = max(report.largest_share for report in reports.values())
    axes.set_ylim(0, max(35.0, 130 * largest))  # room for the legend above the bars
    axes.axhline(10.0, color="grey", linewidth=0.8, linestyle=":")
    axes.axhline(25.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xticks(digits)
    axes.set(xlabel="digit the classifier sees", ylabel="% of chains")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3, axis="y")
    first = next(iter(reports.values()))
    figure.suptitle(
        f"Sample diversity: where {first.n_chains:,} Gibbs chains from test digits are after {first.steps:,} steps,\n"
        f"labelled by a logistic regression on the training labels. MNIST, {binarization}",
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def fit_title(figure: Figure, canvas: FigureCanvasAgg, margin_px: float = 20) -> None:
    """Widen ``figure`` until its title (``suptitle``) fits with a margin on each side.

    A figure is sized to its images, so one narrow column (``mnist-fewer-features.png`` of a single
    ``--hidden``) would cut a long title at both edges; the images keep their size and stay centred.
    """
    title = getattr(figure, "_suptitle", None)  # matplotlib keeps the suptitle's Text only here
    if title is None or not title.get_text():
        return
    needed = title.get_window_extent(canvas.get_renderer()).width + 2 * margin_px
    if needed > figure.bbox.width:
        figure.set_size_inches(needed / figure.dpi, figure.get_figheight())


def save_png(figure: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``figure`` as a PNG, atomically (a temporary file renamed into place).

    A figure with no colour (all the image figures) is stored as 8-bit grey-scale, a quarter of
    the size of matplotlib's RGBA.
    """
    path = Path(path)
    figure.set_dpi(dpi)
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    fit_title(figure, canvas)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (height, width, 4) uint8
    rgb = rgba[..., :3]
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    image = Image.fromarray(np.ascontiguousarray(rgb[..., 0]) if grey else np.ascontiguousarray(rgb))
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG", optimize=True)
    return path
