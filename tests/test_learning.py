"""Learning works: on 3×3 bars and stripes the exact log-likelihood rises with CD-1 and with PCD.

The 14 distinct bars-and-stripes patterns, equally often, have entropy ``log 14``, so no model can
give the training data a mean log-likelihood above ``−log 14 ≈ −2.64`` nats; the base-rate model
(independent pixels, each on half the time) gives ``≈ −6.24``.
"""

import itertools
import math

import pytest
import torch

from recsys_rbm.errors import TrainingDiverged
from recsys_rbm.evaluation import base_rate_rbm, mean_log_likelihood
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import train_dense
from recsys_rbm.train.trainer import Trainer

UNITS = BernoulliUnits(9)
CD1 = TrainConfig(epochs=60, batch_size=14, learning_rate=0.1, weight_decay=0.0, monitor_size=50)
PCD = TrainConfig(
    epochs=100,
    batch_size=14,
    learning_rate=0.1,
    lr_schedule="linear",
    persistent=True,
    n_chains=50,
    initial_momentum=0.5,
    final_momentum=0.5,  # high momentum makes persistent chains oscillate on so small a problem
    weight_decay=0.0,
    monitor_size=50,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Thousands of updates on 14×9 tensors: one thread avoids contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bars_and_stripes(size: int = 3) -> torch.Tensor:
    """Every ``size × size`` image whose rows are each all on or all off, or whose columns are; (14, 9)."""
    patterns = set()
    for on in itertools.product([0.0, 1.0], repeat=size):
        grid = torch.tensor(on, dtype=torch.float64)[:, None].expand(size, size)
        patterns.update({tuple(grid.flatten().tolist()), tuple(grid.T.flatten().tolist())})
    return torch.tensor(sorted(patterns), dtype=torch.float64)


def train(config: TrainConfig, seed: int = 0, n_hidden: int = 10, dtype=torch.float64) -> tuple[RBM, RBM, Trainer]:
    """Train on 10 copies of each pattern; returns the initial model, the trained one and the trainer."""
    data = bars_and_stripes().repeat(10, 1).to(dtype)
    generator = make_generator(seed)
    rbm = RBM.initialise(UNITS, n_hidden, generator, weight_std=0.1, visible_mean=data.mean(0), dtype=dtype)
    initial = RBM(*(p.clone() for p in rbm.parameters().values()), UNITS)
    trainer = train_dense(rbm, data, config, generator)
    return initial, rbm, trainer


def test_bars_and_stripes_has_fourteen_patterns():
    patterns = bars_and_stripes()
    assert patterns.shape == (14, 9)
    assert torch.equal(patterns.mean(0), torch.full((9,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize(("config", "margin"), [(CD1, 2.0), (PCD, 1.0)], ids=["cd1", "pcd"])
def test_training_raises_the_exact_log_likelihood_well_above_the_base_rate_model(config, margin):
    data = bars_and_stripes()
    initial, trained, _ = train(config)
    before, after = mean_log_likelihood(initial, data), mean_log_likelihood(trained, data)
    base_rate = mean_log_likelihood(base_rate_rbm(trained, data.mean(0)), data)
    assert base_rate == pytest.approx(-9 * math.log(2), abs=1e-2)
    assert after > before + margin
    assert after > base_rate + margin
    assert after <= -math.log(14) + 1e-9  # no model beats the data's own entropy


@pytest.mark.parametrize("config", [CD1, PCD], ids=["cd1", "pcd"])
def test_training_is_bit_reproducible_with_the_same_seed(config):
    config = TrainConfig(**{**config.__dict__, "epochs": 5})
    _, first, first_trainer = train(config, seed=3, dtype=torch.float32)
    _, again, again_trainer = train(config, seed=3, dtype=torch.float32)
    _, other, _ = train(config, seed=4, dtype=torch.float32)
    for name, tensor in first.parameters().items():
        assert torch.equal(tensor, again.parameters()[name]), name
        assert not torch.equal(tensor, other.parameters()[name]), name
    metrics = [m.as_dict() | {"seconds": 0} for m in first_trainer.history]
    assert metrics == [m.as_dict() | {"seconds": 0} for m in again_trainer.history]


def test_an_absurd_learning_rate_raises_training_diverged_with_one_line():
    config = TrainConfig(epochs=3, batch_size=14, learning_rate=1e30)
    with pytest.raises(TrainingDiverged) as caught:
        train(config, dtype=torch.float32)
    message = str(caught.value)
    assert "\n" not in message
    assert "learning rate" in message
