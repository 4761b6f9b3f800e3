"""MNIST: the IDX file reader, verified loading (and downloading) of the four files, binarization.

The four files live in ``<data dir>/mnist/``, gzip-compressed (``train-images-idx3-ubyte.gz``)
or already decompressed (``train-images-idx3-ubyte``). Whatever the compression, the
*decompressed* bytes are checked against the well-known MD5s of the original files, so the
official archives and re-compressed copies both pass, and a corrupt or truncated file is
rejected with a one-line :class:`DataError`. A missing file is downloaded from a public mirror;
a download appears in the folder only once it is complete and verified.

Decoding is not cached: reading, checking and converting the 60,000 training images takes
about a second, far less than any training run.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recsys_rbm.data.download import ProgressCallback, download
from recsys_rbm.data.paths import resolve_data_dir
from recsys_rbm.errors import ConfigError, DataError

SUBFOLDER = "mnist"
IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
SPLITS = ("train", "test")
BINARIZATIONS = ("stochastic", "threshold")

# Mirrors of the original files (the official site often refuses scripted downloads).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


@dataclass(frozen=True)
class IdxFile:
    """One of the four files: its name (without ``.gz``) and the MD5 of its decompressed bytes."""

    name: str
    md5: str

    @property
    def archive_name(self) -> str:
        return self.name + ".gz"


@dataclass(frozen=True)
class MnistFiles:
    """What the loader expects: the two files of each split and where to download them.

    :data:`MNIST` is the real dataset. Tests substitute a table of their own (the MD5s of files
    they generate, a ``file://`` mirror) instead of switching verification off.
    """

    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    mirrors: tuple[str, ...] = MIRRORS

    def for_split(self, split: str) -> tuple[IdxFile, IdxFile]:
        if split == "train":
            return self.train_images, self.train_labels
        if split == "test":
            return self.test_images, self.test_labels
        raise ConfigError(f"unknown MNIST split {split!r}; use 'train' or 'test'")

    @property
    def all(self) -> tuple[IdxFile, ...]:
        return self.train_images, self.train_labels, self.test_images, self.test_labels


MNIST = MnistFiles(
    train_images=IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    train_labels=IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    test_images=IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    test_labels=IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
)

# IDX type codes (third byte of the magic number) and their big-endian numpy types.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an IDX file into an array of the shape its header declares.

    Layout: two zero bytes, a type code (0x08 = unsigned byte, …), the number of dimensions
    ``n``, then ``n`` big-endian uint32 sizes, then the values in C order. Anything else — a
    bad magic number, an unknown type, a length that disagrees with the header — is a
    :class:`DataError` naming ``source``.
    """
    if len(data) < 4:
        raise DataError(f"{source} is not an IDX file: only {len(data)} bytes")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] == 0:
        raise DataError(f"{source} is not an IDX file: bad magic number 0x{data[:4].hex()}")
    dtype, n_dims = _IDX_TYPES[data[2]], data[3]
    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise DataError(f"{source} is truncated: its header needs {header_size} bytes, the file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=n_dims, offset=4))
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "is truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{source} {problem}: header declares shape {shape} ({expected} bytes), file has {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)


def read_bytes(path: Path) -> bytes:
    """A file's content, decompressed when it is gzip (recognised by its first bytes, not its name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path} is a corrupt or truncated gzip file ({error})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw (no checksum: see :func:`load_mnist` for that)."""
    path = Path(path)
    return parse_idx(read_bytes(path), str(path))


def _verified_content(path: Path, expected: IdxFile) -> bytes:
    """The decompressed bytes of ``path`` if their MD5 is the expected one, else a :class:`DataError`."""
    content = read_bytes(path)
    digest = hashlib.md5(content).hexdigest()
    if digest != expected.md5:
        raise DataError(
            f"{path} is corrupt or not the original {expected.name} "
            f"(MD5 of its content is {digest}, expected {expected.md5})"
        )
    return content


def _check(path: Path, expected: IdxFile) -> None:
    _verified_content(path, expected)


def _local_file(folder: Path, file: IdxFile) -> Path | None:
    for name in (file.archive_name, file.name):
        if (folder / name).is_file():
            return folder / name
    return None


def _where_to_put(folder: Path, files: MnistFiles) -> str:
    names = ", ".join(f.archive_name for f in files.all)
    return f"put the four files {names} (gzip or decompressed) into {folder.resolve()}"


def mnist_file(
    file: IdxFile,
    data_dir: str | Path | None = None,
    *,
    download_missing: bool = True,
    progress: ProgressCallback | None = None,
    files: MnistFiles | None = None,
) -> tuple[Path, bytes]:
    """Find (or download) one MNIST file and return its path and verified, decompressed content."""
    files = files or MNIST
    folder = resolve_data_dir(data_dir) / SUBFOLDER
    path = _local_file(folder, file)
    if path is not None:
        try:
            return path, _verified_content(path, file)
        except DataError as error:
            raise DataError(f"{error}; delete it and run again to download a fresh copy") from None
    if not download_missing:
        raise DataError(
            f"MNIST file {file.archive_name} is missing and downloading is off; {_where_to_put(folder, files)}"
        )
    destination = folder / file.archive_name
    try:
        download(
            [mirror + file.archive_name for mirror in files.mirrors],
            destination,
            verify=lambda temporary: _check(temporary, file),
            progress=progress,
        )
    except DataError as error:
        raise DataError(f"MNIST is missing and {error}; to work offline, {_where_to_put(folder, files)}") from None
    return destination, _verified_content(destination, file)


@dataclass
class MnistSplit:
    """One split of MNIST, decoded."""

    images: torch.Tensor  # (N, 784) float32 intensities in [0, 1], row-major 28×28
    labels: torch.Tensor  # (N,) int64 digits 0..9
    split: str  # "train" (60,000 images) or "test" (10,000)
    md5: dict[str, str]  # decompressed-content MD5 of each file read: the data's fingerprint

    def __len__(self) -> int:
        return self.images.shape[0]


def load_mnist(
    data_dir: str | Path | None = None,
    split: str = "train",
    download: bool = True,
    progress: ProgressCallback | None = None,
    *,
    files: MnistFiles | None = None,
) -> MnistSplit:
    """Load one split of MNIST from ``<data_dir>/mnist``, downloading missing files when allowed.

    ``data_dir`` defaults to ``$RBM_REC_DATA``, else ``data/``. Both files of the split are
    verified (MD5 of the decompressed content) and decoded; ``progress(done, total, name)`` is
    called while downloading. Returns images as float32 in ``[0, 1]``, shape ``(N, 784)``.
    """
    files = files or MNIST
    image_file, label_file = files.for_split(split)
    image_path, image_bytes = mnist_file(
        image_file, data_dir, download_missing=download, progress=progress, files=files
    )
    label_path, label_bytes = mnist_file(
        label_file, data_dir, download_missing=download, progress=progress, files=files
    )
    images, labels = parse_idx(image_bytes, str(image_path)), parse_idx(label_bytes, str(label_path))
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or images.dtype != np.uint8:
        raise DataError(f"{image_path} does not hold 28×28 byte images (shape {images.shape}, type {images.dtype})")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{label_path} does not hold byte labels (shape {labels.shape}, type {labels.dtype})")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{label_path} holds a label {int(labels.max())}; digits are 0..9")
    pixels = torch.from_numpy(images.reshape(images.shape[0], N_PIXELS).copy())  # (N, 784) uint8
    return MnistSplit(
        images=pixels.to(torch.float32).div_(255.0),
        labels=torch.from_numpy(labels.astype(np.int64)),
        split=split,
        md5={image_file.name: image_file.md5, label_file.name: label_file.md5},
    )


def binarize(
    images: torch.Tensor, method: str = "stochastic", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Binary images from intensities in ``[0, 1]``; same shape and type as ``images``.

    ``"stochastic"``: each pixel is 1 with probability equal to its intensity (drawn once, from
    ``generator``), as in Salakhutdinov & Murray (2008). ``"threshold"``: 1 where the intensity
    is at least 0.5.
    """
    if method == "stochastic":
        return torch.bernoulli(images, generator=generator)
    if method == "threshold":
        return (images >= 0.5).to(images.dtype)
    raise ConfigError(f"unknown binarization {method!r}; use one of {', '.join(BINARIZATIONS)}")


def describe_binarization(method: str, seed: int | None = None) -> str:
    """The phrase every figure and table uses to state how the images were binarized."""
    if method == "stochastic":
        return "stochastic binarization" + (f" (seed {seed})" if seed is not None else "")
    if method == "threshold":
        return "binarized at threshold 0.5"
    raise ConfigError(f"unknown binarization {method!r}; use one of {', '.join(BINARIZATIONS)}")
