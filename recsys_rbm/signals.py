"""SIGTERM handled like Ctrl-C, so that every ``except KeyboardInterrupt`` / ``finally`` cleanup runs.

A process killed by SIGTERM (``kill``, a job scheduler, a closing terminal multiplexer) would
otherwise die at once, leaving temporary files and half-finished runs behind. With
:func:`install_termination_handler` SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``,
so it takes exactly the path of Ctrl-C; the command line exits 143 for it (128 + 15) and 130 for
Ctrl-C (128 + 2), as shells do.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

INTERRUPT_EXIT_CODE = 130  # 128 + SIGINT
TERMINATE_EXIT_CODE = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
    return TERMINATE_EXIT_CODE if isinstance(interrupt, Terminated) else INTERRUPT_EXIT_CODE


def _raise_terminated(number: int, frame: FrameType | None) -> None:
    raise Terminated


def install_termination_handler() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM while the block runs, then deliver the first one received.

    For short sections that should not be cut in half (a no-op outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    numbers = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda n, frame: received.append(n)) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        if received:
            raise Terminated if received[0] == signal.SIGTERM else KeyboardInterrupt
