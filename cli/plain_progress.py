"""Progress for output that is not a terminal (a file, a pipe, a log): a whole plain line now and then.

rich draws its progress bar by rewriting one line in place, which a file cannot do: piped, the bar
shows nothing until the end and then its last state, so a log of an eight-minute fit stays empty
for eight minutes. :class:`PlainProgress` takes the bar's place there (see
:func:`recsys_rbm_cli.common.progress_bar`): the same calls, nothing drawn, and every ``every``
seconds one line such as ``u1 · RBM joint: fit: 0/10 epoch 12: train RMSE 0.8534 (0:01:40)``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from rich.progress import Progress, Task, TaskID


class PlainProgress(Progress):
    """A rich :class:`~rich.progress.Progress` that draws nothing and prints a plain line at most every ``every``
    seconds (never, with ``every=None``), for the task just updated; the command prints its own closing lines."""

    def __init__(
        self, *columns: Any, field: str = "note", every: float | None = 10.0, prefix: str = "", **options: Any
    ) -> None:
        super().__init__(*columns, transient=True, **options)
        self.field, self.every, self.prefix = field, every, prefix
        self._last_line = time.monotonic()

    def start(self) -> None:
        """Nothing to draw: no live display (a stopped one would end the output with an empty line)."""

    def stop(self) -> None:
        """Nothing was drawn, so nothing is left to clear."""

    def update(self, task_id: TaskID, **changes: Any) -> None:
        super().update(task_id, **changes)
        self._maybe_line(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_line(task_id)

    def _maybe_line(self, task_id: TaskID) -> None:
        now = time.monotonic()
        if self.every is None or now - self._last_line < self.every:
            return
        self._last_line = now
        task = next((task for task in self.tasks if task.id == task_id), None)
        if task is not None:
            line = self.prefix + plain_line(task, self.field)
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)


def plain_line(task: Task, field: str = "note") -> str:
    """``description: done/total note (elapsed)``, the parts a task has."""
    done = f"{int(task.completed):,}" + (f"/{int(task.total):,}" if task.total is not None else "")
    note = str(task.fields.get(field) or "").strip()
    elapsed = timedelta(seconds=int(task.elapsed or 0))
    return f"{task.description}: {done}{' ' + note if note else ''} ({elapsed})"
