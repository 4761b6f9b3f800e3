"""Sample diversity: which digits a model's Gibbs chains visit, as labelled by a simple classifier.

A model whose distribution has collapsed onto one mode sends chains started from many different
digits to the same digit; a good one keeps them wandering among all ten. The measure: run many
chains from test digits for at least a thousand Gibbs steps, label each final state ``p(v | h)``
with a multinomial logistic regression trained on the MNIST training labels, and count.

The classifier is fitted here in torch (full-batch L-BFGS on the mean cross-entropy plus an L2
penalty on the weights; a few seconds for 50,000 images), so the library and the command line need
no scikit-learn; it is deterministic for a given set of images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recsys_rbm.rbm.gibbs import Conditionals, chain_from_visible, run_chain
from recsys_rbm.rbm.rng import RandomSource

N_CLASSES = 10


@dataclass
class DigitClassifier:
    """Multinomial logistic regression: ``p(y | x) = softmax(xᵀA + a)`` over the ten digits."""

    weights: torch.Tensor  # A (D, 10)
    bias: torch.Tensor  # a (10,)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The most probable digit of each image; ``(N, D) -> (N,)`` int64."""
        images = images.to(self.weights.device, self.weights.dtype)
        return torch.addmm(self.bias, images, self.weights).argmax(-1)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """The share of ``images`` (N, D) labelled ``labels`` (N,)."""
        return float((self.predict(images).cpu() == labels.cpu()).double().mean())


def fit_digit_classifier(
    images: torch.Tensor, labels: torch.Tensor, l2: float = 1e-4, iterations: int = 100
) -> DigitClassifier:
    """Fit :class:`DigitClassifier` to ``images`` (N, D) in [0, 1] and their digits ``labels`` (N,).

    Minimises ``mean cross-entropy + (l2 / 2)·‖A‖²`` by L-BFGS with a strong-Wolfe line search, from
    zeros (the problem is convex, so the start does not matter), in float32 on the images' device.
    """
    x = images.to(torch.float32)
    y = labels.to(x.device, torch.long)
    weights = torch.zeros(x.shape[1], N_CLASSES, device=x.device, requires_grad=True)
    bias = torch.zeros(N_CLASSES, device=x.device, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weights, bias], max_iter=iterations, history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-6
    )

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = F.cross_entropy(torch.addmm(bias, x, weights), y) + 0.5 * l2 * weights.square().sum()
        value.backward()
        return value

    optimiser.step(loss)
    return DigitClassifier(weights.detach(), bias.detach())


@dataclass
class DiversityReport:
    """How the final states of many Gibbs chains are labelled."""

    counts: list[int]  # chains labelled 0, 1, ..., 9
    steps: int  # Gibbs steps each chain ran

    @property
    def n_chains(self) -> int:
        return sum(self.counts)

    @property
    def shares(self) -> list[float]:
        return [count / max(1, self.n_chains) for count in self.counts]

    @property
    def largest_share(self) -> float:
        """The share of the most common label: 0.1 for a perfect spread, 1 for a collapsed model."""
        return max(self.shares)

    @property
    def n_classes(self) -> int:
        """How many of the ten digits at least one chain ends on."""
        return sum(1 for count in self.counts if count)

    def as_dict(self) -> dict[str, object]:
        return {"counts": self.counts, "steps": self.steps, "largest_share": self.largest_share}


@torch.no_grad()
def chain_diversity(
    model: Conditionals, start: torch.Tensor, classifier: DigitClassifier, steps: int, random: RandomSource
) -> DiversityReport:
    """Run one Gibbs chain from each row of ``start`` (M, D) for ``steps`` steps and label where they end.

    Each chain's final state is shown to the classifier as ``p(v | h)``, the visible means the samples
    figure draws, after ``steps`` full steps ``h ~ p(h | v)``, ``v ~ p(v | h)``.
    """
    if steps < 1:
        raise ValueError(f"the chains need at least one Gibbs step, got {steps}")
    chain = run_chain(model, chain_from_visible(model, start, random), steps - 1, random)
    labels = classifier.predict(model.visible_mean(chain.hidden)).cpu()
    return DiversityReport(torch.bincount(labels, minlength=N_CLASSES).tolist(), steps)
