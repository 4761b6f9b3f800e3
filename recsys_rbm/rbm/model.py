"""The RBM: its parameters, its visible layer, and the conditionals bound to them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.rng import RandomSource
from recsys_rbm.rbm.units import VisibleLayer, VisibleUnits, as_layer


@dataclass
class RBM:
    """A restricted Boltzmann machine with Bernoulli hidden units.

    ``weights`` is (D, H), ``visible_bias`` (D,), ``hidden_bias`` (H,); ``units`` is the visible
    layer: blocks of Bernoulli units and K-way softmax groups, laid end to end (a single block is
    accepted and made a one-block layer).
    """

    weights: torch.Tensor
    visible_bias: torch.Tensor
    hidden_bias: torch.Tensor
    units: VisibleLayer

    def __post_init__(self) -> None:
        self.units = as_layer(self.units)
        d, h = self.weights.shape
        if d != self.units.size:
            raise ValueError(f"weights have {d} visible rows but the visible units have {self.units.size}")
        if self.visible_bias.shape != (d,) or self.hidden_bias.shape != (h,):
            raise ValueError(
                f"bias shapes {tuple(self.visible_bias.shape)} and {tuple(self.hidden_bias.shape)} "
                f"do not match weights {(d, h)}"
            )

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def initialise(
        cls,
        units: VisibleUnits,
        n_hidden: int,
        generator: torch.Generator,
        *,
        weight_std: float = 0.01,
        visible_mean: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> RBM:
        """Weights ``N(0, weight_std²)``, hidden biases 0, visible biases from the data's base rates.

        ``visible_mean`` (D,) holds the data's mean of each visible entry: Bernoulli biases become
        ``log(p / (1 - p))`` and softmax biases ``log p_k`` (Hinton's practical guide, section 8).
        """
        units = as_layer(units)
        weights = torch.randn(units.size, n_hidden, generator=generator, dtype=torch.float64) * weight_std
        visible_bias = units.base_rate_bias(visible_mean)
        return cls(
            weights.to(device=device, dtype=dtype),
            visible_bias.to(device=device, dtype=dtype),
            torch.zeros(n_hidden, device=device, dtype=dtype),
            units,
        )

    @property
    def n_visible(self) -> int:
        return self.weights.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weights.shape[1]

    @property
    def device(self) -> torch.device:
        return self.weights.device

    @property
    def dtype(self) -> torch.dtype:
        return self.weights.dtype

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> RBM:
        """The model on another device and/or with another floating-point type (shares tensors when
        nothing changes, like ``torch.Tensor.to``)."""
        return RBM(
            self.weights.to(device=device, dtype=dtype),
            self.visible_bias.to(device=device, dtype=dtype),
            self.hidden_bias.to(device=device, dtype=dtype),
            self.units,
        )

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights, "visible_bias": self.visible_bias, "hidden_bias": self.hidden_bias}

    # --- the mathematics, bound to this model's parameters ------------------------------------
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return fn.energy(v, h, self.weights, self.visible_bias, self.hidden_bias)

    def free_energy(self, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return fn.free_energy(v, self.weights, self.visible_bias, self.hidden_bias, self.units, mask)

    def hidden_free_energy(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return fn.hidden_free_energy(h, self.weights, self.visible_bias, self.hidden_bias, self.units, mask)

    def hidden_probability(self, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return fn.hidden_probability(v, self.weights, self.hidden_bias, self.units, mask)

    def visible_mean(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return fn.visible_mean(h, self.weights, self.visible_bias, self.units, mask)

    def sample_hidden(self, v: torch.Tensor, generator: RandomSource, mask=None) -> torch.Tensor:
        return fn.sample_hidden(self.hidden_probability(v, mask), generator)

    def sample_visible(self, h: torch.Tensor, generator: RandomSource, mask=None) -> torch.Tensor:
        return fn.sample_visible(h, self.weights, self.visible_bias, self.units, generator, mask)

    def reconstruct(self, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean-field reconstruction ``E[v | h = p(h|v)]``, the quantity behind reconstruction error."""
        return self.visible_mean(self.hidden_probability(v, mask), mask)
