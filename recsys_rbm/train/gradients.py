"""The gradient types the trainer updates from: dense tensors, and row-sparse ones (a leaf module).

An objective returns a :data:`Gradient` per batch: an ascent direction of the log-likelihood per
parameter name, either a full tensor or :class:`SparseRows` when only some rows are nonzero (the
recommender's rated rows). :class:`CaseFactors` keeps the recommender's row values factored (each
row is one case's vector, scaled), so that an update can add them without forming them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CaseFactors:
    """Row values that are each one case's vector, scaled: ``values[i] = weights[i] · per_case[cases[i]]``."""

    per_case: torch.Tensor  # (P, *row_shape)
    cases: torch.Tensor  # (R,) int64 in 0..P-1
    weights: torch.Tensor | None = None  # (R,); None: all ones

    def values(self) -> torch.Tensor:
        """The (R, *row_shape) values, formed."""
        out = self.per_case.index_select(0, self.cases)
        return out if self.weights is None else out.mul_(self.weights.view(-1, *([1] * (out.dim() - 1))))


class SparseRows:
    """A gradient that is zero outside some rows: ``values[i]`` adds to row ``rows[i]`` of a tensor of ``shape``.

    Rows may repeat (``coalesced=False``; the repeats add up) or be unique (``coalesced=True``). The values are
    given as a tensor, or as :class:`CaseFactors` (formed only when something reads :attr:`values`).
    """

    def __init__(
        self,
        rows: torch.Tensor,
        values: torch.Tensor | None = None,
        shape: torch.Size | tuple[int, ...] = (),
        coalesced: bool = True,
        *,
        factors: CaseFactors | None = None,
    ) -> None:
        if (values is None) == (factors is None):
            raise ValueError("SparseRows takes its values or their factors, not both")
        self.rows, self.shape, self.coalesced = rows, torch.Size(shape), coalesced  # rows (R,) int64
        self.factors = factors
        self._values = values  # (R, *shape[1:]) once formed

    @property
    def values(self) -> torch.Tensor:
        """The (R, *shape[1:]) values (formed from the factors at the first read)."""
        if self._values is None:
            assert self.factors is not None
            self._values = self.factors.values()
        return self._values

    def as_factors(self) -> CaseFactors:
        """The values as :class:`CaseFactors` (values given as a tensor are their own per-case rows)."""
        if self.factors is not None:
            return self.factors
        return CaseFactors(self.values, torch.arange(self.rows.shape[0], device=self.rows.device))

    @classmethod
    def joined(cls, parts: list[SparseRows], shape: torch.Size | tuple[int, ...]) -> SparseRows:
        """The sum of ``parts`` as one gradient with repeated rows, its values still factored: the parts'
        per-case tables stacked, and each part's cases moved past the tables before it."""
        factors = [part.as_factors() for part in parts]
        shifts = torch.tensor([0] + [f.per_case.shape[0] for f in factors[:-1]]).cumsum(0).tolist()
        weighted = any(f.weights is not None for f in factors)
        joined = CaseFactors(
            torch.cat([f.per_case for f in factors]),
            torch.cat([f.cases + shift for f, shift in zip(factors, shifts, strict=True)]),
            torch.cat([_weights_of(f) for f in factors]) if weighted else None,
        )
        return cls(torch.cat([part.rows for part in parts]), None, shape, coalesced=False, factors=joined)

    def with_values(self, values: torch.Tensor) -> SparseRows:
        """The same rows with other values."""
        return SparseRows(self.rows, values, self.shape, self.coalesced)

    @classmethod
    def accumulate(cls, rows: torch.Tensor, values: torch.Tensor, shape: torch.Size) -> SparseRows:
        """Sum ``values`` of repeated ``rows`` into one entry per distinct row."""
        unique, inverse = torch.unique(rows, return_inverse=True)
        summed = torch.zeros((unique.shape[0], *values.shape[1:]), dtype=values.dtype, device=values.device)
        return cls(unique, summed.index_add_(0, inverse, values), torch.Size(shape))

    def coalesce(self) -> SparseRows:
        """The same gradient with each row once."""
        return self if self.coalesced else SparseRows.accumulate(self.rows, self.values, self.shape)

    def dense(self) -> torch.Tensor:
        """The full tensor (zeros outside ``rows``)."""
        out = torch.zeros(self.shape, dtype=self.values.dtype, device=self.values.device)
        return out.index_add_(0, self.rows, self.values)


def _weights_of(factors: CaseFactors) -> torch.Tensor:
    """The factors' weights, ones where they have none."""
    if factors.weights is not None:
        return factors.weights
    return torch.ones(factors.cases.shape[0], dtype=factors.per_case.dtype, device=factors.per_case.device)


#: An ascent direction of the log-likelihood: parameter name -> a tensor of that parameter's shape, or
#: :class:`SparseRows` when only some rows are nonzero (the recommender's rated rows).
Gradient = dict[str, "torch.Tensor | SparseRows"]


def dense_gradient(gradient: Gradient) -> dict[str, torch.Tensor]:
    """Every entry as a full tensor (for all-reducing across processes, and for tests)."""
    return {name: g.dense() if isinstance(g, SparseRows) else g for name, g in gradient.items()}
