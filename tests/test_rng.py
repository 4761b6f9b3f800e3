"""The random sources: reproducible, uniform, and interchangeable for sampling."""

import torch

from recsys_rbm.rbm.rng import BLOCK_SIZE, UniformStream, bernoulli, uniform


def test_a_stream_is_reproducible_from_its_seed():
    first, second = UniformStream(7), UniformStream(7)
    assert torch.equal(first.uniform((3, 5)), second.uniform((3, 5)))
    assert not torch.equal(UniformStream(7).uniform((100,)), UniformStream(8).uniform((100,)))


def test_consecutive_draws_differ_and_cross_block_boundaries():
    stream = UniformStream(0)
    draws = [stream.uniform((BLOCK_SIZE // 3,)) for _ in range(4)]  # the fourth needs a new block
    assert all(not torch.equal(draws[i][:100], draws[i + 1][:100]) for i in range(3))
    big = stream.uniform((BLOCK_SIZE + 10,))
    assert big.shape == (BLOCK_SIZE + 10,)


def test_stream_uniforms_have_the_moments_of_u01():
    values = UniformStream(3).uniform((200_000,)).double()
    assert float(values.min()) >= 0.0 and float(values.max()) < 1.0
    # mean 1/2 and variance 1/12, within 5 standard errors
    assert abs(float(values.mean()) - 0.5) < 5 * (1 / 12) ** 0.5 / 200_000**0.5
    assert abs(float(values.var()) - 1 / 12) < 5e-3


def test_bernoulli_frequencies_match_probabilities_for_both_sources():
    probability = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(40_000, 1)
    for source in (UniformStream(1), torch.Generator().manual_seed(1)):
        frequency = bernoulli(probability, source).mean(0)
        standard_error = (probability[0] * (1 - probability[0]) / 40_000).sqrt()
        assert torch.all((frequency - probability[0]).abs() <= 5 * standard_error + 1e-12)


def test_uniform_follows_the_dtype_of_the_reference_tensor():
    like = torch.zeros(2, dtype=torch.float64)
    assert uniform((4,), like, UniformStream(0)).dtype == torch.float64
    assert uniform((4,), like, None).dtype == torch.float64
