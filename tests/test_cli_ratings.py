"""``rbm-rec train ratings`` through Typer's CliRunner, on small generated ratings tables.

A CSV with integer ids trains end to end (a tiny model, two epochs) and its checkpoint carries
what was read and the titles of ``--items``; every problem with the table or the options is one
line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from recsys_rbm_cli.app import app
from typer.testing import CliRunner

from recsys_rbm.io.checkpoint_files import read_metadata
from recsys_rbm.recommender.scorer import Scorer

N_USERS, N_ITEMS, PER_USER = 40, 24, 10
TINY = ["--hidden", "4", "--epochs", "2", "--batch-size", "10", "--device", "cpu", "--seed", "1"]


def ratings_rows(seed: int = 0) -> list[tuple[int, int, float, int]]:
    """Ratings 1..5 from two planted tastes; user ids 101.., item ids 7, 14, …; every item rated."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 2, N_USERS)
    rows = []
    for user in range(N_USERS):
        chosen = np.unique(np.append(rng.choice(N_ITEMS, PER_USER - 1, replace=False), user % N_ITEMS))
        for item in chosen.tolist():
            likes = (item < N_ITEMS // 2) == bool(taste[user])
            rating = float(np.clip(round(rng.normal(4.2 if likes else 2.0, 0.8)), 1, 5))
            rows.append((101 + user, 7 * (item + 1), rating, 1_000_000 + len(rows)))
    return rows


def write_csv(path: Path, rows: list[tuple], header: str = "customer,product,stars,when") -> Path:
    path.write_text(header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def write_items(path: Path) -> Path:
    lines = [f"{7 * (k + 1)},Product {k + 1} ({1990 + k}),{'Tools' if k % 2 else 'Toys|Games'}" for k in range(N_ITEMS)]
    path.write_text("itemId,title,genres\n" + "\n".join(lines) + "\n")
    return path


def flat(output: str) -> str:
    return " ".join(output.split())


def one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def trained(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("own")
    table = write_csv(folder / "shop.csv", ratings_rows())
    model = folder / "runs" / "shop.safetensors"
    args = ["train", "ratings", str(table), "--user-col", "customer", "--item-col", "product"]
    args += [
        "--rating-col",
        "stars",
        "--time-col",
        "when",
        "--scale",
        "1:5",
        "--mode",
        "user",
        "--test-fraction",
        "0.1",
    ]
    result = runner.invoke(app, [*args, "--items", str(write_items(folder / "items.csv")), "-o", str(model), *TINY])
    assert result.exit_code == 0, result.output
    return {"model": model, "output": flat(result.output), "folder": folder}


def test_train_ratings_reads_shows_splits_trains_and_saves(trained: dict) -> None:
    output = trained["output"]
    n = len(ratings_rows())
    for phrase in (
        f"Read {trained['folder'] / 'shop.csv'} (CSV): {n:,} ratings by {N_USERS} users of {N_ITEMS} items "
        "(int user ids, int item ids); columns user 'customer', item 'product', rating 'stars', time 'when'.",
        "Ratings: explicit ratings, 1, 2, 3, 4, 5 (K = 5, declared as 1:5).",
        f"titles for {N_ITEMS} of the {N_ITEMS} items rated",
        "Split random-1: random 90%/10% split of all ratings",
        "train RMSE",
        "best epoch",
        "test RMSE / MAE",
        "saved",
    ):
        assert phrase in output
    metadata = read_metadata(trained["model"])
    dataset = metadata["dataset"]
    assert dataset["name"] == "ratings:shop.csv" and dataset["ratings"] == n and dataset["items"] == N_ITEMS
    assert dataset["scale"] == "1:5" and dataset["implicit"] is False and len(dataset["fingerprint"]) == 64
    assert dataset["columns"] == {"user": "customer", "item": "product", "rating": "stars", "time": "when"}
    assert metadata["split"]["test"] == round(0.1 * n) and metadata["complete"] is True
    assert metadata["movies"]["titles"][0] == "Product 1 (1990)" and metadata["n_hidden"] == 4


def test_the_checkpoint_recommends_with_the_items_titles(runner: CliRunner, trained: dict) -> None:
    result = runner.invoke(app, ["recommend", "--user", "101", "--model", str(trained["model"]), "--json"])
    assert result.exit_code == 0, result.output
    assert "Product " in result.stdout and "movie 7" not in result.stdout


def test_the_default_columns_and_an_inferred_scale(runner: CliRunner, tmp_path: Path) -> None:
    rows = [(u, i, r) for u, i, r, _ in ratings_rows(1)]
    frame = pl.DataFrame(rows, schema=["userId", "movieId", "rating"], orient="row")
    frame.write_parquet(tmp_path / "r.parquet")
    result = runner.invoke(app, ["train", "ratings", str(tmp_path / "r.parquet"), "-o", str(tmp_path / "m"), *TINY])
    assert result.exit_code == 0, result.output
    assert "1, 2, 3, 4, 5 (K = 5, inferred from the data)" in flat(result.output)
    assert (tmp_path / "m.safetensors").is_file()


def test_text_ids_train_and_recommend_end_to_end(runner: CliRunner, tmp_path: Path) -> None:
    rows = [(f"u-{u}", f"sku{i:04d}", r) for u, i, r, _ in ratings_rows(2)]
    table = write_csv(tmp_path / "text.csv", rows, header="user,item,rating")
    result = runner.invoke(app, ["train", "ratings", str(table), "-o", str(tmp_path / "text"), *TINY])
    assert result.exit_code == 0, result.output
    assert "(str user ids, str item ids)" in flat(result.output)
    json_out = runner.invoke(app, ["recommend", "--user", "u-101", "--model", str(tmp_path / "text"), "--json"])
    assert json_out.exit_code == 0, json_out.output
    data = json.loads(json_out.stdout)
    assert data["user"] == "u-101" and data["recommendations"]
    assert all(entry["movie_id"].startswith("sku") for entry in data["recommendations"])
    scorer = Scorer.load(tmp_path / "text.safetensors")
    rated = scorer.state.item_ids.to_raw(scorer.rated_items(int(scorer.state.user_ids.to_inner(["u-101"])[0]))[0])
    assert rated.size and not set(rated.tolist()) & {entry["movie_id"] for entry in data["recommendations"]}
    unknown = runner.invoke(app, ["recommend", "--user", "nobody", "--model", str(tmp_path / "text")])
    assert "unknown user 'nobody'" in one_error_line(unknown)


def test_an_implicit_file_trains_the_joint_model_and_recommends(runner: CliRunner, tmp_path: Path) -> None:
    rows = [(u, i) for u, i, _, _ in ratings_rows(3)]
    table = write_csv(tmp_path / "clicks.csv", rows, header="user,item")
    result = runner.invoke(app, ["train", "ratings", str(table), "-o", str(tmp_path / "clicks"), *TINY])
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "Ratings: implicit feedback" in output and "validation NDCG@10" in output and "test RMSE" not in output
    data = json.loads(
        runner.invoke(app, ["recommend", "--user", "101", "--model", str(tmp_path / "clicks"), "--json"]).stdout
    )
    assert data["score_meaning"] == "P(picks it)" and len(data["recommendations"]) == 10
    assert all(entry["p_like"] is None and entry["score"] == entry["p_interacted"] for entry in data["recommendations"])
    refused = runner.invoke(app, ["train", "ratings", str(table), "--model-kind", "ratings", *TINY])
    assert "the ratings model needs at least 2" in one_error_line(refused)


@pytest.mark.parametrize(
    ("content", "options", "phrase"),
    [
        (
            "user,item,rating\n1,2,4\n1,3,x\n2,2,9\n",
            ["--scale", "1:5"],
            "r.csv: 2 bad rows: line 3: rating 'x' is not a number; line 4: rating 9 is not on the declared scale 1:5",
        ),
        ("user,item,rating\n1,2,4\n1,2,5\n", [], "r.csv:3: user 1 rated item 2 again (first at line 2)"),
        ("user,item,rating\n1,2,4\n", ["--scale", "5:1"], "rating scale '5:1': HIGH must be above LOW"),
        ("user,item,rating\n1,2,4\n", ["--implicit", "--rating-col", "rating"], "either a rating column"),
        ("who,item,rating\n1,2,4\n", [], "has no user id column among 'who', 'item', 'rating'; name it with --user-c"),
    ],
)
def test_problems_are_one_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, options: list, phrase: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.csv").write_text(content)
    line = one_error_line(runner.invoke(app, ["train", "ratings", "r.csv", *options, *TINY]))
    assert phrase in line
    assert not Path("runs").exists() or not any(Path("runs").iterdir())  # nothing trained, nothing saved


def test_a_missing_table_or_items_file(runner: CliRunner, tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["train", "ratings", str(tmp_path / "none.csv"), *TINY]))
    assert "ratings file" in line and "does not exist" in line
    table = write_csv(tmp_path / "r.csv", ratings_rows(), header="user,item,rating,timestamp")
    args = ["train", "ratings", str(table), "--items", str(tmp_path / "none.csv"), *TINY]
    assert "items file" in one_error_line(runner.invoke(app, args))


# --- every rating known: nothing the user has is recommended ----------------------------------------------


def rated_pairs(rows: list[tuple]) -> set[tuple[int, int]]:
    return {(int(user), int(item)) for user, item, *_ in rows}


def test_no_list_names_an_item_from_the_users_rows_in_the_file(runner: CliRunner, trained: dict) -> None:
    """The model held out 10% for test and 5% for early stopping: both are in the users' profiles all the same."""
    rows, model = ratings_rows(), str(trained["model"])
    metadata = read_metadata(trained["model"])
    assert metadata["split"]["test"] > 0 and metadata["split"]["validation"] > 0
    assert sum(metadata["profile_ratings"].values()) == len(rows)
    recs = trained["folder"] / "recs.csv"
    result = runner.invoke(app, ["recommend", "--all-users", "--top", str(N_ITEMS), "-m", model, "-o", str(recs)])
    assert result.exit_code == 0, result.output
    listed = pl.read_csv(recs)
    assert listed.height > 0 and listed["user"].n_unique() == N_USERS
    assert not rated_pairs(rows) & set(zip(listed["user"].to_list(), listed["item"].to_list(), strict=True))
    for user in (101, 117, 140):  # one table per user, as the terminal shows it
        data = json.loads(runner.invoke(app, ["recommend", "--user", str(user), "-m", model, "--json"]).stdout)
        assert data["n_rated"] == sum(1 for row in rows if row[0] == user)
        assert not {(user, entry["movie_id"]) for entry in data["recommendations"]} & rated_pairs(rows)


def test_include_rated_lists_rated_items_again_on_request(runner: CliRunner, trained: dict) -> None:
    rows, model = ratings_rows(), str(trained["model"])
    args = ["recommend", "--user", "101", "-m", model, "--top", str(N_ITEMS), "--json", "--include-rated"]
    listed = {entry["movie_id"] for entry in json.loads(runner.invoke(app, args).stdout)["recommendations"]}
    assert len(listed) == N_ITEMS and {item for user, item in rated_pairs(rows) if user == 101} <= listed


def test_by_default_every_rating_trains_but_the_early_stopping_share(runner: CliRunner, tmp_path: Path) -> None:
    rows = ratings_rows(4)
    table = write_csv(tmp_path / "all.csv", rows, header="user,item,rating,timestamp")
    result = runner.invoke(app, ["train", "ratings", str(table), "-o", str(tmp_path / "m"), *TINY])
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    held = round(0.05 * len(rows))
    assert "Split full: every rating, no test set; 5% held out for early stopping" in output
    assert f"ratings trained on {len(rows) - held:,}; held out {held:,} for early stopping; all {len(rows):,}" in output
    assert "test RMSE" not in output
    metadata = read_metadata(tmp_path / "m.safetensors")
    assert metadata["profile_ratings"] == {"trained": len(rows) - held, "validation": held, "held_out": 0}
    info = runner.invoke(app, ["info", str(tmp_path / "m.safetensors")])
    assert f"trained on {len(rows) - held:,}; held out {held:,} for early stopping" in flat(info.output)


def test_the_readme_example_runs_as_written_with_the_item_column_named_alike_in_both_tables(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's own-ratings example: --item-col names the id column of the --items table too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RBM_REC_MODELS", str(tmp_path / "models"))
    write_csv(tmp_path / "myratings.csv", [row[:3] for row in ratings_rows()], header="customer,product,rating")
    items = write_items(tmp_path / "myitems.csv")
    items.write_text(items.read_text().replace("itemId,", "product,", 1))  # the id column named as in the ratings
    command = "train ratings myratings.csv --user-col customer --item-col product --items myitems.csv"
    result = runner.invoke(app, [*command.split(), *TINY])
    assert result.exit_code == 0, result.output
    assert f"Items myitems.csv: titles for {N_ITEMS} of the {N_ITEMS} items rated." in flat(result.output)
    metadata = read_metadata(tmp_path / "models" / "ratings-myratings.safetensors")
    assert metadata["movies"]["titles"][0] == "Product 1 (1990)"


def test_items_id_col_names_the_item_tables_own_id_column(runner: CliRunner, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "r.csv", [row[:3] for row in ratings_rows()], header="customer,product,rating")
    items = write_items(tmp_path / "items.csv")
    items.write_text(items.read_text().replace("itemId,", "sku,", 1))
    args = ["train", "ratings", str(table), "--user-col", "customer", "--item-col", "product", "--items", str(items)]
    args += ["-o", str(tmp_path / "m")]
    line = one_error_line(runner.invoke(app, [*args, *TINY]))
    assert "has no item id column among 'sku', 'title', 'genres'" in line and "or give --items-id-col" in line
    result = runner.invoke(app, [*args, "--items-id-col", "sku", *TINY])
    assert result.exit_code == 0, result.output
    assert f"titles for {N_ITEMS} of the {N_ITEMS} items rated" in flat(result.output)
    line = one_error_line(runner.invoke(app, [*args, "--items-id-col", "code", "--overwrite", *TINY]))
    assert "has no column 'code' (given by --items-id-col)" in line
