"""Sources of uniform random numbers for sampling.

Every sampler in the package draws through :func:`uniform`, which accepts either a
``torch.Generator`` or a :class:`UniformStream`. The stream exists for speed on the CPU: it draws
NumPy's PCG64 stream in large blocks (faster than torch's CPU generator, MT19937), continued on
every thread by the native kernels where they are built (the same numbers). On CUDA the stream
simply uses a CUDA ``torch.Generator`` (Philox, already fast). Both are seeded, so runs are
reproducible, with or without the native kernels.

:class:`RowShard` is the stream as one process of a data-parallel run sees it: every draw is made
for the whole global batch, in the order one process would make it, and this process keeps the
rows of its own cases. A draw names what its rows are, one per case (:data:`PER_CASE`: hidden
states, visible units, chains) or one per rated entry (:data:`PER_ENTRY`), never told apart by its
shape; so a case draws the same numbers whichever process holds it, and several processes train the
model one process would (see :mod:`recsys_rbm.train.distributed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from recsys_rbm.accel import kernels

BLOCK_SIZE = 1 << 22  # uniforms drawn at a time (16 MiB of float32)


#: What the rows of a draw are: one per case of the batch (hidden states, visible units, chains) …
PER_CASE = "case"
#: … or one per rated entry of the batch's cases (the recommender's levels).
PER_ENTRY = "entry"


class UniformStream:
    """A reproducible stream of U[0, 1) floats on ``device``, consumed in order."""

    def __init__(self, seed: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        if self.device.type == "cpu":
            self._numpy = np.random.Generator(np.random.PCG64(int(seed)))
            self._block = torch.empty(0, dtype=dtype)
            self._position = 0
        else:
            self._torch = torch.Generator(device=self.device)
            self._torch.manual_seed(int(seed))

    def uniform(self, shape: tuple[int, ...] | torch.Size, per: str = PER_CASE) -> torch.Tensor:
        """A fresh tensor of uniforms with ``shape`` (safe to modify in place); ``per`` matters to shards only."""
        if self.device.type != "cpu":
            return torch.rand(shape, generator=self._torch, device=self.device, dtype=self.dtype)
        count = math.prod(shape)  # math.prod: NumPy's prod of a tuple is slow for so small a job
        if count > BLOCK_SIZE:
            return self._draw(count).view(shape)
        if self._position + count > self._block.numel():
            self._block = self._draw(BLOCK_SIZE)
            self._position = 0
        values = self._block[self._position : self._position + count]
        self._position += count
        return values.view(shape)

    def _draw(self, count: int) -> torch.Tensor:
        """The stream's next ``count`` values (drawn on every thread by the native kernels, where built)."""
        dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        return kernels().uniforms(self._numpy.bit_generator, count, dtype).to(self.dtype)


@dataclass(frozen=True)
class RowAxis:
    """Rows ``offset : offset + rows`` of a global axis of ``total`` rows (a process's cases, or their entries)."""

    rows: int
    total: int
    offset: int


class RowShard:
    """A process's share of a :class:`UniformStream`: each draw is made for the global batch, this process's rows kept.

    A draw of local shape ``(rows, *rest)`` per case (per rated entry) takes ``(total, *rest)`` uniforms from the
    stream, exactly what one process holding the whole batch takes, and returns this process's rows of the cases
    axis (the entries axis). Every process makes the same sequence of draws, so the streams stay in step; each
    generates the whole batch's numbers (cheap next to the products).
    """

    def __init__(self, stream: UniformStream, cases: RowAxis, entries: RowAxis | None = None) -> None:
        self.stream, self.axes = stream, {PER_CASE: cases, PER_ENTRY: entries}
        self.device, self.dtype = stream.device, stream.dtype

    def uniform(self, shape: tuple[int, ...] | torch.Size, per: str = PER_CASE) -> torch.Tensor:
        shape = tuple(shape)
        axis = self.axes.get(per)
        if axis is None or shape[0] != axis.rows:
            raise RuntimeError(f"a draw of shape {shape} per {per} does not fit this process's share ({axis})")
        return self.stream.uniform((axis.total, *shape[1:]))[axis.offset : axis.offset + shape[0]]


RandomSource = torch.Generator | UniformStream | RowShard | None


def uniform(
    shape: tuple[int, ...] | torch.Size, like: torch.Tensor, source: RandomSource, per: str = PER_CASE
) -> torch.Tensor:
    """U[0, 1) floats with ``shape`` on ``like``'s device and dtype, drawn from ``source``; the rows are one per
    case (``per=PER_CASE``) or one per rated entry (``PER_ENTRY``)."""
    if isinstance(source, UniformStream | RowShard):
        values = source.uniform(shape, per)
        return values if values.dtype == like.dtype and values.device == like.device else values.to(like)
    return torch.rand(shape, generator=source, device=like.device, dtype=like.dtype)


def bernoulli(probability: torch.Tensor, source: RandomSource) -> torch.Tensor:
    """Binary states, 1 with the given probabilities: ``1[u < p]`` for ``u ~ U[0, 1)``."""
    return uniform(probability.shape, probability, source).lt_(probability)
