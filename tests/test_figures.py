"""The figure functions on tiny models: layout, titles that state the binarization, valid PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recsys_rbm.exercise.diversity import DiversityReport
from recsys_rbm.exercise.figures import (
    ComparisonEntry,
    comparison_figure,
    diversity_figure,
    filters_figure,
    grid_shape,
    samples_figure,
    save_png,
    tile_images,
    training_curves_figure,
)
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.train.trainer import EpochRecord

BINARIZATION = "stochastic binarization (seed 7)"


def tiny_mnist_rbm(n_hidden: int, seed: int = 0) -> RBM:
    generator = torch.Generator().manual_seed(seed)
    return RBM.initialise(BernoulliUnits(784), n_hidden, generator, weight_std=0.1)


def snapshots(n_rows: int = 3, n_chains: int = 4) -> torch.Tensor:
    return torch.rand(n_rows + 1, n_chains, 784, generator=torch.Generator().manual_seed(1))


def history(n_epochs: int, offset: float = 0.0) -> list[EpochRecord]:
    def measures(e: int) -> dict[str, float]:
        return {
            "reconstruction_error": 30.0 - e + offset,
            "validation_reconstruction_error": 31.0 - e + offset,
            "free_energy_gap": 0.1 * e,
        }

    return [EpochRecord(e + 1, 0.05, 0.5, 1, measures(e), 1.0) for e in range(n_epochs)]


def png_mode(path: Path) -> str:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.load()
        return image.mode


def test_tile_images_scales_each_tile_and_fills_gaps() -> None:
    images = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0], [-1.0, 0.0, 0.0, 1.0]])
    canvas = tile_images(images, rows=2, columns=2, tile_shape=(2, 2), gap=0.25)
    assert canvas.shape == (5, 5)
    np.testing.assert_allclose(canvas[:2, :2], [[0, 1 / 3], [2 / 3, 1]])  # own range → [0, 1]
    np.testing.assert_allclose(canvas[:2, 3:], 0.0)  # a constant tile has no range: shown black
    np.testing.assert_allclose(canvas[3:, :2], [[0, 0.5], [0.5, 1]])
    np.testing.assert_allclose(canvas[3:, 3:], 0.25)  # the missing fourth tile
    np.testing.assert_allclose(canvas[2, :], 0.25)  # the line between rows
    blank = tile_images(images, rows=3, columns=2, tile_shape=(2, 2), gap=0.0, blank=1.0)
    np.testing.assert_allclose(blank[3:5, 2:], 1.0)  # the rest of the second row, with the line before it
    np.testing.assert_allclose(blank[5:, :], 1.0)  # the empty third row, with the line above it
    np.testing.assert_allclose(blank[:5, 2], [0.0, 0.0, 0.0, 1.0, 1.0])
    clipped = tile_images(images, 2, 2, (2, 2), scale_each=False)
    assert clipped.max() == 1.0 and clipped.min() == 0.0


def test_tile_images_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        tile_images(np.zeros((3, 5)), 2, 2, (2, 2))
    with pytest.raises(ValueError, match="do not fit"):
        tile_images(np.zeros((5, 4)), 2, 2, (2, 2))


@pytest.mark.parametrize(("n", "expected"), [(100, (10, 10)), (20, (2, 10)), (5, (1, 5)), (37, (4, 10))])
def test_grid_shape(n: int, expected: tuple[int, int]) -> None:
    assert grid_shape(n) == expected


def test_filters_figure_shows_at_most_100_units(tmp_path: Path) -> None:
    figure = filters_figure(tiny_mnist_rbm(120), BINARIZATION)
    assert "100 of 120 hidden units" in figure._suptitle.get_text()
    assert BINARIZATION in figure._suptitle.get_text()
    image = figure.axes[0].images[0].get_array()
    assert image.shape == (10 * 29 - 1, 10 * 29 - 1)
    path = save_png(figure, tmp_path / "filters.png")
    assert png_mode(path) == "L"  # grey-scale figures are stored with one channel
    assert [p.name for p in tmp_path.iterdir()] == ["filters.png"]  # no temporary file left


def test_samples_figure_has_a_row_per_snapshot(tmp_path: Path) -> None:
    figure = samples_figure(snapshots(3, 4), 1000, BINARIZATION, n_hidden=12)
    title = " ".join(figure._suptitle.get_text().split())
    assert BINARIZATION in title and "every 1,000 steps" in title and "4 Gibbs chains" in title
    assert figure.axes[0].images[0].get_array().shape == (4 * 29 - 1, 4 * 29 - 1)
    assert png_mode(save_png(figure, tmp_path / "samples.png")) == "L"


def test_comparison_figure_has_a_column_per_model(tmp_path: Path) -> None:
    entries = [ComparisonEntry(tiny_mnist_rbm(h, seed=h), snapshots(), f"label {h}") for h in (30, 5)]
    figure = comparison_figure(entries, 10, BINARIZATION)
    assert len(figure.axes) == 4 and BINARIZATION in figure._suptitle.get_text()
    filters_30, filters_5 = figure.axes[0].images[0].get_array(), figure.axes[2].images[0].get_array()
    assert filters_30.shape == filters_5.shape  # padded to the same size, so tiles match in size
    assert "5 hidden units" in figure.axes[2].get_title() and "label 5" in figure.axes[2].get_title()
    png_mode(save_png(figure, tmp_path / "comparison.png"))
    with pytest.raises(ValueError, match="at least one"):
        comparison_figure([], 10, BINARIZATION)


def test_the_title_of_a_one_column_comparison_fits_the_figure(tmp_path: Path) -> None:
    """With a single --hidden the figure is one narrow column; its long title must not be cut at the edges."""
    figure = comparison_figure([ComparisonEntry(tiny_mnist_rbm(5, seed=5), snapshots(), "label")], 10, BINARIZATION)
    save_png(figure, tmp_path / "comparison.png")
    title = figure._suptitle.get_window_extent(figure.canvas.get_renderer())
    assert title.x0 >= 0 and title.x1 <= figure.bbox.width, (title, figure.bbox)


def test_training_curves_figure(tmp_path: Path) -> None:
    figure = training_curves_figure({"500 hidden": history(4), "20 hidden": history(4, 5.0)}, BINARIZATION)
    assert BINARIZATION in figure._suptitle.get_text()
    error_axes, gap_axes = figure.axes
    assert len(error_axes.lines) == 4 and len(gap_axes.lines) == 3  # train+validation per model; gaps + zero line
    np.testing.assert_allclose(gap_axes.lines[0].get_ydata(), [0.0, 0.1, 0.2, 0.3])
    assert png_mode(save_png(figure, tmp_path / "curves.png")) == "RGB"


def test_diversity_figure_has_a_bar_per_digit_and_model(tmp_path: Path) -> None:
    reports = {
        "500 hidden": DiversityReport([100] * 10, steps=1000),
        "20 hidden": DiversityReport([0, 0, 0, 0, 0, 0, 0, 1000, 0, 0], steps=1000),
    }
    figure = diversity_figure(reports, BINARIZATION)
    title = " ".join(figure._suptitle.get_text().split())
    assert BINARIZATION in title and "1,000 Gibbs chains" in title and "after 1,000 steps" in title
    (axes,) = figure.axes
    assert len(axes.patches) == 20
    assert [round(bar.get_height()) for bar in axes.patches[10:]] == [0] * 7 + [100, 0, 0]
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["500 hidden: largest 10%, 10 digits", "20 hidden: largest 100%, 1 digits"]
    assert png_mode(save_png(figure, tmp_path / "diversity.png")) == "RGB"
    with pytest.raises(ValueError, match="at least one"):
        diversity_figure({}, BINARIZATION)
