"""The memory estimate of training: a batch larger than the cases costs what one batch of every case costs, and
the estimate is a lower bound near what training measurably takes (measured peaks on two shapes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from recsys_rbm_cli.app import app
from typer.testing import CliRunner

from recsys_rbm.io.resources import rbm_training_bytes, recommender_training_bytes

# (users, items, ratings, hidden units, mode, model): one of each model, each mode, both where parameters dominate
SHAPES = {
    "joint-user-based": (1500, 600, 20_000, 200, "user", "joint"),
    "ratings-item-based": (600, 1500, 20_000, 400, "item", "ratings"),
}
BEYOND = 100_000  # a batch size far beyond the cases of either shape

MEASURE = """
import gc, json, sys
from pathlib import Path
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender
from recsys_rbm.recommender.splits import full_split
from recsys_rbm.recommender.synthetic import long_tailed_ratings
from recsys_rbm.io.resources import recommender_training_bytes

def status(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024

users, items, n_ratings, hidden, mode, model, batch = json.loads(sys.argv[1])
def config(h, b):
    return RecommenderConfig(kind=model, mode=mode, hidden=h, batch_size=b, epochs=1, device="cpu")
warm = full_split(long_tailed_ratings(20, 10, 100, min_per_user=5, seed=1), 0.05, 0)
RBMRecommender(config(2, 5)).fit(warm.train, warm.validation)  # imports and first allocations, out of the peak
split = full_split(long_tailed_ratings(users, items, n_ratings, min_per_user=5, seed=0), 0.05, 0)
gc.collect()
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
before = status("VmRSS")
RBMRecommender(config(hidden, batch)).fit(split.train, split.validation)
cases, units = (users, items) if mode == "user" else (items, users)
estimate = recommender_training_bytes(units, split.train.n_levels, cases, hidden, batch, model == "joint")
print(json.dumps({"measured": status("VmHWM") - before, "estimate": estimate}))
"""


def test_a_batch_beyond_the_cases_costs_what_a_batch_of_every_case_costs() -> None:
    for users, items, _, hidden, mode, model in SHAPES.values():
        cases, units = (users, items) if mode == "user" else (items, users)
        beyond = recommender_training_bytes(units, 5, cases, hidden, BEYOND, model == "joint")
        assert beyond == recommender_training_bytes(units, 5, cases, hidden, cases, model == "joint")
        assert beyond > recommender_training_bytes(units, 5, cases, hidden, cases // 2, model == "joint")
    assert rbm_training_bytes(784, 500, 10**7, 5000, n_cases=1000) == rbm_training_bytes(784, 500, 1000, 1000)


def peak_rss_is_measurable() -> bool:
    """Whether this kernel lets a process reset and read its peak resident memory (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM" in Path("/proc/self/status").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not peak_rss_is_measurable(), reason="needs /proc/self/clear_refs to measure a peak")
@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_the_estimate_is_a_lower_bound_near_the_measured_peak(shape: str) -> None:
    """Training with a batch far beyond the cases, in a fresh process: the estimate (what ``train`` refuses
    by) never exceeds the measured peak, and is not far below it either."""
    arguments = json.dumps([*SHAPES[shape], BEYOND])
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, arguments], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["estimate"] <= figures["measured"] <= 5 * figures["estimate"], figures


def test_a_small_table_with_a_huge_batch_trains_instead_of_asking_for_terabytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: 4 hidden units and --batch-size 100000 on a small table asked for 146 GB."""
    monkeypatch.setattr("recsys_rbm.io.resources.available_memory", lambda: 20_000_000)  # 20 MB: not 48 for the batch
    rows = [(u, i, 1 + (u * 7 + i * 3) % 5) for u in range(1, 41) for i in range(1, 31) if (u + i) % 3]
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    args = ["train", "ratings", str(tmp_path / "r.csv"), "-o", str(tmp_path / "m"), "--hidden", "4"]
    result = CliRunner().invoke(app, [*args, "--batch-size", str(BEYOND), "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.safetensors").exists()
