"""Exact enumeration on tiny models is the ground truth for the closed forms.

Every identity is checked on Bernoulli units, softmax units, and softmax units with masked groups.
The brute-force sums use only the energy ``E(v, h)`` over every (v, h) pair.
"""

import math

import pytest
import torch
from tiny_rbms import (
    BERNOULLI,
    MIXED,
    MIXED_MASK,
    SOFTMAX,
    SOFTMAX_MASK,
    brute_force_log_z,
    joint_minus_energy,
    random_rbm,
)

from recsys_rbm.errors import ConfigError
from recsys_rbm.evaluation import (
    binary_states,
    can_enumerate,
    free_energy_gap,
    log_likelihood,
    log_partition,
    mean_log_likelihood,
    pseudo_log_likelihood,
    visible_states,
)
from recsys_rbm.rbm import functional as fn
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits
from recsys_rbm.runtime import make_generator

CASES = [(BERNOULLI, None), (SOFTMAX, None), (SOFTMAX, SOFTMAX_MASK), (MIXED, None), (MIXED, MIXED_MASK)]
IDS = ["bernoulli", "softmax", "masked-softmax", "mixed", "masked-mixed"]


def rows(mask, n):
    """A shared (G,) mask repeated for ``n`` cases, or None."""
    return None if mask is None else mask.expand(n, -1)


# --- the state tables the brute force relies on -------------------------------------------------


def test_binary_states_list_every_vector_once():
    states = binary_states(4)
    assert states.shape == (16, 4)
    assert len({tuple(row.tolist()) for row in states}) == 16
    assert torch.equal(binary_states(4, 5, 9), states[5:9])


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_visible_states_list_every_valid_configuration_once(units, mask):
    states = visible_states(units, mask)
    present = torch.ones(units.n_groups, dtype=torch.bool) if mask is None else mask
    expected_count = 1
    for part in units.slices():
        block, n_present = part.block, int(present[part.groups].sum())
        expected_count *= (2 if isinstance(block, BernoulliUnits) else block.n_levels) ** n_present
        values = states[:, part.entries]
        if isinstance(block, SoftmaxUnits):  # one-hot in present groups, zero in masked ones
            per_group = values.reshape(-1, block.n_groups, block.n_levels).sum(-1)  # (N, G)
            assert torch.equal(per_group, present[part.groups].double().expand_as(per_group))
        else:  # 0/1 in present units, 0 in masked ones
            assert bool(((values == 0) | (values == 1)).all())
            assert bool((values[:, ~present[part.groups]] == 0).all())
    assert states.shape == (expected_count, units.size)
    assert len({tuple(row.tolist()) for row in states}) == states.shape[0]


# --- free energies and conditionals ---------------------------------------------------------


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_free_energy_is_minus_log_sum_over_hidden_states(units, mask):
    rbm = random_rbm(units)
    v, _, minus_energy = joint_minus_energy(rbm, mask)
    expected = -torch.logsumexp(minus_energy, dim=1)
    torch.testing.assert_close(rbm.free_energy(v, rows(mask, v.shape[0])), expected)


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_hidden_free_energy_is_minus_log_sum_over_visible_states(units, mask):
    rbm = random_rbm(units)
    _, h, minus_energy = joint_minus_energy(rbm, mask)
    expected = -torch.logsumexp(minus_energy, dim=0)
    torch.testing.assert_close(rbm.hidden_free_energy(h, rows(mask, h.shape[0])), expected)


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_hidden_probability_is_the_enumerated_conditional_marginal(units, mask):
    rbm = random_rbm(units)
    v, h, minus_energy = joint_minus_energy(rbm, mask)
    p_h_given_v = torch.softmax(minus_energy, dim=1)  # (Nv, Nh), rows sum to one
    torch.testing.assert_close(rbm.hidden_probability(v, rows(mask, v.shape[0])), p_h_given_v @ h)


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_visible_mean_is_the_enumerated_conditional_marginal(units, mask):
    rbm = random_rbm(units)
    v, h, minus_energy = joint_minus_energy(rbm, mask)
    p_v_given_h = torch.softmax(minus_energy, dim=0)  # (Nv, Nh), columns sum to one
    torch.testing.assert_close(rbm.visible_mean(h, rows(mask, h.shape[0])), p_v_given_h.T @ v)


# --- log Z and the log-likelihood -------------------------------------------------------------


@pytest.mark.parametrize("side", ["hidden", "visible", "auto"])
@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_log_partition_equals_the_brute_force_sum(units, mask, side):
    rbm = random_rbm(units, weight_scale=1.5)
    assert log_partition(rbm, mask, side=side) == pytest.approx(brute_force_log_z(rbm, mask), abs=1e-10)


@pytest.mark.parametrize("side", ["hidden", "visible"])
def test_log_partition_does_not_depend_on_the_chunk_size(side):
    rbm = random_rbm(SOFTMAX)
    assert log_partition(rbm, side=side, chunk_size=7) == pytest.approx(log_partition(rbm, side=side), abs=1e-12)


def test_log_partition_of_a_float32_model_is_summed_in_float64():
    rbm = random_rbm(BERNOULLI, weight_scale=2.0)
    single = rbm.to(dtype=torch.float32)
    assert log_partition(single) == pytest.approx(log_partition(single.to(dtype=torch.float64)), abs=1e-12)
    assert log_partition(single) == pytest.approx(log_partition(rbm), abs=1e-4)


def test_log_partition_refuses_models_too_large_on_both_sides_and_points_to_ais():
    units = BernoulliUnits(30)
    rbm = RBM(torch.zeros(30, 30), torch.zeros(30), torch.zeros(30), units)
    assert not can_enumerate(rbm)
    with pytest.raises(ConfigError, match="AIS"):
        log_partition(rbm)
    assert can_enumerate(rbm, max_units=30)


def test_log_partition_rejects_differing_per_case_masks():
    rbm = random_rbm(SOFTMAX)
    with pytest.raises(ValueError, match="mask"):
        log_partition(rbm, torch.tensor([[True, True, False, True], [True, False, True, True]]))


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_log_likelihood_is_a_normalised_distribution(units, mask):
    rbm = random_rbm(units, weight_scale=1.5)
    v = visible_states(units, mask)
    log_p = log_likelihood(rbm, v, mask=rows(mask, v.shape[0]))
    assert log_p.dtype == torch.float64
    assert float(torch.logsumexp(log_p, dim=0)) == pytest.approx(0.0, abs=1e-10)
    assert mean_log_likelihood(rbm, v, mask=mask, batch_size=5) == pytest.approx(float(log_p.mean()), abs=1e-10)


def test_log_likelihood_with_per_case_masks_uses_each_cases_own_log_z():
    rbm = random_rbm(SOFTMAX)
    masks = torch.tensor([[True, False, True, True], [True, True, True, True], [True, False, True, True]])
    v = rbm.sample_visible(torch.ones(3, rbm.n_hidden, dtype=torch.float64), make_generator(3), masks)
    expected = torch.stack(
        [-rbm.free_energy(v[i : i + 1], masks[i : i + 1])[0] - brute_force_log_z(rbm, masks[i]) for i in range(3)]
    )
    torch.testing.assert_close(log_likelihood(rbm, v, mask=masks), expected)
    assert mean_log_likelihood(rbm, v, mask=masks, batch_size=2) == pytest.approx(float(expected.mean()), abs=1e-12)


# --- masked groups change nothing -----------------------------------------------------------


def _softmax_case(n_cases=6, seed=0):
    """A softmax RBM, one-hot data in every group, and a per-case mask that hides some groups."""
    rbm = random_rbm(SOFTMAX, seed=seed)
    generator = make_generator(seed + 1)
    v = rbm.sample_visible(torch.bernoulli(torch.full((n_cases, rbm.n_hidden), 0.5, dtype=torch.float64)), generator)
    mask = torch.rand(n_cases, SOFTMAX.n_groups, generator=generator) < 0.5
    mask[:, 0] = True
    return rbm, v, mask


def test_values_in_masked_groups_change_nothing():
    rbm, v, mask = _softmax_case()
    scrambled = torch.where(fn.apply_mask(torch.ones_like(v), mask, rbm.units).bool(), v, torch.rand_like(v) * 5)
    assert not torch.equal(scrambled, v)
    torch.testing.assert_close(rbm.free_energy(scrambled, mask), rbm.free_energy(v, mask), rtol=0, atol=0)
    torch.testing.assert_close(rbm.hidden_probability(scrambled, mask), rbm.hidden_probability(v, mask), rtol=0, atol=0)
    assert pseudo_log_likelihood(rbm, scrambled, mask=mask) == pseudo_log_likelihood(rbm, v, mask=mask)


def test_parameters_of_masked_groups_change_nothing():
    rbm, v, _ = _softmax_case()
    mask = SOFTMAX_MASK.expand(v.shape[0], -1)
    hidden_group = fn.apply_mask(torch.ones(1, SOFTMAX.size, dtype=torch.float64), ~SOFTMAX_MASK[None], SOFTMAX)[0]
    other = RBM(
        rbm.weights + 3.0 * hidden_group[:, None], rbm.visible_bias - 2.0 * hidden_group, rbm.hidden_bias, SOFTMAX
    )
    h = binary_states(rbm.n_hidden)
    torch.testing.assert_close(other.free_energy(v, mask), rbm.free_energy(v, mask))
    torch.testing.assert_close(other.hidden_probability(v, mask), rbm.hidden_probability(v, mask))
    hidden_mask = SOFTMAX_MASK.expand(h.shape[0], -1)
    torch.testing.assert_close(other.hidden_free_energy(h, hidden_mask), rbm.hidden_free_energy(h, hidden_mask))
    assert log_partition(other, SOFTMAX_MASK) == pytest.approx(log_partition(rbm, SOFTMAX_MASK), abs=1e-12)
    assert log_partition(other) != pytest.approx(log_partition(rbm), abs=1e-3)  # unmasked, they do differ


def test_masked_groups_are_never_sampled_and_present_groups_sample_as_without_a_mask():
    rbm, _, mask = _softmax_case(n_cases=50)
    h = torch.bernoulli(torch.full((50, rbm.n_hidden), 0.5, dtype=torch.float64), generator=make_generator(2))
    masked = rbm.sample_visible(h, make_generator(7), mask)
    unmasked = rbm.sample_visible(h, make_generator(7))
    present = fn.apply_mask(torch.ones_like(masked), mask, rbm.units).bool()
    assert torch.equal(masked[~present], torch.zeros_like(masked[~present]))
    assert torch.equal(masked[present], unmasked[present])
    assert torch.equal(rbm.visible_mean(h, mask)[~present], torch.zeros_like(masked[~present]))


# --- the monitors, against exact log-likelihoods ----------------------------------------------


def _group_alternatives(units):
    """Every (group index, entries, value) a group can be set to: each Bernoulli unit to 0 and 1,
    each softmax group to each of its K one-hot vectors."""
    for part in units.slices():
        block = part.block
        for g in range(block.n_groups):
            first = part.entries.start + g * block.group_size
            entries = slice(first, first + block.group_size)
            if isinstance(block, BernoulliUnits):
                values = [torch.tensor([0.0]), torch.tensor([1.0])]
            else:
                values = list(torch.eye(block.n_levels, dtype=torch.float64))
            yield part.groups.start + g, entries, values


def _exact_group_conditionals(rbm, v, mask=None):
    """``log p(v_g | v_−g)`` (B, G) from exact log-likelihoods of every change of one group."""
    units = rbm.units
    out = torch.zeros(v.shape[0], units.n_groups, dtype=torch.float64)
    own = log_likelihood(rbm, v, mask=mask)
    for group, entries, values in _group_alternatives(units):
        alternatives = []
        for value in values:
            changed = v.clone()
            changed[:, entries] = value.to(changed)
            alternatives.append(log_likelihood(rbm, changed, mask=mask))
        out[:, group] = own - torch.logsumexp(torch.stack(alternatives), dim=0)
    return out if mask is None else out * mask


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_pseudo_log_likelihood_sums_the_exact_conditionals_of_each_group(units, mask):
    rbm = random_rbm(units, weight_scale=1.5)
    v = visible_states(units, mask)
    expected = _exact_group_conditionals(rbm, v, rows(mask, v.shape[0])).sum(-1).mean()
    assert pseudo_log_likelihood(rbm, v, mask=rows(mask, v.shape[0])) == pytest.approx(float(expected), abs=1e-10)
    assert pseudo_log_likelihood(rbm, v, mask=mask, chunk_elements=7) == pytest.approx(float(expected), abs=1e-10)


@pytest.mark.parametrize(("units", "mask"), CASES, ids=IDS)
def test_stochastic_pseudo_log_likelihood_is_unbiased(units, mask):
    rbm = random_rbm(units, weight_scale=1.5)
    v = visible_states(units, mask)[:16]
    n_cases = v.shape[0]
    exact = _exact_group_conditionals(rbm, v, rows(mask, n_cases))  # (n_cases, G)
    n_present = units.n_groups if mask is None else int(mask.sum())
    present = exact[:, : units.n_groups] if mask is None else exact[:, mask]
    repeats = 2000
    estimate = pseudo_log_likelihood(rbm, v.repeat(repeats, 1), make_generator(0), rows(mask, n_cases * repeats))
    # Each case's estimate is n·log p(v_g | v_−g) for a uniform g: its variance is known exactly.
    standard_error = math.sqrt(float((n_present * present).var(dim=1, unbiased=False).mean()) / (n_cases * repeats))
    assert estimate == pytest.approx(float(exact.sum(-1).mean()), abs=5 * standard_error + 1e-12)
    assert standard_error > 0


def test_free_energy_gap_is_the_gap_in_exact_mean_log_likelihood():
    rbm = random_rbm(BERNOULLI, weight_scale=1.5)
    states = visible_states(BERNOULLI)
    train, validation = states[::3], states[1::5]
    expected = mean_log_likelihood(rbm, train) - mean_log_likelihood(rbm, validation)
    assert free_energy_gap(rbm, train, validation) == pytest.approx(expected, abs=1e-10)
