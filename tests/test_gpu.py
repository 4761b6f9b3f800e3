"""The core on a CUDA device agrees with the CPU and learns. Skipped where there is no GPU."""

import pytest
import torch

from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import UniformStream
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import train_dense

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none is visible)"),
]


def _random_rbm(units, n_hidden=16, seed=0):
    generator = make_generator(seed)
    rbm = RBM.initialise(units, n_hidden, generator, weight_std=0.3, dtype=torch.float64)
    rbm.visible_bias.normal_(generator=generator)
    rbm.hidden_bias.normal_(generator=generator)
    return rbm


@pytest.mark.parametrize("units", [BernoulliUnits(20), SoftmaxUnits(6, 5)], ids=["bernoulli", "softmax"])
def test_conditionals_and_free_energy_on_cuda_match_the_cpu(units):
    rbm = _random_rbm(units)
    gpu = rbm.to("cuda")
    v = rbm.sample_visible(torch.bernoulli(torch.full((32, 16), 0.5, dtype=torch.float64)), make_generator(1))
    torch.testing.assert_close(gpu.free_energy(v.cuda()).cpu(), rbm.free_energy(v))
    torch.testing.assert_close(gpu.hidden_probability(v.cuda()).cpu(), rbm.hidden_probability(v))
    h = torch.bernoulli(torch.full((32, 16), 0.5, dtype=torch.float64))
    torch.testing.assert_close(gpu.visible_mean(h.cuda()).cpu(), rbm.visible_mean(h))


def test_uniform_stream_on_cuda_is_reproducible():
    assert torch.equal(UniformStream(5, "cuda").uniform((1000,)), UniformStream(5, "cuda").uniform((1000,)))


@pytest.mark.parametrize("persistent", [False, True], ids=["cd", "pcd"])
def test_training_on_cuda_lowers_reconstruction_error(persistent):
    generator = make_generator(0, "cuda")
    prototypes = (torch.rand(4, 64, generator=make_generator(0)) < 0.5).float()
    data = prototypes[torch.randint(0, 4, (2000,), generator=make_generator(1))]
    data = torch.where(torch.rand(data.shape, generator=make_generator(2)) < 0.05, 1 - data, data).cuda()
    rbm = RBM.initialise(BernoulliUnits(64), 32, generator, visible_mean=data.mean(0), device="cuda")
    config = TrainConfig(
        epochs=10, batch_size=50, learning_rate=0.05, persistent=persistent, final_momentum=0.5, monitor_size=1000
    )
    history = train_dense(rbm, data, config, generator).history
    assert rbm.weights.device.type == "cuda"
    assert history[-1].reconstruction_error < 0.5 * history[0].reconstruction_error
