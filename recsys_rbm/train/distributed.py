"""Data-parallel training on ``torch.distributed``: several processes train the model one process would.

Launch with ``torchrun --nproc-per-node N …`` (and ``--nnodes``/``--rdzv-*`` across machines);
:func:`process_group` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and joins the group: gloo on the CPU, nccl on CUDA, where each
process takes ``cuda:LOCAL_RANK``.

What each process does (:class:`ShardedObjective`, around any model's objective):

* **Batches.** Every process draws the same global batches, in the same order, from the run's
  seeded generator; of each global batch of ``n`` cases it takes the contiguous share
  ``[rank·n/N, (rank+1)·n/N)`` (:func:`shard_range`).
* **Sampling.** Draws go through :class:`~recsys_rbm.rbm.rng.RowShard`: each is made for the whole
  global batch, in one process's order, and the process keeps its rows. A case therefore draws the
  same numbers whichever process holds it, and ``N`` processes train, up to the order of floating
  point sums, exactly the model one process trains on the same global batches and seed.
* **Reduction.** The objective returns its shard's batch means; each process weights them by its
  share of the global batch (a model-specific :class:`Sharding` knows which statistic is a mean over
  what) and :meth:`Parallel.all_reduce` sums them, so every process applies the global batch mean
  and the one update, and the parameters stay identical everywhere.
* **Measurements** (validation RMSE, NDCG, reconstruction error) are made by rank 0 and broadcast,
  so early stopping and divergence checks decide alike everywhere. Only rank 0 should print and
  write checkpoints (the command line does so).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from recsys_rbm.errors import ConfigError, RecsysRBMError
from recsys_rbm.rbm.gibbs import chain_from_visible
from recsys_rbm.rbm.rng import RowAxis, RowShard, UniformStream
from recsys_rbm.runtime import resolve_device
from recsys_rbm.train.dense import DenseObjective, contrastive_gradient
from recsys_rbm.train.gradients import Gradient, SparseRows
from recsys_rbm.train.trainer import Objective


@dataclass(frozen=True)
class Parallel:
    """This process's place in the group: its rank among ``world_size`` processes, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str  # "gloo" (CPU) or "nccl" (CUDA)

    @property
    def is_writer(self) -> bool:
        """Rank 0 prints and writes checkpoints."""
        return self.rank == 0

    def all_reduce(self, gradient: Gradient) -> None:
        """Replace every entry of ``gradient`` by its sum over the processes.

        Dense entries are summed in one ``all_reduce``. Row-sparse entries (the recommender's rated
        rows, which differ between processes) stay row-sparse: their rows and values are gathered
        from every process and rows named more than once are summed, so the sum touches the union
        of the processes' rows, the rows one process would touch for the whole batch, and the
        trainer's lazy update sees what it sees in one process.
        """
        dense = [name for name, g in gradient.items() if not isinstance(g, SparseRows)]
        if dense:
            self._sum_dense(gradient, dense)
        sparse = [name for name, g in gradient.items() if isinstance(g, SparseRows)]
        if sparse:
            self._sum_rows(gradient, sparse)

    def _sum_dense(self, gradient: Gradient, names: list[str]) -> None:
        import torch.distributed as dist

        tensors = [gradient[name] for name in names]
        flat = torch.cat([t.reshape(-1) for t in tensors])  # one collective for all of them
        dist.all_reduce(flat)
        start = 0
        for name, tensor in zip(names, tensors, strict=True):
            gradient[name] = flat[start : start + tensor.numel()].view(tensor.shape)
            start += tensor.numel()

    def _sum_rows(self, gradient: Gradient, names: list[str]) -> None:
        """Gather every process's ``(rows, values)`` of each row-sparse entry and sum them (three collectives:
        the row counts, then the rows and the values of every entry, each padded to the longest, end to end)."""
        import torch.distributed as dist

        entries: list[SparseRows] = [gradient[name] for name in names]  # type: ignore[misc]
        counts = torch.tensor([g.rows.shape[0] for g in entries], dtype=torch.long, device=self.device)
        every_count = [torch.empty_like(counts) for _ in range(self.world_size)]
        dist.all_gather(every_count, counts)
        count_of = torch.stack(every_count).tolist()  # [rank][entry]
        longest = [max(by_rank[i] for by_rank in count_of) for i in range(len(entries))]
        widths = [math.prod(g.shape[1:]) for g in entries]  # values per row
        row_starts = [sum(longest[:i]) for i in range(len(entries) + 1)]
        value_starts = [sum(n * w for n, w in zip(longest[:i], widths, strict=False)) for i in range(len(entries) + 1)]
        rows = torch.zeros(row_starts[-1], dtype=torch.long, device=self.device)
        values = torch.zeros(value_starts[-1], dtype=entries[0].values.dtype, device=self.device)
        for i, g in enumerate(entries):
            rows[row_starts[i] : row_starts[i] + g.rows.shape[0]] = g.rows
            values[value_starts[i] : value_starts[i] + g.values.numel()] = g.values.reshape(-1)
        every_rows = [torch.empty_like(rows) for _ in range(self.world_size)]
        every_values = [torch.empty_like(values) for _ in range(self.world_size)]
        dist.all_gather(every_rows, rows)
        dist.all_gather(every_values, values)
        for i, (name, g) in enumerate(zip(names, entries, strict=True)):
            own_rows, own_values = [], []
            for rank, count in enumerate(by_rank[i] for by_rank in count_of):
                own_rows.append(every_rows[rank][row_starts[i] : row_starts[i] + count])
                chunk = every_values[rank][value_starts[i] : value_starts[i] + count * widths[i]]
                own_values.append(chunk.view(count, *g.shape[1:]))
            gradient[name] = SparseRows.accumulate(torch.cat(own_rows), torch.cat(own_values), g.shape)

    def broadcast_parameters(self, parameters: dict[str, torch.Tensor]) -> None:
        """Every process takes rank 0's parameters (they are seeded alike; this makes sure)."""
        import torch.distributed as dist

        for tensor in parameters.values():
            dist.broadcast(tensor, src=0)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object), on every process."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier(device_ids=[self.device.index] if self.backend == "nccl" else None)

    @contextlib.contextmanager
    def local_rank_zero_first(self) -> Iterator[None]:
        """Local rank 0 of each machine runs the block (e.g. a download) before the machine's other processes."""
        if self.local_rank != 0:
            self.barrier()
        yield
        if self.local_rank == 0:
            self.barrier()


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by torchrun (``WORLD_SIZE`` above 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def process_device(name: str, local_rank: int) -> torch.device:
    """``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` when there is CUDA (one GPU per process); else as given."""
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[Parallel | None]:
    """Join torchrun's process group for the block (gloo on CPU, nccl on CUDA); ``None`` when not launched by it.

    The group is left at the end of the block.
    """
    if not launched_by_torchrun():
        yield None
        return
    import torch.distributed as dist

    try:
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as error:
        raise ConfigError(f"torchrun's environment is incomplete ({error}); launch with torchrun") from None
    torch_device = process_device(device, local_rank)
    backend = "nccl" if torch_device.type == "cuda" else "gloo"
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    owned = not dist.is_initialized()
    if owned:
        try:
            dist.init_process_group(backend, rank=rank, world_size=world_size)
        except (RuntimeError, ValueError) as error:
            detail = " ".join(str(error).split())[:200]
            raise RecsysRBMError(
                f"could not join the group of {world_size} processes ({detail}); check torchrun's --rdzv-endpoint "
                "(or MASTER_ADDR and MASTER_PORT) and that every node can reach it"
            ) from None
    try:
        yield Parallel(rank, world_size, local_rank, torch_device, backend)
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """This rank's contiguous share ``[start, stop)`` of ``n`` cases; shares differ in size by at most one."""
    return rank * n // world_size, (rank + 1) * n // world_size


class Sharding(Protocol):
    """How one model's objective computes its share of a global batch's gradient."""

    def check(self, objective: Any, parallel: Parallel) -> None:
        """Refuse (a one-line :class:`ConfigError`) settings whose gradient cannot be split exactly."""
        ...

    def gradient(self, objective: Any, batch: Any, steps: int, stream: UniformStream, parallel: Parallel) -> Gradient:
        """This rank's share of the global batch's gradient: the shares sum, over the ranks, to the global one."""
        ...


class ShardedObjective:
    """An :class:`~recsys_rbm.train.trainer.Objective` over global batches of which this process computes its share.

    Give the :class:`~recsys_rbm.train.trainer.Trainer` this objective and ``all_reduce=parallel.all_reduce``
    (:func:`data_parallel` does both).
    """

    def __init__(self, objective: Objective, parallel: Parallel, sharding: Sharding) -> None:
        sharding.check(objective, parallel)
        self.objective, self.parallel, self.sharding = objective, parallel, sharding
        self.decayed = objective.decayed
        self.validation_measure = objective.validation_measure
        self.validation_goal = objective.validation_goal

    def parameters(self) -> dict[str, torch.Tensor]:
        return self.objective.parameters()

    def start(self, generator: torch.Generator) -> None:
        self.parallel.broadcast_parameters(self.objective.parameters())
        self.objective.start(generator)

    def batches(self, generator: torch.Generator) -> Iterable[Any]:
        return self.objective.batches(generator)  # the global batches: the same on every process

    def rows_read(self, batch: Any) -> dict[str, torch.Tensor]:
        """The global batch's rows: the all-reduced gradient updates the rows of every process's share."""
        return self.objective.rows_read(batch)

    def gradient(self, batch: Any, steps: int, random: Any) -> Gradient:
        if not isinstance(random, UniformStream):
            raise TypeError("data-parallel training draws from the trainer's UniformStream")
        return self.sharding.gradient(self.objective, batch, steps, random, self.parallel)

    def measure(self) -> dict[str, float | None]:
        """Rank 0 measures; every process gets its numbers (so early stopping decides alike)."""
        return self.parallel.broadcast(self.objective.measure() if self.parallel.is_writer else None)

    def divergence(self, measures: dict[str, float | None]) -> str | None:
        return self.objective.divergence(measures)

    def __getattr__(self, name: str) -> Any:
        """Anything else is the wrapped objective's (e.g. ``state_dict``: this process's persistent chains)."""
        if name == "objective":  # not set yet (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.objective, name)


def data_parallel(objective: Objective, parallel: Parallel, sharding: Sharding) -> tuple[ShardedObjective, Any]:
    """The objective and the ``all_reduce`` to give the trainer for data-parallel training."""
    return ShardedObjective(objective, parallel, sharding), parallel.all_reduce


def scaled(gradient: Gradient, factor: float) -> Gradient:
    """Every entry times ``factor``."""
    return {
        name: g.with_values(g.values * factor) if isinstance(g, SparseRows) else g * factor
        for name, g in gradient.items()
    }


def added(gradient: Gradient, other: Gradient, factor: float) -> Gradient:
    """``gradient + factor · other`` (dense entries; ``other`` is dense)."""
    return {
        name: (g.dense() if isinstance(g, SparseRows) else g) + factor * other[name] for name, g in gradient.items()
    }


# --- the dense core: RBMs on images ---------------------------------------------------------------
class DenseSharding:
    """:class:`~recsys_rbm.train.dense.DenseObjective` over several processes.

    CD-k: each process takes its share of the batch's rows; every draw is over those rows; its
    batch means are weighted by ``n_r / n``.

    PCD-k: the ``C`` persistent chains are split once, ``C_r`` to each process, which starts them
    as one process would (rows ``arange(C) mod n`` of the first batch) and advances only its own:
    together they are the one process's ``C`` chains, draw for draw. The gradient's data term is a
    mean over the batch and its model term a mean over the chains, so a process's share is
    ``(n_r/n)·data_r − (C_r/C)·model_r = (C_r/C)·g_r + (n_r/n − C_r/C)·data_r``; the correction
    (one more product) is needed only when the two fractions differ, e.g. in a short last batch.

    A process whose share of a short batch is empty computes the batch's first case with weight 0,
    so that it makes the same draws as the others and the streams stay in step.
    """

    def __init__(self) -> None:
        self.chains: tuple[int, int, int] | None = None  # (C, first, stop): all chains, and this process's

    def check(self, objective: DenseObjective, parallel: Parallel) -> None:
        config = objective.config
        if config.sparsity_target > 0 and config.sparsity_cost > 0:
            raise ConfigError(
                "the sparsity penalty follows the whole batch's hidden activations, which one process of "
                f"{parallel.world_size} does not see; train it in one process, or turn the penalty off"
            )
        if config.centring:
            raise ConfigError(
                "a centred RBM's offsets follow the whole batch's means, which one process of "
                f"{parallel.world_size} does not see; train it in one process, or turn centring off"
            )
        if config.persistent and 0 < config.n_chains < parallel.world_size:
            raise ConfigError(
                f"PCD over {parallel.world_size} processes needs at least one chain each; n_chains is {config.n_chains}"
            )

    def gradient(
        self, objective: DenseObjective, batch: torch.Tensor, steps: int, stream: UniformStream, parallel: Parallel
    ) -> Gradient:
        n = batch.shape[0]
        first, stop = shard_range(n, parallel.rank, parallel.world_size)
        share = (stop - first) / n
        local = batch[first:stop] if stop > first else batch[:1]
        if not objective.config.persistent:
            rows = RowShard(stream, RowAxis(local.shape[0], n, first))
            return scaled(objective.gradient(local, steps, rows), share)
        total, chain_first, chain_stop = self._start_chains(objective, batch, stream, parallel)
        chains = RowShard(stream, RowAxis(chain_stop - chain_first, total, chain_first))
        gradient = scaled(objective.gradient(local, steps, chains), (chain_stop - chain_first) / total)
        correction = share - (chain_stop - chain_first) / total
        if correction == 0:
            return gradient
        return added(gradient, data_statistics(objective, local), correction)

    def _start_chains(
        self, objective: DenseObjective, batch: torch.Tensor, stream: UniformStream, parallel: Parallel
    ) -> tuple[int, int, int]:
        """This process's share of the chains one process would start from the first batch."""
        if self.chains is None:
            total = objective.config.n_chains or batch.shape[0]
            if total < parallel.world_size:
                raise ConfigError(
                    f"PCD over {parallel.world_size} processes needs at least one chain each, but the first "
                    f"batch starts {total}; use larger batches or set n_chains"
                )
            first, stop = shard_range(total, parallel.rank, parallel.world_size)
            self.chains = (total, first, stop)
        total, first, stop = self.chains
        if objective.persistent_chain is None:
            rows = torch.arange(total, device=batch.device)[first:stop] % batch.shape[0]
            draws = RowShard(stream, RowAxis(stop - first, total, first))
            objective.persistent_chain = chain_from_visible(objective.rbm, batch[rows].clone(), draws)
        return total, first, stop


def data_statistics(objective: DenseObjective, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """The data term ``<v hᵀ>_data`` (and bias terms) of a batch: the contrastive gradient against a zero model term."""
    rbm = objective.rbm
    no_visible = torch.zeros(1, rbm.n_visible, dtype=batch.dtype, device=batch.device)
    no_hidden = torch.zeros(1, rbm.n_hidden, dtype=batch.dtype, device=batch.device)
    return contrastive_gradient(batch, rbm.hidden_probability(batch), no_visible, no_hidden)
