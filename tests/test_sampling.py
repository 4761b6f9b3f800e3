"""Statistical identities of the samplers: sample means approach the conditional means.

Tolerances are five standard errors of a mean of ``N`` independent draws, ``5·sqrt(p(1 − p)/N)``,
so a correct sampler fails them with probability well under one in a million per entry, while a
wrong probability (off by more than a few hundredths) fails them.
"""

import pytest
import torch
from tiny_rbms import BERNOULLI, MIXED, MIXED_MASK, SOFTMAX, SOFTMAX_MASK, joint_minus_energy, random_rbm

from recsys_rbm.rbm.gibbs import chain_from_visible, run_chain
from recsys_rbm.rbm.units import SoftmaxUnits
from recsys_rbm.runtime import make_generator

CASES = [(BERNOULLI, None), (SOFTMAX, None), (SOFTMAX, SOFTMAX_MASK), (MIXED, MIXED_MASK)]
IDS = ["bernoulli", "softmax", "masked-softmax", "masked-mixed"]
N_DRAWS = 20_000


def assert_mean_matches(samples: torch.Tensor, probability: torch.Tensor) -> None:
    """``samples`` (N, ...) of 0/1 values have means within 5 standard errors of ``probability``."""
    n = samples.shape[0]
    tolerance = 5 * torch.sqrt(probability * (1 - probability) / n) + 1e-12
    error = (samples.mean(0) - probability).abs()
    assert bool((error <= tolerance).all()), f"largest error {float((error - tolerance).max()):+.4f} over tolerance"


def _conditioning_states(rbm, n, seed):
    generator = make_generator(seed)
    h = torch.bernoulli(torch.full((n, rbm.n_hidden), 0.5, dtype=torch.float64), generator=generator)
    return rbm.sample_visible(h, generator), h


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_mean_of_hidden_samples_approaches_p_h_given_v(units, mask):
    rbm = random_rbm(units, weight_scale=1.0)
    v, _ = _conditioning_states(rbm, 3, seed=1)
    mask = None if mask is None else mask.expand(N_DRAWS * 3, -1)
    draws = rbm.sample_hidden(v.repeat(N_DRAWS, 1), make_generator(2), mask).view(N_DRAWS, 3, -1)
    assert_mean_matches(draws, rbm.hidden_probability(v, None if mask is None else mask[:3]))


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_mean_of_visible_samples_approaches_p_v_given_h(units, mask):
    rbm = random_rbm(units, weight_scale=1.0)
    _, h = _conditioning_states(rbm, 3, seed=1)
    mask = None if mask is None else mask.expand(N_DRAWS * 3, -1)
    draws = rbm.sample_visible(h.repeat(N_DRAWS, 1), make_generator(2), mask).view(N_DRAWS, 3, -1)
    assert_mean_matches(draws, rbm.visible_mean(h, None if mask is None else mask[:3]))


def test_softmax_samples_are_one_hot_in_present_groups_and_zero_in_masked_ones():
    rbm = random_rbm(SOFTMAX, weight_scale=3.0)
    generator = make_generator(0)
    mask = torch.rand(500, SOFTMAX.n_groups, generator=generator) < 0.5
    h = torch.bernoulli(torch.full((500, rbm.n_hidden), 0.5, dtype=torch.float64), generator=generator)
    (block,) = SOFTMAX.blocks
    v = rbm.sample_visible(h, generator, mask).view(500, block.n_groups, block.n_levels)
    assert bool(((v == 0) | (v == 1)).all())
    assert torch.equal(v.sum(-1), mask.double())


def test_softmax_sampler_draws_every_level_with_its_probability_even_when_extreme():
    units = SoftmaxUnits(1, 4)
    preactivation = torch.tensor([[0.0, -30.0, 2.0, -1.0]], dtype=torch.float64).expand(N_DRAWS, -1)
    draws = units.sample(preactivation, make_generator(0))
    assert_mean_matches(draws, torch.softmax(preactivation[0], -1))
    assert float(draws[:, 1].sum()) == 0  # probability 1e-14: never drawn


@pytest.mark.parametrize("units", [BERNOULLI, MIXED], ids=["bernoulli", "mixed"])
def test_gibbs_chains_reach_the_exact_model_marginals(units):
    rbm = random_rbm(units, n_hidden=4, weight_scale=0.7)
    v_states, h_states, minus_energy = joint_minus_energy(rbm)
    joint = torch.softmax(minus_energy.flatten(), 0).view_as(minus_energy)  # p(v, h) (Nv, Nh)
    n_chains = 4000
    start = rbm.sample_visible(torch.zeros(n_chains, rbm.n_hidden, dtype=torch.float64), make_generator(1))
    generator = make_generator(0)
    chain = run_chain(rbm, chain_from_visible(rbm, start, generator), 100, generator)
    assert_mean_matches(chain.visible, joint.sum(1) @ v_states)
    assert_mean_matches(chain.hidden, joint.sum(0) @ h_states)


def test_chains_from_the_same_seed_are_identical_and_other_seeds_differ():
    rbm = random_rbm(SOFTMAX)
    start = torch.zeros(20, SOFTMAX.size, dtype=torch.float64)

    def five_steps(seed):
        generator, mask = make_generator(seed), SOFTMAX_MASK.expand(20, -1)
        return run_chain(rbm, chain_from_visible(rbm, start, generator, mask), 5, generator, mask)

    runs = [five_steps(seed) for seed in (3, 3, 4)]
    assert torch.equal(runs[0].visible, runs[1].visible)
    assert torch.equal(runs[0].hidden, runs[1].hidden)
    assert not torch.equal(runs[0].visible, runs[2].visible)
