"""Seconds per training epoch over the 60,000 MNIST images: ours vs scikit-learn, and the GEMM floor.

Run:  RBM_REC_DATA=../shared/data python benchmarks/mnist_speed.py [--epochs 3] [--device cpu]

Prints, side by side in one run: our RBM (500 hidden, batch 100) with CD-1 and with PCD-1,
scikit-learn's BernoulliRBM (500 components, batch 100, one iteration, float32), their ratio, and
the floor set by this machine's measured fp32 matrix-multiply rate: an epoch's FLOPs (five
(100×784)·(784×500)-sized products per update: p(h|v_data), p(v|h), p(h|v_model) and the two
gradient terms) divided by the measured GEMM FLOP/s. Beside them, the same products alone at the
epoch's own shapes (three (100×784)·(784×500)-sized ones and the (784×200)·(200×500) gradient product, per
update, with nothing else): how near the floor a batch of 100 lets any implementation come on this
machine, so that what is left between it and ours is ours. Each figure is the median of ``--epochs``
epochs (the first, warm-up epoch is not counted).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from recsys_rbm.data.mnist import binarize, load_mnist
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.runtime import make_generator, resolve_device
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import DenseObjective
from recsys_rbm.train.trainer import Trainer

N_HIDDEN, BATCH = 500, 100


def measured_gemm_flops(device: torch.device, size: int = 2048, repeats: int = 20) -> float:
    """Best-of-5 fp32 FLOP/s of a square matrix product on ``device``."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best


def epoch_flops(n_cases: int, n_visible: int, n_hidden: int) -> float:
    """Five matrix products of 2·B·D·H FLOPs per update, n_cases/B updates: 2·5·N·D·H."""
    return 2 * 5 * n_cases * n_visible * n_hidden


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_products_alone(n_cases: int, n_visible: int, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch of the update's matrix products only, at its shapes: p(h|v), p(v|h), p(h|v') and the
    stacked gradient product, ``n_cases / BATCH`` times, on binary inputs."""
    generator = torch.Generator(device=device).manual_seed(0)
    visible = (torch.rand(BATCH, n_visible, generator=generator, device=device) < 0.5).float()
    hidden = (torch.rand(BATCH, N_HIDDEN, generator=generator, device=device) < 0.5).float()
    weights = 0.01 * torch.randn(n_visible, N_HIDDEN, generator=generator, device=device)
    visible_bias, hidden_bias = torch.zeros(n_visible, device=device), torch.zeros(N_HIDDEN, device=device)
    stacked_visible = torch.cat([visible, visible])
    signed_hidden = torch.rand(2 * BATCH, N_HIDDEN, generator=generator, device=device)
    times = []
    for _ in range(epochs + 1):
        _sync(device)
        started = time.perf_counter()
        for _ in range(n_cases // BATCH):
            torch.addmm(hidden_bias, visible, weights)
            torch.addmm(visible_bias, hidden, weights.T)
            torch.addmm(hidden_bias, visible, weights)
            stacked_visible.T @ signed_hidden
        _sync(device)
        times.append(time.perf_counter() - started)
    return times[1:]


def time_ours(data: torch.Tensor, persistent: bool, epochs: int, device: torch.device) -> list[float]:
    generator = make_generator(0, device)
    rbm = RBM.initialise(BernoulliUnits(data.shape[1]), N_HIDDEN, generator, visible_mean=data.mean(0), device=device)
    config = TrainConfig(epochs=epochs + 1, batch_size=BATCH, learning_rate=0.05, persistent=persistent)
    trainer = Trainer(DenseObjective(rbm, data, config), config, generator)
    times = []
    for epoch in range(epochs + 1):
        _sync(device)
        started = time.perf_counter()
        trainer.train_epoch(config.learning_rate_at(epoch), config.momentum(epoch), config.cd_steps(epoch))
        _sync(device)
        times.append(time.perf_counter() - started)
    return times[1:]


def time_sklearn(data: np.ndarray, epochs: int) -> list[float] | None:
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError:
        return None
    times = []
    model = BernoulliRBM(n_components=N_HIDDEN, batch_size=BATCH, n_iter=1, learning_rate=0.05, random_state=0)
    for _ in range(epochs + 1):
        started = time.perf_counter()
        model.fit(data)  # one iteration = one epoch of PCD-1 mini-batches (refits from scratch each call)
        times.append(time.perf_counter() - started)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration (after one warm-up)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)

    images = load_mnist(split="train").images
    binary = binarize(images, "stochastic", make_generator(0))
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; data {tuple(binary.shape)}")

    gemm = measured_gemm_flops(device)
    floor = epoch_flops(*binary.shape, N_HIDDEN) / gemm
    print(
        f"measured fp32 GEMM: {gemm / 1e9:.1f} GFLOP/s; epoch = {epoch_flops(*binary.shape, N_HIDDEN) / 1e12:.3f} "
        f"TFLOP; floor {floor:.2f} s/epoch"
    )

    on_device = binary.to(device)
    alone = time_products_alone(*binary.shape, args.epochs, device)
    rows = [("the products alone, at these shapes", statistics.median(alone))]
    for label, persistent in (("ours CD-1", False), ("ours PCD-1", True)):
        times = time_ours(on_device, persistent, args.epochs, device)
        rows.append((label, statistics.median(times)))
    sklearn_time = None
    if not args.skip_sklearn:
        times = time_sklearn(binary.numpy().astype(np.float32), args.epochs)
        if times is None:
            print("scikit-learn is not installed: pip install scikit-learn")
        else:
            sklearn_time = statistics.median(times)
            rows.append(("scikit-learn BernoulliRBM (PCD-1)", sklearn_time))

    products_alone = rows[0][1]
    print(f"\n{'configuration':<36}{'s/epoch':>9}{'× floor':>9}{'× products':>12}{'sklearn ÷ ours':>16}")
    for label, seconds in rows:
        ours = label.startswith("ours")
        over_products = f"{seconds / products_alone:>12.2f}" if ours else " " * 12
        ratio = f"{sklearn_time / seconds:>16.2f}" if sklearn_time and ours else ""
        print(f"{label:<36}{seconds:>9.2f}{seconds / floor:>9.2f}{over_products}{ratio}")
    print("\n× products: ours against the same matrix products alone, timed in this run")
    print("targets: ≥ 3× faster than scikit-learn; within 1.5× of the floor")


if __name__ == "__main__":
    main()
