"""Seconds per training epoch in one process and in several (torchrun), for the recommender and MNIST.

Run the same command alone and under torchrun, e.g.:

    OMP_NUM_THREADS=1 python benchmarks/distributed_speed.py movielens --epochs 6
    OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 benchmarks/distributed_speed.py movielens --epochs 6
    OMP_NUM_THREADS=1 python benchmarks/distributed_speed.py mnist --epochs 2
    OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 benchmarks/distributed_speed.py mnist --epochs 2

``movielens``: the default joint model on ml-100k u1 (fixed epochs, no early stopping);
``mnist``: 500 hidden units, the exercise's PCD-1 without its centring (which data-parallel training
refuses), batch 100, on the 50,000 training images.
Rank 0 prints the median seconds of the update pass (``Trainer.train_epoch``: batches, gradients,
all-reduce, updates) and of the per-epoch measurements (rank 0 measures while the others wait),
and the wall time of the whole training call. Needs the data under ``$RBM_REC_DATA``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from recsys_rbm.runtime import resolve_device
from recsys_rbm.train.distributed import Parallel, process_group
from recsys_rbm.train.trainer import Trainer


def timed_epochs() -> list[float]:
    """Make ``Trainer.train_epoch`` record its seconds in the returned list (a benchmark's patch)."""
    seconds: list[float] = []
    train_epoch = Trainer.train_epoch

    def timed(self: Trainer, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        train_epoch(self, *args, **kwargs)
        seconds.append(time.perf_counter() - started)

    Trainer.train_epoch = timed  # type: ignore[method-assign]
    return seconds


def movielens(epochs: int, parallel: Parallel | None, device: str) -> Callable[[], Any]:
    from recsys_rbm.recommender.config import RecommenderConfig
    from recsys_rbm.recommender.model import RBMRecommender
    from recsys_rbm.recommender.splits import canonical_split

    split = canonical_split("u1")
    device = device if parallel is None else str(parallel.device)
    model = RBMRecommender(RecommenderConfig(epochs=epochs, patience=epochs, device=device))
    return lambda: model.fit(split.train, split.validation, parallel=parallel)


def mnist(epochs: int, parallel: Parallel | None, device: str) -> Callable[[], Any]:
    from dataclasses import replace

    from recsys_rbm.exercise.mnist import EXERCISE_TRAIN_CONFIG, load_binarized_mnist, train_mnist_rbm

    data = load_binarized_mnist(download=False)
    # Centring is refused under torchrun (its offsets follow whole-batch means), so both runs go without it.
    config = replace(EXERCISE_TRAIN_CONFIG, epochs=epochs, centring=False)
    on = resolve_device(device) if parallel is None else parallel.device
    return lambda: train_mnist_rbm(data, 500, config, on, parallel=parallel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["movielens", "mnist"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: one GPU per process, nccl under torchrun")
    args = parser.parse_args()
    with process_group(args.device) as parallel:
        train = (movielens if args.what == "movielens" else mnist)(args.epochs, parallel, args.device)
        seconds = timed_epochs()
        started = time.perf_counter()
        trained = train()
        wall = time.perf_counter() - started
        if parallel is None or parallel.is_writer:
            history = trained.history
            measuring = [record.seconds - s for record, s in zip(history, seconds, strict=True)]
            processes = 1 if parallel is None else parallel.world_size
            backend = "" if parallel is None else f" ({parallel.backend})"
            print(
                f"{args.what}: {processes} process(es){backend} × {torch.get_num_threads()} thread(s), "
                f"{len(history)} epochs; "
                f"update pass {statistics.median(seconds):.2f} s per epoch (median), "
                f"measurements {statistics.median(measuring):.2f} s per epoch; training call {wall:.1f} s"
            )


if __name__ == "__main__":
    main()
