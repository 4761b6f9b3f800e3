"""Asking the operating system for transparent huge pages for a large CPU tensor.

Random row reads and writes across a table of hundreds of megabytes (the recommender's weights
during an epoch) miss the processor's address-translation cache on nearly every access with 4 KiB
pages. Linux can back such memory with 2 MiB pages, but where transparent huge pages are set to
``madvise`` it does so only for ranges a process marks with ``madvise(MADV_HUGEPAGE)``. Marking is
only advice: elsewhere, or when the kernel refuses, nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14  # Linux <sys/mman.h>
#: Tensors smaller than this are not worth marking.
SMALLEST = 8 << 20

_libc: ctypes.CDLL | None = None


def prefer_huge_pages(tensor: torch.Tensor) -> bool:
    """Mark the whole 2 MiB pages inside ``tensor``'s memory for huge pages (before it is first written,
    for the best effect); returns whether the kernel took the advice. CPU tensors on Linux only."""
    size = tensor.numel() * tensor.element_size()
    if tensor.device.type != "cpu" or not sys.platform.startswith("linux") or size < SMALLEST:
        return False
    libc = _load_libc()
    if libc is None:
        return False
    start = -(-tensor.data_ptr() // HUGE_PAGE) * HUGE_PAGE
    end = (tensor.data_ptr() + size) // HUGE_PAGE * HUGE_PAGE
    if end <= start:
        return False
    return libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_HUGEPAGE) == 0


def _load_libc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            return None
    return _libc
