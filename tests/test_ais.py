"""Annealed importance sampling against exact enumeration.

The target is a model trained briefly on noisy prototypes (30 visible, 20 hidden units: strong,
structured weights like a real model's), whose ``log Z`` is exact by summing over 2^20 hidden
states; and a small softmax model, exact over its visible states.
"""

import math

import pytest
import torch
from tiny_rbms import random_rbm

from recsys_rbm.errors import ConfigError
from recsys_rbm.evaluation import (
    ais_log_partition,
    base_log_partition,
    base_rate_rbm,
    default_betas,
    log_partition,
)
from recsys_rbm.evaluation.ais import _softplus_increment
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits, VisibleLayer
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import train_dense


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Thousands of small steps: one thread avoids contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained():
    """A 30×20 Bernoulli RBM trained with CD-1 on six noisy prototypes, its data, and its exact log Z."""
    generator = make_generator(0)
    prototypes = (torch.rand(6, 30, generator=generator) < 0.5).double()
    data = prototypes[torch.randint(0, 6, (600,), generator=generator)]
    data = torch.where(torch.rand(data.shape, generator=generator) < 0.05, 1 - data, data)
    rbm = RBM.initialise(BernoulliUnits(30), 20, generator, visible_mean=data.mean(0), dtype=torch.float64)
    train_dense(rbm, data, TrainConfig(epochs=30, batch_size=20, learning_rate=0.1, monitor_size=100), generator)
    assert float(rbm.weights.abs().max()) > 2.0  # far from the base-rate model: a real test of the annealing
    return rbm, data, log_partition(rbm)


def test_default_betas_follow_the_salakhutdinov_murray_schedule():
    betas = default_betas()
    assert betas.shape == (14_501,)
    assert betas[0] == 0.0 and betas[-1] == 1.0
    assert bool((betas.diff() > 0).all())
    steps_ending_in = [int(((betas[1:] > low) & (betas[1:] <= high)).sum()) for low, high in [(0, 0.5), (0.5, 0.9)]]
    assert steps_ending_in == [500, 4000]
    assert int((betas[1:] > 0.9).sum()) == 10_000
    smaller = default_betas(1450)
    assert smaller.shape == (1451,)
    assert [int((smaller[1:] <= 0.5).sum()), int((smaller[1:] > 0.9).sum())] == [50, 1000]


def test_base_rate_model_log_partition_is_exact():
    rbm = random_rbm(SoftmaxUnits(3, 4), n_hidden=4)
    mean = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.7, 0.1, 0.1, 0.1, 0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    base = base_rate_rbm(rbm, mean)
    assert torch.equal(base.weights, torch.zeros_like(rbm.weights))
    torch.testing.assert_close(base.visible_mean(torch.zeros(1, 4, dtype=torch.float64))[0], mean)
    assert base_log_partition(base) == pytest.approx(log_partition(base), abs=1e-12)


def test_ais_estimate_lies_within_its_bounds_of_the_exact_log_z(trained):
    rbm, data, exact = trained
    result = ais_log_partition(rbm, make_generator(1), data.mean(0), n_runs=100, betas=default_betas(1000))
    assert result.lower <= exact <= result.upper
    assert result.log_z == pytest.approx(exact, abs=0.5)
    assert result.lower <= result.log_z <= result.upper
    assert result.upper - result.lower < 1.0  # the bounds say something
    assert (result.n_runs, result.n_intermediate, result.log_weights.shape) == (100, 1000, (100,))
    assert result.log_weights.dtype == torch.float64


def test_ais_of_a_float32_model_accumulates_in_float64(trained):
    rbm, data, exact = trained
    result = ais_log_partition(rbm.to(dtype=torch.float32), make_generator(1), data.mean(0), 100, default_betas(1000))
    assert result.log_z == pytest.approx(exact, abs=0.5)
    assert result.log_weights.dtype == torch.float64


def test_ais_on_softmax_units_matches_enumeration():
    rbm = random_rbm(SoftmaxUnits(6, 4), n_hidden=10, seed=2, weight_scale=1.0)
    exact = log_partition(rbm)
    result = ais_log_partition(rbm, make_generator(0), n_runs=100, betas=default_betas(500))
    assert result.lower <= exact <= result.upper
    assert result.log_z == pytest.approx(exact, abs=0.2)


def test_ais_on_a_mixed_layer_matches_enumeration():
    """Bernoulli units beside softmax groups, as in the joint recommender: AIS needs nothing unit-specific."""
    layer = VisibleLayer((BernoulliUnits(5), SoftmaxUnits(4, 3)))
    rbm = random_rbm(layer, n_hidden=8, seed=3, weight_scale=1.0)
    exact = log_partition(rbm)
    result = ais_log_partition(rbm, make_generator(0), n_runs=100, betas=default_betas(500))
    assert result.lower <= exact <= result.upper
    assert result.log_z == pytest.approx(exact, abs=0.2)


def test_ais_is_deterministic_for_a_seed_and_varies_across_seeds():
    rbm = random_rbm(BernoulliUnits(8), n_hidden=6, seed=1)
    first, again, other = (
        ais_log_partition(rbm, make_generator(seed), n_runs=20, betas=default_betas(60)) for seed in (5, 5, 6)
    )
    assert torch.equal(first.log_weights, again.log_weights)
    assert first.log_z == again.log_z
    assert not torch.equal(first.log_weights, other.log_weights)


def test_ais_reports_progress_and_rejects_bad_settings():
    rbm = random_rbm(BernoulliUnits(8), n_hidden=6)
    calls = []
    ais_log_partition(rbm, make_generator(0), n_runs=4, betas=default_betas(250), progress=lambda *a: calls.append(a))
    assert calls[-1] == (250, 250)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})
    with pytest.raises(ConfigError, match="β"):
        ais_log_partition(rbm, make_generator(0), betas=torch.tensor([0.0, 0.7, 0.5, 1.0]))
    with pytest.raises(ConfigError, match="β"):
        ais_log_partition(rbm, make_generator(0), betas=torch.linspace(0.1, 1.0, 10))
    with pytest.raises(ConfigError, match="run"):
        ais_log_partition(rbm, make_generator(0), n_runs=0, betas=default_betas(10))


def test_bounds_are_three_standard_errors_of_the_mean_weight():
    rbm = random_rbm(BernoulliUnits(8), n_hidden=6, weight_scale=2.0)
    result = ais_log_partition(rbm, make_generator(0), n_runs=30, betas=default_betas(20))
    weights = torch.exp(result.log_weights)
    mean, spread = float(weights.mean()), 3 * float(weights.std()) / math.sqrt(30)
    assert result.log_z == pytest.approx(math.log(mean) + result.log_z_base, abs=1e-9)
    assert result.upper == pytest.approx(math.log(mean + spread) + result.log_z_base, abs=1e-9)
    expected_lower = math.log(mean - spread) + result.log_z_base if mean > spread else -math.inf
    assert result.lower == pytest.approx(expected_lower, abs=1e-9)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none is visible)")
def test_ais_on_cuda_matches_enumeration(trained):
    rbm, data, exact = trained
    gpu = rbm.to("cuda", torch.float32)
    result = ais_log_partition(gpu, make_generator(0, "cuda"), data.mean(0).cuda(), 100, default_betas(1000))
    assert result.log_z == pytest.approx(exact, abs=0.5)
    assert log_partition(gpu) == pytest.approx(exact, abs=1e-3)


def test_with_one_step_ais_is_plain_importance_sampling_and_still_unbiased():
    rbm = random_rbm(BernoulliUnits(8), n_hidden=6, weight_scale=0.5)
    result = ais_log_partition(rbm, make_generator(0), n_runs=20_000, betas=torch.tensor([0.0, 1.0]))
    assert result.lower <= log_partition(rbm) <= result.upper
    assert result.log_z == pytest.approx(log_partition(rbm), abs=0.05)


def test_the_log_weight_increment_is_accurate_in_float32_for_small_steps():
    x = torch.linspace(-60, 60, 2001, dtype=torch.float64)[None]  # (1, H)
    for beta_prev, beta in [(0.3, 0.3001), (0.95, 0.95001), (0.0, 0.005)]:
        exact = (torch.nn.functional.softplus(beta * x) - torch.nn.functional.softplus(beta_prev * x)).sum(-1)
        single = _softplus_increment(x.float(), beta_prev, beta)
        assert single.dtype == torch.float64
        assert float((single - exact).abs()) < 1e-6 * float(exact.abs())
