"""Training by contrastive divergence (CD-k) and persistent contrastive divergence (PCD-k): one loop.

The learning rule, stated once: the log-likelihood gradient is the data statistics minus the model
statistics, ``∂ log p(v)/∂W = <v hᵀ>_data − <v hᵀ>_model``, where the model term is estimated at
the end of a k-step Gibbs chain (restarted at the data for CD, carried over for PCD) and ``h`` is
replaced by ``p(h|v)`` in both terms. Equivalently it is minus the gradient of the free-energy gap
``mean F(v_data) − mean F(v_chain)`` with the chain end held constant (tested both ways).

Every model trains through :class:`Trainer`. A model supplies an :class:`Objective`: its named
parameters, its mini-batches, and for a batch the *sufficient statistics* of that rule as an
explicit gradient tensor per parameter (dense products for images, sparse sums over rated entries
for ratings). The trainer owns everything else: the learning-rate, momentum and CD-T schedules,
weight decay, the momentum step, parameter averaging, divergence checks, early stopping on the
objective's validation measure, and the hooks through which callers save checkpoints. Because the
update reads only the gradient tensors, they can be all-reduced across processes before it.

A centred RBM (``TrainConfig.centring``; :class:`Offsets`) is trained by the same loop: the model keeps
its ordinary parameters, and only the direction of each step changes (:func:`centred_gradient`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from recsys_rbm.errors import TrainingDiverged
from recsys_rbm.evaluation.monitors import mean_free_energy, reconstruction_error
from recsys_rbm.rbm.gibbs import Chain, chain_from_visible, run_chain
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import RandomSource, UniformStream
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.gradients import Gradient, SparseRows, dense_gradient
from recsys_rbm.train.momentum import LazyMomentum, momentum_step


def contrastive_gradient(
    data_visible: torch.Tensor,
    data_hidden_probability: torch.Tensor,
    model_visible: torch.Tensor,
    model_hidden_probability: torch.Tensor,
) -> Gradient:
    """``<v hᵀ>_data − <v hᵀ>_model`` and the matching bias terms (batch means of each phase).

    The weight term is one matrix product: ``[v_data; v_model]ᵀ · [p_data / n; −p_model / m]``.
    """
    n, m = data_visible.shape[0], model_visible.shape[0]
    stacked_visible = torch.cat([data_visible, model_visible])  # (n + m, D)
    signed_hidden = torch.cat([data_hidden_probability / n, model_hidden_probability / -m])  # (n + m, H)
    return {
        "weights": stacked_visible.T @ signed_hidden,
        "visible_bias": data_visible.mean(0) - model_visible.mean(0),
        "hidden_bias": signed_hidden.sum(0),
    }


@dataclass
class Offsets:
    """The offsets of a centred RBM: ``μ`` (D,) for the visible units, ``λ`` (H,) for the hidden units.

    A centred RBM (Montavon & Müller 2012; Melchior, Fischer & Wiskott 2016) has the energy
    ``E(v, h) = −(v − μ)ᵀb − (h − λ)ᵀc − (v − μ)ᵀW(h − λ)``. Up to a constant this is the ordinary RBM
    with the same ``W`` and ``b₀ = b − Wλ``, ``c₀ = c − Wᵀμ``: the same distributions, so the
    :class:`~recsys_rbm.rbm.model.RBM` keeps storing ``(W, b₀, c₀)`` and everything that reads a model
    (sampling, AIS, checkpoints, figures) is unchanged. Centring changes only the direction of each
    learning step (:func:`centred_gradient`), which no longer mixes the mean activations into the
    weights' gradient; the offsets follow the data's means (:meth:`follow`).
    """

    visible: torch.Tensor  # μ (D,): starts at the training data's mean
    hidden: torch.Tensor  # λ (H,): starts at 0.5

    @classmethod
    def start(cls, visible_mean: torch.Tensor, n_hidden: int) -> Offsets:
        """``μ`` at the data's mean ``visible_mean`` (D,), ``λ = 0.5``."""
        return cls(visible_mean.clone(), visible_mean.new_full((n_hidden,), 0.5))

    def follow(self, visible_mean: torch.Tensor, hidden_mean: torch.Tensor, rate: float) -> None:
        """Running means: ``μ ← (1 − ν)μ + ν<v>_data``, ``λ ← (1 − ν)λ + ν<p(h|v)>_data`` (``ν = rate``).

        The ordinary parameters ``(W, b₀, c₀)`` stay as they are: in centred coordinates this is the
        reparametrisation ``b ← b + W(λ' − λ)``, ``c ← c + Wᵀ(μ' − μ)``, which leaves the model unchanged.
        """
        self.visible.lerp_(visible_mean, rate)
        self.hidden.lerp_(hidden_mean, rate)


def centred_gradient(gradient: Gradient, offsets: Offsets, weights: torch.Tensor, weight_decay: float) -> Gradient:
    """The centred learning step, in ordinary coordinates, from the ordinary gradient ``g`` of a batch.

    The centred gradient is ``ΔW = <(v − μ)(h − λ)ᵀ>_data − <(v − μ)(h − λ)ᵀ>_model = g_W − μ g_cᵀ − g_b λᵀ``,
    ``Δb = g_b``, ``Δc = g_c`` (with ``g_W = <v hᵀ>_data − <v hᵀ>_model``, ``g_b``, ``g_c`` the mean
    differences). A step ``ε(ΔW − δW, Δb, Δc)`` of the centred parameters, ``δ`` the weight decay, moves
    ``b₀ = b − Wλ`` and ``c₀ = c − Wᵀμ`` by ``ε`` times

        ``G_b₀ = Δb − (ΔW − δW) λ``,  ``G_c₀ = Δc − (ΔW − δW)ᵀ μ``,  and ``W`` by ``ε(G_W − δW)``, ``G_W = ΔW``,

    which is what this returns (the trainer subtracts ``δW`` from the weights itself, as for any model). It
    is linear in ``g``, so without momentum the trainer takes exactly the centred algorithm's steps; and it
    is ``J Jᵀ g`` with ``J`` the Jacobian of ``(W, b₀, c₀)`` in ``(W, b, c)``, an ascent direction whenever
    ``g`` is one. ``μ = λ = 0`` gives back ``g``.
    """
    g_w, g_b, g_c = gradient["weights"], gradient["visible_bias"], gradient["hidden_bias"]
    mu, lam = offsets.visible, offsets.hidden
    delta_w = g_w - torch.outer(mu, g_c) - torch.outer(g_b, lam)  # (D, H)
    moved = delta_w - weight_decay * weights if weight_decay else delta_w  # how W moves, per unit step
    return {"weights": delta_w, "visible_bias": g_b - moved @ lam, "hidden_bias": g_c - moved.T @ mu}


def negative_phase(
    rbm: RBM,
    chain: Chain,
    k: int,
    random: RandomSource,
    mask: torch.Tensor | None = None,
    sample_visible: bool = True,
    keep_hidden_sample: bool = True,
) -> Chain:
    """Advance the negative chain by ``k`` Gibbs steps: CD passes the data's chain, PCD its own.

    The final hidden states need drawing only when the chain persists (``keep_hidden_sample``).
    """
    return run_chain(rbm, chain, k, random, mask, sample_visible, sample_last_hidden=keep_hidden_sample)


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
        """``patience`` epochs, and ``patience_updates`` updates, without a better validation measure.

        Counting updates too keeps a small table (a few batches an epoch) training through the
        plateau that comes before its validation measure starts to improve.
        """
        config = self.config
        if not config.patience or self.best_epoch is None:
            return False
        return (
            self.epoch - self.best_epoch >= config.patience
            and self.updates - self.best_update >= config.patience_updates
        )

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


# --- the dense objective: RBMs on images and other dense data ---------------------------------------
class DenseObjective:
    """An :class:`RBM` on dense visible data (rows of ``train``, already on the model's device).

    Mini-batches are rows of the training tensor gathered on the device in an order shuffled once
    per epoch (no per-batch host copies, and no shuffled copy of the whole set). CD-k restarts the
    negative chain at the batch; PCD-k (``config.persistent``) carries ``config.n_chains`` chains
    from update to update. With ``config.centring`` the model is a centred
    RBM (:class:`Offsets`, :func:`centred_gradient`): its offsets start at the training data's mean and
    0.5 and follow each batch's data means. An optional sparsity penalty pulls each hidden unit's
    running mean activation towards ``config.sparsity_target`` (added in ordinary coordinates). Each
    epoch measures the reconstruction error on a fixed training subset and on validation, and the
    free-energy gap.
    """

    decayed = ("weights",)
    validation_measure: str | None = None
    validation_goal = "min"

    def __init__(
        self, rbm: RBM, train: torch.Tensor, config: TrainConfig, validation: torch.Tensor | None = None
    ) -> None:
        self.rbm, self.config = rbm, config
        self.train = train.to(rbm.device, rbm.dtype)
        self.validation = None if validation is None else validation.to(rbm.device, rbm.dtype)
        self.persistent_chain: Chain | None = None
        self.offsets = Offsets.start(self.train.mean(0), rbm.n_hidden) if config.centring else None
        self._activation_estimate: torch.Tensor | None = None
        self._train_monitor: torch.Tensor | None = None

    def parameters(self) -> dict[str, torch.Tensor]:
        return self.rbm.parameters()

    def rows_read(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """No rows: every gradient of a dense RBM is dense."""
        return {}

    def start(self, generator: torch.Generator) -> None:
        n_monitor = min(self.config.monitor_size, self.train.shape[0])
        rows = torch.randperm(self.train.shape[0], generator=_cpu_generator(generator))[:n_monitor]
        self._train_monitor = self.train[rows.to(self.train.device)]

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.train.shape[0], generator=_cpu_generator(generator)).to(self.train.device)
        size = self.config.batch_size
        for start in range(0, order.shape[0], size):  # a batch at a time: no shuffled copy of the whole set
            yield self.train.index_select(0, order[start : start + size])

    def gradient(self, batch: torch.Tensor, steps: int, random: RandomSource) -> Gradient:
        """CD-k when the chain restarts at the data, PCD-k when it continues from the persistent state."""
        rbm, config = self.rbm, self.config
        persistent = config.persistent
        # The data's hidden states are drawn only when the negative chain starts from them (CD).
        positive = chain_from_visible(rbm, batch, random, sample_hidden=not persistent)
        if persistent and self.persistent_chain is None:
            self.persistent_chain = self._initial_persistent_chain(batch, random)
        start = self.persistent_chain if persistent else positive
        negative = negative_phase(
            rbm, start, steps, random, sample_visible=config.sample_visible, keep_hidden_sample=persistent
        )
        if persistent:
            self.persistent_chain = negative
        gradient = contrastive_gradient(
            positive.visible, positive.hidden_probability, negative.visible, negative.hidden_probability
        )
        if self.offsets is not None:
            gradient = centred_gradient(gradient, self.offsets, rbm.weights, config.weight_decay)
            self.offsets.follow(positive.visible.mean(0), positive.hidden_probability.mean(0), config.offset_rate)
        if config.sparsity_target > 0 and config.sparsity_cost > 0:
            penalty = self._sparsity_penalty(positive.hidden_probability.mean(0))  # (H,)
            gradient["hidden_bias"] -= penalty
            gradient["weights"].addr_(positive.visible.mean(0), penalty, alpha=-1.0)
        return gradient

    def _sparsity_penalty(self, hidden_mean: torch.Tensor) -> torch.Tensor:
        """``cost · (q − target)`` with ``q`` a running mean of each hidden unit's activation."""
        config = self.config
        if self._activation_estimate is None:
            self._activation_estimate = hidden_mean.clone()
        else:
            self._activation_estimate.mul_(config.sparsity_decay).add_(hidden_mean, alpha=1 - config.sparsity_decay)
        return config.sparsity_cost * (self._activation_estimate - config.sparsity_target)

    def _initial_persistent_chain(self, batch: torch.Tensor, random: RandomSource) -> Chain:
        """PCD chains start at the first batch's data (rows repeated to ``n_chains`` if needed)."""
        n_chains = self.config.n_chains or batch.shape[0]
        rows = torch.arange(n_chains, device=batch.device) % batch.shape[0]
        return chain_from_visible(self.rbm, batch[rows].clone(), random)

    @torch.no_grad()
    def measure(self) -> dict[str, float | None]:
        """Reconstruction error (training subset, validation) and the free-energy gap validation − training."""
        train = self._train_monitor if self._train_monitor is not None else self.train[: self.config.monitor_size]
        validation = None if self.validation is None else self.validation[: self.config.monitor_size]
        measures: dict[str, float | None] = {
            "reconstruction_error": reconstruction_error(self.rbm, train),
            "validation_reconstruction_error": None,
            "free_energy_gap": None,
        }
        if validation is not None and validation.shape[0] > 0:
            measures["validation_reconstruction_error"] = reconstruction_error(self.rbm, validation)
            measures["free_energy_gap"] = mean_free_energy(self.rbm, validation) - mean_free_energy(self.rbm, train)
        return measures

    def divergence(self, measures: dict[str, float | None]) -> str | None:
        return None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What training carries besides the parameters: the persistent chains (to resume PCD exactly) and
        a centred RBM's offsets ``μ``, ``λ`` (without which its steps would differ)."""
        state = {}
        if self.offsets is not None:
            state["offsets.visible"], state["offsets.hidden"] = self.offsets.visible, self.offsets.hidden
        chain = self.persistent_chain
        if chain is None:
            return state
        state.update({"chain.visible": chain.visible, "chain.hidden_probability": chain.hidden_probability})
        if chain.hidden is not None:
            state["chain.hidden"] = chain.hidden
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Take back what :meth:`state_dict` saved (e.g. a checkpoint's extra tensors), to continue training."""
        options = {"device": self.rbm.device, "dtype": self.rbm.dtype}
        if self.offsets is not None and "offsets.visible" in state:
            self.offsets = Offsets(state["offsets.visible"].to(**options), state["offsets.hidden"].to(**options))
        if "chain.visible" in state:
            hidden = state.get("chain.hidden")
            self.persistent_chain = Chain(
                state["chain.visible"].to(**options),
                state["chain.hidden_probability"].to(**options),
                None if hidden is None else hidden.to(**options),
            )


def _cpu_generator(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from ``generator``, so shuffling is the same on every device."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    cpu = torch.Generator()
    cpu.manual_seed(seed)
    return cpu


def train_dense(
    rbm: RBM,
    train: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
    validation: torch.Tensor | None = None,
    on_epoch_end: EpochCallback | None = None,
    on_batch_end: BatchCallback | None = None,
) -> Trainer:
    """Train ``rbm`` in place on dense data by the config's CD-k/PCD-k; returns the trainer (history, state)."""
    trainer = Trainer(DenseObjective(rbm, train, config, validation), config, generator)
    trainer.fit(on_epoch_end, on_batch_end)
    return trainer
