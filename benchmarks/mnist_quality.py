"""Test log-likelihood and sample diversity on MNIST: the centred recipe, plain PCD and scikit-learn.

Run:  RBM_REC_DATA=../shared/data python benchmarks/mnist_quality.py [--epochs 200] [--plain-epochs 100]
      [--checkpoint-dir runs]   (reuse the 500-unit model `rbm-rec mnist-figures --checkpoint-dir runs` trained)

The data is the course exercise's (`rbm-rec mnist-figures`): MNIST stochastically binarized once with
the seed, the first 50,000 training images to train, the last 10,000 to validate, the 10,000 test
images to score. Every row reports the mean test log-likelihood in nats and its training time (the
epochs' own time, per-epoch monitors included):

- 500 hidden units, the exercise's recipe (a centred RBM, PCD-1, 100 chains, learning rate 0.2 decaying
  linearly to 0 per epoch, weight decay 1e-3, no momentum) for ``--epochs`` epochs;
- 500 hidden units, plain PCD-1 (learning rate 0.05 decaying linearly to 0, weight decay 1e-4, no
  momentum, one chain per case) for ``--plain-epochs`` epochs (``--plain-epochs 0`` leaves it out);
- 20 hidden units, plain PCD-1 and scikit-learn's BernoulliRBM (PCD-1), ``--small-epochs`` each: log Z
  exact (2^20 hidden states), by the same code, from each one's parameters.

log Z of the 500-unit models is an AIS estimate (Salakhutdinov & Murray's schedule, ``--ais-temperatures``
intermediate distributions, ``--ais-runs`` runs) with ±3σ bounds. Their sample diversity: ``--diversity-chains``
Gibbs chains from test digits, labelled after ``--diversity-steps`` steps by a logistic regression fitted
to the training labels (the exercise's measure), as counts per digit and the largest share.
The published anchor is −86.34 nats for 500 hidden units trained with CD-25 (S&M 2008, Table 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from recsys_rbm.evaluation import mean_log_likelihood
from recsys_rbm.exercise.diversity import DiversityReport
from recsys_rbm.exercise.mnist import (
    EXERCISE_TRAIN_CONFIG,
    DiversitySettings,
    EvaluationSettings,
    MnistData,
    ModelReport,
    TrainedModel,
    checkpoint_name,
    digit_classifier,
    evaluate_mnist_rbm,
    load_binarized_mnist,
    sample_diversity,
    train_mnist_rbm,
    train_or_load,
)
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.runtime import resolve_device
from recsys_rbm.train.config import TrainConfig

PUBLISHED_CD25_500 = -86.34

# Plain PCD-1: the exercise's recipe before centring (Tieleman 2008's linear decay, no momentum).
PLAIN_PCD = TrainConfig(
    cd_k=1, persistent=True, learning_rate=0.05, lr_schedule="linear", initial_momentum=0.0, final_momentum=0.0
)


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


def training_seconds(model: TrainedModel) -> float:
    return sum(record.seconds for record in model.history)


def large_row(
    label: str, model: TrainedModel, report: ModelReport, diversity: DiversityReport
) -> tuple[str, str, float, str, str]:
    low, high = report.log_likelihood_bounds
    reused = ", reused" if model.reused else ""
    return (
        label,
        f"{len(model.history)} epochs, {training_seconds(model):.0f} s{reused}",
        report.test_log_likelihood,
        f"AIS {report.ais_runs} runs × {report.ais_temperatures} β, [{low:.2f}, {high:.2f}], {report.seconds:.0f} s",
        f"{diversity.largest_share:.1%}, {diversity.n_classes} digits",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EXERCISE_TRAIN_CONFIG.epochs, help="epochs of the centred recipe")
    parser.add_argument("--plain-epochs", type=int, default=100, help="epochs of plain PCD-1, 500 hidden (0: skip)")
    parser.add_argument("--small-epochs", type=int, default=20, help="epochs of the 20-unit models (0: skip)")
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="reuse (or save) the centred model here, as mnist-figures"
    )
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--ais-temperatures", type=int, default=14_500)
    parser.add_argument("--diversity-chains", type=int, default=1_000)
    parser.add_argument("--diversity-steps", type=int, default=1_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = resolve_device(args.device)
    evaluation = EvaluationSettings(ais_runs=args.ais_runs, ais_temperatures=args.ais_temperatures)
    diversity = DiversitySettings(n_chains=args.diversity_chains, steps=args.diversity_steps)

    data: MnistData = load_binarized_mnist(binarization="stochastic", seed=args.seed)
    print(f"data: MNIST, {data.description}; {data.split_description}; device {device}")
    started = time.perf_counter()
    classifier, accuracy = digit_classifier(data)
    print(
        f"sample-diversity classifier: logistic regression on the {data.train.shape[0]:,} training images, "
        f"test accuracy {accuracy:.1%} ({time.perf_counter() - started:.0f} s)"
    )

    rows: list[tuple[str, str, float, str, str]] = []
    histograms: list[tuple[str, DiversityReport]] = []

    def large_model(label: str, config: TrainConfig, checkpoint_dir: Path | None) -> None:
        if checkpoint_dir is None:
            model = train_mnist_rbm(data, 500, config, device)
        else:
            path = checkpoint_dir / checkpoint_name(500, config, data.binarization)
            model = train_or_load(data, 500, config, path, device)
        print(f"{label}: {len(model.history)} epochs, {training_seconds(model):.0f} s{' (reused)' * model.reused}")
        report = evaluate_mnist_rbm(model.rbm, data, evaluation, epochs=len(model.history))
        shares = sample_diversity(model.rbm, data, classifier, diversity)
        rows.append(large_row(label, model, report, shares))
        histograms.append((label, shares))

    centred = dataclasses.replace(EXERCISE_TRAIN_CONFIG, epochs=args.epochs, seed=args.seed)
    large_model("ours, 500 hidden, centred PCD-1", centred, args.checkpoint_dir)
    if args.plain_epochs > 0:
        plain = dataclasses.replace(PLAIN_PCD, epochs=args.plain_epochs, seed=args.seed)
        large_model("ours, 500 hidden, PCD-1", plain, None)

    if args.small_epochs > 0:  # 20 hidden units: exact log Z
        small = train_mnist_rbm(data, 20, dataclasses.replace(PLAIN_PCD, epochs=args.small_epochs, seed=args.seed))
        ll20 = mean_log_likelihood(small.rbm.to("cpu", torch.float64), data.test.double())
        training = f"{args.small_epochs} epochs, {training_seconds(small):.0f} s"
        rows.append(("ours, 20 hidden, PCD-1", training, ll20, "exact", ""))
        started = time.perf_counter()
        sk20 = sklearn_rbm(data.train.numpy(), 20, args.small_epochs, 0.05, args.seed)
        if sk20 is not None:
            seconds = time.perf_counter() - started
            ll_sk = mean_log_likelihood(sk20, data.test.double())
            rows.append(
                ("scikit-learn, 20 hidden, PCD-1", f"{args.small_epochs} epochs, {seconds:.0f} s", ll_sk, "exact", "")
            )

    print(f"\n{'model':<34}{'training':<28}{'test LL (nats)':>15}  {'largest digit':<20}log Z by")
    for model, training, ll, how, spread in rows:
        print(f"{model:<34}{training:<28}{ll:>15.2f}  {spread:<20}{how}")
    print(
        f"\nsample diversity: {diversity.n_chains:,} chains from test digits, labelled after {diversity.steps:,} "
        "Gibbs steps; chains per digit 0..9"
    )
    for label, report in histograms:
        print(f"{label:<34}{' '.join(f'{count:>4}' for count in report.counts)}   largest {report.largest_share:.1%}")
    best = rows[0][2]
    print(
        f"\npublished anchor: {PUBLISHED_CD25_500} nats (500 hidden, CD-25, S&M 2008); "
        f"centred recipe {best - PUBLISHED_CD25_500:+.2f} nats from it"
    )


if __name__ == "__main__":
    main()
