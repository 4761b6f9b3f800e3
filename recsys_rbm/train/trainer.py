"""Training by contrastive divergence (CD-k) and persistent contrastive divergence (PCD-k): one loop.

The learning rule, stated once: the log-likelihood gradient is the data statistics minus the model
statistics, ``∂ log p(v)/∂W = <v hᵀ>_data − <v hᵀ>_model``, where the model term is estimated at
the end of a k-step Gibbs chain (restarted at the data for CD, carried over for PCD) and ``h`` is
replaced by ``p(h|v)`` in both terms. Equivalently it is minus the gradient of the free-energy gap
``mean F(v_data) − mean F(v_chain)`` with the chain end held constant (tested both ways).

Every model trains through :class:`Trainer`. A model supplies an :class:`Objective`: its named
parameters, its mini-batches, and for a batch the *sufficient statistics* of that rule as an
explicit gradient tensor per parameter (dense products for images, :mod:`recsys_rbm.train.dense`;
sparse sums over rated entries for ratings, :mod:`recsys_rbm.recommender.objective`). The trainer
owns everything else: the learning-rate, momentum and CD-T schedules, weight decay, the momentum
step (:mod:`recsys_rbm.train.momentum`), parameter averaging, divergence checks, early stopping on
the objective's validation measure, and the hooks through which callers save checkpoints. Because
the update reads only the gradient tensors, they can be all-reduced across processes before it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from recsys_rbm.errors import TrainingDiverged
from recsys_rbm.rbm.rng import RandomSource, UniformStream
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.gradients import Gradient, SparseRows, dense_gradient
from recsys_rbm.train.momentum import LazyMomentum, momentum_step


class Objective(Protocol):
    """What a model supplies to the :class:`Trainer`."""

    #: Names of the parameters under L2 weight decay (weights, never biases).
    decayed: tuple[str, ...]
    #: The key of :meth:`measure` that early stopping watches, or ``None`` (no early stopping) …
    validation_measure: str | None
    #: … and whether lower (``"min"``, an error) or higher (``"max"``, e.g. NDCG) is better.
    validation_goal: str

    def parameters(self) -> dict[str, torch.Tensor]:
        """The parameters by name; the trainer updates these tensors in place."""
        ...

    def start(self, generator: torch.Generator) -> None:
        """Called once when training starts (e.g. to draw fixed monitoring subsets)."""
        ...

    def batches(self, generator: torch.Generator) -> Iterable[Any]:
        """One epoch's mini-batches, in an order drawn from ``generator``."""
        ...

    def rows_read(self, batch: Any) -> dict[str, torch.Tensor]:
        """The distinct rows of each parameter that :meth:`gradient` of ``batch`` reads or updates, for the
        parameters it updates row by row (:class:`SparseRows`); the trainer brings them up to date before
        the gradient reads them. A parameter left out is read whole."""
        ...

    def gradient(self, batch: Any, steps: int, random: RandomSource) -> Gradient:
        """``<·>_data − <·>_model`` of ``batch`` (batch means), the model term after ``steps`` Gibbs steps."""
        ...

    def measure(self) -> dict[str, float | None]:
        """What an epoch reports, measured with the current parameters."""
        ...

    def divergence(self, measures: dict[str, float | None]) -> str | None:
        """Why training has diverged (a one-line reason), judging by the epoch's measures, or ``None``."""
        ...


@dataclass
class EpochRecord:
    """What one epoch of training did and measured."""

    epoch: int  # 1-based
    learning_rate: float
    momentum: float
    cd_steps: int
    measures: dict[str, float | None]  # the objective's measurements (averaged parameters, when averaging)
    seconds: float  # the update pass and the measurements
    is_best: bool = False  # a new best of the validation measure

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        return cls(**data)


EpochCallback = Callable[["Trainer", EpochRecord], None]
BatchCallback = Callable[[int, int], None]


@dataclass
class Trainer:
    """Trains an :class:`Objective` in place by CD-k/PCD-k with momentum; see the module docstring.

    ``state`` survives between calls (velocities, epoch, history), so training can continue. With
    ``all_reduce`` set, every gradient passes through it before the update (data-parallel training).
    """

    objective: Objective
    config: TrainConfig
    generator: torch.Generator
    all_reduce: Callable[[Gradient], None] | None = None
    epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_measure: float | None = None
    updates: int = 0  # parameter updates so far
    best_update: int = 0  # ``updates`` at the best epoch

    def __post_init__(self) -> None:
        parameters = self.objective.parameters()
        first = next(iter(parameters.values()))
        # Sampling draws from a fast seeded stream derived from the run's generator.
        stream_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.generator.device))
        self.random = UniformStream(stream_seed, first.device, first.dtype)
        self._velocity = {name: torch.zeros_like(p) for name, p in parameters.items()}
        self._lazy = LazyMomentum(parameters, self._velocity)
        self._averaged: dict[str, torch.Tensor] | None = None
        self._best: dict[str, torch.Tensor] | None = None
        self._started = False

    # --- the loop ---------------------------------------------------------------------------------
    def fit(
        self,
        on_epoch_end: EpochCallback | None = None,
        on_batch_end: BatchCallback | None = None,
    ) -> list[EpochRecord]:
        """Train until ``config.epochs`` epochs are done or early stopping ends it; returns the history.

        With early stopping (the objective has a validation measure and ``config.patience > 0``),
        the parameters end at the best epoch's; ``on_epoch_end`` sees each record as it is made
        (``record.is_best`` marks a new best, the moment to save a checkpoint).
        """
        config, objective = self.config, self.objective
        if not self._started:
            objective.start(self.generator)
            self._started = True
        while self.epoch < config.epochs and not self._stalled():
            started = time.perf_counter()
            learning_rate = config.learning_rate_at(self.epoch)
            momentum = config.momentum(self.epoch)
            steps = config.cd_steps(self.epoch)
            self.train_epoch(learning_rate, momentum, steps, on_batch_end)
            self._check_parameters()
            self._average()
            with self._evaluated_parameters():
                measures = objective.measure()
            self.epoch += 1
            reason = objective.divergence(measures)
            if reason is not None:
                raise TrainingDiverged(f"training diverged at epoch {self.epoch}: {reason}")
            record = EpochRecord(
                self.epoch, learning_rate, momentum, steps, measures, 0.0, is_best=self._track_best(measures)
            )
            record.seconds = time.perf_counter() - started
            self.history.append(record)
            if on_epoch_end is not None:
                with self._evaluated_parameters():
                    on_epoch_end(self, record)
        self._finish()
        return self.history

    def train_epoch(
        self, learning_rate: float, momentum: float, steps: int, on_batch_end: BatchCallback | None = None
    ) -> None:
        """One pass over the objective's mini-batches."""
        batches = list(self.objective.batches(self.generator))
        self._lazy.start_epoch(len(batches), momentum, self._decays(learning_rate), self.objective.parameters())
        for index, batch in enumerate(batches):
            self.step(batch, learning_rate, momentum, steps)
            self.updates += 1
            if on_batch_end is not None:
                on_batch_end(index + 1, len(batches))
        self._lazy.finish()

    def _decays(self, learning_rate: float) -> dict[str, float]:
        """``ε·λ`` per parameter: the weight decay's share of each step (0 for biases)."""
        return {name: self._decay_share(name, learning_rate) for name in self.objective.parameters()}

    def _decay_share(self, name: str, learning_rate: float) -> float:
        """``ε·λ`` of parameter ``name`` (0 where it is not decayed)."""
        decay = self.config.weight_decay
        return learning_rate * decay if decay and name in self.objective.decayed else 0.0

    @torch.no_grad()
    def step(self, batch: Any, learning_rate: float, momentum: float, steps: int) -> Gradient:
        """One update from one mini-batch: ``v ← m·v + ε(g − λθ)``, ``θ ← θ + v``; returns the gradient ``g``.

        ``λ`` applies to the objective's decayed parameters only.
        """
        self._bring_up_to_date(batch)
        try:
            gradient = self.objective.gradient(batch, steps, self.random)
        except RuntimeError as error:  # a step size too large for the tensors' floating-point type
            if "overflow" not in str(error):
                raise
            raise TrainingDiverged(
                f"training diverged at epoch {self.epoch + 1}: the update overflowed; lower the learning rate"
            ) from None
        if self.all_reduce is not None:
            self.all_reduce(gradient)
        if not self._lazy.in_epoch:  # a step outside train_epoch: no epoch to be lazy within
            gradient = dense_gradient(gradient)
        for name, parameter in self.objective.parameters().items():
            velocity, g = self._velocity[name], gradient[name]
            if isinstance(g, SparseRows):
                self._lazy.update_rows(name, g, learning_rate)
                continue
            self._lazy.settle(name)  # a dense update needs every row current
            momentum_step(parameter, velocity, g, momentum, learning_rate, -self._decay_share(name, learning_rate))
        self._lazy.advance()
        return gradient

    def _bring_up_to_date(self, batch: Any) -> None:
        """Make current every row that the batch will read of the parameters that lazy momentum left behind."""
        if not self._lazy.states:
            return
        reads = self.objective.rows_read(batch)
        for name in list(self._lazy.states):
            if name in reads:
                self._lazy.catch_up(name, reads[name])
            else:
                self._lazy.settle(name)

    # --- what happens between epochs ------------------------------------------------------------
    def _check_parameters(self) -> None:
        """Non-finite or exploding parameters end training with a one-line :class:`TrainingDiverged`."""
        limit = self.config.max_parameter
        for name, tensor in self.objective.parameters().items():
            if not bool(torch.isfinite(tensor).all()):
                raise TrainingDiverged(
                    f"training diverged at epoch {self.epoch + 1}: {name} became non-finite; "
                    "lower the learning rate (or the momentum) and train again"
                )
            largest = float(tensor.abs().max()) if tensor.numel() else 0.0
            if largest > limit:
                raise TrainingDiverged(
                    f"training diverged at epoch {self.epoch + 1}: {name} reached {largest:.3g} (limit {limit:g}); "
                    "lower the learning rate (or the momentum) and train again"
                )

    def _average(self) -> None:
        """``θ̄ ← a·θ̄ + (1 − a)·θ`` after each epoch (``a = config.averaging``; off at 0)."""
        a = self.config.averaging
        if not a:
            return
        parameters = self.objective.parameters()
        if self._averaged is None:
            self._averaged = {name: p.clone() for name, p in parameters.items()}
            return
        for name, p in parameters.items():
            self._averaged[name].mul_(a).add_(p, alpha=1 - a)

    def _evaluated_parameters(self) -> _Swapped:
        """The parameters that are measured and saved: the averaged ones when averaging, else the current."""
        return _Swapped(self.objective.parameters(), self._averaged)

    def _track_best(self, measures: dict[str, float | None]) -> bool:
        key = self.objective.validation_measure
        value = None if key is None else measures.get(key)
        if value is None or not math.isfinite(value):
            return False
        if self.best_measure is not None:
            lower_is_better = self.objective.validation_goal == "min"
            if (value >= self.best_measure) if lower_is_better else (value <= self.best_measure):
                return False
        self.best_epoch, self.best_measure, self.best_update = self.epoch, value, self.updates
        source = self._averaged if self._averaged is not None else self.objective.parameters()
        self._best = {name: p.clone() for name, p in source.items()}
        return True

    def _stalled(self) -> bool:
        """``patience`` epochs without a better validation measure, once ``patience_updates`` updates are done.

        The floor on updates, counted from the start, keeps a small table (a few batches an epoch)
        training through the plateau that comes before its validation measure starts to improve.
        """
        config = self.config
        if not config.patience or self.best_epoch is None:
            return False
        return self.epoch - self.best_epoch >= config.patience and self.updates >= config.patience_updates

    def _finish(self) -> None:
        """End at the best epoch's parameters (early stopping), else at the evaluated ones."""
        final = self._best if self._best is not None and self.config.patience else self._averaged
        if final is None:
            return
        for name, p in self.objective.parameters().items():
            p.copy_(final[name])

    @property
    def stopped_early(self) -> bool:
        return self.epoch < self.config.epochs

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Optimiser state worth saving beside the weights to resume training exactly."""
        return {f"velocity.{name}": v for name, v in self._velocity.items()}


class _Swapped:
    """Context manager: ``live`` tensors hold ``values`` inside the block and their own values after it."""

    def __init__(self, live: dict[str, torch.Tensor], values: dict[str, torch.Tensor] | None) -> None:
        self.live, self.values = live, values
        self.saved: dict[str, torch.Tensor] | None = None

    def __enter__(self) -> None:
        if self.values is not None:
            self.saved = {name: p.clone() for name, p in self.live.items()}
            for name, p in self.live.items():
                p.copy_(self.values[name])

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            for name, p in self.live.items():
                p.copy_(self.saved[name])
