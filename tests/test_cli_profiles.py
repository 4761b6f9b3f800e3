"""``rbm-rec anomalies`` and ``rbm-rec imagine`` through Typer's CliRunner, on the tiny generated ml-100k."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from movielens_fakes import generated_releases
from recsys_rbm_cli.app import app
from test_cli_movielens import TINY, flat, one_error_line, write_tiny_100k
from typer.testing import CliRunner


@pytest.fixture(scope="module", autouse=True)
def generated_movielens() -> Iterator[None]:
    with generated_releases():
        yield


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def models(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The joint model (user-based), a user-based ratings-only model and an item-based one, on the tiny release."""
    folder = tmp_path_factory.mktemp("profiles")
    data_dir = folder / "data"
    write_tiny_100k(data_dir)
    out = {}
    for name, options in (
        ("joint", []),
        ("ratings-user", ["--model-kind", "ratings", "--mode", "user"]),
        ("item", ["--model-kind", "ratings", "--mode", "item"]),
    ):
        out[name] = folder / f"{name}.safetensors"
        args = ["train", "movielens", "--data-dir", str(data_dir), "--output", str(out[name]), *TINY, *options]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return out


def run_json(runner: CliRunner, *args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_anomalies_lists_the_least_typical_users_with_their_surprising_ratings(runner, models) -> None:
    result = runner.invoke(app, ["anomalies", "--model", str(models["joint"]), "--top", "3"])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "The 3 least typical of 40 users" in text and "most surprising ratings" in text
    data = run_json(runner, "anomalies", "--model", str(models["joint"]), "--top", "5", "--reasons", "2")
    assert data["users_scored"] == 40 and len(data["users"]) == 5
    scores = [user["score"] for user in data["users"]]
    assert scores == sorted(scores, reverse=True)
    first = data["users"][0]
    assert isinstance(first["user"], int) and 1 <= first["user"] <= 40 and first["n_ratings"] >= 1
    assert len(first["surprising_ratings"]) == 2
    reasons = first["surprising_ratings"]
    assert reasons[0]["log_p"] <= reasons[1]["log_p"] <= 0
    assert abs(reasons[0]["log_p"] - reasons[0]["log_p_pick"] - reasons[0]["log_p_rating"]) < 1e-5
    assert reasons[0]["title"] and reasons[0]["rating"] in (1.0, 2.0, 3.0, 4.0, 5.0)


def test_anomalies_of_a_ratings_only_model_and_of_an_item_based_one(runner, models) -> None:
    data = run_json(runner, "anomalies", "--model", str(models["ratings-user"]), "--top", "2")
    assert len(data["users"]) == 2 and "it is rated" in data["p_meaning"]
    assert all(reason["log_p_pick"] == 0 for reason in data["users"][0]["surprising_ratings"])
    line = one_error_line(runner.invoke(app, ["anomalies", "--model", str(models["item"])]))
    assert "needs a user-based model" in line and "--mode user" in line


def test_imagine_samples_profiles_that_keep_the_given_ratings_reproducibly(runner, models) -> None:
    args = ["imagine", "--model", str(models["joint"]), "--likes", "Star Wars", "--dislikes", "Heat (1972)"]
    args += ["--profiles", "3"]
    data = run_json(runner, *args, "--steps", "20", "--seed", "4")
    assert [m["title"] for m in data["likes"]] == ["Star Wars (1977)"]
    assert [m["title"] for m in data["dislikes"]] == ["Heat (1972)"]
    assert len(data["profiles"]) == 3
    for profile in data["profiles"]:
        rated = {rating["title"]: rating["rating"] for rating in profile["ratings"]}
        assert rated["Star Wars (1977)"] == 5.0 and rated["Heat (1972)"] == 1.0
        assert profile["n_ratings"] == len(profile["ratings"]) >= 2
    again = run_json(runner, *args, "--steps", "20", "--seed", "4")
    assert again == data
    other = run_json(runner, *args, "--steps", "20", "--seed", "5")
    assert other["profiles"] != data["profiles"]
    result = runner.invoke(app, [*args, "--top", "4"])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "3 imagined users (likes Star Wars (1977); dislikes Heat (1972)), 3 Gibbs steps, seed 0" in text
    assert "Profile 1:" in text and "ratings, mean" in text


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--likes", "Star Warz"], "no movie titled 'Star Warz'; did you mean"),
        (
            ["--likes", "Star Wars", "--dislikes", "Star Wars"],
            "Star Wars (1977), id 1 is in both --likes and --dislikes",
        ),
        (["--n", "0"], "--n"),
    ],
)
def test_imagine_bad_input_is_one_line(runner, models, args: list[str], phrase: str) -> None:
    line = one_error_line(runner.invoke(app, ["imagine", "--model", str(models["joint"]), *args]))
    assert phrase in line


def test_imagine_refuses_a_ratings_only_model_in_one_line(runner, models) -> None:
    line = one_error_line(runner.invoke(app, ["imagine", "--model", str(models["ratings-user"]), "--likes", "1"]))
    assert "needs a user-based joint model" in line and "--model-kind joint" in line


def test_anomalies_and_imagine_import_no_torch(models) -> None:
    script = (
        "import sys\n"
        "import recsys_rbm_cli.app\n"
        "from typer.testing import CliRunner\n"
        f"model = {str(models['joint'])!r}\n"
        "imagine = ['imagine', '--model', model, '--likes', '1', '--profiles', '2']\n"
        "for args in (['anomalies', '--model', model], imagine):\n"
        "    result = CliRunner().invoke(recsys_rbm_cli.app.app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "heavy = [name for name in ('torch', 'polars', 'matplotlib') if name in sys.modules]\n"
        "assert not heavy, f'imported {heavy}'\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_the_commands_default_steps_are_the_librarys() -> None:
    import inspect

    from recsys_rbm_cli.imagine import imagine

    from recsys_rbm.recommender.profiles import DEFAULT_STEPS

    assert inspect.signature(imagine).parameters["steps"].default == DEFAULT_STEPS
