"""The MovieLens commands through Typer's CliRunner, on a tiny generated ml-100k.

One module-wide data folder holds a generated release in ml-100k's format (``u.data``, Latin-1
``u.item`` with genre flags, ``u.genre``, ``u1.base``/``u1.test``); a user-based and an item-based
model are trained on it once with tiny settings, then recommended from, folded into, searched by
title and evaluated. Every bad input must exit non-zero with one line on stderr and no traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from checkpoint_tools import rewrite_metadata, to_legacy
from movielens_fakes import generated_releases
from recsys_rbm_cli.app import app
from recsys_rbm_cli.movielens_options import Dataset, parse_cd_schedule
from recsys_rbm_cli.titles import match_title, split_year, title_words
from typer.testing import CliRunner

from recsys_rbm.errors import ConfigError
from recsys_rbm.io.checkpoint_files import read_metadata, sidecar_path

GENRES = ("unknown", "Action", "Adventure", "Comedy", "Drama", "Sci-Fi")
NAMED = (  # (title, release date, genres): the titles the tests search for, then fillers
    ("Star Wars (1977)", "01-Jan-1977", ("Action", "Adventure", "Sci-Fi")),
    ("Return of the Jedi (1983)", "14-Mar-1997", ("Action", "Adventure", "Sci-Fi")),
    ("Usual Suspects, The (1995)", "14-Aug-1995", ("Drama",)),
    ("Misérables, Les (1995)", "01-Jan-1995", ("Drama",)),
    ("Heat (1995)", "01-Jan-1995", ("Action",)),
    ("Heat (1972)", "01-Jan-1972", ("Drama",)),
    ("Star Trek: First Contact (1996)", "22-Nov-1996", ("Action", "Sci-Fi")),
)
N_USERS, N_MOVIES, PER_USER = 40, 30, 14


def write_tiny_100k(data_dir: Path, seed: int = 0) -> Path:
    """A generated ml-100k folder in ``data_dir``: ratings from two planted tastes, every level and movie used."""
    rng = np.random.default_rng(seed)
    folder = data_dir / "ml-100k"
    folder.mkdir(parents=True, exist_ok=True)
    movies = list(NAMED) + [
        (f"Filler Movie {i} ({1980 + i})", f"01-Jan-{1980 + i}", (GENRES[1 + i % 5],))
        for i in range(len(NAMED) + 1, N_MOVIES + 1)
    ]
    (folder / "u.genre").write_text("".join(f"{name}|{k}\n" for k, name in enumerate(GENRES)) + "\n")
    lines = []
    for movie_id, (title, date, genres) in enumerate(movies, start=1):
        flags = "|".join("1" if name in genres else "0" for name in GENRES)
        lines.append(f"{movie_id}|{title}|{date}||http://example.org/{movie_id}|{flags}\n")
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    taste = rng.integers(0, 2, N_USERS)  # two kinds of users: fans of the first or of the second half
    rows = []
    for user in range(1, N_USERS + 1):
        own = (user - 1) % N_MOVIES + 1  # so every movie has a rating
        chosen = np.unique(np.append(rng.choice(N_MOVIES, PER_USER - 1, replace=False) + 1, own))
        for movie in chosen.tolist():
            likes = (movie <= N_MOVIES // 2) == bool(taste[user - 1])
            rating = int(np.clip(rng.normal(4.2 if likes else 2.0, 0.8), 1, 5).round())
            rows.append((user, movie, rating, 880_000_000 + len(rows)))
    for level in range(1, 6):  # every level 1..5 appears
        rows[level - 1] = (*rows[level - 1][:2], level, rows[level - 1][3])
    in_test = np.zeros(len(rows), dtype=bool)
    in_test[rng.choice(len(rows), len(rows) // 5, replace=False)] = True
    for name, keep in (("u.data", None), ("u1.base", False), ("u1.test", True)):
        chosen_rows = [row for row, test in zip(rows, in_test, strict=True) if keep is None or test == keep]
        (folder / name).write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in chosen_rows))
    return folder


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def generated_movielens() -> Iterator[None]:
    """The tiny ml-100k is generated: it has neither the real release's rating count nor its file hashes."""
    with generated_releases():
        yield


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("movielens") / "data"
    write_tiny_100k(directory)
    return directory


TINY = ["--hidden", "4", "--epochs", "2", "--batch-size", "10", "--device", "cpu", "--seed", "1"]


def train(runner: CliRunner, data_dir: Path, output: Path, *options: str) -> str:
    args = ["train", "movielens", "--data-dir", str(data_dir), "--output", str(output), *TINY, *options]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return flat(result.output)


@pytest.fixture(scope="module")
def trained(runner: CliRunner, data_dir: Path) -> dict[str, object]:
    """The joint model (user-based, the default) and the item-based ratings model on the tiny release's split u1
    (so that the summary has test figures), with the train command's output."""
    folder = data_dir.parent / "runs"
    user_output = train(runner, data_dir, folder / "user.safetensors", "--split", "u1")
    item_output = train(
        runner, data_dir, folder / "item.safetensors", "--split", "u1", "--model-kind", "ratings", "--mode", "item"
    )
    return {
        "user": folder / "user.safetensors",
        "item": folder / "item.safetensors",
        "user_output": user_output,
        "item_output": item_output,
    }


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def one_error_line(result, quiet: bool = True) -> str:
    """The run failed with exactly one line on stderr and no traceback (and, if ``quiet``, nothing on stdout)."""
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    assert not quiet or result.stdout.strip() == ""
    return lines[0]


def recommend_json(runner: CliRunner, *args: str) -> dict:
    result = runner.invoke(app, ["recommend", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- train --------------------------------------------------------------------------------------


def test_train_saves_the_best_epoch_with_titles_split_and_metrics(trained: dict, data_dir: Path) -> None:
    output = trained["user_output"]
    for phrase in (
        "MovieLens ml-100k: 544 ratings by 40 users of 30 movies",
        "Split u1",
        "train RMSE",
        "validation RMSE",
        "validation NDCG@10",
        "best epoch",
        "baseline most popular: validation NDCG@10",
        "test RMSE / MAE",
        "test ranking NDCG@10",
        "coverage@10",
        "s per epoch",
        "saved",
    ):
        assert phrase in output, phrase
    assert "baseline user+item biases: validation RMSE" in trained["item_output"]
    metadata = read_metadata(trained["user"])
    assert metadata["kind"] == "recommender-rbm" and metadata["complete"] is True
    assert metadata["model"] == "joint" and metadata["validation_measure"] == "validation_ndcg"
    assert metadata["mode"] == "user" and metadata["n_hidden"] == 4 and metadata["seed"] == 1
    assert metadata["config"]["batch_size"] == 10 and metadata["config"]["epochs"] == 2
    assert metadata["dataset"]["name"] == "ml-100k" and len(metadata["dataset"]["fingerprint"]) == 64
    assert metadata["split"]["name"] == "u1" and metadata["split"]["test"] == 108
    assert metadata["metrics"]["test_ratings"] == 108 and 0 < metadata["metrics"]["test_rmse"] < 4
    assert 0 <= metadata["metrics"]["test_ranking"]["ndcg"] <= 1
    assert metadata["best_epoch"] in (1, 2) and len(metadata["history"]) == 2
    assert metadata["movies"]["titles"][0] == "Star Wars (1977)"
    assert "Misérables, Les (1995)" in metadata["movies"]["titles"]  # Latin-1 in u.item


def test_train_split_full_has_no_test_set_and_the_config_file_is_overridden(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    config = write(tmp_path / "rbm.toml", "[recommender]\nmode = 'user'\nn_hidden = 7\nlearning_rate = 0.02\n")
    output = train(runner, data_dir, tmp_path / "full.safetensors", "--split", "full", "--config", str(config))
    assert "none: split full has no test set" in output
    metadata = read_metadata(tmp_path / "full.safetensors")
    assert metadata["n_hidden"] == 4  # --hidden beats the file
    assert metadata["mode"] == "user" and metadata["config"]["learning_rate"] == 0.02  # the file beats the defaults
    assert metadata["split"]["name"] == "full" and "test_rmse" not in metadata["metrics"]


def test_train_random_split_and_cd_schedule(runner: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    output = train(runner, data_dir, tmp_path / "r", "--split", "random", "--cd-schedule", "0:2,1:3")
    assert "CD-2 from epoch 1, CD-3 from epoch 2" in output and "epoch 2 CD-3" in output
    metadata = read_metadata(tmp_path / "r.safetensors")  # ".safetensors" is added to the output path
    assert metadata["split"]["name"] == "random-1" and metadata["config"]["cd_schedule"] == [[0, 2], [1, 3]]


def test_ctrl_c_keeps_the_best_model_so_far(
    runner: CliRunner, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys_rbm.recommender.model import RBMRecommender

    fit = RBMRecommender.fit

    def interrupted_fit(self, train, validation=None, *, progress=None, **options):
        def report_then_interrupt(record):
            progress(record)
            if record.epoch == 2:
                raise KeyboardInterrupt

        return fit(self, train, validation, progress=report_then_interrupt, **options)

    monkeypatch.setattr(RBMRecommender, "fit", interrupted_fit)
    args = ["train", "movielens", "--data-dir", str(data_dir), "--output", str(tmp_path / "m.safetensors")]
    result = runner.invoke(app, [*args, *TINY, "--epochs", "5"])
    assert result.exit_code == 130
    assert "interrupted; kept the best model so far in" in one_error_line(result, quiet=False)
    metadata = read_metadata(tmp_path / "m.safetensors")
    assert metadata["complete"] is False and metadata["best_epoch"] in (1, 2)
    monkeypatch.undo()
    used = runner.invoke(app, ["recommend", "--user", "1", "--model", str(tmp_path / "m.safetensors"), "--json"])
    assert used.exit_code == 0 and json.loads(used.stdout)["recommendations"]  # usable, but said to be unfinished
    assert "warning: " in used.stderr and "is an unfinished model" in used.stderr


# --- recommend ------------------------------------------------------------------------------------


def test_recommend_table_shows_the_users_best_rated_movies_then_the_list(runner: CliRunner, trained: dict) -> None:
    result = runner.invoke(app, ["recommend", "--user", "3", "--model", str(trained["user"]), "--top", "4"])
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "Best rated by user 3" in output
    assert (
        "Recommended for user 3 (joint RBM (user-based), ml-100k; score = P(picks it)·P(rates it ≥ 4 | picks it))"
        in output
    )
    assert "pick: P(picks it); ≥4★: P(rates it ≥ 4 | picks it); mean★: expected rating." in output
    assert "(19" in output  # titles carry their year


def test_recommend_json_ranks_unrated_movies_by_the_chosen_score(runner: CliRunner, trained: dict) -> None:
    metadata = read_metadata(trained["user"])
    for model in (trained["user"], trained["item"]):
        data = recommend_json(runner, "--user", "3", "--model", str(model), "--top", "5", "--score", "expected")
        recommendations = data["recommendations"]
        assert (
            data["user"] == 3 and len(recommendations) == 5 and [r["rank"] for r in recommendations] == [1, 2, 3, 4, 5]
        )
        assert all(r["score"] == r["expected_rating"] for r in recommendations)
        expected = [r["expected_rating"] for r in recommendations]
        assert expected == sorted(expected, reverse=True)
        rated = {r["movie_id"] for r in data["best_rated"]}
        assert not rated & {r["movie_id"] for r in recommendations}
        assert all(r["title"] in metadata["movies"]["titles"] and 0 <= r["p_like"] <= 1 for r in recommendations)
    by_p_high = recommend_json(runner, "--user", "3", "--model", str(trained["user"]), "--score", "p_high")
    p_high = [r["p_like"] for r in by_p_high["recommendations"]]
    assert p_high == sorted(p_high, reverse=True) and len(p_high) == 10
    liked = recommend_json(runner, "--user", "3", "--model", str(trained["user"]))  # the default: p_liked
    assert liked["score"] == "p_liked" and liked["score_meaning"] == "P(picks it)·P(rates it ≥ 4 | picks it)"
    for entry in liked["recommendations"]:
        assert entry["p_interacted_from"] == "model"
        assert entry["score"] == pytest.approx(entry["p_interacted"] * entry["p_like"], rel=1e-5)
    popular = recommend_json(runner, "--user", "3", "--model", str(trained["item"]))  # a ratings-only model
    assert {entry["p_interacted_from"] for entry in popular["recommendations"]} == {"popularity"}


def test_recommend_never_lists_what_the_user_rated_in_training(
    runner: CliRunner, trained: dict, data_dir: Path
) -> None:
    base = np.loadtxt(data_dir / "ml-100k" / "u1.base", dtype=np.int64)
    data = recommend_json(runner, "--user", "5", "--model", str(trained["user"]), "--top", "30", "--context", "0")
    rated = set(base[base[:, 0] == 5, 1].tolist())
    listed = {r["movie_id"] for r in data["recommendations"]}
    assert listed and not listed & rated and data["best_rated"] == []


def test_min_ratings_leaves_out_rarely_rated_movies(runner: CliRunner, trained: dict) -> None:
    from recsys_rbm.recommender.scorer import Scorer

    model = Scorer.load(trained["user"])
    counts = dict(zip(model.state.item_ids.raw_ids.tolist(), model.item_counts, strict=True))
    every = recommend_json(runner, "--user", "3", "--model", str(trained["user"]), "--top", "30")["recommendations"]
    least = int(np.median([counts[r["movie_id"]] for r in every])) + 1
    some = recommend_json(
        runner, "--user", "3", "--model", str(trained["user"]), "--top", "30", "--min-ratings", str(least)
    )
    assert any(counts[r["movie_id"]] < least for r in every)
    assert [r["movie_id"] for r in some["recommendations"]] == [
        r["movie_id"] for r in every if counts[r["movie_id"]] >= least
    ]
    result = runner.invoke(app, ["recommend", "--user", "3", "--model", str(trained["user"]), "--min-ratings", "999"])
    assert result.exit_code == 0 and "No movie is left to recommend" in flat(result.output)
    args = ["similar", "--movie", "1", "--model", str(trained["item"]), "--min-ratings", "13", "--json"]
    similar = json.loads(runner.invoke(app, args).stdout)["similar"]
    assert similar and all(counts[entry["movie_id"]] >= 13 for entry in similar)


def test_fold_in_by_id_and_by_title(runner: CliRunner, trained: dict, tmp_path: Path) -> None:
    by_id = write(tmp_path / "ids.csv", "1,5\n2,5\n3,1\n")
    by_title = write(
        tmp_path / "titles.csv",
        'movie,rating\nstar wars,5\n"Return of the Jedi (1983)",5\nUsual Suspects, The (1995),1\n',
    )
    first = recommend_json(runner, "--ratings", str(by_id), "--model", str(trained["user"]))
    second = recommend_json(runner, "--ratings", str(by_title), "--model", str(trained["user"]))
    assert first["recommendations"] == second["recommendations"]  # the same three movies, named two ways
    assert first["user"] is None and first["n_rated"] == 3
    assert {1, 2, 3}.isdisjoint(r["movie_id"] for r in first["recommendations"])
    assert [r["movie_id"] for r in first["best_rated"]] == [2, 1, 3]  # by rating, then title
    table = runner.invoke(app, ["recommend", "--ratings", str(by_title), "--model", str(trained["user"])])
    assert table.exit_code == 0 and "Recommended for the ratings in titles.csv" in flat(table.output)


def test_fold_in_of_a_training_users_ratings_matches_their_recommendations(
    runner: CliRunner, trained: dict, tmp_path: Path
) -> None:
    from recsys_rbm.recommender.scorer import Scorer

    model = Scorer.load(trained["user"])
    items, levels = model.rated_items(int(model.state.user_ids.to_inner([7])[0]))  # what the model trained on
    movies, values = model.state.item_ids.raw_ids[items], model.rating_values[levels]
    ratings = write(tmp_path / "user7.csv", "".join(f"{m},{v:g}\n" for m, v in zip(movies, values, strict=True)))
    folded = recommend_json(runner, "--ratings", str(ratings), "--model", str(trained["user"]))
    trained_user = recommend_json(runner, "--user", "7", "--model", str(trained["user"]))
    assert folded["recommendations"] == trained_user["recommendations"]


# --- similar --------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Star Wars", "star wars", "STAR WARS (1977)", "1", "  star   wars!  "])
def test_similar_finds_a_movie_by_id_or_tolerant_title(runner: CliRunner, trained: dict, query: str) -> None:
    args = ["similar", "--movie", query, "--model", str(trained["item"]), "--top", "3", "--min-ratings", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "Closest to Star Wars (1977), id 1 (I-RBM" in output and output.count("(19") + output.count("(20") >= 4


@pytest.mark.parametrize(
    ("query", "movie_id"),
    [
        ("the usual suspects", 3),
        ("Usual Suspects (1995)", 3),
        ("les miserables", 4),
        ("Misérables", 4),
        ("jedi", 2),
        ("heat (1972)", 6),
        ("Star Trek First Contact", 7),
    ],
)
def test_similar_json_and_title_tolerance(runner: CliRunner, trained: dict, query: str, movie_id: int) -> None:
    args = ["similar", "--movie", query, "--model", str(trained["user"]), "--json", "--top", "4", "--min-ratings", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["movie"]["movie_id"] == movie_id and len(data["similar"]) == 4
    similarities = [entry["similarity"] for entry in data["similar"]]
    assert similarities == sorted(similarities, reverse=True) and movie_id not in {
        e["movie_id"] for e in data["similar"]
    }


def test_similar_ambiguous_title_lists_the_candidates(runner: CliRunner, trained: dict) -> None:
    line = one_error_line(runner.invoke(app, ["similar", "--movie", "heat", "--model", str(trained["user"])]))
    assert "'heat' matches several movies: Heat (1995), id 5; Heat (1972), id 6; add the year" in line


def test_similar_unknown_title_suggests_near_ones(runner: CliRunner, trained: dict) -> None:
    line = one_error_line(runner.invoke(app, ["similar", "--movie", "Star Warz", "--model", str(trained["user"])]))
    assert "no movie titled 'Star Warz'; did you mean: Star Wars (1977), id 1" in line
    line = one_error_line(runner.invoke(app, ["similar", "--movie", "Qwxyz", "--model", str(trained["user"])]))
    assert "no movie titled 'Qwxyz', and no title is close" in line
    line = one_error_line(runner.invoke(app, ["similar", "--movie", "999", "--model", str(trained["user"])]))
    assert "unknown movie id 999; the model's movie ids range over 1..30" in line


# --- evaluate -------------------------------------------------------------------------------------


def test_evaluate_prints_the_rbm_against_the_baselines_and_writes_json(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "evaluation.json"
    args = [
        "evaluate",
        "movielens",
        "--data-dir",
        str(data_dir),
        "--folds",
        "u1",
        "--k",
        "5",
        "--json-out",
        str(target),
    ]
    result = runner.invoke(app, [*args, *TINY])
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    for phrase in (
        "Rating prediction (one fold)",
        "Top-5 ranking",
        "joint RBM",
        "EASE",
        "global mean",
        "user+item biases",
        "most popular",
        "RMSE",
        "NDCG@5",
        "MAP@5",
        "HR@5",
        "coverage",
        "fit s",
        "cold pairs",
    ):
        assert phrase in output, phrase
    accuracy, ranking = output.split("Rating prediction (one fold)")[1].split("Top-5 ranking")
    assert "I-RBM" in accuracy and "joint RBM" not in accuracy  # the rater is shown rating,
    assert "joint RBM" in ranking and "I-RBM" not in ranking  # the ranker ranking
    report = json.loads(target.read_text())
    assert report["k"] == 5 and report["models"] == [
        "joint RBM (user-based)",
        "I-RBM (conditional)",
        "EASE",
        "global mean",
        "user+item biases",
        "most popular",
    ]
    assert [split["name"] for split in report["splits"]] == ["u1"] and report["notes"]["dataset"] == "ml-100k"
    assert report["summary"][0]["rmse"]["n"] == 1 and not list(target.parent.glob(".*.tmp"))


def test_evaluate_two_folds_shows_mean_and_std(runner: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    args = ["evaluate", "movielens", "--data-dir", str(data_dir), "--folds", "random", "--random-folds", "2"]
    args += ["--models", "biases", "--models", "global-mean", "--json-out", str(tmp_path / "e.json")]
    result = runner.invoke(app, [*args, *TINY])
    assert result.exit_code == 0, result.output
    assert "mean ± std over 2 folds" in flat(result.output) and " ± " in result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["models"] == ["user+item biases", "global mean"]
    assert [split["name"] for split in report["splits"]] == ["random-1", "random-2"]


# --- every bad input: one line on stderr, non-zero exit -------------------------------------------


def test_unknown_user_names_the_valid_range(runner: CliRunner, trained: dict) -> None:
    line = one_error_line(runner.invoke(app, ["recommend", "--user", "999", "--model", str(trained["user"])]))
    assert "unknown user 999; known user ids range over 1..40 (40 of them)" in line


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("1,5\n999,4\n", "ratings.csv:2: unknown movie id 999; the model's movie ids range over 1..30"),
        ("1,5\nStar Warz,4\n", "did you mean: Star Wars (1977), id 1? Write the title as listed, or the movie id"),
        ("jedi,4\n", "ratings.csv:1: no movie titled 'jedi' (a title in a file must match one movie's title"),
        ("1,5\nStar Wars Return,4\n", "ratings.csv:2: no movie titled 'Star Wars Return'"),
        ("1,5\nheat,4\n", "ratings.csv:2: 'heat' matches several movies"),
        ("1,5\n\n2 5\n", "ratings.csv:3: expected 'movie,rating'"),
        ("1,5\n2,great\n", "ratings.csv:2: rating 'great' is not a number"),
        ("movie,rating\n1,7\n", "ratings.csv:2: rating 7 is outside the model's scale; use one of 1, 2, 3, 4, 5"),
        ("1,0\n", "ratings.csv:1: rating 0 is outside the model's scale"),
        ("1,3.5\n", "ratings.csv:1: rating 3.5 is not on the model's scale; use one of 1, 2, 3, 4, 5"),
        ("1,5\n2,4\nstar wars,3\n", "ratings.csv:3: Star Wars (1977), id 1 again (first at line 1)"),
        (",5\n", "ratings.csv:1: the movie (an id or a title) is missing"),
        ('1,"5\n', "ratings.csv:1:"),
        ("", "holds no ratings"),
        ("movie,rating\n\n# nothing yet\n", "holds no ratings"),
    ],
)
def test_bad_ratings_files(runner: CliRunner, trained: dict, tmp_path: Path, content: str, phrase: str) -> None:
    ratings = write(tmp_path / "ratings.csv", content)
    line = one_error_line(runner.invoke(app, ["recommend", "--ratings", str(ratings), "--model", str(trained["user"])]))
    assert phrase in line


def test_missing_ratings_file_and_item_model_fold_in(runner: CliRunner, trained: dict, tmp_path: Path) -> None:
    args = ["recommend", "--ratings", str(tmp_path / "nope.csv"), "--model", str(trained["user"])]
    assert f"ratings file {tmp_path / 'nope.csv'} does not exist" in one_error_line(runner.invoke(app, args))
    ratings = write(tmp_path / "r.csv", "1,5\n")
    args = ["recommend", "--ratings", str(ratings), "--model", str(trained["item"])]
    assert "fold-in of a new user needs a user-based model" in one_error_line(runner.invoke(app, args))


def _copy_model(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, folder / source.name)
    return folder / source.name


@pytest.mark.parametrize("command", [["recommend", "--user", "1"], ["similar", "--movie", "1"]])
def test_missing_and_corrupt_models(runner: CliRunner, trained: dict, tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "none.safetensors"
    line = one_error_line(runner.invoke(app, [*command, "--model", str(missing)]))
    assert f"model file {missing} does not exist" in line

    flipped = _copy_model(trained["user"], tmp_path / "flipped")
    data = bytearray(flipped.read_bytes())
    data[-1] ^= 0xFF
    flipped.write_bytes(bytes(data))
    assert "does not match the checksum" in one_error_line(runner.invoke(app, [*command, "--model", str(flipped)]))

    garbled = _copy_model(trained["user"], tmp_path / "garbled")
    garbled.write_bytes(b"\xff" * 8 + garbled.read_bytes()[8:])
    assert "not a safetensors model file" in one_error_line(runner.invoke(app, [*command, "--model", str(garbled)]))

    retitled = _copy_model(trained["user"], tmp_path / "retitled")  # the metadata is covered by the hash too
    rewrite_metadata(retitled, lambda m: m["movies"]["titles"].__setitem__(0, "Star Wars 2"), rehash=False)
    assert "does not match the checksum" in one_error_line(runner.invoke(app, [*command, "--model", str(retitled)]))


@pytest.mark.parametrize("command", [["recommend", "--user", "1"], ["similar", "--movie", "1"]])
def test_old_two_file_models_still_work_and_fail_clearly(
    runner: CliRunner, trained: dict, tmp_path: Path, command: list[str]
) -> None:
    old = to_legacy(trained["user"], tmp_path / "old.safetensors")
    assert runner.invoke(app, [*command, "--model", str(old)]).exit_code == 0
    sidecar_path(old).write_text("{not json")
    assert "is corrupt" in one_error_line(runner.invoke(app, [*command, "--model", str(old)]))
    sidecar_path(old).unlink()
    assert "copy both files together" in one_error_line(runner.invoke(app, [*command, "--model", str(old)]))


@pytest.mark.parametrize("command", [["recommend", "--user", "1"], ["similar", "--movie", "1"]])
def test_models_of_another_kind(runner: CliRunner, trained: dict, tmp_path: Path, command: list[str]) -> None:
    import torch

    from recsys_rbm.io.checkpoint import save_checkpoint, save_rbm
    from recsys_rbm.rbm.model import RBM
    from recsys_rbm.rbm.units import BernoulliUnits
    from recsys_rbm.runtime import make_generator

    mnist = tmp_path / "mnist.safetensors"
    save_rbm(mnist, RBM.initialise(BernoulliUnits(12), 3, make_generator(0)), {"kind": "mnist-rbm"})
    line = one_error_line(runner.invoke(app, [*command, "--model", str(mnist)]))
    assert "holds a 'mnist-rbm' model, but a 'recommender-rbm' model is needed" in line

    forged = tmp_path / "forged.safetensors"  # the right kind in the metadata, but not the tensors of one
    save_checkpoint(forged, {"weights": torch.zeros(3, 2)}, {"kind": "movielens-rbm", "mode": "user", "n_levels": 5})
    assert "not a valid recommender model" in one_error_line(runner.invoke(app, [*command, "--model", str(forged)]))


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["recommend", "--top", "0", "--user", "1"], "--top"),
        (["recommend", "--user", "1", "--score", "best"], "--score"),
        (["recommend", "--user", "x"], "--user"),
        (["recommend"], "give one of --user ID"),
        (["recommend", "--user", "1", "--ratings", "r.csv"], "give one of --user ID"),
        (["similar"], "--movie"),
        (["train", "movielens", "--mode", "both"], "--mode"),
        (["train", "movielens", "--split", "u9"], "--split"),
        (["train", "movielens", "--dataset", "ml-2k"], "--dataset"),
        (["train", "movielens", "--hidden", "0"], "--hidden"),
        (["train", "movielens", "--cd-schedule", "a:b"], "--cd-schedule 'a:b' is not a list of EPOCH:T pairs"),
        (["train", "movielens", "--cd-schedule", "3:1"], "--cd-schedule must start at epoch 0"),
        (["train", "movielens", "--device", "tpu"], "--device must be one of"),
        (["train", "movielens", "--learning-rate", "0"], "--learning-rate must be positive"),
        (["train", "movielens", "--config", "missing.toml"], "config file missing.toml does not exist"),
        (["evaluate", "movielens", "--folds", "u9"], "unknown --folds value 'u9'"),
        (["evaluate", "movielens", "--models", "svd"], "unknown --models value 'svd'"),
        (["evaluate", "movielens", "--k", "0"], "--k"),
    ],
)
def test_bad_option_values(runner: CliRunner, trained: dict, args: list[str], phrase: str) -> None:
    extra = ["--model", str(trained["user"])] if args[0] in ("recommend", "similar") else []
    assert phrase in one_error_line(runner.invoke(app, [*args, *extra]))


def test_bad_config_file_contents(runner: CliRunner, tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.toml", "[recommender\n")
    line = one_error_line(runner.invoke(app, ["train", "movielens", "--config", str(broken)]))
    assert "is not valid TOML" in line
    unknown = write(tmp_path / "unknown.toml", "[recommender]\nhidden_units = 3\n")
    line = one_error_line(runner.invoke(app, ["train", "movielens", "--config", str(unknown)]))
    assert "unknown RecommenderConfig field(s): hidden_units" in line


def test_canonical_split_of_another_release(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::1\n1::2::3::2\n2::1::4::3\n2::2::1::4\n")
    (folder / "movies.dat").write_text("1::A (1990)::Drama\n2::B (1991)::Comedy\n")
    args = ["train", "movielens", "--dataset", "ml-1m", "--split", "u1", "--data-dir", str(tmp_path), *TINY]
    line = one_error_line(runner.invoke(app, args))
    assert "the canonical splits belong to ml-100k; ml-1m has none" in line


# --- the recommend path imports no torch ------------------------------------------------------------


def test_the_recommend_path_imports_neither_torch_nor_polars(trained: dict) -> None:
    script = (
        "import sys\n"
        "import recsys_rbm_cli.app\n"
        "heavy = [name for name in ('torch', 'polars', 'matplotlib') if name in sys.modules]\n"
        "assert not heavy, f'importing the app imported {heavy}'\n"
        "from typer.testing import CliRunner\n"
        f"args = ['recommend', '--user', '1', '--model', {str(trained['user'])!r}]\n"
        "result = CliRunner().invoke(recsys_rbm_cli.app.app, args)\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [name for name in ('torch', 'polars', 'matplotlib') if name in sys.modules]\n"
        "assert not heavy, f'recommend imported {heavy}'\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


# --- pure helpers ---------------------------------------------------------------------------------


def test_dataset_choices_are_the_releases() -> None:
    from recsys_rbm.data.releases import RELEASES

    assert [dataset.value for dataset in Dataset] == list(RELEASES)


def test_cd_schedule_parsing() -> None:
    assert parse_cd_schedule("0:1,15:3,25:5,35:9") == [[0, 1], [15, 3], [25, 5], [35, 9]]
    assert parse_cd_schedule(" 4 ") == [[0, 4]]
    with pytest.raises(ConfigError):
        parse_cd_schedule("0:1,x")


def test_title_keys() -> None:
    assert split_year("Star Wars (1977)") == ("Star Wars", 1977)
    assert split_year("Show (2006–2007)") == ("Show", 2006)
    assert split_year("Untitled") == ("Untitled", None)
    assert title_words("Usual Suspects, The") == title_words("the usual suspects") == ("usual", "suspects")
    assert title_words("Misérables, Les") == ("miserables",)
    assert title_words("Schindler's List") == ("schindlers", "list")
    assert title_words("Ægir, Der") == ("ægir",) and title_words("Ōkami") == ("okami",)
    assert title_words("The") == ("the",)


def test_match_title_rounds() -> None:
    ids = [1, 2, 3, 4, 5, 6]
    titles = [
        "Heat (1995)",
        "Heat (1972)",
        "Heathers (1989)",
        "Star Wars (1977)",
        "Star Wars: Episode V (1980)",
        "1941 (1979)",
    ]
    assert match_title("Heat", ids, titles).ids == (1, 2)  # exact beats containing ("Heathers" is not "Heat")
    assert match_title("heat (1972)", ids, titles).ids == (2,)
    assert match_title("star wars", ids, titles).ids == (4,)
    assert match_title("episode v", ids, titles).ids == (5,)
    assert match_title("wars", ids, titles).ambiguous
    assert match_title("1941 (1979)", ids, titles).ids == (6,)
    assert match_title("6", ids, titles).ids == (6,) and match_title("7", ids, titles).ids == ()
    unknown = match_title("Heatherz", ids, titles)
    assert unknown.ids == () and unknown.suggestions[0] == 3
    assert match_title("!!!", ids, titles).ids == ()


def test_strict_matching_takes_only_verbatim_titles_or_one_normalised_key() -> None:
    ids = [1, 2, 3, 4, 5]
    titles = ["Heat (1995)", "Heat (1972)", "Star Wars (1977)", "Usual Suspects, The (1995)", "Convent, The (1995)"]
    assert match_title("Usual Suspects, The (1995)", ids, titles, strict=True).ids == (4,)  # verbatim
    assert match_title("the usual suspects", ids, titles, strict=True).ids == (4,)  # one movie has this key
    assert match_title("heat", ids, titles, strict=True).ambiguous  # two do: never guessed
    assert match_title("heat (1972)", ids, titles, strict=True).ids == (2,)
    contained = match_title("wars", ids, titles, strict=True)  # tolerant matching would take it
    assert contained.ids == () and contained.suggestions == (3,)
    assert match_title("wars", ids, titles).ids == (3,)
    garbage = match_title("\x8f\x03\xe7onvent\x11", ids, titles, strict=True)  # random bytes read as Latin-1
    assert garbage.ids == () and garbage.suggestions == ()
    assert match_title("\x8f\x03\xe7onvent\x11", ids, titles).ids == (5,)  # what tolerant matching made of them


# --- lists for everyone, explanations, info, the interactive session ------------------------------


def test_several_users_give_one_table_each(runner: CliRunner, trained: dict) -> None:
    result = runner.invoke(app, ["recommend", "--user", "3", "--user", "5", "--model", str(trained["user"])])
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "Recommended for user 3" in output and "Recommended for user 5" in output


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_all_users_write_every_list_in_the_format_of_the_extension(
    runner: CliRunner, trained: dict, tmp_path: Path, suffix: str
) -> None:
    import polars as pl

    target = tmp_path / f"recs{suffix}"
    args = ["recommend", "--all-users", "--top", "3", "--model", str(trained["user"]), "--output", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 120 recommendations for 40 users" in flat(result.output)
    read = {".csv": pl.read_csv, ".parquet": pl.read_parquet, ".jsonl": pl.read_ndjson}[suffix]
    table = read(target)
    assert table.columns == ["user", "item", "rank", "score", "title"]
    assert table.height == 120 and table["user"].n_unique() == 40 and sorted(set(table["rank"])) == [1, 2, 3]
    first = table.filter(pl.col("user") == 3).sort("rank")
    single = recommend_json(runner, "--user", "3", "--model", str(trained["user"]), "--top", "3")
    assert first["item"].to_list() == [entry["movie_id"] for entry in single["recommendations"]]
    again = runner.invoke(app, args)  # never overwritten without --overwrite
    assert "already exists; pass --overwrite" in one_error_line(again)


def test_a_users_file_limits_the_lists(runner: CliRunner, trained: dict, tmp_path: Path) -> None:
    import polars as pl

    users = write(tmp_path / "users.txt", "user\n3\n7\n")
    target = tmp_path / "some.csv"
    result = runner.invoke(
        app, ["recommend", "--users", str(users), "--model", str(trained["user"]), "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(pl.read_csv(target)["user"].unique().to_list()) == [3, 7]
    unknown = write(tmp_path / "unknown.txt", "3\n999\n")
    args = ["recommend", "--users", str(unknown), "--model", str(trained["user"]), "--output", str(tmp_path / "x.csv")]
    assert "unknown user 999" in one_error_line(runner.invoke(app, args))
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--all-users"], "--users and --all-users write a file: add --output"),
        (["--user", "3", "--all-users"], "give one of --user ID"),
        (["--all-users", "--output", "recs.txt"], "has no known format"),
    ],
)
def test_list_options_that_do_not_fit_together(runner: CliRunner, trained: dict, args: list[str], phrase: str) -> None:
    line = one_error_line(runner.invoke(app, ["recommend", "--model", str(trained["user"]), *args]))
    assert phrase in line


def test_recommend_says_which_of_the_users_ratings_each_item_comes_from(runner: CliRunner, trained: dict) -> None:
    data = recommend_json(runner, "--user", "3", "--model", str(trained["user"]))
    rated = {
        entry["movie_id"]
        for entry in recommend_json(runner, "--user", "3", "--model", str(trained["user"]), "--context", "100")[
            "best_rated"
        ]
    }
    reasons = [entry["because"] for entry in data["recommendations"]]
    assert any(reasons) and all(reason["movie_id"] in rated for entries in reasons for reason in entries)
    table = runner.invoke(app, ["recommend", "--user", "3", "--model", str(trained["user"])])
    assert "because" in flat(table.output)
    item_based = recommend_json(runner, "--user", "3", "--model", str(trained["item"]))  # no user hidden state
    assert all(entry["because"] == [] for entry in item_based["recommendations"])


def test_explain_names_the_ratings_that_move_an_item(runner: CliRunner, trained: dict) -> None:
    args = ["explain", "--user", "3", "--movie", "star wars", "--model", str(trained["user"]), "--top", "3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    effects = [abs(reason["effect"]) for reason in data["reasons"]]
    assert data["item"]["movie_id"] == 1 and len(effects) == 3 and effects == sorted(effects, reverse=True)
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "What moves it most" in flat(table.output)
    item_based = runner.invoke(app, ["explain", "--user", "3", "--movie", "1", "--model", str(trained["item"])])
    assert "explanations need a user-based model" in one_error_line(item_based)


def test_info_prints_what_a_checkpoint_holds_and_draws_its_curve(
    runner: CliRunner, trained: dict, tmp_path: Path
) -> None:
    plot = tmp_path / "curve.png"
    result = runner.invoke(app, ["info", str(trained["user"]), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    for phrase in ("recommender-rbm", "joint RBM (user-based)", "40 users × 30 items", "best epoch", "Training curve"):
        assert phrase in output, phrase
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(runner.invoke(app, ["info", str(trained["user"]), "--json"]).stdout)
    assert data["kind"] == "recommender-rbm" and data["model"] == "joint"
    assert "already exists" in one_error_line(runner.invoke(app, ["info", str(trained["user"]), "--plot", str(plot)]))


def test_the_interactive_session_rates_searches_explains_and_saves(
    runner: CliRunner, trained: dict, tmp_path: Path
) -> None:
    saved = tmp_path / "mine.csv"
    session = "\n".join(
        [
            "help",
            "search star",
            "rate star wars 5",
            "rate usual suspects 1",
            "rate heat 4",  # ambiguous: two movies are called Heat
            "rate jedi 9",  # off the scale
            "why jedi",
            "ratings",
            "unrate usual suspects",
            f"save {saved}",
            "quit",
        ]
    )
    result = runner.invoke(app, ["interactive", "--model", str(trained["user"]), "--top", "3"], input=session + "\n")
    assert result.exit_code == 0, result.output
    output = flat(result.stdout)
    for phrase in (
        "Type 'help' for the commands",
        "Star Wars (1977), id 1",
        "Rated Star Wars (1977): 5.",
        "Recommended for you",
        "What moves Return of the Jedi (1983) in your list",
        "Took back the rating of Usual Suspects, The (1995)",
        "Saved 1 rating to",
        "Bye: 1 rating this session.",
    ):
        assert phrase in output, phrase
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 2 and "matches several movies" in errors[0] and "rating of 1, 2, 3, 4, 5" in errors[1]
    assert saved.read_text() == "movie,rating\n1,5\n"
    folded = recommend_json(runner, "--ratings", str(saved), "--model", str(trained["user"]))
    assert folded["n_rated"] == 1


def test_the_interactive_session_needs_a_user_based_model(runner: CliRunner, trained: dict) -> None:
    line = one_error_line(runner.invoke(app, ["interactive", "--model", str(trained["item"])], input="quit\n"))
    assert "needs a user-based model" in line


def test_version_and_uniform_help(runner: CliRunner) -> None:
    from recsys_rbm import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"rbm-rec {__version__}"

    def help_text(*command: str) -> str:
        """A command's --help, its panel borders removed and its wrapped lines joined."""
        return flat(re.sub(r"[│╭╮╰╯─]", " ", runner.invoke(app, [*command, "--help"]).stdout))

    text = help_text("train", "movielens")
    assert "<bool>" not in text and "[recommender] table" in text and "[default: (" not in text
    assert "[default: full]" in text
    devices = {
        flat(runner.invoke(app, [*command, "--help"], terminal_width=200).stdout).count("cuda:N")
        for command in (["train", "movielens"], ["train", "mnist"], ["evaluate", "movielens"])
    }
    assert devices == {1}  # the same --device help everywhere
