"""Training commands started by torchrun: every process trains its share; rank 0 alone prints and writes.

``torchrun --nproc-per-node N -m recsys_rbm_cli train movielens …`` (or ``train mnist``,
``train ratings``) starts ``N`` copies of the command. Each joins the process group
(:func:`recsys_rbm.train.distributed.process_group`), reads the data (local rank 0 first, so that a
download happens once per machine), and trains on its share of every batch. Only rank 0 checks and locks the output,
prints, saves checkpoints and evaluates on the test set; the others print errors only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_rbm_cli.common import console

from recsys_rbm.errors import RecsysRBMError

if TYPE_CHECKING:
    from recsys_rbm.io.outputs import RunOutput
    from recsys_rbm.train.distributed import Parallel


@contextlib.contextmanager
def joined(device: str) -> Iterator[Parallel | None]:
    """The process group when started by torchrun with several processes (``None`` otherwise); others than
    rank 0 are silent within the block."""
    from recsys_rbm.train.distributed import process_group

    quiet = console.quiet
    with process_group(device) as parallel:
        console.quiet = quiet or (parallel is not None and not parallel.is_writer)
        try:
            yield parallel
        except RuntimeError as error:
            if parallel is None or not lost_a_peer(error):
                raise
            raise RecsysRBMError(
                f"process {parallel.rank} of {parallel.world_size} stopped because another process of the run "
                "stopped; its error is above"
            ) from None
        finally:
            console.quiet = quiet


def lost_a_peer(error: RuntimeError) -> bool:
    """Whether a collective failed because another process of the group went away."""
    import torch.distributed as dist

    text = str(error)
    return isinstance(error, dist.DistError) or "closed by peer" in text or "Connection reset" in text


@contextlib.contextmanager
def training_run(
    device: str, target: Path, overwrite: bool, default: bool = False
) -> Iterator[tuple[RunOutput | None, Parallel | None]]:
    """The run's output and the process group: ``(RunOutput, None)`` in one process; under torchrun the
    group, with the output on rank 0 and ``None`` on the others (which are silent within the block).

    ``default``: the program named ``target`` itself (no --output), so running the command again replaces
    it, keeping the old one beside it (see :class:`recsys_rbm.io.outputs.RunOutput`'s ``keep_previous``)."""
    from recsys_rbm.io.outputs import RunOutput

    with joined(device) as parallel:
        if parallel is not None and not parallel.is_writer:
            yield None, parallel
            return
        with RunOutput(target, overwrite=overwrite, keep_previous=default) as run:  # checked, locked before any work
            yield run, parallel


def kept_previous_line(run: RunOutput) -> str | None:
    """``kept the previous model as …`` after a commit that kept the old default model, else ``None``."""
    return f"kept the previous model as {run.previous}" if run.kept_previous else None


def local_rank_zero_first(parallel: Parallel | None) -> contextlib.AbstractContextManager[Any]:
    """Local rank 0 runs the block first (a download happens once per machine); a no-op in one process."""
    return contextlib.nullcontext() if parallel is None else parallel.local_rank_zero_first()


def describe(parallel: Parallel | None) -> str:
    """`` in 2 processes (gloo)``, or nothing in one process."""
    return "" if parallel is None else f" in {parallel.world_size} processes ({parallel.backend})"


def again_flag(run: RunOutput) -> str:
    """What running the command again needs to replace ``run``'s target: `` with --overwrite``, or nothing for the
    default model (replaced, the old one kept)."""
    return "" if run.keep_previous else " with --overwrite"
