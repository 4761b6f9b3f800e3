"""Memory: estimates of what a run needs, what the machine has, and plain words for allocation failures.

A run that asks for more memory than exists should stop at once with the numbers, not after
loading data, and not with torch's ``RuntimeError: ... DefaultCPUAllocator: not enough memory``.
The estimates are lower bounds (parameters and their working copies, the largest activations);
:func:`check_memory` refuses only what certainly cannot fit.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from recsys_rbm.errors import ResourceError

FLOAT_BYTES = 4  # training runs in float32


def format_bytes(n: float) -> str:
    """``3.1 GB``, ``512 MB``: decimal units, two or three significant digits."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return f"{int(n)} bytes"


def available_memory() -> int | None:
    """Bytes of memory this process can still get: the lesser of the system's available memory and
    what its cgroup (container) limit leaves; ``None`` where neither can be read."""
    candidates: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    if not candidates:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            candidates.append(max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return min(candidates) if candidates else None


def check_memory(needed: int, what: str, advice: str) -> None:
    """Raise a one-line :class:`ResourceError` if ``needed`` bytes are more than is available."""
    available = available_memory()
    if available is not None and needed > available:
        raise ResourceError(
            f"{what} needs about {format_bytes(needed)} of memory, but only {format_bytes(available)} is available; "
            f"{advice}"
        )


def rbm_training_bytes(
    n_visible: int, n_hidden: int, batch_size: int, monitor_cases: int, n_cases: int | None = None
) -> int:
    """A lower bound on what training a Bernoulli RBM needs beyond its data.

    Five visible × hidden matrices (weights, their velocity, the positive and negative statistics,
    the update) and three hidden-layer activations of the largest batch (training or monitoring);
    no batch holds more than the ``n_cases`` there are (when known).
    """
    if n_cases is not None:
        batch_size, monitor_cases = min(batch_size, n_cases), min(monitor_cases, n_cases)
    return FLOAT_BYTES * n_hidden * (5 * n_visible + 3 * max(batch_size, monitor_cases))


def recommender_training_bytes(
    n_units: int, n_levels: int, n_cases: int, n_hidden: int, batch_size: int, interactions: bool = False
) -> int:
    """A lower bound on what training the recommender RBM needs beyond its data.

    Four copies (parameters, velocity, running average, update) of the weights (units·(K + 1) ×
    hidden: the rating rows and the interaction or conditional rows), every case's hidden state
    (for monitoring and the item-based fast path) and a batch of hidden activations; with the
    joint model's interaction block, four dense batch × units tensors (both phases, their
    probabilities and the stacked product). A batch never holds more than the ``n_cases`` there
    are, so a ``batch_size`` beyond them costs what one batch of all the cases costs.
    """
    batch_size = min(batch_size, n_cases)
    dense_block = 4 * batch_size * n_units if interactions else 0
    return FLOAT_BYTES * (n_hidden * (4 * n_units * (n_levels + 1) + 2 * n_cases + batch_size) + dense_block)


_TORCH_BYTES = re.compile(r"tried to allocate (\d+) bytes", re.IGNORECASE)
_SIZED = re.compile(r"(?:tried to allocate|unable to allocate)\s+([\d.]+)\s*([KMGTP]i?B)", re.IGNORECASE)


def allocation_failure(error: BaseException) -> int | None:
    """If ``error`` is a failed memory allocation (Python's ``MemoryError``, NumPy's, torch's CPU or
    CUDA allocator), the bytes it asked for (0 when unknown); else ``None``."""
    text = str(error)
    is_allocation = isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError)
        and any(
            mark in text for mark in ("DefaultCPUAllocator", "allocate memory", "not enough memory", "out of memory")
        )
    )
    if not is_allocation:
        return None
    match = _TORCH_BYTES.search(text)
    if match:
        return int(match.group(1))
    match = _SIZED.search(text)
    if match:
        unit = match.group(2).lower()
        power = "kmgtp".index(unit[0]) + 1
        return int(float(match.group(1)) * (1024 if "i" in unit else 1000) ** power)
    return 0


def check_recommender_memory(config: Any, n_users: int, n_items: int, n_levels: int) -> None:
    """Refuse, with the numbers, a recommender RBM (a ``RecommenderConfig``) whose training cannot fit."""
    item_based = config.mode == "item"  # each movie a case over the users' units, or the other way round
    n_units, n_cases = (n_users, n_items) if item_based else (n_items, n_users)
    joint = config.kind == "joint"
    check_memory(
        recommender_training_bytes(n_units, n_levels, n_cases, config.hidden, config.batch_size, joint),
        f"training the {config.mode}-based {config.kind} RBM with {config.hidden:,} hidden units "
        f"({n_units:,} units, {n_levels} rating levels)",
        "use fewer --hidden units or a smaller --batch-size",
    )
