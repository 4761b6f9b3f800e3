"""The real MovieLens 100K under ``$RBM_REC_DATA`` (skipped, with the reason, when it is not there)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from recsys_rbm.data import movielens as ml
from recsys_rbm.data import releases as rel
from recsys_rbm.errors import DataError
from recsys_rbm.recommender import splits as sp

pytestmark = pytest.mark.realdata

# sha256 of the original files (listed in ../shared/README.md, checked there against the release).
SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    value = os.environ.get("RBM_REC_DATA")
    if not value:
        pytest.skip("RBM_REC_DATA is not set: point it at a folder holding ml-100k/ or ml-100k.zip")
    if rel.locate_release("ml-100k", value) is None:
        pytest.skip(f"RBM_REC_DATA={value} holds neither ml-100k/ nor ml-100k.zip")
    return Path(value)


@pytest.fixture(scope="module")
def dataset(data_dir: Path) -> ml.MovieLensDataset:
    return ml.load_movielens("ml-100k", data_dir, download=False)


def test_files_are_the_originals(dataset: ml.MovieLensDataset) -> None:
    for name, expected in SHA256.items():
        assert hashlib.sha256(dataset.files.read_bytes(name)).hexdigest() == expected, name
    assert dataset.fingerprint == SHA256["u.data"]


def test_every_recorded_file_hash_matches_the_real_release(dataset: ml.MovieLensDataset) -> None:
    recorded = rel.RELEASES["ml-100k"].file_sha256
    assert set(SHA256) <= set(recorded) and all(recorded[name] == SHA256[name] for name in SHA256)
    assert {f"{fold}.{part}" for fold in sp.CANONICAL_SPLITS for part in ("base", "test")} <= set(recorded)
    dataset.files.verify(recorded)  # every file of the folder, extracted as GroupLens ships it


@pytest.fixture
def copy_of_release(data_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the real ml-100k folder, to damage."""
    folder = tmp_path / "ml-100k"
    shutil.copytree(rel.locate_release("ml-100k", data_dir).path, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_a_u_data_cut_to_50000_lines_is_refused(copy_of_release: Path) -> None:
    u_data = copy_of_release / "u.data"
    u_data.write_bytes(b"".join(u_data.read_bytes().splitlines(keepends=True)[:50_000]))
    with pytest.raises(DataError) as caught:
        ml.load_movielens("ml-100k", copy_of_release.parent, download=False)
    assert f"{u_data} holds 50,000 ratings, but ml-100k has 100,000" in str(caught.value)


@pytest.mark.parametrize("rating", ["7", "0", "3.5"])
def test_a_rating_off_the_scale_in_the_real_u_data_is_refused(copy_of_release: Path, rating: str) -> None:
    u_data = copy_of_release / "u.data"
    lines = u_data.read_bytes().splitlines(keepends=True)
    user, item, _, time = lines[4].split(b"\t")
    lines[4] = b"\t".join((user, item, rating.encode(), time))
    u_data.write_bytes(b"".join(lines))
    with pytest.raises(DataError) as caught:
        ml.load_movielens("ml-100k", copy_of_release.parent, download=False)
    assert f"{u_data}:5: rating {rating} is not on ml-100k's scale 1, 2, 3, 4, 5" in str(caught.value)


def test_counts_and_scale(dataset: ml.MovieLensDataset) -> None:
    ratings = dataset.ratings
    assert len(ratings) == 100_000 and ratings.n_users == 943 and ratings.n_items == 1_682
    np.testing.assert_array_equal(ratings.rating_values, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(ratings.user_ids.raw_ids, np.arange(1, 944))  # ids 1..943, all present
    np.testing.assert_array_equal(ratings.item_ids.raw_ids, np.arange(1, 1683))
    assert ratings.timestamps is not None and ratings.timestamps.min() > 870_000_000  # 1997-1998
    assert np.bincount(ratings.levels).tolist() == [6_110, 11_370, 27_145, 34_174, 21_201]


def test_movie_table(dataset: ml.MovieLensDataset) -> None:
    movies = dataset.movies
    assert len(movies) == 1_682
    assert movies.title(50) == "Star Wars (1977)" and movies.year(50) == 1977
    assert movies.genres(50) == ("Action", "Adventure", "Romance", "Sci-Fi", "War")
    assert movies.genres(1) == ("Animation", "Children's", "Comedy")
    assert len(movies.genre_names) == 19 and movies.genre_names[0] == "unknown"
    assert movies.title(543) == "Misérables, Les (1995)"  # Latin-1 decoded
    assert int((movies.years == 0).sum()) == 1  # movie 267, "unknown", has neither year nor date


def test_canonical_u1(dataset: ml.MovieLensDataset) -> None:
    split = sp.canonical_split("u1", dataset, validation_fraction=0.0)
    assert len(split.train) == 80_000 and len(split.test) == 20_000 and len(split.validation) == 0
    assert split.train.n_users == 943 and split.test.n_items == 1_682  # one shared id space
    cold = split.cold.summary()
    assert cold["cold_user_ratings"] == 0  # every u1 test user has training ratings
    assert cold["cold_movie_ratings"] == 32 and cold["cold_movies"] == 32
    carved = sp.canonical_split("u1", dataset)
    assert len(carved.train) == 76_000 and len(carved.validation) == 4_000 and len(carved.test) == 20_000


def test_all_canonical_splits_partition_the_ratings(dataset: ml.MovieLensDataset) -> None:
    sizes = {
        s.name: (len(s.train), len(s.test))
        for s in sp.canonical_splits(sp.CANONICAL_SPLITS, dataset, validation_fraction=0)
    }
    assert all(sizes[f"u{k}"] == (80_000, 20_000) for k in range(1, 6))
    assert sizes["ua"] == (90_570, 9_430) and sizes["ub"] == (90_570, 9_429)  # ub.test really has 9,429 lines


def test_random_protocol_sizes(dataset: ml.MovieLensDataset) -> None:
    split = sp.random_split(dataset.ratings, 0, seed=0)
    assert (len(split.train), len(split.validation), len(split.test)) == (85_500, 4_500, 10_000)


# --- the terminal on the real release: a model that knows every rating recommends none of them -------------


@pytest.mark.slow
@pytest.mark.parametrize("split", ["full", "u1"])
def test_no_list_names_a_movie_the_user_rated_in_u_data(data_dir: Path, tmp_path: Path, split: str) -> None:
    import polars as pl
    from recsys_rbm_cli.app import app
    from typer.testing import CliRunner

    runner, model = CliRunner(), tmp_path / "m.safetensors"
    tiny = ["--hidden", "8", "--epochs", "2", "--device", "cpu"]
    args = ["train", "movielens", "--data-dir", str(data_dir), "--split", split, "--output", str(model), *tiny]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    recs = tmp_path / "recs.csv"
    listed = runner.invoke(app, ["recommend", "--all-users", "--top", "10", "--model", str(model), "-o", str(recs)])
    assert listed.exit_code == 0, listed.output
    lists = pl.read_csv(recs)
    u_data = np.loadtxt(rel.locate_release("ml-100k", data_dir).path / "u.data", dtype=np.int64)
    rated = set(zip(u_data[:, 0].tolist(), u_data[:, 1].tolist(), strict=True))
    assert lists.height == 9_430
    assert not rated & set(zip(lists["user"].to_list(), lists["item"].to_list(), strict=True))
    import json

    user_42 = json.loads(runner.invoke(app, ["recommend", "--user", "42", "--model", str(model), "--json"]).stdout)
    assert user_42["n_rated"] == int((u_data[:, 0] == 42).sum())  # every rating of u.data, whatever the split
    assert not {(42, entry["movie_id"]) for entry in user_42["recommendations"]} & rated
