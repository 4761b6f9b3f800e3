"""Data-parallel training: 2 gloo processes under torchrun train the model 1 process trains.

The comparison is meaningful because sampling is not approximated: a case draws the same uniforms
whichever process holds it (``RowShard``), so 1 and 2 processes differ only in the order of floating
point sums. Tolerances: float64 (the dense cases) 1e-12, where the runs differ by about 1e-15;
float32 (the recommender, as it trains) 1e-5 absolute and relative, where they differ by about 3e-7
after 4 epochs. A sum in another order that moved a probability across its uniform would flip one
sample and move the parameters by about the learning rate over the batch size (1e-3 here): far
outside either tolerance, so any real difference shows.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from distributed_cases import DENSE_CASES, RECOMMENDER_CASES, dense_data, run_cases, tastes

from recsys_rbm.errors import ConfigError
from recsys_rbm.io.checkpoint import load_checkpoint
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import PER_CASE, PER_ENTRY, RowAxis, RowShard, UniformStream
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.distributed import CaseSharding
from recsys_rbm.recommender.objective import RecommenderObjective
from recsys_rbm.recommender.sparse import CaseMatrix, RecommenderRBM, visible_layer
from recsys_rbm.recommender.state import Layout
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig
from recsys_rbm.train.dense import DenseObjective
from recsys_rbm.train.distributed import DenseSharding, Parallel, shard_range
from recsys_rbm.train.gradients import dense_gradient

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
FLOAT64 = {"rtol": 1e-12, "atol": 1e-12}
FLOAT32 = {"rtol": 1e-5, "atol": 1e-5}


def single_threaded() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """``distributed_cases.py`` under torchrun: each rank's results."""
    out = tmp_path_factory.mktemp("ranks")
    done = subprocess.run(
        [*TORCHRUN, str(HERE / "distributed_cases.py"), str(out)],
        capture_output=True,
        text=True,
        env=single_threaded(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


@pytest.fixture(scope="module")
def one_process() -> dict:
    return run_cases(None)


@pytest.mark.parametrize("case", [*DENSE_CASES, *RECOMMENDER_CASES])
def test_two_processes_train_the_model_one_process_trains(case: str, two_processes: list, one_process: dict) -> None:
    first, second = (results[case] for results in two_processes)
    expected = one_process[case]
    for name, parameter in expected["parameters"].items():
        assert torch.equal(first["parameters"][name], second["parameters"][name]), f"{name}: the ranks disagree"
        tolerance = FLOAT64 if parameter.dtype == torch.float64 else FLOAT32
        torch.testing.assert_close(first["parameters"][name], parameter, **tolerance, msg=f"{case}: {name}")
    if "measures" in expected:  # measured on rank 0, broadcast: early stopping decides alike
        assert first["best_epoch"] == second["best_epoch"] == expected["best_epoch"]
        assert first["measures"] == second["measures"]
        for got, want in zip(first["measures"], expected["measures"], strict=True):
            assert got.keys() == want.keys()
            np.testing.assert_allclose([got[k] for k in got], [want[k] for k in got], rtol=1e-5)


def test_a_seeded_run_is_reproducible_for_a_world_size(two_processes: list) -> None:
    for results in two_processes:
        again, first = results["dense CD-2, again"]["parameters"], results["dense CD-2"]["parameters"]
        assert all(torch.equal(again[name], first[name]) for name in first)


# --- the pieces, in one process -------------------------------------------------------------------
def test_shares_cover_the_batch_once_and_differ_by_at_most_one() -> None:
    for world_size in range(1, 6):
        for n in range(0, 23):
            shares = [shard_range(n, rank, world_size) for rank in range(world_size)]
            assert shares[0][0] == 0 and shares[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(shares))
            sizes = [stop - start for start, stop in shares]
            assert max(sizes) - min(sizes) <= 1


def test_a_row_shard_takes_its_rows_of_the_global_draw_and_stays_in_step() -> None:
    one, shard = UniformStream(11), UniformStream(11)
    whole = one.uniform((10, 3))
    cases, entries = RowAxis(4, 10, 6), RowAxis(2, 7, 1)
    torch.testing.assert_close(RowShard(shard, cases, entries).uniform((4, 3)), whole[6:10], rtol=0, atol=0)
    by_entry = RowShard(shard, cases, entries).uniform((2, 1), per=PER_ENTRY)
    torch.testing.assert_close(by_entry, one.uniform((7, 1))[1:3], rtol=0, atol=0)
    torch.testing.assert_close(shard.uniform((5,)), one.uniform((5,)), rtol=0, atol=0)


def test_draws_are_told_apart_by_what_their_rows_are_not_by_their_shape() -> None:
    """Cases and entries of the same count, and draws of any trailing shape, each take their own axis."""
    one, shard = UniformStream(5), UniformStream(5)
    cases, entries = RowAxis(3, 8, 2), RowAxis(3, 9, 6)
    for shape, per, axis in [((3, 7), PER_CASE, cases), ((3, 1), PER_ENTRY, entries), ((3, 1), PER_CASE, cases)]:
        drawn = RowShard(shard, cases, entries).uniform(shape, per=per)
        expected = one.uniform((axis.total, *shape[1:]))[axis.offset : axis.offset + 3]
        torch.testing.assert_close(drawn, expected, rtol=0, atol=0)


def test_a_draw_that_fits_no_share_is_refused() -> None:
    stream = UniformStream(0)
    with pytest.raises(RuntimeError, match="does not fit"):
        RowShard(stream, RowAxis(4, 10, 0)).uniform((3, 2))
    with pytest.raises(RuntimeError, match="does not fit"):
        RowShard(stream, RowAxis(4, 10, 0)).uniform((4, 1), per=PER_ENTRY)  # no entries axis


def ranks(world_size: int) -> list[Parallel]:
    return [Parallel(rank, world_size, rank, torch.device("cpu"), "gloo") for rank in range(world_size)]


def assert_shares_sum_to_the_gradient(objectives: list, sharding, batches: list, world_size: int) -> None:
    """For each batch in turn: the ranks' shares (each with its own copy of the objective and the
    stream, as separate processes have) sum to one process's gradient of the whole batch."""
    single, streams = objectives[0], [UniformStream(7, dtype=torch.float64) for _ in range(world_size + 1)]
    shardings = [copy.deepcopy(sharding) for _ in range(world_size)]
    for batch in batches:
        expected = dense_gradient(single.gradient(batch, 2, streams[-1]))
        shares = [
            dense_gradient(shardings[r].gradient(objectives[r + 1], batch, 2, streams[r], parallel))
            for r, parallel in enumerate(ranks(world_size))
        ]
        for name, value in expected.items():
            torch.testing.assert_close(sum(share[name] for share in shares), value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("persistent, n_chains", [(False, 0), (True, 0), (True, 5)])
def test_three_ranks_shares_of_a_dense_gradient_sum_to_it(persistent: bool, n_chains: int) -> None:
    data = dense_data()
    config = TrainConfig(batch_size=12, cd_k=2, persistent=persistent, n_chains=n_chains)
    rbm = RBM.initialise(BernoulliUnits(16), 8, make_generator(0), weight_std=0.5, dtype=torch.float64)
    objectives = [DenseObjective(rbm, data, config) for _ in range(4)]  # one process, then three ranks
    batches = [data[:12], data[12:19], data[19:21], data[21:22]]  # shares of 4, 2 or 1 case, or none
    assert_shares_sum_to_the_gradient(objectives, DenseSharding(), batches, 3)


@pytest.mark.parametrize(
    "model, conditional, scale", [("ratings", True, "raters"), ("ratings", False, "cases"), ("joint", False, "raters")]
)
def test_three_ranks_shares_of_a_recommender_gradient_sum_to_it(model: str, conditional: bool, scale: str) -> None:
    train, _ = tastes()
    config = RecommenderConfig(kind=model, mode="item", conditional=conditional, gradient_scale=scale, batch_size=13)
    layout = Layout(train.n_users, train.n_levels, interactions=model == "joint")
    matrix = CaseMatrix.from_arrays(train.items, train.users, train.levels, train.n_items, torch.device("cpu"))
    generator = make_generator(0)
    rbm = RBM.initialise(visible_layer(layout), 6, generator, weight_std=0.3, dtype=torch.float64)
    weights = torch.randn(layout.n_units, 6, generator=generator, dtype=torch.float64) * 0.3 if conditional else None
    objective = RecommenderObjective(RecommenderRBM(rbm, weights), matrix, config, dict, None)
    batches = list(objective.batches(make_generator(1)))
    assert [batch.n_cases for batch in batches] == [13, 13, 13, 1]  # the last: one rank's share, two empty
    assert_shares_sum_to_the_gradient([objective] * 4, CaseSharding(), batches, 3)


def test_what_cannot_be_split_exactly_is_refused() -> None:
    rbm = RBM.initialise(BernoulliUnits(16), 8, make_generator(0))
    sparse = TrainConfig(sparsity_target=0.1, sparsity_cost=0.01)
    with pytest.raises(ConfigError, match="sparsity penalty"):
        DenseSharding().check(DenseObjective(rbm, dense_data().float(), sparse), ranks(2)[0])
    centred = TrainConfig(persistent=True, centring=True)
    with pytest.raises(ConfigError, match="centred RBM's offsets follow the whole batch"):
        DenseSharding().check(DenseObjective(rbm, dense_data().float(), centred), ranks(2)[0])
    few_chains = TrainConfig(persistent=True, n_chains=2)
    with pytest.raises(ConfigError, match="at least one chain each"):
        DenseSharding().check(DenseObjective(rbm, dense_data().float(), few_chains), ranks(3)[0])


# --- the command line under torchrun ---------------------------------------------------------------
@pytest.mark.slow
def test_train_ratings_under_torchrun_writes_one_model_from_rank_zero(tmp_path: Path) -> None:
    train, validation = tastes()
    ratings = tmp_path / "ratings.csv"
    with ratings.open("w") as out:
        out.write("user,item,rating\n")
        for part in (train, validation):
            for user, item, value in zip(part.users + 1, part.items + 1, part.values, strict=True):
                out.write(f"{user},{item},{value:g}\n")
    command = ["-m", "recsys_rbm_cli", "train", "ratings", str(ratings), "--scale", "1:5", "--hidden", "6"]
    command += ["--epochs", "3", "--batch-size", "7", "--device", "auto", "--test-fraction", "0.1"]
    runs = {}
    for name, launcher in (("one", [sys.executable]), ("two", TORCHRUN)):
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run(
            [*launcher, *command, "--output", str(folder / "model.safetensors")],
            capture_output=True,
            text=True,
            env=single_threaded(),
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs[name] = " ".join(done.stdout.split())  # rich's line wrapping undone
        assert [p.name for p in folder.iterdir()] == ["model.safetensors"]  # no lock, run or partial file left
    assert "in 2 processes (gloo)" in runs["two"] and "in 2 processes" not in runs["one"]
    assert runs["two"].count("test RMSE / MAE") == 1  # one summary: rank 0's
    one, _ = load_checkpoint(tmp_path / "one" / "model.safetensors", expected_kind=None)
    two, _ = load_checkpoint(tmp_path / "two" / "model.safetensors", expected_kind=None)
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, **FLOAT32, msg=name)
