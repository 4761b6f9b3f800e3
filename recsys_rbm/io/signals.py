"""SIGTERM and SIGHUP handled like Ctrl-C, so that every ``except KeyboardInterrupt`` / ``finally`` cleanup runs.

A process killed by SIGTERM (``kill``, a job scheduler) or SIGHUP (the terminal or SSH session
closed: the commonest way a long training run dies) would otherwise die at once, leaving temporary
files, a lock and half-finished runs behind. With :func:`install_interrupt_handlers` SIGTERM raises
:class:`Terminated` and SIGHUP :class:`HungUp`, both ``KeyboardInterrupt``\\ s, so they take exactly
the path of Ctrl-C; the command line exits 143 (128 + 15), 129 (128 + 1) and 130 for Ctrl-C
(128 + 2), as shells do.

Only the first interruption is raised: once it is, the cleanup it starts (keeping the best
epoch, removing temporary files and the lock, printing one line) must not be cut short, so later
SIGINT, SIGTERM and SIGHUP are ignored until the process exits. A second Ctrl-C therefore never
prints a traceback from the middle of the cleanup or from Python's exit handlers.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

INTERRUPT_EXIT_CODE = 130  # 128 + SIGINT
TERMINATE_EXIT_CODE = 143  # 128 + SIGTERM
HANG_UP_EXIT_CODE = 129  # 128 + SIGHUP


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


class HungUp(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGHUP (its terminal or session closed)."""


def _interruptions() -> dict[int, type[KeyboardInterrupt]]:
    """The signals handled as interruptions, and what each raises (SIGHUP does not exist on Windows)."""
    found: dict[int, type[KeyboardInterrupt]] = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
    if hasattr(signal, "SIGHUP"):
        found[signal.SIGHUP] = HungUp
    return found


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    if isinstance(interrupt, Terminated):
        return TERMINATE_EXIT_CODE
    if isinstance(interrupt, HungUp):
        return HANG_UP_EXIT_CODE
    return INTERRUPT_EXIT_CODE


class _State:
    """Whether an interruption has been raised since the handlers were installed (then later ones are ignored)."""

    raised: bool = False


def _interrupt(number: int, frame: FrameType | None) -> None:
    """The handler of every interruption: raise the first, ignore the rest (the cleanup is under way)."""
    if _State.raised:
        return
    _State.raised = True
    raise _interruptions()[number]


def install_interrupt_handlers() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise their ``KeyboardInterrupt`` once in the main thread (a no-op
    elsewhere); see the module docstring. A signal ignored already (SIGHUP under ``nohup``) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    _State.raised = False
    for number in _interruptions():
        if signal.getsignal(number) is not signal.SIG_IGN:  # e.g. SIGHUP under nohup stays ignored
            signal.signal(number, _interrupt)


def ignore_interrupts() -> None:
    """From now on, SIGINT, SIGTERM and SIGHUP do nothing (for the last steps before exit; main thread only)."""
    if threading.current_thread() is threading.main_thread():
        _State.raised = True
        for number in _interruptions():
            signal.signal(number, signal.SIG_IGN)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back SIGINT, SIGTERM and SIGHUP while the block runs, then deliver the first one received.

    For short sections that should not be cut in half (a no-op outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    kinds = _interruptions()
    previous = {number: signal.signal(number, lambda n, frame: received.append(n)) for number in kinds}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        delivered = [number for number in received if previous[number] is not signal.SIG_IGN]
        if delivered and not _State.raised:
            if previous[delivered[0]] is _interrupt:
                _State.raised = True
            raise kinds[delivered[0]]
