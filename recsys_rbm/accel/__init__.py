"""The accelerated path: one protocol for the row operations, a plain-torch reference, and native kernels.

The maths and the recommender call :func:`kernels` and get the fastest implementation that is built
(the native kernels, unless ``RBM_REC_NATIVE=0``); each falls back to the reference per call where it
does not apply (CUDA, float16, non-contiguous tensors). See ``docs/accelerated-path.md``.
"""

from __future__ import annotations

from recsys_rbm.accel.protocol import RowKernels
from recsys_rbm.accel.reference import ReferenceKernels

REFERENCE = ReferenceKernels()


def implementations() -> list[RowKernels]:
    """Every implementation that can run here, the reference first (for tests and benchmarks)."""
    from recsys_rbm.accel import native

    if not native.available():
        return [REFERENCE]
    from recsys_rbm.accel.native.backend import NATIVE

    return [REFERENCE, NATIVE]


def kernels() -> RowKernels:
    """The implementation to use now: the native kernels where they are built and switched on, else the reference."""
    return implementations()[-1]
