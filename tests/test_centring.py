"""The centred RBM: its steps, taken in ordinary coordinates, are the centred algorithm's.

A centred RBM (energy ``−(v − μ)ᵀb − (h − λ)ᵀc − (v − μ)ᵀW(h − λ)``) is the ordinary RBM with
``b₀ = b − Wλ`` and ``c₀ = c − Wᵀμ``. The trainer keeps ``(W, b₀, c₀)`` and takes the step
:func:`~recsys_rbm.train.dense.centred_gradient`. Checked three ways on tiny float64 models: with zero
offsets it is the plain rule bit for bit; one step equals the centred update written out in centred
coordinates (as the research code did it) and converted; with the exact model term it is the exact
log-likelihood's gradient in centred coordinates, converted, and so an ascent direction.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_gradients import _strong_model_and_data, exact_gradient
from tiny_rbms import BERNOULLI, random_rbm

from recsys_rbm.errors import ConfigError
from recsys_rbm.evaluation import visible_states
from recsys_rbm.io.checkpoint import load_rbm, save_rbm
from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.model import RBM
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import DenseObjective, Offsets, centred_gradient
from recsys_rbm.train.trainer import Trainer

CENTRED = TrainConfig(
    batch_size=8,
    persistent=True,
    n_chains=6,
    initial_momentum=0.0,
    final_momentum=0.0,
    weight_decay=0.01,
    centring=True,
    offset_rate=0.1,
)


def _data(n: int = 40, n_visible: int = 7, seed: int = 1) -> torch.Tensor:
    return (torch.rand(n, n_visible, generator=make_generator(seed), dtype=torch.float64) < 0.4).double()


def _copy(rbm: RBM) -> RBM:
    return RBM(rbm.weights.clone(), rbm.visible_bias.clone(), rbm.hidden_bias.clone(), rbm.units)


def test_zero_offsets_that_never_move_are_the_plain_rule_bit_for_bit():
    data = _data()
    plain_rbm, centred_rbm = random_rbm(BERNOULLI, seed=2), random_rbm(BERNOULLI, seed=2)
    plain_config = dataclasses.replace(CENTRED, centring=False, epochs=3, final_momentum=0.5)
    centred_config = dataclasses.replace(plain_config, centring=True, offset_rate=0.0)
    centred = DenseObjective(centred_rbm, data, centred_config)
    centred.offsets.visible.zero_()
    centred.offsets.hidden.zero_()
    Trainer(DenseObjective(plain_rbm, data, plain_config), plain_config, make_generator(3)).fit()
    Trainer(centred, centred_config, make_generator(3)).fit()
    for name, parameter in plain_rbm.parameters().items():
        assert torch.equal(centred_rbm.parameters()[name], parameter), name
    assert not torch.equal(plain_rbm.weights, random_rbm(BERNOULLI, seed=2).weights)  # training moved them


def test_a_step_is_the_centred_update_written_out_in_centred_coordinates():
    data = _data()
    rbm = random_rbm(BERNOULLI, seed=4, weight_scale=0.5)
    objective = DenseObjective(rbm, data, CENTRED)
    generator = make_generator(5)
    objective.offsets = Offsets(  # offsets away from their start, so every term of the update counts
        torch.rand(7, generator=generator, dtype=torch.float64), torch.rand(5, generator=generator, dtype=torch.float64)
    )
    trainer = Trainer(objective, CENTRED, make_generator(6))
    learning_rate, decay, rate = 0.3, CENTRED.weight_decay, CENTRED.offset_rate
    for step in range(3):
        batch = data[8 * step : 8 * step + 8]
        mu, lam = objective.offsets.visible.clone(), objective.offsets.hidden.clone()
        # The centred parameters of the model as it stands: W, b = b₀ + Wλ, c = c₀ + Wᵀμ.
        w = rbm.weights.clone()
        b, c = rbm.visible_bias + w @ lam, rbm.hidden_bias + w.T @ mu
        data_hidden = torch.sigmoid(batch @ w + rbm.hidden_bias)
        trainer.step(batch, learning_rate, 0.0, 1)
        chain = objective.persistent_chain.visible  # the negative phase this update used
        chain_hidden = torch.sigmoid(chain @ w + (c - w.T @ mu))
        # The research code's update, in centred coordinates ...
        g_w = (batch - mu).T @ (data_hidden - lam) / 8 - (chain - mu).T @ (chain_hidden - lam) / 6
        w_new = w + learning_rate * (g_w - decay * w)
        b_new = b + learning_rate * (batch.mean(0) - chain.mean(0))
        c_new = c + learning_rate * (data_hidden.mean(0) - chain_hidden.mean(0))
        mu_new = (1 - rate) * mu + rate * batch.mean(0)
        lam_new = (1 - rate) * lam + rate * data_hidden.mean(0)
        c_new = c_new + w_new.T @ (mu_new - mu)  # the offsets move, the model does not
        b_new = b_new + w_new @ (lam_new - lam)
        # ... converted to ordinary coordinates.
        exact = {"weights": w_new, "visible_bias": b_new - w_new @ lam_new, "hidden_bias": c_new - w_new.T @ mu_new}
        for name, value in exact.items():
            torch.testing.assert_close(rbm.parameters()[name], value, rtol=1e-12, atol=1e-12, msg=name)
        torch.testing.assert_close(objective.offsets.visible, mu_new, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(objective.offsets.hidden, lam_new, rtol=1e-12, atol=1e-12)


def test_with_the_exact_model_term_it_is_the_centred_log_likelihood_gradient_and_ascends():
    rbm, data = _strong_model_and_data()
    generator = make_generator(7)
    offsets = Offsets(
        torch.rand(6, generator=generator, dtype=torch.float64), torch.rand(4, generator=generator, dtype=torch.float64)
    )
    mu, lam = offsets.visible, offsets.hidden
    # The exact mean log-likelihood as a function of the centred parameters (W, b, c), by autograd.
    centred = [
        rbm.weights.clone().requires_grad_(),
        (rbm.visible_bias + rbm.weights @ lam).requires_grad_(),
        (rbm.hidden_bias + rbm.weights.T @ mu).requires_grad_(),
    ]
    w, b, c = centred
    states = visible_states(rbm.units)
    ordinary = (w, b - w @ lam, c - w.T @ mu)
    log_z = torch.logsumexp(-fn.free_energy(states, *ordinary, rbm.units), dim=0)
    mean_log_likelihood = (-fn.free_energy(data, *ordinary, rbm.units)).mean() - log_z
    d_w, d_b, d_c = torch.autograd.grad(mean_log_likelihood, centred)
    plain = exact_gradient(rbm, data)
    step = centred_gradient(plain, offsets, rbm.weights, weight_decay=0.0)
    torch.testing.assert_close(step["weights"], d_w)  # the centred weight gradient <(v−μ)(h−λ)ᵀ> − <·>_model
    torch.testing.assert_close(step["visible_bias"], d_b - d_w @ lam)  # converted to b₀ = b − Wλ
    torch.testing.assert_close(step["hidden_bias"], d_c - d_w.T @ mu)  # and c₀ = c − Wᵀμ
    ascent = sum(float((step[name] * plain[name]).sum()) for name in plain)
    assert ascent > 0  # J Jᵀ g · g = |Jᵀ g|²
    moved = _copy(rbm)
    for name, parameter in moved.parameters().items():
        parameter.add_(step[name], alpha=1e-3)
    assert _mean_log_likelihood(moved, data) > _mean_log_likelihood(rbm, data)


def _mean_log_likelihood(rbm: RBM, data: torch.Tensor) -> float:
    log_z = torch.logsumexp(-rbm.free_energy(visible_states(rbm.units)), dim=0)
    return float((-rbm.free_energy(data)).mean() - log_z)


def test_offsets_start_at_the_data_mean_and_one_half_and_travel_in_the_checkpoint(tmp_path):
    data = _data()
    rbm = random_rbm(BERNOULLI, seed=8)
    objective = DenseObjective(rbm, data, CENTRED)
    torch.testing.assert_close(objective.offsets.visible, data.mean(0))
    assert torch.equal(objective.offsets.hidden, torch.full((5,), 0.5, dtype=torch.float64))
    Trainer(objective, dataclasses.replace(CENTRED, epochs=1), make_generator(9)).fit()
    path = save_rbm(tmp_path / "centred.safetensors", rbm, {"kind": "test"}, objective.state_dict())
    loaded, _, extra = load_rbm(path)
    resumed = DenseObjective(loaded, data, CENTRED)
    resumed.load_state_dict(extra)
    assert torch.equal(resumed.offsets.visible, objective.offsets.visible)
    assert torch.equal(resumed.offsets.hidden, objective.offsets.hidden)
    assert torch.equal(resumed.persistent_chain.visible, objective.persistent_chain.visible)
    assert not torch.equal(objective.offsets.visible, data.mean(0))  # they followed the batches


def test_an_offset_rate_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigError, match="offset_rate"):
        TrainConfig(centring=True, offset_rate=1.5)
