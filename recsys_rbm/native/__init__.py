"""Fused CPU kernels for the recommender's sparse step, with the torch path as the fallback.

Two row kernels (``kernels.cpp``, built at install time when a C++ compiler is present) do in one
pass what the torch path does with a gather, a product and a scatter:

* :func:`block_products`: ``out[e, k] = table[base[e] + k] · vectors[cases[e]]``, the rated logits
  (each entry's K level rows against its case's hidden state);
* :func:`add_rows`: ``storage[rows[i], c] += coefs[c] · weights[i] · per_case[cases[i]]``, the lazy
  momentum's update straight from the per-case statistics, without an (entries, H) source.

Each returns ``False`` where it does not apply (not built, a CUDA or non-contiguous tensor, a dtype
other than float32/float64, or ``RBM_REC_NATIVE=0`` in the environment), and the caller takes its
torch path. The results agree with the torch path to rounding (tested).
"""

from __future__ import annotations

import os

import torch

try:
    from recsys_rbm.native import _kernels
except ImportError:  # built without a compiler: the torch path serves
    _kernels = None

#: Set to ``0`` to run the torch path even where the kernels are built (to compare the two).
ENVIRONMENT_SWITCH = "RBM_REC_NATIVE"

_FLOATS = (torch.float32, torch.float64)


def available() -> bool:
    """Whether the kernels are built and not switched off."""
    return _kernels is not None and os.environ.get(ENVIRONMENT_SWITCH, "1") != "0"


def _applies(*tensors: torch.Tensor) -> bool:
    return available() and all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def block_products(
    table: torch.Tensor, base: torch.Tensor, cases: torch.Tensor, vectors: torch.Tensor, block: int, out: torch.Tensor
) -> bool:
    """``out[e, k] = table[base[e] + k] · vectors[cases[e]]`` (``table`` (R, W), ``vectors`` (B, W), ``out``
    (E, block)); ``False`` (nothing written) where the kernel does not apply."""
    if not _applies(table, base, cases, vectors, out) or table.dtype not in _FLOATS:
        return False
    if not (vectors.dtype == out.dtype == table.dtype and base.dtype == cases.dtype == torch.int64):
        return False
    if vectors.shape[1] != table.shape[1] or out.shape != (base.shape[0], block) or cases.shape != base.shape:
        raise ValueError("block_products: the table, vectors, indices and output disagree in shape")
    _kernels.block_products(
        table.data_ptr(), table.shape[0], table.shape[1], base.data_ptr(), cases.data_ptr(), vectors.data_ptr(),
        vectors.shape[0], base.shape[0], block, out.data_ptr(), torch.get_num_threads(), table.dtype == torch.float64,
    )  # fmt: skip
    return True


def add_rows(
    storage: torch.Tensor,
    rows: torch.Tensor,
    cases: torch.Tensor,
    per_case: torch.Tensor,
    weights: torch.Tensor | None,
    coefs: list[float] | tuple[float, ...],
) -> bool:
    """``storage[rows[i], c] += coefs[c] · weights[i] · per_case[cases[i]]`` (``storage`` (N, C, W), ``per_case``
    (P, W), ``weights`` (R,) or None for ones); ``False`` (nothing written) where the kernel does not apply."""
    tensors = [storage, rows, cases, per_case] + ([] if weights is None else [weights])
    if not _applies(*tensors) or storage.dtype not in _FLOATS or storage.dim() != 3:
        return False
    same = per_case.dtype == storage.dtype and (weights is None or weights.dtype == storage.dtype)
    if not (same and rows.dtype == cases.dtype == torch.int64 and len(coefs) == storage.shape[1]):
        return False
    if (
        per_case.shape[1] != storage.shape[2]
        or cases.shape != rows.shape
        or (weights is not None and weights.shape != rows.shape)
    ):
        raise ValueError("add_rows: the storage, per-case rows, indices and weights disagree in shape")
    factors = torch.tensor(coefs, dtype=torch.float64)
    _kernels.add_rows(
        storage.data_ptr(), storage.shape[0], storage.shape[1], storage.shape[2], rows.data_ptr(), cases.data_ptr(),
        per_case.data_ptr(), per_case.shape[0], 0 if weights is None else weights.data_ptr(), factors.data_ptr(),
        rows.shape[0], torch.get_num_threads(), storage.dtype == torch.float64,
    )  # fmt: skip
    return True
