"""Annealed importance sampling (AIS) estimates of ``log Z`` for RBMs too large to enumerate.

Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks". AIS moves
``M`` independent runs from a base-rate model ``A`` (zero weights, visible biases ``b_A`` fitted to
the data's base rates, so ``Z_A`` is known in closed form) to the target model ``B`` through the
intermediate distributions, for ``0 = β_0 < β_1 < … < β_K = 1``,

    p_k*(v) = exp((1 − β_k) vᵀb_A + β_k vᵀb_B) · Π_j (1 + exp(β_k (W_jᵀ v + c_j))),

with ``Z_0 = Z_A = 2^H · Π_groups Σ_{v_g} exp(v_gᵀ b_A)``. Each run starts at ``v_1 ~ p_A`` and
accumulates the log importance weight ``Σ_k [log p_k*(v_k) − log p_{k−1}*(v_k)]`` while moving
``v_k → v_{k+1}`` by one Gibbs step (``h`` then ``v``) that leaves ``p_k`` invariant. Then
``r̂ = mean_m w_m`` estimates ``Z_B / Z_A`` without bias, and ``log Z_B ≈ log r̂ + log Z_A``.
Being an average of noisy weights, ``log r̂`` tends to underestimate ``log Z`` (and so to
overestimate log-likelihoods) when the runs are too few or the temperatures too coarse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recsys_rbm.errors import ConfigError
from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import RandomSource

# The schedule of Salakhutdinov & Murray (2008): β spaced uniformly in three intervals.
SCHEDULE = ((0.0, 0.5, 500), (0.5, 0.9, 4_000), (0.9, 1.0, 10_000))


def default_betas(n_intermediate: int = 14_500) -> torch.Tensor:
    """The inverse temperatures ``β_0 = 0 < … < β_K = 1`` of S&M's schedule; ``(K + 1,)`` float64.

    With ``K = 14,500`` the steps are 500 uniform in [0, 0.5], 4,000 in [0.5, 0.9] and 10,000 in
    [0.9, 1.0]; another ``K`` scales the three counts proportionally (at least one each).
    """
    if n_intermediate < len(SCHEDULE):
        raise ConfigError(f"AIS needs at least {len(SCHEDULE)} intermediate distributions, got {n_intermediate}")
    total = sum(count for _, _, count in SCHEDULE)
    counts = [max(1, round(n_intermediate * count / total)) for _, _, count in SCHEDULE[:-1]]
    counts.append(n_intermediate - sum(counts))
    pieces = [
        torch.linspace(low, high, count + 1, dtype=torch.float64)[:-1]
        for (low, high, _), count in zip(SCHEDULE, counts, strict=True)
    ]
    return torch.cat([*pieces, torch.ones(1, dtype=torch.float64)])


def base_rate_rbm(rbm: RBM, visible_mean: torch.Tensor | None = None) -> RBM:
    """The base-rate model ``A``: ``rbm``'s shape, zero weights and hidden biases, and visible
    biases that reproduce the data's mean ``visible_mean`` (D,) (uniform when it is ``None``)."""
    options = {"device": rbm.device, "dtype": rbm.dtype}
    return RBM(
        torch.zeros_like(rbm.weights),
        rbm.units.base_rate_bias(visible_mean).to(**options),
        torch.zeros_like(rbm.hidden_bias),
        rbm.units,
    )


def base_log_partition(base: RBM) -> float:
    """``log Z_A = H log 2 + Σ_groups log Σ_{v_g} exp(v_gᵀ b_A)`` for a model with zero weights."""
    bias = base.visible_bias.to(torch.float64)[None]  # (1, D)
    return base.n_hidden * math.log(2.0) + float(base.units.group_log_partition(bias).sum())


@dataclass
class AISResult:
    """An AIS estimate of ``log Z`` with the ±3σ bounds of Salakhutdinov & Murray (2008).

    ``lower`` and ``upper`` are ``log(r̂ ∓ 3σ̂) + log Z_A`` with ``σ̂`` the standard deviation of the
    importance weights over ``sqrt(M)``; ``lower`` is ``-inf`` when ``r̂ − 3σ̂ ≤ 0``. They describe
    the spread of the runs, not the bias of too short an annealing schedule.
    """

    log_z: float  # log r̂ + log Z_A
    lower: float  # log(r̂ − 3σ̂) + log Z_A, or -inf
    upper: float  # log(r̂ + 3σ̂) + log Z_A
    log_z_base: float  # log Z_A of the base-rate model
    n_runs: int  # M, the number of independent annealing runs
    n_intermediate: int  # K, the number of steps from β = 0 to β = 1
    log_weights: torch.Tensor  # (M,) float64 on the CPU: each run's log importance weight

    def summary(self) -> str:
        """One line such as ``log Z = 412.31 (411.98, 412.52), AIS with 100 runs × 14500 steps``."""
        return (
            f"log Z = {self.log_z:.2f} ({self.lower:.2f}, {self.upper:.2f}), "
            f"AIS with {self.n_runs} runs × {self.n_intermediate} steps"
        )


def _summarise(log_weights: torch.Tensor, log_z_base: float, n_intermediate: int) -> AISResult:
    """``r̂`` and its ±3σ̂ bounds, computed relative to the largest weight to avoid overflow."""
    n_runs = log_weights.numel()
    shift = float(log_weights.max())
    weights = torch.exp(log_weights - shift)  # (M,) in (0, 1]
    mean = float(weights.mean())
    spread = 3.0 * float(weights.std()) / math.sqrt(n_runs) if n_runs > 1 else 0.0
    offset = shift + log_z_base
    return AISResult(
        log_z=math.log(mean) + offset,
        lower=math.log(mean - spread) + offset if mean - spread > 0 else -math.inf,
        upper=math.log(mean + spread) + offset,
        log_z_base=log_z_base,
        n_runs=n_runs,
        n_intermediate=n_intermediate,
        log_weights=log_weights,
    )


def _softplus_increment(x: torch.Tensor, beta_prev: float, beta: float) -> torch.Tensor:
    """``Σ_j [softplus(β x_j) − softplus(β' x_j)]`` per run, in float64; ``(M, H) -> (M,)``.

    For the small steps of a real schedule the difference of two nearly equal softplus values would
    lose most of its digits, so it is computed as ``log1p(σ(β' x)·expm1((β − β') x))``, which is
    exact algebra and accurate to a few ulps of the (small) result even in float32. Coarse steps
    (over 0.01, where ``expm1`` could overflow) take the plain difference in float64.
    """
    step = beta - beta_prev
    if step <= 0.01:
        return torch.log1p(torch.sigmoid(beta_prev * x) * torch.expm1(step * x)).sum(-1, dtype=torch.float64)
    x64 = x.to(torch.float64)
    return (F.softplus(beta * x64) - F.softplus(beta_prev * x64)).sum(-1)


@torch.no_grad()
def ais_log_partition(
    rbm: RBM,
    generator: RandomSource,
    visible_mean: torch.Tensor | None = None,
    n_runs: int = 100,
    betas: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AISResult:
    """Estimate ``log Z`` of ``rbm`` by AIS from the base-rate model of ``visible_mean``.

    Parameters
    ----------
    rbm : the target model (Bernoulli or softmax visible units, no mask); its device runs the work.
    generator : a ``torch.Generator`` on ``rbm.device`` (or a ``recsys_rbm.rbm.rng.UniformStream``, faster
        on the CPU); the same seed gives the same estimate.
    visible_mean : (D,) the training data's mean, for the base-rate biases (``None``: uniform).
        A base model close to the data makes the weights far less variable.
    n_runs : ``M``, independent runs, advanced together as one (M, D) batch.
    betas : ``(K + 1,)`` increasing from 0 to 1; default :func:`default_betas` (K = 14,500).
    progress : called as ``progress(done, K)`` about a hundred times and at the end.

    Each step costs two (M, D)×(D, H) products plus elementwise work on (M, H) and (M, D), about
    ten kernels; the log weights are accumulated in float64 whatever the model's precision.
    """
    betas = default_betas() if betas is None else betas.detach().to("cpu", torch.float64).flatten()
    if betas.numel() < 2 or float(betas[0]) != 0.0 or float(betas[-1]) != 1.0 or bool((betas.diff() < 0).any()):
        raise ConfigError("AIS temperatures must increase from β = 0 to β = 1")
    if n_runs < 1:
        raise ConfigError(f"AIS needs at least one run, got n_runs={n_runs}")
    base = base_rate_rbm(rbm, visible_mean)
    log_z_base = base_log_partition(base)
    units, weights, hidden_bias = rbm.units, rbm.weights, rbm.hidden_bias
    base_bias = base.visible_bias  # b_A (D,)
    bias_step = rbm.visible_bias - base_bias  # b_B − b_A (D,)
    schedule = betas.tolist()
    n_steps = len(schedule) - 1
    report_every = max(1, n_steps // 100)

    v = units.sample(base_bias.repeat(n_runs, 1), generator)  # (M, D), v_1 ~ p_A
    log_weights = torch.zeros(n_runs, dtype=torch.float64, device=rbm.device)
    for k in range(1, n_steps + 1):
        beta_prev, beta = schedule[k - 1], schedule[k]
        # log p_k*(v) − log p_{k−1}*(v) = Δβ vᵀ(b_B − b_A) + Σ_j [softplus(β_k x_j) − softplus(β_{k−1} x_j)]
        x = fn.hidden_preactivation(v, weights, hidden_bias)  # (M, H), x = vᵀW + c
        log_weights += (beta - beta_prev) * (v @ bias_step).to(torch.float64)
        log_weights += _softplus_increment(x, beta_prev, beta)
        if k < n_steps:  # one Gibbs step that leaves p_k invariant: h ~ p_k(h | v), then v ~ p_k(v | h)
            h = fn.sample_hidden(torch.sigmoid(beta * x), generator)  # (M, H)
            visible_bias = torch.add(base_bias, bias_step, alpha=beta)  # (1 − β) b_A + β b_B
            v = units.sample(torch.addmm(visible_bias, h, weights.T, alpha=beta), generator)  # (M, D)
        if progress is not None and (k % report_every == 0 or k == n_steps):
            progress(k, n_steps)
    return _summarise(log_weights.cpu(), log_z_base, n_steps)
