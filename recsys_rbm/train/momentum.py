"""Exact lazy momentum: a row-sparse gradient's update touches only its rows, yet equals updating every row.

An update step with gradient ``g`` is ``v ← m·v − d·θ + ε·g``, ``θ ← θ + v`` (``d = ε·λ``, the weight decay's
share; 0 for biases). A row whose gradient is zero still moves: ``(θ, v) ← M·(θ, v)`` with
``M = [[1 − d, m], [−d, m]]``, the same matrix for every row and every step of an epoch. Two exact ways
leave such rows alone until a gradient touches them, and bring every row forward at the end of the epoch:

* **in the eigenbasis of M** (:class:`EigenbasisRows`, whenever ``M`` has two real eigenvalues of usable
  size, as it has for any momentum of 0.25 or more): with ``M = P·diag(λ₁, λ₂)·P⁻¹`` the coordinates
  ``u = P⁻¹(θ, v)`` of an untouched row shrink by ``λᵢ`` per step, one factor for all rows. Stored as
  ``uᵢ / sᵢ`` with a global ``sᵢ = λᵢ^steps``, untouched rows stay constant in memory: a step adds
  ``ε·g·(P⁻¹(1, 1))ᵢ / sᵢ`` to the touched rows (one pass, no gathers: the native ``add_rows`` straight
  from the per-case rows of :class:`~recsys_rbm.train.trainer.CaseFactors`, or one ``index_add``), and a reader
  combines the two stored halves of a row with global scalars, so a batch's products run once over one
  interleaved (rows, 2, …) table.
* **by row clocks** (:class:`ClockedRows`, the fallback, e.g. without momentum): each row remembers the
  step of its last update and, ``s`` steps later, is brought forward by ``M^s`` (one table of powers
  shared by every row) and given its gradient; a reader takes it as ``a·θ + b·v`` with ``(a, b)`` the
  first row of ``M^s``.

Readers (the recommender's conditionals) see a lazily updated parameter through :class:`LaggingRows`;
:class:`CurrentRows` reads a tensor as stored, with the same methods. Their block products run on the
native kernels of :mod:`recsys_rbm.accel.native` where those apply (CPU, float32/64), on torch otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

from recsys_rbm.accel import native
from recsys_rbm.train.memory import prefer_huge_pages

if TYPE_CHECKING:
    from recsys_rbm.train.trainer import SparseRows

#: The smallest |eigenvalue| the eigenbasis accepts: smaller ones would need rescaling every few steps.
SMALLEST_EIGENVALUE = 0.25
#: The largest condition number of the eigenvectors the eigenbasis accepts (it scales the rounding error).
LARGEST_CONDITION = 1e4
#: A component's stored values are rescaled to their true size when its global factor falls below this.
RESCALE_BELOW = 2.0**-40


def transition(decay: float, momentum: float) -> torch.Tensor:
    """``M = [[1 − d, m], [−d, m]]``: how ``(θ, v)`` of a row without gradient moves in one step (float64)."""
    return torch.tensor([[1.0 - decay, momentum], [-decay, momentum]], dtype=torch.float64)


@dataclass(frozen=True)
class Eigenbasis:
    """``M = P·diag(λ)·P⁻¹`` with real eigenvalues; ``entry = P⁻¹(1, 1)``, how a gradient enters each coordinate."""

    vectors: tuple[tuple[float, float], tuple[float, float]]  # P, eigenvectors as columns
    inverse: tuple[tuple[float, float], tuple[float, float]]  # P⁻¹
    values: tuple[float, float]  # λ₁ ≥ λ₂
    entry: tuple[float, float]

    @classmethod
    def of(cls, matrix: torch.Tensor) -> Eigenbasis | None:
        """The eigenbasis of a transition ``M``, or ``None`` where it is unusable (complex, repeated or
        small eigenvalues, or nearly parallel eigenvectors)."""
        (m00, m01), (m10, m11) = matrix.tolist()
        trace, determinant = m00 + m11, m00 * m11 - m01 * m10
        discriminant = trace * trace / 4 - determinant
        if discriminant <= 0 or m01 == 0:
            return None
        root = math.sqrt(discriminant)
        values = (trace / 2 + root, trace / 2 - root)
        if min(abs(value) for value in values) < SMALLEST_EIGENVALUE:
            return None
        # (M − λI)x = 0 has the solution x = (m01, λ − m00) for each λ (m01 ≠ 0).
        vectors = torch.tensor([[m01, m01], [values[0] - m00, values[1] - m00]], dtype=torch.float64)
        vectors = vectors / torch.linalg.vector_norm(vectors, dim=0)
        if float(torch.linalg.cond(vectors)) > LARGEST_CONDITION:
            return None
        inverse = torch.linalg.inv(vectors)
        entry = inverse @ torch.ones(2, dtype=torch.float64)
        return cls(_pair_of_pairs(vectors), _pair_of_pairs(inverse), values, (float(entry[0]), float(entry[1])))


def _pair_of_pairs(matrix: torch.Tensor) -> tuple[tuple[float, float], tuple[float, float]]:
    (a, b), (c, d) = matrix.tolist()
    return (a, b), (c, d)


Rows = torch.Tensor | slice


class RowReader(Protocol):
    """What a batch reads of a parameter's current rows (``rows`` (R,) int64 indices; repeats allowed)."""

    def gather(self, rows: Rows) -> torch.Tensor:
        """The current rows, (R, *shape[1:])."""
        ...

    def bag(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """``Σ`` of the current rows per bag (bags start at ``offsets`` (B,)); (B, *shape[1:])."""
        ...

    def block_products(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``θ[base[e] + k] · hidden[cases[e]]`` (plus ``offsets``' current row ``base[e] + k``) for ``k < block``;
        (E, block). ``cases`` (E,) ascending, ``hidden`` (B, H); ``order``: a permutation of the entries to visit
        them in, for speed only (entries on the same rows together)."""
        ...

    def sampled_blocks(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        uniforms: torch.Tensor,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """A level per entry drawn from the softmax of its :meth:`block_products` (inverse CDF, ``uniforms`` (E,)),
        and the current rows ``θ[base[e] + level_e]`` summed per case: (levels (E,), sums (B, H)), in one pass where
        the native kernel applies; None otherwise (the caller draws from the block products)."""
        ...

    def coordinates(self) -> tuple[torch.Tensor, tuple[float, ...]] | None:
        """``(stored (R, C, …), coefs)`` with every current row ``Σ_c coefs[c]·stored[:, c]``, or None where the
        rows have no such common form."""
        ...


def sampled_products(
    row_starts: torch.Tensor, columns: torch.Tensor, hidden: torch.Tensor, table: torch.Tensor
) -> torch.Tensor:
    """``(hidden · tableᵀ)[b, columns[i]]`` at a CSR pattern only (SDDMM): neither the full (B, rows) product
    nor an (nnz, H) gather of the table is formed. ``table`` (rows, H)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        zeros = torch.zeros(columns.shape[0], dtype=hidden.dtype, device=hidden.device)
        pattern = torch.sparse_csr_tensor(
            row_starts, columns, zeros, (hidden.shape[0], table.shape[0]), check_invariants=False
        )
        return torch.sparse.sampled_addmm(pattern, hidden, table.T).values()


def block_products(
    base: torch.Tensor,
    cases: torch.Tensor,
    hidden: torch.Tensor,
    block: int,
    table: torch.Tensor,
    offsets: RowReader | None = None,
    order: torch.Tensor | None = None,
) -> torch.Tensor:
    """``table[base[e] + k] · hidden[cases[e]]`` (plus ``offsets``' row ``base[e] + k``) for ``k < block``; (E, block).
    ``table`` (rows, H), ``cases`` (E,) ascending. The native kernel where it applies (visiting the entries in
    ``order`` when given), else one sampled product over the CSR pattern of the blocks."""
    out = torch.empty((base.shape[0], block), dtype=hidden.dtype, device=hidden.device)
    usable, stored_offsets = _offsets_as_stored(offsets)
    if usable and native.block_products(table, base, cases, hidden, block, out, stored_offsets, order):
        return out
    columns = (base[:, None] + torch.arange(block, device=base.device)).flatten()
    row_starts = torch.zeros(hidden.shape[0] + 1, dtype=torch.long, device=hidden.device)
    torch.cumsum(torch.bincount(cases, minlength=hidden.shape[0]) * block, 0, out=row_starts[1:])
    out = sampled_products(row_starts, columns, hidden, table).view(-1, block)
    return out if offsets is None else out.add_(offsets.gather(columns).view(-1, block))


def sampled_blocks(
    base: torch.Tensor,
    cases: torch.Tensor,
    vectors: torch.Tensor,
    block: int,
    uniforms: torch.Tensor,
    table: torch.Tensor,
    row_coefs: tuple[float, ...],
    offsets: RowReader | None,
    order: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The native draw over ``table`` (rows, C·H) whose current rows are ``Σ_c row_coefs[c]·coordinate c``, or None."""
    usable, stored_offsets = _offsets_as_stored(offsets)
    if not usable:
        return None
    return native.sampled_blocks(table, row_coefs, base, cases, vectors, block, uniforms, stored_offsets, order)


def _offsets_as_stored(
    offsets: RowReader | None,
) -> tuple[bool, tuple[torch.Tensor, tuple[float, ...]] | None]:
    """The kernels' form of ``offsets``: (whether they can take it, ``(stored (R, C), coefs)`` or None for no
    offsets). Offsets without a common form over stored coordinates (row clocks) cannot be taken."""
    if offsets is None:
        return True, None
    form = offsets.coordinates()
    return (False, None) if form is None else (True, (form[0].view(form[0].shape[0], -1), form[1]))


@dataclass(frozen=True)
class CurrentRows:
    """A tensor whose rows are current, read as stored."""

    stored: torch.Tensor

    def gather(self, rows: Rows) -> torch.Tensor:
        return self.stored[rows] if isinstance(rows, slice) else self.stored.index_select(0, rows)

    def bag(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        flat = self.stored.view(self.stored.shape[0], -1)
        return F.embedding_bag(rows, flat, offsets, mode="sum").view(-1, *self.stored.shape[1:])

    def block_products(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return block_products(base, cases, hidden, block, self.stored, offsets, order)

    def sampled_blocks(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        uniforms: torch.Tensor,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        return sampled_blocks(base, cases, hidden, block, uniforms, self.stored, (1.0,), offsets, order)

    def coordinates(self) -> tuple[torch.Tensor, tuple[float, ...]]:
        return self.stored.view(self.stored.shape[0], 1, *self.stored.shape[1:]), (1.0,)


class EigenbasisRows:
    """A parameter's ``(θ, v)`` during an epoch, kept as ``P⁻¹(θ, v)`` scaled per coordinate (see the module
    docstring): ``storage[:, i] · scale[i]`` is coordinate ``uᵢ`` of every row, current or not."""

    def __init__(
        self, parameter: torch.Tensor, velocity: torch.Tensor, basis: Eigenbasis, storage: torch.Tensor | None = None
    ) -> None:
        """``storage``: a (rows, 2, …) tensor to keep the coordinates in (reused across epochs: fresh memory is
        slow to touch for the first time); allocated when missing or of the wrong shape."""
        self.parameter, self.velocity, self.basis = parameter, velocity, basis
        shape = (parameter.shape[0], 2, *parameter.shape[1:])
        fits = storage is not None and storage.shape == shape and storage.dtype == parameter.dtype
        if storage is None or not fits or storage.device != parameter.device:
            storage = torch.empty(shape, dtype=parameter.dtype, device=parameter.device)
            prefer_huge_pages(storage)  # read and written at random rows all epoch
        self.storage = storage
        for row, (to_theta, to_velocity) in enumerate(basis.inverse):
            torch.mul(parameter, to_theta, out=storage[:, row]).add_(velocity, alpha=to_velocity)
        self.scale = [1.0, 1.0]
        self._flat = storage.view(parameter.shape[0], -1)  # (rows, 2·width): both coordinates of a row
        self._source = torch.empty(0, dtype=parameter.dtype, device=parameter.device)  # scratch for add()

    def advance(self) -> None:
        """Every row moves one step: each coordinate's global factor shrinks by its eigenvalue."""
        for i, value in enumerate(self.basis.values):
            self.scale[i] *= value
            if abs(self.scale[i]) < RESCALE_BELOW:  # fold the factor into the stored values, once in a while
                self.storage[:, i].mul_(self.scale[i])
                self.scale[i] = 1.0

    def add(self, gradient: SparseRows, learning_rate: float) -> None:
        """This step's ``ε·g`` on its rows (repeats add up): ``ε·g·entryᵢ / scaleᵢ`` into each stored coordinate."""
        factors = [learning_rate * entry / scale for entry, scale in zip(self.basis.entry, self.scale, strict=True)]
        by_case = gradient.factors  # straight from the per-case rows, where the kernel applies
        if by_case is not None:
            storage, per_case = self.storage.view(*self.storage.shape[:2], -1), by_case.per_case
            rows, cases, per_case = gradient.rows, by_case.cases, per_case.view(per_case.shape[0], -1)
            if native.add_rows(storage, rows, cases, per_case, by_case.weights, factors, by_case.order, by_case.group):
                return
        values = gradient.values
        shape = (values.shape[0], 2, *values.shape[1:])
        if self._source.numel() < math.prod(shape):
            self._source = values.new_empty(math.prod(shape) * 3 // 2)
        source = self._source[: math.prod(shape)].view(shape)
        factor = torch.tensor(factors, dtype=values.dtype).view(1, 2, *([1] * (values.dim() - 1)))
        torch.mul(values.unsqueeze(1), factor.to(values.device, non_blocking=True), out=source)
        self.storage.index_add_(0, gradient.rows, source)

    def _weights(self, row: int) -> tuple[float, float]:
        """How ``θ`` (row 0) or ``v`` (row 1) is made of the two stored coordinates now."""
        return self.basis.vectors[row][0] * self.scale[0], self.basis.vectors[row][1] * self.scale[1]

    def gather(self, rows: Rows) -> torch.Tensor:
        both = self.storage[rows] if isinstance(rows, slice) else self.storage.index_select(0, rows)
        first, second = self._weights(0)
        return torch.mul(both[:, 0], first).add_(both[:, 1], alpha=second)

    def bag(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        both = F.embedding_bag(rows, self._flat, offsets, mode="sum").view(-1, 2, *self.parameter.shape[1:])
        first, second = self._weights(0)
        return torch.mul(both[:, 0], first).add_(both[:, 1], alpha=second)

    def block_products(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return block_products(base, cases, self._both_halves(hidden), block, self._flat, offsets, order)

    def sampled_blocks(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        uniforms: torch.Tensor,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        both = self._both_halves(hidden)
        return sampled_blocks(base, cases, both, block, uniforms, self._flat, self._weights(0), offsets, order)

    def _both_halves(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[h·first, h·second]`` (B, 2H): a product of it with a stored (2H,) row is ``θ_row · h``."""
        first, second = self._weights(0)
        return torch.cat([hidden * first, hidden * second], 1)

    def coordinates(self) -> tuple[torch.Tensor, tuple[float, ...]]:
        return self.storage, self._weights(0)

    def finish(self) -> None:
        """Write every row's current ``θ`` and ``v`` back into the parameter and its velocity."""
        for row, target in enumerate((self.parameter, self.velocity)):
            first, second = self._weights(row)
            torch.mul(self.storage[:, 0], first, out=target).add_(self.storage[:, 1], alpha=second)


class ClockedRows:
    """A parameter's rows, each brought forward by ``M^gap`` when a gradient touches it (see the module docstring)."""

    def __init__(self, parameter: torch.Tensor, velocity: torch.Tensor, matrix: torch.Tensor, n_steps: int) -> None:
        self.parameter, self.velocity = parameter, velocity
        self.step = 0
        self.last = torch.zeros(parameter.shape[0], dtype=torch.long, device=parameter.device)
        powers = [torch.eye(2, dtype=torch.float64)]
        for _ in range(n_steps):
            powers.append(matrix @ powers[-1])  # products in float64, then one rounding
        #: ``M^s`` for ``s = 0..n_steps`` as (4, n_steps + 1): rows ``M^s[0, 0]``, ``[0, 1]``, ``[1, 0]``, ``[1, 1]``.
        self.powers = torch.stack(powers).reshape(n_steps + 1, 4).T.contiguous().to(parameter.device, parameter.dtype)

    def advance(self) -> None:
        self.step += 1

    def _coefficients(self, rows: torch.Tensor | None, count: int = 4) -> list[torch.Tensor]:
        """The first ``count`` entries of ``M^gap`` per row (every row when ``rows`` is None), shaped to broadcast."""
        last = self.last if rows is None else self.last.index_select(0, rows)
        table = self.powers[:count].index_select(1, self.step - last)
        return list(table.view(count, -1, *([1] * (self.parameter.dim() - 1))).unbind(0))

    def add(self, gradient: SparseRows, learning_rate: float) -> None:
        """Bring the touched rows (unique) through the steps they missed and this one, adding ``ε·g``."""
        rows, values = gradient.rows, gradient.values
        p00, p01, p10, p11 = self._coefficients(rows)
        theta, v = self.parameter.index_select(0, rows), self.velocity.index_select(0, rows)  # fresh copies
        new_v = torch.mul(v, p11).addcmul_(theta, p10).add_(values, alpha=learning_rate)
        theta.mul_(p00).addcmul_(v, p01).add_(values, alpha=learning_rate)  # θ's new value, in its copy
        self.parameter.index_copy_(0, rows, theta)
        self.velocity.index_copy_(0, rows, new_v)
        self.last.index_fill_(0, rows, self.step)

    def gather(self, rows: Rows) -> torch.Tensor:
        if isinstance(rows, slice):
            rows = torch.arange(self.parameter.shape[0], device=self.parameter.device)[rows]
        a, b = self._coefficients(rows, 2)
        return self.parameter.index_select(0, rows).mul_(a).addcmul_(self.velocity.index_select(0, rows), b)

    def bag(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        a, b = (c.reshape(-1) for c in self._coefficients(rows, 2))
        total = F.embedding_bag(rows, self.parameter, offsets, mode="sum", per_sample_weights=a)
        return total + F.embedding_bag(rows, self.velocity, offsets, mode="sum", per_sample_weights=b)

    def block_products(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        columns = (base[:, None] + torch.arange(block, device=base.device)).flatten()
        a, b = (c.view(-1, block) for c in self._coefficients(columns, 2))
        products = block_products(base, cases, hidden, block, self.parameter).mul_(a)
        products.addcmul_(block_products(base, cases, hidden, block, self.velocity), b)
        return products if offsets is None else products.add_(offsets.gather(columns).view(-1, block))

    def sampled_blocks(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        uniforms: torch.Tensor,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> None:
        return None  # each row has its own clock: no common form for the kernel

    def coordinates(self) -> None:
        return None  # each row has its own clock

    def finish(self) -> None:
        """Bring every row to the end of the epoch, in place over the whole tensors."""
        if bool((self.last < self.step).any()):
            p00, p01, p10, p11 = self._coefficients(None)
            new_v = torch.mul(self.velocity, p11).addcmul_(self.parameter, p10)  # M^0 = I leaves current rows exact
            self.parameter.mul_(p00).addcmul_(self.velocity, p01)
            self.velocity.copy_(new_v)


class LazyMomentum:
    """The trainer's lazy updates of row-sparse gradients, one epoch at a time (see the module docstring).

    A parameter is taken over at its first row-sparse update of an epoch (until then every row is
    current) and written back, every row brought forward, by :meth:`finish`. In between its tensor
    is not current: it is read through :meth:`reader`.
    """

    #: Use the eigenbasis where the transition allows it (the row clocks otherwise); tests set it to False.
    prefer_eigenbasis = True

    def __init__(self, parameters: dict[str, torch.Tensor], velocities: dict[str, torch.Tensor]) -> None:
        self.parameters, self.velocities = parameters, velocities
        self.states: dict[str, EigenbasisRows | ClockedRows] = {}
        self._storage: dict[str, torch.Tensor] = {}  # each parameter's eigenbasis storage, kept for the next epoch
        self._transitions: dict[str, torch.Tensor] = {}
        self._n_steps = 0

    @property
    def in_epoch(self) -> bool:
        return bool(self._transitions)

    def start_epoch(
        self, n_steps: int, momentum: float, decays: dict[str, float], parameters: dict[str, torch.Tensor]
    ) -> None:
        """An epoch of ``n_steps`` steps with this momentum and each parameter's ``d = ε·λ``, over ``parameters``."""
        self.finish()
        self.parameters = parameters
        self._n_steps = n_steps
        self._transitions = {name: transition(d, momentum) for name, d in decays.items()}

    def advance(self) -> None:
        """One step: every row of every taken-over parameter moves by ``M``."""
        for state in self.states.values():
            state.advance()

    def update_rows(self, name: str, gradient: SparseRows, learning_rate: float) -> None:
        """This step's ``ε·g`` on the rows of ``name`` (after :meth:`advance`). The rows must be unique unless
        :meth:`will_use_eigenbasis` (the row clocks bring each row forward once)."""
        state = self.states.get(name)
        if state is None:
            state = self.states[name] = self._take_over(name)
            state.advance()  # the rows were current before this step
        state.add(gradient, learning_rate)

    def will_use_eigenbasis(self, name: str) -> bool:
        """Whether ``name``'s next row-sparse update this epoch goes to the eigenbasis (repeated rows allowed)."""
        state = self.states.get(name)
        return isinstance(state, EigenbasisRows) if state is not None else self._basis(name) is not None

    def _basis(self, name: str) -> Eigenbasis | None:
        """The eigenbasis ``name`` would be taken over in this epoch, or ``None`` (row clocks)."""
        return Eigenbasis.of(self._transitions[name]) if self.prefer_eigenbasis else None

    def _take_over(self, name: str) -> EigenbasisRows | ClockedRows:
        parameter, velocity, matrix = self.parameters[name], self.velocities[name], self._transitions[name]
        basis = self._basis(name)
        if basis is not None:
            state = EigenbasisRows(parameter, velocity, basis, self._storage.get(name))
            self._storage[name] = state.storage
            return state
        return ClockedRows(parameter, velocity, matrix, self._n_steps)

    def settle(self, name: str) -> None:
        """Write ``name`` back now (before a dense update of it): its tensor and velocity are current after this."""
        state = self.states.pop(name, None)
        if state is not None:
            state.finish()

    def finish(self) -> None:
        """Bring every row of every parameter to the end of the epoch; the epoch is then over."""
        for name in list(self.states):
            self.settle(name)
        self._transitions = {}

    def release(self) -> None:
        """Free the eigenbasis storage kept for the next epoch (training is over)."""
        self.finish()
        self._storage = {}

    def reader(self, name: str) -> RowReader:
        """How to read ``name``'s current rows now."""
        state = self.states.get(name)
        return CurrentRows(self.parameters[name]) if state is None else state


@dataclass(frozen=True)
class LaggingRows:
    """A parameter that the trainer may update lazily: read its current rows through this, never its tensor.

    Between epochs and before its first row-sparse update of an epoch it reads as stored; after that through
    the lazy state (:class:`EigenbasisRows` or :class:`ClockedRows`).
    """

    name: str
    lazy: LazyMomentum

    def gather(self, rows: Rows) -> torch.Tensor:
        return self.lazy.reader(self.name).gather(rows)

    def bag(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.lazy.reader(self.name).bag(rows, offsets)

    def block_products(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.lazy.reader(self.name).block_products(base, cases, hidden, block, offsets, order)

    def sampled_blocks(
        self,
        base: torch.Tensor,
        cases: torch.Tensor,
        hidden: torch.Tensor,
        block: int,
        uniforms: torch.Tensor,
        offsets: RowReader | None = None,
        order: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.lazy.reader(self.name).sampled_blocks(base, cases, hidden, block, uniforms, offsets, order)

    def coordinates(self) -> tuple[torch.Tensor, tuple[float, ...]] | None:
        return self.lazy.reader(self.name).coordinates()
