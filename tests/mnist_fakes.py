"""Small generated MNIST-like IDX files for tests: same format and file names, a few hundred images."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from recsys_rbm.data.mnist import MNIST, IdxFile, MnistFiles


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX encoding of ``array``: magic (0, 0, type, ndim), big-endian uint32 sizes, values."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def fake_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28×28 uint8 images of ten easy classes (a bar whose row depends on the label) and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)  # faint background noise
    for image, label in zip(images, labels, strict=True):
        row = 3 + 2 * int(label)
        image[row : row + 3, 4:24] = rng.integers(160, 256, size=(3, 20))
        image[4:24, 12:15] = np.maximum(image[4:24, 12:15], 200 if label % 2 else 0)
    return images, labels


def fake_mnist_contents(n_train: int = 120, n_test: int = 30, seed: int = 0) -> dict[str, bytes]:
    """Decompressed content of the four files, keyed by their canonical names."""
    train_images, train_labels = fake_digits(n_train, seed)
    test_images, test_labels = fake_digits(n_test, seed + 1)
    return {
        MNIST.train_images.name: idx_bytes(train_images),
        MNIST.train_labels.name: idx_bytes(train_labels),
        MNIST.test_images.name: idx_bytes(test_images),
        MNIST.test_labels.name: idx_bytes(test_labels),
    }


def files_for(contents: dict[str, bytes], mirrors: tuple[str, ...] = ()) -> MnistFiles:
    """The table of expected MD5s (and mirrors) that describes ``contents``."""
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in contents.items()}
    return MnistFiles(*(IdxFile(f.name, md5[f.name]) for f in MNIST.all), mirrors=mirrors)


def write_files(folder: Path, contents: dict[str, bytes], compress: bool = True) -> None:
    """Write the files into ``folder`` as ``<name>.gz`` (or raw ``<name>``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (folder / name).write_bytes(data)


def install_fake_mnist(data_dir: Path, n_train: int = 120, n_test: int = 30, seed: int = 0) -> MnistFiles:
    """Generated MNIST under ``data_dir/mnist``; returns the table that verifies it."""
    contents = fake_mnist_contents(n_train, n_test, seed)
    write_files(data_dir / "mnist", contents)
    return files_for(contents)
