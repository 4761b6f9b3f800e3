"""Test log-likelihood on MNIST: 20 hidden units (exact) and 500 hidden units (AIS), with scikit-learn.

Run:  RBM_REC_DATA=../shared/data python benchmarks/mnist_quality.py [--minutes 10] [--method pcd]

Trains on the 60,000 stochastically binarized training images (Salakhutdinov & Murray's protocol;
the binarization is drawn once with the seed) and reports the mean test log-likelihood in nats
over the 10,000 test images:

- 20 hidden units, ours, for ``--small-epochs`` epochs: log Z exact (2^20 hidden states);
- 20 hidden units, scikit-learn's BernoulliRBM (PCD-1) for the same epochs: log Z exact, by the
  same code, from its learned parameters;
- 500 hidden units, ours, trained for about ``--minutes`` of wall time: log Z by AIS with the
  stated temperatures and runs, with its ±3σ bounds.

The published anchor is −86.34 nats for 500 hidden units trained with CD-25 (S&M 2008, Table 1).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from recsys_rbm.config import TrainConfig
from recsys_rbm.data.mnist import binarize, describe_binarization, load_mnist
from recsys_rbm.evaluation import ais_log_partition, default_betas, mean_log_likelihood
from recsys_rbm.mnist_exercise import EXERCISE_TRAIN_CONFIG
from recsys_rbm.model import RBM
from recsys_rbm.runtime import make_generator, resolve_device
from recsys_rbm.training import DenseObjective, Trainer
from recsys_rbm.units import BernoulliUnits

PUBLISHED_CD25_500 = -86.34


def train(
    data: torch.Tensor, n_hidden: int, config: TrainConfig, device: torch.device, minutes: float | None = None
) -> tuple[RBM, int, float]:
    """Train for ``config.epochs`` epochs, or stop early once ``minutes`` of wall time are spent."""
    generator = make_generator(config.seed, device)
    rbm = RBM.initialise(BernoulliUnits(data.shape[1]), n_hidden, generator, visible_mean=data.mean(0), device=device)
    trainer = Trainer(DenseObjective(rbm, data, config), config, generator)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        trainer.train_epoch(config.learning_rate_at(epoch), config.momentum(epoch), config.cd_steps(epoch))
        elapsed = time.perf_counter() - started
        if minutes is not None and elapsed > minutes * 60:
            return rbm, epoch + 1, elapsed
    return rbm, config.epochs, time.perf_counter() - started


def sklearn_rbm(data: np.ndarray, n_hidden: int, epochs: int, learning_rate: float, seed: int) -> RBM | None:
    """scikit-learn's BernoulliRBM trained for ``epochs``, as one of our RBM objects (float64)."""
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError:
        print("scikit-learn is not installed: pip install scikit-learn")
        return None
    model = BernoulliRBM(
        n_components=n_hidden, batch_size=100, n_iter=epochs, learning_rate=learning_rate, random_state=seed
    )
    model.fit(data)
    return RBM(
        torch.from_numpy(model.components_.T.astype(np.float64)).contiguous(),
        torch.from_numpy(model.intercept_visible_.astype(np.float64)),
        torch.from_numpy(model.intercept_hidden_.astype(np.float64)),
        BernoulliUnits(data.shape[1]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-time budget for the 500-unit model")
    parser.add_argument("--method", choices=["pcd", "cd"], default="pcd", help="PCD-k or CD-k for the 500-unit model")
    parser.add_argument("--cd-k", type=int, default=1, help="Gibbs steps per update for the 500-unit model")
    parser.add_argument("--max-epochs", type=int, default=200, help="epochs of the 500-unit schedule (lr decays)")
    parser.add_argument("--small-epochs", type=int, default=20, help="epochs for the 20-unit models")
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--ais-temperatures", type=int, default=14_500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = resolve_device(args.device)

    data_generator = make_generator(args.seed)
    train_images = binarize(load_mnist(split="train").images, "stochastic", data_generator)
    test_images = binarize(load_mnist(split="test").images, "stochastic", data_generator)
    print(
        f"data: {describe_binarization('stochastic', args.seed)}; {len(train_images):,} train, "
        f"{len(test_images):,} test images; device {device}"
    )

    rows: list[tuple[str, str, float, str]] = []

    # 20 hidden units: exact log Z.
    # The course exercise's settings (PCD-1, learning rate 0.05 decaying linearly to 0, no
    # momentum): with momentum 0.9, PCD's chains stop mixing and AIS cannot bound log Z.
    small = replace(EXERCISE_TRAIN_CONFIG, epochs=args.small_epochs, seed=args.seed)
    rbm20, epochs20, seconds20 = train(train_images.to(device), 20, small, device)
    ll20 = mean_log_likelihood(rbm20.to("cpu", torch.float64), test_images.double())
    rows.append(("ours, 20 hidden, PCD-1", f"{epochs20} epochs, {seconds20:.0f} s", ll20, "exact"))
    print(f"ours 20 hidden: {ll20:.2f} nats (exact) after {epochs20} epochs")
    sk20 = sklearn_rbm(train_images.numpy().astype(np.float32), 20, args.small_epochs, 0.05, args.seed)
    if sk20 is not None:
        ll_sk = mean_log_likelihood(sk20, test_images.double())
        rows.append(("scikit-learn, 20 hidden, PCD-1", f"{args.small_epochs} epochs", ll_sk, "exact"))
        print(f"scikit-learn 20 hidden: {ll_sk:.2f} nats (exact)")

    # 500 hidden units: AIS.
    large = replace(
        EXERCISE_TRAIN_CONFIG,
        epochs=args.max_epochs,
        cd_k=args.cd_k,
        persistent=args.method == "pcd",
        seed=args.seed,
    )
    rbm500, epochs500, seconds500 = train(train_images.to(device), 500, large, device, args.minutes)
    started = time.perf_counter()
    betas = default_betas(args.ais_temperatures).to(device)
    ais = ais_log_partition(
        rbm500,
        make_generator(args.seed + 1, device),
        train_images.to(device).mean(0),
        n_runs=args.ais_runs,
        betas=betas,
    )
    ais_seconds = time.perf_counter() - started
    mean_minus_f = -float(rbm500.free_energy(test_images.to(device)).double().mean())
    ll500, low, high = mean_minus_f - ais.log_z, mean_minus_f - ais.upper, mean_minus_f - ais.lower
    label = f"ours, 500 hidden, {args.method.upper()}-{args.cd_k}"
    rows.append(
        (
            label,
            f"{epochs500} epochs, {seconds500:.0f} s",
            ll500,
            f"AIS {args.ais_runs} runs × {args.ais_temperatures} β, bounds [{low:.2f}, {high:.2f}], "
            f"{ais_seconds:.0f} s",
        )
    )

    print(f"\n{'model':<34}{'training':<22}{'test LL (nats)':>16}  log Z by")
    for model, training, ll, how in rows:
        print(f"{model:<34}{training:<22}{ll:>16.2f}  {how}")
    print(
        f"\npublished anchor: {PUBLISHED_CD25_500} nats (500 hidden, CD-25, S&M 2008); "
        f"gap {ll500 - PUBLISHED_CD25_500:+.2f} nats"
    )


if __name__ == "__main__":
    main()
