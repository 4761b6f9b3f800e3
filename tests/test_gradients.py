"""The learning rule, checked against autograd and against the exact log-likelihood gradient.

``∂ mean log p(v)/∂W = <v p(h|v)ᵀ>_data − E_{p(v)}[v p(h|v)ᵀ]``. CD-k replaces the model expectation
by the end of a k-step Gibbs chain started at the data. On a tiny model the Gibbs transition matrix
over all visible states is known, so the *expected* CD-k gradient is computed exactly and compared
both with the exact gradient (the bias shrinks as k grows) and with the sampler (which must match
its own expectation).
"""

import pytest
import torch
from tiny_rbms import BERNOULLI, MIXED, SOFTMAX, joint_minus_energy, random_rbm

from recsys_rbm.evaluation import log_likelihood, visible_states
from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.gibbs import chain_from_visible
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import DenseObjective, contrastive_gradient, negative_phase
from recsys_rbm.train.gradients import Gradient
from recsys_rbm.train.trainer import Trainer


def _as_tuple(gradient: Gradient) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return gradient["weights"], gradient["visible_bias"], gradient["hidden_bias"]


def _random_visible(rbm, n, seed, mask=None):
    generator = make_generator(seed)
    h = torch.bernoulli(torch.full((n, rbm.n_hidden), 0.5, dtype=torch.float64), generator=generator)
    return rbm.sample_visible(h, generator, mask)


# --- closed form vs autograd of the free-energy gap -------------------------------------------


@pytest.mark.parametrize(
    ("units", "masked"), [(BERNOULLI, False), (SOFTMAX, True), (MIXED, True)], ids=["bernoulli", "masked", "mixed"]
)
def test_contrastive_gradient_is_minus_autograd_of_the_free_energy_gap(units, masked):
    rbm = random_rbm(units)
    data_mask = torch.rand(9, units.n_groups, generator=make_generator(5)) < 0.6 if masked else None
    chain_mask = torch.rand(13, units.n_groups, generator=make_generator(6)) < 0.6 if masked else None
    data = _random_visible(rbm, 9, seed=1, mask=data_mask)
    chain_end = _random_visible(rbm, 13, seed=2, mask=chain_mask)

    params = [p.clone().requires_grad_() for p in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)]
    gap = (
        fn.free_energy(data, *params, units, data_mask).mean()
        - fn.free_energy(chain_end.detach(), *params, units, chain_mask).mean()
    )
    autograd = torch.autograd.grad(gap, params)

    closed_form = contrastive_gradient(
        data, rbm.hidden_probability(data, data_mask), chain_end, rbm.hidden_probability(chain_end, chain_mask)
    )
    for ours, theirs in zip(_as_tuple(closed_form), autograd, strict=True):
        torch.testing.assert_close(ours, -theirs)


# --- the exact log-likelihood gradient, and CD-k's approach to it ----------------------------


def exact_gradient(rbm: RBM, data: torch.Tensor) -> Gradient:
    """``<v p(h|v)ᵀ>_data − Σ_v p(v) v p(h|v)ᵀ`` with ``p(v)`` by enumeration (no mask)."""
    states = visible_states(rbm.units)
    return expected_gradient(rbm, data, torch.exp(log_likelihood(rbm, states)))


def expected_gradient(rbm: RBM, data: torch.Tensor, model_distribution: torch.Tensor) -> Gradient:
    """The contrastive gradient with the model term averaged over visible states with the given weights."""
    states = visible_states(rbm.units)
    weighted = model_distribution[:, None]  # (Nv, 1)
    h_states = rbm.hidden_probability(states)
    data_hidden = rbm.hidden_probability(data)
    return {
        "weights": data.T @ data_hidden / data.shape[0] - states.T @ (weighted * h_states),
        "visible_bias": data.mean(0) - (weighted * states).sum(0),
        "hidden_bias": data_hidden.mean(0) - (weighted * h_states).sum(0),
    }


def gibbs_transition_matrix(rbm: RBM) -> torch.Tensor:
    """``T[v, v'] = Σ_h p(h|v) p(v'|h)``, the visible-to-visible block Gibbs kernel; (Nv, Nv)."""
    _, _, minus_energy = joint_minus_energy(rbm)
    return torch.softmax(minus_energy, dim=1) @ torch.softmax(minus_energy, dim=0).T


def _strong_model_and_data(units=None):
    """A model whose chains mix slowly (so CD-1 is visibly biased) and data from four prototypes."""
    rbm = random_rbm(BernoulliUnits(6) if units is None else units, n_hidden=4, seed=3, weight_scale=2.0)
    states = visible_states(rbm.units)
    data = states[torch.tensor([3, 3, 12, 40, 40, 40, 58, 63])]
    return rbm, data


def _cd_k_expected_gradient(rbm, data, k):
    states = visible_states(rbm.units)
    data_distribution = (data[:, None, :] == states[None]).all(-1).double().mean(0)  # (Nv,)
    chain_end = data_distribution @ torch.linalg.matrix_power(gibbs_transition_matrix(rbm), k)
    return expected_gradient(rbm, data, chain_end)


def _distance(a: Gradient, b: Gradient) -> float:
    return float(sum(((x - y) ** 2).sum() for x, y in zip(_as_tuple(a), _as_tuple(b), strict=True)).sqrt())


@pytest.mark.parametrize("units", [None, MIXED], ids=["bernoulli", "mixed"])
def test_exact_gradient_by_enumeration_is_autograd_of_the_exact_log_likelihood(units):
    rbm, data = _strong_model_and_data(units)
    states = visible_states(rbm.units)
    params = [p.clone().requires_grad_() for p in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)]
    log_z = torch.logsumexp(-fn.free_energy(states, *params, rbm.units), dim=0)
    mean_log_likelihood = (-fn.free_energy(data, *params, rbm.units)).mean() - log_z
    autograd = torch.autograd.grad(mean_log_likelihood, params)
    for ours, theirs in zip(_as_tuple(exact_gradient(rbm, data)), autograd, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_expected_cd_k_gradient_approaches_the_exact_gradient_as_k_grows():
    rbm, data = _strong_model_and_data()
    exact = exact_gradient(rbm, data)
    errors = [_distance(_cd_k_expected_gradient(rbm, data, k), exact) for k in (1, 2, 5, 25, 200)]
    assert errors[0] > 0.3  # CD-1 is clearly biased on this model (the exact gradient's entries are ~0.3)
    assert errors[0] > errors[1] > errors[2] > errors[3] > 0
    assert errors[4] < 1e-8  # a long enough chain is as good as the exact model expectation


@pytest.mark.parametrize("k", [1, 5])
def test_cd_k_sampler_averages_to_its_exact_expectation(k):
    rbm, data = _strong_model_and_data()
    repeats = 2500
    batch = data.repeat(repeats, 1)  # (8·repeats, D)
    generator = make_generator(k)
    end = negative_phase(rbm, chain_from_visible(rbm, batch, generator), k, generator)
    estimate = contrastive_gradient(batch, rbm.hidden_probability(batch), end.visible, end.hidden_probability)
    expected = _cd_k_expected_gradient(rbm, data, k)
    exact = exact_gradient(rbm, data)
    # The per-chain model terms v p(h|v)ᵀ give the standard error of their mean.
    per_chain = end.visible[:, :, None] * end.hidden_probability[:, None, :]  # (N, D, H)
    standard_error = per_chain.std(0) / batch.shape[0] ** 0.5 + 1e-12
    assert bool(((estimate["weights"] - expected["weights"]).abs() <= 5 * standard_error).all())
    if k == 1:  # ... and that expectation is measurably not the exact gradient
        assert bool(((estimate["weights"] - exact["weights"]).abs() > 10 * standard_error).any())


# --- the trainer applies exactly that rule ----------------------------------------------------


def test_trainer_update_moves_parameters_by_learning_rate_times_the_contrastive_gradient():
    rbm = random_rbm(BERNOULLI, n_hidden=5, seed=4)
    config = TrainConfig(batch_size=8, persistent=True, n_chains=12, cd_k=2, weight_decay=0.01)
    objective = DenseObjective(rbm, torch.zeros(1, rbm.n_visible, dtype=rbm.dtype), config)
    trainer = Trainer(objective, config, make_generator(0))
    learning_rate, decay = 0.1, config.weight_decay
    velocity = None
    for step, momentum in enumerate([0.0, 0.5]):
        batch = _random_visible(rbm, 8, seed=10 + step)
        before = RBM(*(p.clone() for p in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)), rbm.units)
        trainer.step(batch, learning_rate, momentum, config.cd_k)
        chain = objective.persistent_chain  # the negative phase this update used
        assert chain.visible.shape[0] == 12
        torch.testing.assert_close(chain.hidden_probability, before.hidden_probability(chain.visible))
        data_hidden = before.hidden_probability(batch)
        gradient = contrastive_gradient(batch, data_hidden, chain.visible, chain.hidden_probability)
        step_now = (
            learning_rate * (gradient["weights"] - decay * before.weights),
            learning_rate * gradient["visible_bias"],
            learning_rate * gradient["hidden_bias"],
        )
        if velocity is not None:
            step_now = tuple(momentum * old + new for old, new in zip(velocity, step_now, strict=True))
        for name, delta in zip(("weights", "visible_bias", "hidden_bias"), step_now, strict=True):
            moved = getattr(rbm, name) - getattr(before, name)
            torch.testing.assert_close(moved, delta, rtol=1e-10, atol=1e-12)
        velocity = step_now
