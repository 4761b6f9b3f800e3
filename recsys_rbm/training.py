"""Training by contrastive divergence (CD-k) and persistent contrastive divergence (PCD-k).

The learning rule, stated once: the log-likelihood gradient is the data statistics minus the model
statistics, ``∂ log p(v)/∂W = <v hᵀ>_data − <v hᵀ>_model``, where the model term is estimated at
the end of a k-step Gibbs chain (restarted at the data for CD, carried over for PCD) and ``h`` is
replaced by ``p(h|v)`` in both terms. Equivalently it is minus the gradient of the free-energy gap
``mean F(v_data) − mean F(v_chain)`` with the chain end held constant (tested both ways).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from recsys_rbm import functional as fn
from recsys_rbm.config import TrainConfig
from recsys_rbm.errors import TrainingDiverged
from recsys_rbm.evaluation.monitors import mean_free_energy, reconstruction_error
from recsys_rbm.gibbs import Chain, chain_from_visible, run_chain
from recsys_rbm.model import RBM
from recsys_rbm.rng import RandomSource, UniformStream


@dataclass
class Gradient:
    """An ascent direction for the log-likelihood, one tensor per parameter."""

    weights: torch.Tensor  # (D, H)
    visible_bias: torch.Tensor  # (D,)
    hidden_bias: torch.Tensor  # (H,)


def contrastive_gradient(
    data_visible: torch.Tensor,
    data_hidden_probability: torch.Tensor,
    model_visible: torch.Tensor,
    model_hidden_probability: torch.Tensor,
) -> Gradient:
    """``<v hᵀ>_data − <v hᵀ>_model`` and the matching bias terms (batch means of each phase)."""
    w_data, v_data, h_data = fn.sufficient_statistics(data_visible, data_hidden_probability)
    w_model, v_model, h_model = fn.sufficient_statistics(model_visible, model_hidden_probability)
    return Gradient(w_data - w_model, v_data - v_model, h_data - h_model)


def negative_phase(
    rbm: RBM,
    chain: Chain,
    k: int,
    generator: RandomSource,
    mask: torch.Tensor | None = None,
    sample_visible: bool = True,
    keep_hidden_sample: bool = True,
) -> Chain:
    """Advance the negative chain by ``k`` Gibbs steps: CD passes the data's chain, PCD its own.

    The final hidden states need drawing only when the chain persists (``keep_hidden_sample``).
    """
    return run_chain(rbm, chain, k, generator, mask, sample_visible, sample_last_hidden=keep_hidden_sample)


@dataclass
class EpochMetrics:
    """What one epoch of training measured (monitor subsets, not the whole data)."""

    epoch: int
    learning_rate: float
    momentum: float
    reconstruction_error: float  # mean squared error per case on the training monitor subset
    validation_reconstruction_error: float | None
    free_energy_gap: float | None  # mean F(validation) − mean F(training subset); grows with overfitting
    seconds: float

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


@dataclass
class Trainer:
    """Trains an :class:`RBM` in place on dense visible data already on the model's device.

    Mini-batches are slices of a tensor shuffled once per epoch on the device (no per-batch host
    copies). Updates use momentum, L2 weight decay on the weights, and an optional sparsity
    penalty. ``state`` (velocities, persistent chains, epoch) is kept so training can continue.
    """

    rbm: RBM
    config: TrainConfig
    generator: torch.Generator
    epoch: int = 0
    history: list[EpochMetrics] = field(default_factory=list)
    persistent_chain: Chain | None = None

    def __post_init__(self) -> None:
        # Sampling draws from a fast seeded stream derived from the run's generator.
        stream_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.generator.device))
        self.random = UniformStream(stream_seed, self.rbm.device, self.rbm.dtype)
        self._velocity = {name: torch.zeros_like(p) for name, p in self.rbm.parameters().items()}
        self._activation_estimate: torch.Tensor | None = None

    def fit(
        self,
        train: torch.Tensor,
        validation: torch.Tensor | None = None,
        on_epoch_end: Callable[[Trainer, EpochMetrics], None] | None = None,
        on_batch_end: Callable[[int, int], None] | None = None,
    ) -> list[EpochMetrics]:
        """Train until ``config.epochs`` epochs are done; returns the per-epoch metrics."""
        train = train.to(self.rbm.device, self.rbm.dtype)
        if validation is not None:
            validation = validation.to(self.rbm.device, self.rbm.dtype)
        n_monitor = min(self.config.monitor_size, train.shape[0])
        monitor_rows = torch.randperm(train.shape[0], generator=self._cpu_generator())[:n_monitor]
        train_monitor = train[monitor_rows.to(train.device)]
        validation_monitor = None if validation is None else validation[: self.config.monitor_size]
        while self.epoch < self.config.epochs:
            started = time.perf_counter()
            learning_rate = self.config.learning_rate_at(self.epoch)
            momentum = self.config.momentum(self.epoch)
            try:
                self.train_epoch(train, learning_rate, momentum, on_batch_end)
            except RuntimeError as error:  # a step size too large for the tensors' floating-point type
                if "overflow" not in str(error):
                    raise
                raise TrainingDiverged(
                    f"training diverged at epoch {self.epoch + 1}: the update overflowed; lower the learning rate"
                ) from None
            self._check_finite()
            metrics = self._measure(train_monitor, validation_monitor, learning_rate, momentum)
            metrics.seconds = time.perf_counter() - started
            self.history.append(metrics)
            self.epoch += 1
            if on_epoch_end is not None:
                on_epoch_end(self, metrics)
        return self.history

    def train_epoch(
        self,
        data: torch.Tensor,
        learning_rate: float,
        momentum: float,
        on_batch_end: Callable[[int, int], None] | None = None,
    ) -> None:
        """One pass over ``data`` in shuffled mini-batches."""
        order = torch.randperm(data.shape[0], generator=self._cpu_generator()).to(data.device)
        shuffled = data[order]
        batch_size = self.config.batch_size
        n_batches = math.ceil(data.shape[0] / batch_size)
        for index in range(n_batches):
            self.update(shuffled[index * batch_size : (index + 1) * batch_size], learning_rate, momentum)
            if on_batch_end is not None:
                on_batch_end(index + 1, n_batches)

    @torch.no_grad()
    def update(self, batch: torch.Tensor, learning_rate: float, momentum: float) -> None:
        """One parameter update from one mini-batch: CD-k when the chain restarts at the data,
        PCD-k when it continues from the persistent state."""
        rbm, config, random = self.rbm, self.config, self.random
        persistent = config.persistent
        # The data's hidden states are drawn only when the negative chain starts from them (CD).
        positive = chain_from_visible(rbm, batch, random, sample_hidden=not persistent)
        if persistent and self.persistent_chain is None:
            self.persistent_chain = self._initial_persistent_chain(batch)
        start = self.persistent_chain if persistent else positive
        negative = negative_phase(
            rbm, start, config.cd_k, random, sample_visible=config.sample_visible, keep_hidden_sample=persistent
        )
        if persistent:
            self.persistent_chain = negative
        self._apply(positive, negative, learning_rate, momentum)

    def _apply(self, positive: Chain, negative: Chain, learning_rate: float, momentum: float) -> None:
        """Momentum step on the contrastive gradient, with weight decay and the sparsity penalty."""
        rbm, config = self.rbm, self.config
        n_data, n_model = positive.visible.shape[0], negative.visible.shape[0]
        velocity = self._velocity
        # velocity_W ← m·velocity_W + ε(<v hᵀ>_data − <v hᵀ>_model − λW), written as two fused GEMMs.
        velocity["weights"].mul_(momentum)
        velocity["weights"].addmm_(positive.visible.T, positive.hidden_probability, alpha=learning_rate / n_data)
        velocity["weights"].addmm_(negative.visible.T, negative.hidden_probability, alpha=-learning_rate / n_model)
        if config.weight_decay:
            velocity["weights"].add_(rbm.weights, alpha=-learning_rate * config.weight_decay)
        hidden_data_mean = positive.hidden_probability.mean(0)
        visible_step = positive.visible.mean(0) - negative.visible.mean(0)
        hidden_step = hidden_data_mean - negative.hidden_probability.mean(0)
        if config.sparsity_target > 0 and config.sparsity_cost > 0:
            penalty = self._sparsity_penalty(hidden_data_mean)  # (H,)
            hidden_step = hidden_step - penalty
            velocity["weights"].addr_(positive.visible.mean(0), penalty, alpha=-learning_rate)
        velocity["visible_bias"].mul_(momentum).add_(visible_step, alpha=learning_rate)
        velocity["hidden_bias"].mul_(momentum).add_(hidden_step, alpha=learning_rate)
        rbm.weights.add_(velocity["weights"])
        rbm.visible_bias.add_(velocity["visible_bias"])
        rbm.hidden_bias.add_(velocity["hidden_bias"])

    def _sparsity_penalty(self, hidden_mean: torch.Tensor) -> torch.Tensor:
        """``cost · (q − target)`` with ``q`` a running mean of each hidden unit's activation."""
        config = self.config
        if self._activation_estimate is None:
            self._activation_estimate = hidden_mean.clone()
        else:
            self._activation_estimate.mul_(config.sparsity_decay).add_(hidden_mean, alpha=1 - config.sparsity_decay)
        return config.sparsity_cost * (self._activation_estimate - config.sparsity_target)

    def _initial_persistent_chain(self, batch: torch.Tensor) -> Chain:
        """PCD chains start at the first batch's data (rows repeated to ``n_chains`` if needed)."""
        n_chains = self.config.n_chains or batch.shape[0]
        rows = torch.arange(n_chains, device=batch.device) % batch.shape[0]
        return chain_from_visible(self.rbm, batch[rows].clone(), self.random)

    def _measure(
        self, train: torch.Tensor, validation: torch.Tensor | None, learning_rate: float, momentum: float
    ) -> EpochMetrics:
        with torch.no_grad():
            train_error = reconstruction_error(self.rbm, train)
            validation_error = gap = None
            if validation is not None and validation.shape[0] > 0:
                validation_error = reconstruction_error(self.rbm, validation)
                gap = mean_free_energy(self.rbm, validation) - mean_free_energy(self.rbm, train)
        return EpochMetrics(self.epoch, learning_rate, momentum, train_error, validation_error, gap, 0.0)

    def _check_finite(self) -> None:
        for name, tensor in self.rbm.parameters().items():
            if not bool(torch.isfinite(tensor).all()):
                raise TrainingDiverged(
                    f"training diverged at epoch {self.epoch + 1}: {name} became non-finite; "
                    "lower the learning rate (or the momentum) and train again"
                )

    def _cpu_generator(self) -> torch.Generator:
        """Shuffling uses a CPU generator derived from the run's generator, so it is device-independent."""
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.generator.device))
        generator = torch.Generator()
        generator.manual_seed(seed)
        return generator

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Optimiser state worth saving beside the weights to resume training exactly."""
        state = {f"velocity.{name}": v for name, v in self._velocity.items()}
        if self.persistent_chain is not None:
            state["chain.visible"] = self.persistent_chain.visible
            state["chain.hidden_probability"] = self.persistent_chain.hidden_probability
            state["chain.hidden"] = self.persistent_chain.hidden
        return state
