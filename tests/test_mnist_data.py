"""MNIST data: the IDX reader, verification, downloading from a mirror, binarization, the real files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from mnist_fakes import fake_mnist_contents, files_for, idx_bytes, install_fake_mnist, write_files

from recsys_rbm.data.mnist import MNIST, binarize, load_mnist, parse_idx, read_idx
from recsys_rbm.errors import ConfigError, DataError

REAL_DATA = Path(os.environ.get("RBM_REC_DATA", "")) / "mnist" if os.environ.get("RBM_REC_DATA") else None
HAVE_REAL_MNIST = REAL_DATA is not None and all((REAL_DATA / f.archive_name).is_file() for f in MNIST.all)


# --- the IDX format ---------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_gzip_and_raw(tmp_path: Path, compress: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a-idx3-ubyte"
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    result = read_idx(path)
    assert result.shape == (2, 3, 4) and result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)


def test_parse_idx_other_types_are_big_endian() -> None:
    array = np.array([[1, -2], [300, 70000]], dtype=">i4")
    np.testing.assert_array_equal(parse_idx(idx_bytes(array, 0x0C)), array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "only 2 bytes"),
        (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic number"),
        (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic number"),
        (b"\x00\x00\x08\x00", "bad magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "header needs 16 bytes"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "is truncated"),
        (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "trailing bytes"),
    ],
)
def test_malformed_idx_is_a_one_line_data_error(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message) as caught:
        parse_idx(data, "test.idx")
    assert "\n" not in str(caught.value) and "test.idx" in str(caught.value)


def test_truncated_gzip_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(1000, dtype=np.uint8)))[:-20])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


# --- loading and verification -----------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_load_generated_mnist(tmp_path: Path, compress: bool) -> None:
    contents = fake_mnist_contents(n_train=50, n_test=20)
    write_files(tmp_path / "mnist", contents, compress=compress)
    files = files_for(contents)
    train = load_mnist(tmp_path, "train", download=False, files=files)
    test = load_mnist(tmp_path, "test", download=False, files=files)
    assert train.images.shape == (50, 784) and train.images.dtype == torch.float32
    assert test.images.shape == (20, 784) and test.labels.shape == (20,) and test.labels.dtype == torch.int64
    assert float(train.images.min()) >= 0.0 and float(train.images.max()) <= 1.0
    assert train.md5 == {
        files.train_images.name: files.train_images.md5,
        files.train_labels.name: files.train_labels.md5,
    }
    raw = parse_idx(contents[MNIST.train_images.name])
    torch.testing.assert_close(train.images[3].reshape(28, 28), torch.from_numpy(raw[3].astype(np.float32) / 255))


def test_data_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = install_fake_mnist(tmp_path, n_train=12, n_test=6)
    monkeypatch.setenv("RBM_REC_DATA", str(tmp_path))
    assert len(load_mnist(split="test", download=False, files=files)) == 6


def test_md5_rejects_a_corrupted_real_shaped_file_and_keeps_it(tmp_path: Path) -> None:
    """A file shaped like the real test labels (10,000 byte labels) but with wrong content fails the
    MD5 check against the real table; the user's file is left alone, the message says what to do."""
    folder = tmp_path / "mnist"
    labels = np.random.default_rng(0).integers(0, 10, 10_000).astype(np.uint8)
    write_files(folder, {MNIST.test_labels.name: idx_bytes(labels)})
    write_files(folder, {MNIST.test_images.name: idx_bytes(np.zeros((10_000, 28, 28), dtype=np.uint8))})
    with pytest.raises(DataError, match="corrupt or not the original t10k-images-idx3-ubyte") as caught:
        load_mnist(tmp_path, "test", download=False)
    assert "delete it and run again" in str(caught.value) and "2646ac647ad5339dbf082846283269ea" in str(caught.value)
    assert (folder / "t10k-images-idx3-ubyte.gz").exists()


def test_one_flipped_byte_is_rejected(tmp_path: Path) -> None:
    contents = fake_mnist_contents(n_train=20, n_test=10)
    files = files_for(contents)
    damaged = bytearray(contents[MNIST.test_images.name])
    damaged[500] ^= 0xFF
    write_files(tmp_path / "mnist", {**contents, MNIST.test_images.name: bytes(damaged)})
    with pytest.raises(DataError, match="MD5 of its content"):
        load_mnist(tmp_path, "test", download=False, files=files)


def test_missing_files_offline_say_which_four_files_go_where(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_mnist(tmp_path, "train", download=False)
    message = str(caught.value)
    for f in MNIST.all:
        assert f.archive_name in message
    assert str((tmp_path / "mnist").resolve()) in message and "\n" not in message


def test_download_from_a_mirror_reports_progress(tmp_path: Path) -> None:
    contents = fake_mnist_contents(n_train=30, n_test=10)
    mirror = tmp_path / "mirror"
    write_files(mirror, contents)
    files = files_for(contents, mirrors=("file:///nonexistent/mirror/", mirror.as_uri() + "/"))
    calls: list[tuple[int, int | None, str]] = []
    data_dir = tmp_path / "data"
    train = load_mnist(
        data_dir, "train", progress=lambda done, total, name: calls.append((done, total, name)), files=files
    )
    assert len(train) == 30 and (data_dir / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert {name for _, _, name in calls} == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
    assert calls[-1][0] == (mirror / "train-labels-idx1-ubyte.gz").stat().st_size
    # the test split is still missing; it too is downloaded when asked for
    assert len(load_mnist(data_dir, "test", files=files)) == 10


def test_bad_download_leaves_nothing_behind(tmp_path: Path) -> None:
    contents = fake_mnist_contents(n_train=30, n_test=10)
    files = files_for(contents, mirrors=((tmp_path / "mirror").as_uri() + "/",))
    damaged = dict(contents)
    damaged[MNIST.train_images.name] = contents[MNIST.train_images.name][:-100]  # truncated on the mirror
    write_files(tmp_path / "mirror", damaged)
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match=r"could not download train-images-idx3-ubyte\.gz") as caught:
        load_mnist(data_dir, "train", files=files)
    assert "to work offline, put the four files" in str(caught.value)
    assert list((data_dir / "mnist").iterdir()) == []  # no partial file, no temporary file


def test_unknown_split_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown MNIST split"):
        load_mnist(tmp_path, "validation", download=False)


# --- binarization -----------------------------------------------------------------------------


def test_threshold_binarization_is_exact() -> None:
    images = torch.tensor([[0.0, 0.49, 0.5, 0.51, 1.0]])
    assert binarize(images, "threshold").tolist() == [[0.0, 0.0, 1.0, 1.0, 1.0]]


def test_stochastic_binarization_is_seeded_and_unbiased() -> None:
    intensities = torch.linspace(0, 1, 11).repeat(20_000, 1)  # (20000, 11)
    first = binarize(intensities, "stochastic", torch.Generator().manual_seed(3))
    again = binarize(intensities, "stochastic", torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and set(first.unique().tolist()) <= {0.0, 1.0}
    # mean of 20,000 Bernoulli(p) draws: standard error ≤ 0.0036, so 0.015 is > 4σ
    torch.testing.assert_close(first.mean(0), intensities[0], atol=0.015, rtol=0)


def test_unknown_binarization_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown binarization"):
        binarize(torch.zeros(1, 2), "otsu")


# --- the real files ---------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_REAL_MNIST, reason="real MNIST not found: set RBM_REC_DATA to a folder with mnist/*.gz")
def test_real_mnist_is_read_and_verified() -> None:
    train = load_mnist(REAL_DATA.parent, "train", download=False)
    test = load_mnist(REAL_DATA.parent, "test", download=False)
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert train.labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known first training labels
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]
    assert {**train.md5, **test.md5} == {f.name: f.md5 for f in MNIST.all}
    assert 0.12 < float(train.images.mean()) < 0.14  # MNIST's mean intensity is about 0.1307
