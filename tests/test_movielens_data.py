"""MovieLens loaders and splits on small generated files in each release's format (no network, no real data).

Generated folders cannot match a release's rating count or file hashes, so every test here runs
with those left out (:func:`movielens_fakes.generated_releases`), except the tests of that
verification, which pass the recorded release (``RECORDED[...]``) explicitly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from movielens_fakes import generated_releases

from recsys_rbm.data import fingerprint as fp
from recsys_rbm.data import movielens as ml
from recsys_rbm.data import releases as rel
from recsys_rbm.data.fingerprint import ratings_fingerprint
from recsys_rbm.data.movies import Movies, strip_year
from recsys_rbm.data.ratings import Ratings, RawRatings, index_ratings
from recsys_rbm.data.releases import HALF_STARS, WHOLE_STARS
from recsys_rbm.data.scale import distinct_ratings
from recsys_rbm.errors import ConfigError, DataError
from recsys_rbm.recommender import splits as sp

RECORDED = dict(rel.RELEASES)  # the releases as recorded, before any test substitutes generated ones

GENRES_100K = ["unknown", "Action", "Comedy", "Drama"]

# (user, movie, rating, timestamp): raw ids are sparse on purpose, so inner and raw ids differ.
TRIPLES_100K = [
    (7, 10, 5, 100),
    (7, 20, 3, 101),
    (3, 10, 4, 102),
    (3, 30, 1, 103),
    (12, 20, 2, 104),
    (12, 30, 5, 105),
    (7, 30, 4, 106),
]
MOVIES_100K = [
    (10, "Toy Story (1995)", "01-Jan-1995", [0, 0, 1, 0]),
    (20, "Misérables, Les (1995)", "01-Jan-1995", [0, 0, 0, 1]),  # Latin-1 in u.item
    (30, "unknown", "", [1, 0, 0, 0]),
]


def write_100k(folder: Path, triples: list[tuple] = TRIPLES_100K) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in triples))
    (folder / "u.genre").write_text("".join(f"{name}|{k}\n" for k, name in enumerate(GENRES_100K)) + "\n")
    lines = [
        f"{movie}|{title}|{date}||http://us.imdb.com/M/title-exact?x|{'|'.join(map(str, flags))}\n"
        for movie, title, date, flags in MOVIES_100K
    ]
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    # A canonical split: user 12 only in test (a cold user), movie 30 rated in test only by others.
    base = [t for t in triples if t[0] != 12 and t[:2] != (3, 30)]
    test = [t for t in triples if t not in base]
    for name, part in (("u1.base", base), ("u1.test", test)):
        (folder / name).write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in part))
    return folder


def write_dat(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    movies = (
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n"  # Latin-1 in ml-1m's movies.dat
    )
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    return folder


def write_csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ratings = (
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n5,1,3.5,847434962\n5,4,5.0,847435238\n"
    )
    (folder / "ratings.csv").write_text(ratings)
    movies = (
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)",Action|Western\n'
        '4,"Babylon 5",(no genres listed)\n'
        "5,Ástico Show (2006–2007),Comedy\n"
    )
    (folder / "movies.csv").write_text(movies, encoding="utf-8")
    return folder


def make_zip(folder: Path, archive: Path, inner: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.iterdir()):
            out.write(path, f"{inner or folder.name}/{path.name}")
    return archive


@pytest.fixture(autouse=True)
def generated() -> Iterator[None]:
    with generated_releases():
        yield


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every download fail as it does without a network; records the URLs tried."""
    tried: list[str] = []

    def fail(urls, destination, verify=None, progress=None, timeout=60.0):
        tried.extend(urls)
        raise DataError(f"could not download {destination.name} (network unreachable)")

    monkeypatch.setattr("recsys_rbm.data.download.download", fail)
    return tried


# ---------------------------------------------------------------------------------------------
# Loading each layout


def test_100k_folder_ids_levels_titles_and_genres(tmp_path: Path) -> None:
    write_100k(tmp_path / "ml-100k")
    data = ml.load_movielens("ml-100k", tmp_path, download=False)
    r = data.ratings
    assert len(r) == 7 and r.n_users == 3 and r.n_items == 3
    np.testing.assert_array_equal(r.user_ids.raw_ids, [3, 7, 12])
    np.testing.assert_array_equal(r.item_ids.raw_ids, [10, 20, 30])
    np.testing.assert_array_equal(r.rating_values, [1, 2, 3, 4, 5])
    assert r.n_levels == 5
    # Row order is the file's; raw ids come back through the maps.
    np.testing.assert_array_equal(r.user_ids.to_raw(r.users), [t[0] for t in TRIPLES_100K])
    np.testing.assert_array_equal(r.item_ids.to_raw(r.items), [t[1] for t in TRIPLES_100K])
    np.testing.assert_array_equal(r.values, [t[2] for t in TRIPLES_100K])
    np.testing.assert_array_equal(r.levels, [t[2] - 1 for t in TRIPLES_100K])
    np.testing.assert_array_equal(r.timestamps, [t[3] for t in TRIPLES_100K])
    assert data.fingerprint == hashlib.sha256((tmp_path / "ml-100k" / "u.data").read_bytes()).hexdigest()

    movies = data.movies
    assert movies.genre_names == tuple(GENRES_100K)
    assert movies.title(10) == "Toy Story (1995)" and movies.year(10) == 1995
    assert movies.genres(10) == ("Comedy",)
    assert movies.title(20) == "Misérables, Les (1995)"
    assert movies.title(30) == "unknown" and movies.year(30) is None and movies.genres(30) == ("unknown",)


def test_zip_and_folder_give_the_same_data(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "src" / "ml-100k")
    from_folder = ml.load_movielens("ml-100k", tmp_path / "src", download=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    make_zip(folder, data_dir / "ml-100k.zip")
    from_zip = ml.load_movielens("ml-100k", data_dir, download=False)
    assert from_zip.files.is_zip
    assert from_zip.fingerprint == from_folder.fingerprint
    for field in ("users", "items", "levels", "timestamps", "rating_values"):
        np.testing.assert_array_equal(getattr(from_zip.ratings, field), getattr(from_folder.ratings, field))
    assert from_zip.movies.to_dict() == from_folder.movies.to_dict()
    assert sorted(p.name for p in data_dir.iterdir()) == ["ml-100k.zip"]  # nothing extracted


def test_data_dir_may_be_the_release_folder_itself(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    assert len(ml.load_movielens("ml-100k", folder, download=False).ratings) == 7


def test_dat_release_ml_1m(tmp_path: Path) -> None:
    write_dat(tmp_path / "ml-1m")
    data = ml.load_movielens("ml-1m", tmp_path, download=False)
    np.testing.assert_array_equal(data.ratings.user_ids.raw_ids, [1, 2])
    np.testing.assert_array_equal(data.ratings.item_ids.raw_ids, [661, 1193])
    np.testing.assert_array_equal(data.ratings.rating_values, WHOLE_STARS)  # the release's scale, not the data's
    assert data.movies.title(3) == "Cité des enfants perdus, La (1995)"
    assert data.movies.genres(661) == ("Animation", "Children's", "Musical")
    assert data.movies.year(1193) == 1975


def test_dat_release_ml_10m_zip_with_its_own_folder_name(tmp_path: Path) -> None:
    folder = write_dat(tmp_path / "src" / "ml-10M100K")
    (folder / "ratings.dat").write_text("1::1193::4.5::1\n1::661::0.5::2\n2::1193::3::3\n")
    make_zip(folder, tmp_path / "ml-10m.zip")
    data = ml.load_movielens("ml-10m", tmp_path, download=False)
    np.testing.assert_array_equal(data.ratings.rating_values, HALF_STARS)
    np.testing.assert_array_equal(data.ratings.values, [4.5, 0.5, 3.0])
    assert "ml-10m.zip:ml-10M100K/ratings.dat" in data.files.describe("ratings.dat")


def test_csv_release_half_stars_and_quoted_titles(tmp_path: Path) -> None:
    write_csv(tmp_path / "ml-latest-small")
    data = ml.load_movielens("ml-latest-small", tmp_path, download=False)
    np.testing.assert_array_equal(data.ratings.rating_values, HALF_STARS)
    np.testing.assert_array_equal(data.ratings.levels, [7, 0, 6, 9])
    movies = data.movies
    assert len(movies) == 4
    assert movies.title(3) == "Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)"
    assert movies.year(3) == 1966 and movies.genres(3) == ("Action", "Western")
    assert movies.title(4) == "Babylon 5" and movies.year(4) is None and movies.genres(4) == ()
    assert movies.year(5) == 2006 and movies.title(5).startswith("Ástico")
    assert "(no genres listed)" not in movies.genre_names


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 5, 1], [1, 2, 3, 4, 5]),
        (np.arange(1, 11) / 2, np.arange(1, 11) / 2),
        ([0.3, 0.1, 0.3], [0.1, 0.3]),  # off the half-star grid: the general path
    ],
)
def test_distinct_ratings(values: list[float], expected: list[float]) -> None:
    np.testing.assert_array_equal(distinct_ratings(np.asarray(values, dtype=float)), expected)


def test_k_is_ten_for_half_stars(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "ml-latest-small")
    rows = "".join(f"{u},{m},{v},1\n" for u, m, v in zip(range(10), range(10), np.arange(1, 11) / 2, strict=True))
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + rows)
    assert ml.load_movielens("ml-latest-small", tmp_path, download=False).ratings.n_levels == 10


def test_trailing_blank_lines_are_allowed(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text("1\t2\t3\t4\n5\t6\t1\t7\n\n\n")
    assert len(ml.load_movielens("ml-100k", tmp_path, download=False).ratings) == 2


def test_movies_round_trip_through_json_and_polars(tmp_path: Path) -> None:
    movies = ml.load_movies("ml-100k", write_100k(tmp_path / "ml-100k").parent)
    again = Movies.from_dict(movies.to_dict())
    assert again.to_dict() == movies.to_dict()
    frame = movies.to_polars()
    assert frame["movie_id"].to_list() == [10, 20, 30]
    assert frame["year"].to_list() == [1995, 1995, None]
    assert frame["genres"].to_list()[0] == ["Comedy"]
    assert strip_year("Star Wars (1977)") == "Star Wars"


def test_ratings_fingerprint_identifies_the_triples(tmp_path: Path) -> None:
    ratings = ml.load_movielens("ml-100k", write_100k(tmp_path / "ml-100k").parent, download=False).ratings
    assert ratings_fingerprint(ratings) == ratings_fingerprint(ratings.subset(np.arange(len(ratings))))
    assert ratings_fingerprint(ratings) != ratings_fingerprint(ratings.subset(np.arange(len(ratings) - 1)))


def test_loaders_import_neither_torch_nor_polars_for_movies(tmp_path: Path) -> None:
    write_100k(tmp_path / "ml-100k")
    code = (
        "import dataclasses, sys\n"
        "from recsys_rbm.data.movielens import load_movies\n"
        "from recsys_rbm.data.releases import RELEASES\n"
        "import recsys_rbm.recommender.splits\n"
        "generated = dataclasses.replace(RELEASES['ml-100k'], n_ratings=None, file_sha256={})\n"
        f"load_movies(generated, {str(tmp_path)!r})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'polars' not in sys.modules, 'polars imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# Malformed files: one line, naming file:line


@pytest.mark.parametrize(
    ("content", "line", "phrase"),
    [
        ("1\t2\t3\t4\n5\t6\t7\n", 2, "expected 4 fields"),
        ("1\t2\t3\t4\n1\t2\t3\t4\t5\n", 2, "expected 4 fields"),
        ("1\t2\t3\t4\nx\t6\t1\t7\n", 2, "user id 'x' is not an integer"),
        ("1\t2\t3\t4\n5\t6.5\t1\t7\n", 2, "movie id '6.5' is not an integer"),
        ("1\t2\t3\t4\n5\t6\t1\t7\n5\t8\tfive\t9\n", 3, "rating 'five' is not a number"),
        ("1\t2\t3\t4\n5\t6\tnan\t7\n", 2, "not a finite number"),
        ("1\t2\t3\t4\n\n5\t6\t1\t7\n", 2, "empty line"),
        ("1\t2\t3\t4\n5\t6\t1\t7\n1\t2\t5\t8\n", 3, "user 1 rated movie 2 again (first at line 1)"),
    ],
)
def test_malformed_ratings_name_file_and_line(tmp_path: Path, content: str, line: int, phrase: str) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text(content)
    with pytest.raises(DataError) as caught:
        ml.load_movielens("ml-100k", tmp_path, download=False)
    message = str(caught.value)
    assert f"u.data:{line}: " in message and phrase in message
    assert "\n" not in message


def test_empty_ratings_file(tmp_path: Path) -> None:
    (write_100k(tmp_path / "ml-100k") / "u.data").write_text("")
    with pytest.raises(DataError, match=r"u\.data holds no ratings"):
        ml.load_movielens("ml-100k", tmp_path, download=False)


def test_malformed_dat_and_csv_ratings(tmp_path: Path) -> None:
    folder = write_dat(tmp_path / "ml-1m")
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1:661:3:978302109\n")
    with pytest.raises(DataError, match=r"ratings\.dat:2: expected 4 fields"):
        ml.load_movielens("ml-1m", tmp_path, download=False)
    folder = write_csv(tmp_path / "ml-latest-small")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,3,oops,2\n")
    with pytest.raises(DataError, match=r"ratings\.csv:3: rating 'oops' is not a number"):
        ml.load_movielens("ml-latest-small", tmp_path, download=False)
    (folder / "ratings.csv").write_text("user,movie,rating,time\n1,1,4.0,1\n")
    with pytest.raises(DataError, match=r"ratings\.csv:1: expected the header userId,movieId,rating,timestamp"):
        ml.load_movielens("ml-latest-small", tmp_path, download=False)


def test_malformed_line_inside_a_zip_names_the_member(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "src" / "ml-100k")
    (folder / "u.data").write_text("1\t2\t3\t4\n5\t6\n")
    make_zip(folder, tmp_path / "ml-100k.zip")
    with pytest.raises(DataError, match=r"ml-100k\.zip:ml-100k/u\.data:2: expected 4 fields"):
        ml.load_movielens("ml-100k", tmp_path, download=False)


@pytest.mark.parametrize(
    ("release", "file", "content", "phrase"),
    [
        ("ml-100k", "u.item", b"10|Title (1995)|01-Jan-1995||url|0|0|1\n", "u.item:1: expected 9 '|'-separated fields"),
        ("ml-100k", "u.item", b"10|A (1995)|||url|0|0|1|0\n10|B (1995)|||url|0|0|1|0\n", "u.item:2: movie 10 again"),
        ("ml-1m", "movies.dat", b"1::Title (1995)\n", "movies.dat:1: expected 3 '::'-separated fields"),
        ("ml-latest-small", "movies.csv", b"movieId,title,genres\n1,A, B (1995),Comedy\n", "movies.csv:2: expected 3"),
        (
            "ml-latest-small",
            "movies.csv",
            b"movieId,title,genres\nx,A (1995),Comedy\n",
            "movie id 'x' is not an integer",
        ),
    ],
)
def test_malformed_movie_files(tmp_path: Path, release: str, file: str, content: bytes, phrase: str) -> None:
    writer = {"ml-100k": write_100k, "ml-1m": write_dat, "ml-latest-small": write_csv}[release]
    folder = writer(tmp_path / release)
    (folder / file).write_bytes(content)
    with pytest.raises(DataError) as caught:
        ml.load_movies(release, tmp_path)
    assert phrase in str(caught.value)


def test_missing_file_in_a_folder(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.genre").unlink()
    with pytest.raises(DataError, match=r"u\.genre is missing"):
        ml.load_movies("ml-100k", tmp_path)


def test_corrupt_zip(tmp_path: Path) -> None:
    (tmp_path / "ml-100k.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"ml-100k\.zip is corrupt .*delete it to download a fresh copy"):
        ml.load_movielens("ml-100k", tmp_path, download=False)


def test_unknown_release() -> None:
    with pytest.raises(DataError, match="unknown MovieLens release 'ml-5k'; known: ml-100k"):
        rel.get_release("ml-5k")


# ---------------------------------------------------------------------------------------------
# Missing data, downloading, verification


def test_missing_release_offline_says_what_to_put_where(tmp_path: Path, offline: list[str]) -> None:
    with pytest.raises(DataError) as caught:
        ml.load_movielens("ml-100k", tmp_path)
    message = str(caught.value)
    url = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert offline == [url]
    assert "network unreachable" in message
    assert f"put ml-100k.zip (from {url}) or the extracted ml-100k/ folder in {tmp_path.resolve()}" in message
    assert "\n" not in message


def test_missing_release_with_downloading_off(tmp_path: Path, offline: list[str]) -> None:
    with pytest.raises(DataError, match=r"downloading is off; put ml-10m\.zip .* extracted ml-10M100K/ folder"):
        ml.load_movies("ml-10m", tmp_path)
    assert offline == []


def _served_zip(tmp_path: Path) -> Path:
    """The generated ml-100k zip, to be offered at a file:// URL."""
    return make_zip(write_100k(tmp_path / "server" / "ml-100k"), tmp_path / "server" / "ml-100k.zip")


def _release_for(archive: Path, **recorded: object) -> rel.Release:
    """ml-100k as served from ``archive``, with the true checksums unless ``recorded`` overrides them."""
    content = archive.read_bytes()
    true = {
        "md5": hashlib.md5(content).hexdigest(),
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }
    return dataclasses.replace(rel.RELEASES["ml-100k"], url=archive.as_uri(), **{**true, **recorded})


def test_download_verifies_and_keeps_the_zip(tmp_path: Path) -> None:
    archive = _served_zip(tmp_path)
    calls: list[tuple[int, int | None, str]] = []
    data_dir = tmp_path / "data"
    data = ml.load_movielens(
        _release_for(archive), data_dir, progress=lambda done, total, name: calls.append((done, total, name))
    )
    assert len(data.ratings) == 7 and data.files.path == data_dir / "ml-100k.zip"
    assert calls and calls[-1][0] == archive.stat().st_size and calls[-1][2] == "ml-100k.zip"
    assert sorted(p.name for p in data_dir.iterdir()) == ["ml-100k.zip"]
    assert ml.load_movielens("ml-100k", data_dir, download=False).fingerprint == data.fingerprint  # found again


@pytest.mark.parametrize(
    ("recorded", "phrase"),
    [
        ({"md5": "0" * 32}, "has md5"),
        ({"sha256": "0" * 64, "md5": None}, "has sha256"),
        ({"size": 12}, "expected 12 (incomplete or changed)"),
    ],
)
def test_checksum_mismatch_is_rejected_and_leaves_nothing(tmp_path: Path, recorded: dict, phrase: str) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as caught:
        ml.load_movielens(_release_for(_served_zip(tmp_path), **recorded), data_dir)
    message = str(caught.value)
    assert phrase in message and "put ml-100k.zip" in message and "\n" not in message
    assert not data_dir.exists() or list(data_dir.iterdir()) == []


def test_recorded_checksums_are_well_formed() -> None:
    for release in RECORDED.values():
        assert release.url == f"https://files.grouplens.org/datasets/movielens/{release.name}.zip"
        assert release.md5 is None or len(release.md5) == 32
        assert release.sha256 is None or len(release.sha256) == 64
        assert release.size and (release.n_ratings or release.name == "ml-latest-small")
        assert release.scale == (WHOLE_STARS if release.name in ("ml-100k", "ml-1m") else HALF_STARS)


# ---------------------------------------------------------------------------------------------
# What is known of a release: its scale, its rating count, its files' SHA-256


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_100k(folder: Path, **changes: object) -> rel.Release:
    """The recorded ml-100k with the count and file hashes of the generated ``folder`` (``changes`` override)."""
    hashes = {name: _sha256(folder / name) for name in ("u.data", "u.item", "u.genre", "u1.base", "u1.test")}
    return dataclasses.replace(RECORDED["ml-100k"], **{"n_ratings": 7, "file_sha256": hashes, **changes})


def test_a_generated_folder_that_matches_its_record_loads(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    data = ml.load_movielens(recorded_100k(folder), tmp_path, download=False)
    assert len(data.ratings) == 7 and data.ratings.scale.origin == "release"
    assert sp.canonical_split("u1", data, validation_fraction=0.0).test.n_items == 3


@pytest.mark.parametrize(
    ("release", "rating", "scale"),
    [
        ("ml-100k", "7", "1, 2, 3, 4, 5"),
        ("ml-100k", "0", "1, 2, 3, 4, 5"),
        ("ml-100k", "3.5", "1, 2, 3, 4, 5"),
        ("ml-1m", "3.5", "1, 2, 3, 4, 5"),
        ("ml-10m", "6", "0.5, 1, 1.5"),
        ("ml-latest-small", "0", "0.5, 1, 1.5"),
    ],
)
def test_a_rating_off_the_releases_scale_names_file_line_and_value(
    tmp_path: Path, release: str, rating: str, scale: str
) -> None:
    if release == "ml-100k":
        folder = write_100k(tmp_path / "ml-100k")
        (folder / "u.data").write_text(f"1\t10\t5\t1\n2\t10\t{rating}\t2\n")
        file = "u.data:2"
    elif release in ("ml-1m", "ml-10m"):
        folder = write_dat(tmp_path / ("ml-10M100K" if release == "ml-10m" else release))
        (folder / "ratings.dat").write_text(f"1::1193::4::1\n2::661::{rating}::2\n")
        file = "ratings.dat:2"
    else:
        folder = write_csv(tmp_path / release)
        (folder / "ratings.csv").write_text(f"userId,movieId,rating,timestamp\n1,1,4.0,1\n5,1,{rating},2\n")
        file = "ratings.csv:3"
    with pytest.raises(DataError) as caught:
        ml.load_movielens(release, tmp_path, download=False)
    message = str(caught.value)
    assert f"{file}: rating {rating} is not on {release}'s scale {scale}" in message
    assert "re-download it" in message and "\n" not in message


def test_every_rating_off_the_scale_is_named_up_to_a_limit(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text("".join(f"{u}\t10\t{7 if u % 2 else 4}\t{u}\n" for u in range(1, 31)))
    with pytest.raises(DataError) as caught:
        ml.load_movielens("ml-100k", tmp_path, download=False)
    message = str(caught.value)
    assert "u.data: 15 bad rows: line 1: rating 7 is not on ml-100k's scale" in message
    assert "line 19: rating 7" in message and "line 21:" not in message and "and 5 more" in message


def test_a_cut_ratings_file_is_a_count_mismatch(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    release = recorded_100k(folder, n_ratings=14, file_sha256={})
    with pytest.raises(DataError) as caught:
        ml.load_movielens(release, tmp_path, download=False)
    message = str(caught.value)
    assert f"{folder / 'u.data'} holds 7 ratings, but ml-100k has 14; the file is not the ml-100k original" in message
    assert f"delete {folder}" in message and "\n" not in message


@pytest.mark.parametrize("name", ["u.data", "u.item", "u.genre"])
def test_a_file_that_differs_from_its_recorded_sha256_is_rejected(tmp_path: Path, name: str) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    release = recorded_100k(folder)
    with (folder / name).open("ab") as handle:
        handle.write(b"\n" if name != "u.data" else b"")
    if name == "u.data":  # same count and scale, one rating changed
        (folder / name).write_text((folder / name).read_text().replace("7\t10\t5", "7\t10\t4"))
    with pytest.raises(DataError) as caught:
        ml.load_movielens(release, tmp_path, download=False)
    message = str(caught.value)
    assert f"{folder / name} is not the ml-100k original (sha256 " in message
    assert f"re-download it, or delete {folder} to download a fresh copy" in message and "\n" not in message


def test_the_canonical_split_files_are_checked_too(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    release = recorded_100k(folder)
    (folder / "u1.test").write_text((folder / "u1.test").read_text().replace("\t1\t103", "\t2\t103"))
    data = ml.load_movielens(release, tmp_path, download=False)
    with pytest.raises(DataError, match=r"u1\.test is not the ml-100k original"):
        sp.canonical_split("u1", data)


def test_members_of_a_zip_are_checked_against_the_recorded_hashes(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "src" / "ml-100k")
    release = recorded_100k(folder)
    (folder / "u.item").write_bytes((folder / "u.item").read_bytes().replace(b"Toy Story", b"Toy Storm"))
    make_zip(folder, tmp_path / "ml-100k.zip")
    with pytest.raises(DataError, match=r"ml-100k\.zip:ml-100k/u\.item is not the ml-100k original"):
        ml.load_movielens(release, tmp_path, download=False)


def test_file_hashes_are_remembered_by_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    release = recorded_100k(folder)
    hashed: list[str] = []
    original = fp._hash_file
    monkeypatch.setattr(fp, "_hash_file", lambda path: hashed.append(path.name) or original(path))
    ml.load_movielens(release, tmp_path, download=False)
    assert hashed == ["u.data"]  # u.item and u.genre are hashed from the bytes read to parse them
    cache = json.loads((tmp_path / fp.CACHE_NAME).read_text())
    entry = cache["files"][str((folder / "u.data").resolve())]
    assert entry["sha256"] == _sha256(folder / "u.data") and entry["size"] == (folder / "u.data").stat().st_size
    ml.load_movielens(release, tmp_path, download=False)
    assert hashed == ["u.data"]  # remembered
    (folder / "u.data").write_text((folder / "u.data").read_text().replace("7\t10\t5", "7\t10\t4"))
    with pytest.raises(DataError, match="is not the ml-100k original"):  # same size, new mtime: hashed again
        ml.load_movielens(release, tmp_path, download=False)
    assert hashed == ["u.data", "u.data"]


def test_a_cache_that_cannot_be_read_or_written_is_no_error(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    release = recorded_100k(folder)
    (tmp_path / fp.CACHE_NAME).write_text("{not json")
    assert len(ml.load_movielens(release, tmp_path, download=False).ratings) == 7
    assert json.loads((tmp_path / fp.CACHE_NAME).read_text())["version"] == 1  # rewritten
    (tmp_path / fp.CACHE_NAME).unlink()
    (tmp_path / fp.CACHE_NAME).mkdir()  # a folder where the cache should be: neither readable nor writable
    assert len(ml.load_movielens(release, tmp_path, download=False).ratings) == 7
    assert not any(path.name.endswith(".tmp") for path in tmp_path.iterdir())


def test_no_cache_is_written_into_a_read_only_data_folder(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "data" / "ml-100k")
    release = recorded_100k(folder)
    (tmp_path / "data").chmod(0o555)  # read-only by intent (root could write anyway: the mode bits decide)
    try:
        assert len(ml.load_movielens(release, tmp_path / "data", download=False).ratings) == 7
        assert not (tmp_path / "data" / fp.CACHE_NAME).exists()
    finally:
        (tmp_path / "data").chmod(0o755)


# ---------------------------------------------------------------------------------------------
# Splits


def generated_ratings(n_users: int = 60, n_items: int = 40, density: float = 0.4, seed: int = 1) -> Ratings:
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    raw = RawRatings(
        users=users * 3 + 1,  # raw ids differ from inner ones
        items=items * 5 + 2,
        values=rng.integers(1, 6, users.size).astype(float),
        timestamps=rng.integers(0, 10**6, users.size),
        source="generated",
    )
    return index_ratings(raw)


def _rows(part: Ratings, whole: Ratings) -> set[tuple[int, int]]:
    assert part.user_ids is whole.user_ids and part.item_ids is whole.item_ids
    assert part.rating_values is whole.rating_values
    return set(zip(part.users.tolist(), part.items.tolist(), strict=True))


def test_canonical_u1_on_generated_files(tmp_path: Path) -> None:
    write_100k(tmp_path / "ml-100k")
    split = sp.canonical_split("u1", data_dir=tmp_path, validation_fraction=0.0, download=False)
    full = ml.load_movielens("ml-100k", tmp_path, download=False).ratings
    np.testing.assert_array_equal(split.train.user_ids.raw_ids, full.user_ids.raw_ids)  # the shared id space
    np.testing.assert_array_equal(split.test.item_ids.raw_ids, full.item_ids.raw_ids)
    assert len(split.train) == 4 and len(split.test) == 3 and len(split.validation) == 0
    test_users, test_items = split.test.user_ids.to_raw(split.test.users), split.test.item_ids.to_raw(split.test.items)
    test_pairs = set(zip(test_users.tolist(), test_items.tolist(), strict=True))
    assert test_pairs == {(3, 30), (12, 20), (12, 30)}
    np.testing.assert_array_equal(split.test.values, [1, 2, 5])
    cold = split.cold
    np.testing.assert_array_equal(cold.cold_user, [False, True, True])  # user 12 is only in test
    np.testing.assert_array_equal(cold.cold_item, [False, False, False])  # movie 30 is rated by user 7 in base
    assert cold.summary()["cold_users"] == 1 and cold.n_cold == 2


def test_canonical_split_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown ml-100k split 'u9'"):
        sp.canonical_split("u9", data_dir=tmp_path)
    write_100k(tmp_path / "ml-100k")
    with pytest.raises(DataError, match=r"u2\.base is missing"):
        sp.canonical_split("u2", data_dir=tmp_path, download=False)
    write_csv(tmp_path / "ml-latest-small")
    other = ml.load_movielens("ml-latest-small", tmp_path, download=False)
    with pytest.raises(DataError, match="canonical splits belong to ml-100k"):
        sp.canonical_split("u1", other)


def test_test_file_with_an_unknown_id_or_rating_is_rejected(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u1.test").write_text("99\t10\t3\t1\n")
    with pytest.raises(DataError, match=r"u1\.test:1: user 99 does not appear in .*ml-100k/u\.data; "):
        sp.canonical_split("u1", data_dir=tmp_path, download=False)
    (folder / "u1.test").write_text("7\t10\t4.5\t1\n")
    with pytest.raises(DataError, match=r"u1\.test:1: rating 4.5 is not on ml-100k's scale 1, 2, 3, 4, 5"):
        sp.canonical_split("u1", data_dir=tmp_path, download=False)


def test_random_splits_are_reproducible_disjoint_and_90_10() -> None:
    ratings = generated_ratings()
    n = len(ratings)
    folds = sp.random_splits(ratings, seed=7)
    assert len(folds) == 5 and [f.seed for f in folds] == [7, 8, 9, 10, 11]
    for fold in folds:
        train, validation, test = (_rows(part, ratings) for part in (fold.train, fold.validation, fold.test))
        assert not (train & validation) and not (train & test) and not (validation & test)
        assert len(train | validation | test) == n
        assert len(test) == round(0.1 * n)
        assert len(validation) == round(0.05 * (n - len(test)))
    again = sp.random_split(ratings, 3, seed=7)  # a fold made alone equals the same fold of the set
    np.testing.assert_array_equal(again.test.users, folds[3].test.users)
    np.testing.assert_array_equal(again.validation.items, folds[3].validation.items)
    assert _rows(folds[0].test, ratings) != _rows(folds[1].test, ratings)


def test_carve_validation() -> None:
    ratings = generated_ratings()
    train, validation = sp.carve_validation(ratings, 0.05, seed=3)
    assert len(validation) == round(0.05 * len(ratings)) and len(train) + len(validation) == len(ratings)
    assert not (_rows(train, ratings) & _rows(validation, ratings))
    np.testing.assert_array_equal(sp.carve_validation(ratings, 0.05, seed=3)[1].users, validation.users)
    untouched, empty = sp.carve_validation(ratings, 0.0)
    assert untouched is ratings and len(empty) == 0 and empty.n_items == ratings.n_items
    with pytest.raises(ConfigError, match="validation fraction must lie in"):
        sp.carve_validation(ratings, 1.0)


@pytest.mark.parametrize("by", ["random", "time"])
def test_per_user_holdout_keeps_every_user_in_training(by: str) -> None:
    ratings = generated_ratings()
    split = sp.per_user_holdout(ratings, test_fraction=0.25, by=by, seed=2)
    train, validation, test = (_rows(part, ratings) for part in (split.train, split.validation, split.test))
    assert not (train & test) and not (train & validation) and not (validation & test)
    assert len(train | validation | test) == len(ratings)
    counts = np.bincount(ratings.users, minlength=ratings.n_users)
    held = np.bincount(split.test.users, minlength=ratings.n_users)
    assert set(np.unique(split.train.users)) == set(np.unique(ratings.users))
    np.testing.assert_array_equal(held, np.minimum(np.maximum(np.rint(0.25 * counts), 1), counts - 1))
    assert split.cold.summary()["cold_user_ratings"] == 0
    if by == "time":  # the held-out ratings are each user's latest
        for user in range(ratings.n_users):
            kept = ratings.timestamps[(ratings.users == user)]
            latest = np.sort(kept)[-held[user] :]
            np.testing.assert_array_equal(np.sort(split.test.timestamps[split.test.users == user]), latest)


def test_per_user_holdout_fixed_count_and_small_users() -> None:
    raw = RawRatings(
        users=np.array([1, 1, 1, 2, 3, 3]),
        items=np.array([1, 2, 3, 1, 1, 2]),
        values=np.array([1.0, 2, 3, 4, 5, 5]),
        timestamps=np.array([5, 1, 9, 1, 2, 1]),
        source="tiny",
    )
    ratings = index_ratings(raw)
    split = sp.per_user_holdout(ratings, n_test=2, by="time", validation_fraction=0.0)
    # user 1 gives up its two latest (t=9, t=5); user 2 has one rating and keeps it; user 3 keeps one.
    np.testing.assert_array_equal(split.test.user_ids.to_raw(split.test.users), [1, 1, 3])
    np.testing.assert_array_equal(split.test.timestamps, [5, 9, 2])
    np.testing.assert_array_equal(np.unique(split.train.user_ids.to_raw(split.train.users)), [1, 2, 3])


def test_cold_start_counts_and_masks() -> None:
    raw = RawRatings(
        users=np.array([1, 1, 2, 3, 3]),
        items=np.array([1, 2, 1, 3, 1]),
        values=np.array([1.0, 2, 3, 4, 5]),
        timestamps=np.arange(5),
        source="tiny",
    )
    ratings = index_ratings(raw)
    train, test = ratings.subset(np.array([0, 1])), ratings.subset(np.array([2, 3, 4]))
    cold = sp.cold_start(train, test)
    np.testing.assert_array_equal(cold.cold_user, [True, True, True])  # users 2 and 3 never train
    np.testing.assert_array_equal(cold.cold_item, [False, True, False])  # movie 3 never trains
    assert cold.summary() == {
        "ratings": 3,
        "cold_ratings": 3,
        "cold_user_ratings": 3,
        "cold_movie_ratings": 1,
        "cold_both_ratings": 1,
        "cold_users": 2,
        "cold_movies": 1,
    }
    assert cold.describe().startswith("3 of 3 ratings are cold")
    other = generated_ratings()
    with pytest.raises(ValueError, match="different id maps"):
        sp.cold_start(other, test)
