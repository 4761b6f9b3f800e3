"""The dense objective: RBMs on images and other dense data, plain or centred, trained by :class:`Trainer`.

:func:`contrastive_gradient` is the learning rule of :mod:`recsys_rbm.train.trainer` on dense
batches, ``<v hᵀ>_data − <v hᵀ>_model`` as one matrix product. A centred RBM
(``TrainConfig.centring``; :class:`Offsets`) keeps its ordinary parameters; only the direction of
each step changes (:func:`centred_gradient`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from recsys_rbm.evaluation.monitors import mean_free_energy, reconstruction_error
from recsys_rbm.rbm.gibbs import Chain, chain_from_visible, run_chain
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import RandomSource
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.gradients import Gradient
from recsys_rbm.train.trainer import BatchCallback, EpochCallback, Trainer


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
