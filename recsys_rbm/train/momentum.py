"""The trainer's momentum updates: dense, and row-sparse with exact lazy momentum by row clocks.

One step with gradient ``g`` is ``v ← m·v − d·θ + ε·g``, ``θ ← θ + v`` (``d = ε·λ``, the weight decay's
share; 0 for biases). A row whose gradient is zero still moves: ``(θ, v) ← M·(θ, v)`` with
``M = [[1 − d, m], [−d, m]]``, the same matrix for every row and every step of an epoch.

A row-sparse gradient (:class:`~recsys_rbm.train.gradients.SparseRows`) touches a few rows of a large
table, so moving every other row by ``M`` at every step would cost the whole table per batch. Instead
each row keeps a *clock*, the step its stored ``(θ, v)`` belong to; ``M^gap`` (one table of powers
shared by all rows) brings it up to date when it is needed:

* before a batch reads its rows (:meth:`LazyMomentum.catch_up`, with the rows the objective names),
  so that the model reads plain, current tensors;
* at the end of the epoch and before a dense update of the parameter (:meth:`LazyMomentum.settle`).

A gradient reaches rows that are current (their batch read them). Because ``M``'s second column is
``(m, m)``, the dense step of such a row is ``M·(θ, v + ε·g/m)``: the update adds ``ε·g/m`` to the
stored velocity and leaves the clock, one scatter-add straight from the per-case rows, and the row
takes its step ``M`` when it is next brought up to date. Without momentum (``m = 0``, ``M`` singular)
the touched rows are moved one step and given ``ε·g`` at once. Every result equals updating every row
at every step, to rounding (tested). Why row clocks rather than an eigenbasis of ``M``:
``docs/accelerated-path.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsys_rbm.accel import kernels
from recsys_rbm.train.gradients import SparseRows
from recsys_rbm.train.memory import prefer_huge_pages


def transition(decay: float, momentum: float) -> torch.Tensor:
    """``M = [[1 − d, m], [−d, m]]``: how ``(θ, v)`` of a row without gradient moves in one step (float64)."""
    return torch.tensor([[1.0 - decay, momentum], [-decay, momentum]], dtype=torch.float64)


def powers_of(matrix: torch.Tensor, n_steps: int, like: torch.Tensor) -> torch.Tensor:
    """``M^s`` for ``s = 0..n_steps`` as (4, n_steps + 1): rows ``M^s[0, 0]``, ``[0, 1]``, ``[1, 0]``, ``[1, 1]``."""
    powers = [torch.eye(2, dtype=torch.float64)]
    for _ in range(n_steps):
        powers.append(matrix @ powers[-1])  # products in float64, then one rounding
    return torch.stack(powers).reshape(n_steps + 1, 4).T.contiguous().to(like.device, like.dtype)


def momentum_step(
    parameter: torch.Tensor, velocity: torch.Tensor, gradient: torch.Tensor, momentum: float, rate: float, shrink: float
) -> None:
    """The dense update ``v ← m·v + ε·g + s·θ``, ``θ ← θ + v`` in place (``s = −ε·λ``, the weight decay's share)."""
    kernels().momentum_step(parameter, velocity, gradient, momentum, rate, shrink)


@dataclass
class RowClocks:
    """A parameter's lazy state in an epoch: each row's clock and the powers of its transition."""

    clocks: torch.Tensor  # (rows,) int64: the step each row's stored (θ, v) belong to
    powers: torch.Tensor  # (4, n_steps + 1): M^s, see powers_of
    momentum: float


class LazyMomentum:
    """Exact lazy momentum for row-sparse gradients, one epoch at a time (see the module docstring).

    A parameter is taken over at its first row-sparse update of an epoch (until then every row is
    current). From then on its rows are current only once :meth:`catch_up` (the rows a batch reads)
    or :meth:`settle` (all of them) has brought them up to date.
    """

    def __init__(self, parameters: dict[str, torch.Tensor], velocities: dict[str, torch.Tensor]) -> None:
        self.parameters, self.velocities = parameters, velocities
        self.states: dict[str, RowClocks] = {}
        self.step = 0  # the steps of this epoch done so far
        self._n_steps = 0
        self._momentum = 0.0
        self._transitions: dict[str, torch.Tensor] = {}

    @property
    def in_epoch(self) -> bool:
        return bool(self._transitions)

    def start_epoch(
        self, n_steps: int, momentum: float, decays: dict[str, float], parameters: dict[str, torch.Tensor]
    ) -> None:
        """An epoch of ``n_steps`` steps with this momentum and each parameter's ``d = ε·λ``, over ``parameters``."""
        self.finish()
        self.parameters, self.step, self._n_steps, self._momentum = parameters, 0, n_steps, momentum
        self._transitions = {name: transition(d, momentum) for name, d in decays.items()}

    def catch_up(self, name: str, rows: torch.Tensor) -> None:
        """Bring the distinct ``rows`` of ``name`` up to date (before a batch reads them)."""
        state = self.states.get(name)
        if state is not None:
            parameter, velocity = self.parameters[name], self.velocities[name]
            kernels().catch_up(parameter, velocity, state.clocks, rows, self.step, state.powers)

    def update_rows(self, name: str, gradient: SparseRows, learning_rate: float) -> None:
        """This step's ``ε·g`` on the rows of ``name`` (repeats add up); :meth:`advance` ends the step."""
        state = self.states.get(name)
        if state is None:
            state = self.states[name] = self._take_over(name)
        parameter, velocity = self.parameters[name], self.velocities[name]
        rows = gradient.rows
        if not bool((state.clocks.index_select(0, rows) == self.step).all()):  # rows no batch of ours read
            self.catch_up(name, torch.unique(rows))
        if state.momentum:  # M·(θ, v + ε·g/m) is the step: the gradient enters through the stored velocity
            factors = gradient.as_factors()
            rate = learning_rate / state.momentum
            kernels().add_rows(velocity, rows, factors.per_case, factors.cases, factors.weights, rate)
            return
        gradient = gradient.coalesce()  # M is singular: move the rows one step, then add ε·g to θ and v
        ops, rows, values = kernels(), gradient.rows, gradient.values
        ops.catch_up(parameter, velocity, state.clocks, rows, self.step + 1, state.powers)
        positions = torch.arange(rows.shape[0], device=rows.device)
        ops.add_rows(parameter, rows, values, positions, None, learning_rate)
        ops.add_rows(velocity, rows, values, positions, None, learning_rate)

    def advance(self) -> None:
        """End of a step: rows updated without momentum are current at the new step, the others keep their clocks."""
        self.step += 1

    def is_lagging(self, name: str) -> bool:
        """Whether some rows of ``name`` may be behind (it has had a row-sparse update this epoch)."""
        return name in self.states

    def _take_over(self, name: str) -> RowClocks:
        parameter = self.parameters[name]
        for tensor in (parameter, self.velocities[name]):
            prefer_huge_pages(tensor)  # read and written at random rows all epoch
        clocks = torch.full((parameter.shape[0],), self.step, dtype=torch.long, device=parameter.device)
        return RowClocks(clocks, powers_of(self._transitions[name], self._n_steps + 1, parameter), self._momentum)

    def settle(self, name: str) -> None:
        """Bring every row of ``name`` up to date (before a dense update of it, and at the end of the epoch)."""
        state = self.states.pop(name, None)
        if state is not None:
            every_row = torch.arange(state.clocks.shape[0], device=state.clocks.device)
            kernels().catch_up(
                self.parameters[name], self.velocities[name], state.clocks, every_row, self.step, state.powers
            )

    def finish(self) -> None:
        """Bring every row of every parameter up to date; the epoch is then over."""
        for name in list(self.states):
            self.settle(name)
        self._transitions = {}
