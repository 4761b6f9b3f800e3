"""Anyone's ratings in: read_ratings_table and read_items_table on files and DataFrames of every kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys_rbm.data.fingerprint import ratings_fingerprint
from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.scale import RatingScale
from recsys_rbm.data.tables import read_items_table, read_ratings_table
from recsys_rbm.errors import ConfigError, DataError

# Text ids on purpose: "042" must stay "042", and "7" is text because the column holds "alice".
ROWS = [("alice", "042", 4.0, 100), ("bob", "7", 5.0, 101), ("alice", "7", 2.0, 102), ("carol", "x9", 4.5, 103)]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are written and read by relative names, so messages name them as "r.csv"."""
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return its name (the tests run in its folder)."""
    path.write_text(text, encoding="utf-8")
    return Path(path.name)


def rows_csv(path: Path, header: str = "user,item,rating,timestamp", delimiter: str = ",") -> Path:
    lines = [header.replace(",", delimiter)] + [delimiter.join(map(str, row)) for row in ROWS]
    return write(path, "\n".join(lines) + "\n")


def triples(table) -> list[tuple]:
    r = table.ratings
    users, items = r.user_ids.to_raw(r.users).tolist(), r.item_ids.to_raw(r.items).tolist()
    return list(zip(users, items, r.values.tolist(), strict=True))


EXPECTED = [(u, i, v) for u, i, v, _ in ROWS]


# ---------------------------------------------------------------------------------------------
# Sources


def test_a_csv_file_with_text_ids(tmp_path: Path) -> None:
    table = read_ratings_table(rows_csv(tmp_path / "ratings.csv"))
    r = table.ratings
    assert triples(table) == EXPECTED
    assert r.user_ids.raw_ids.tolist() == ["alice", "bob", "carol"] and r.item_ids.raw_ids.tolist() == [
        "042",
        "7",
        "x9",
    ]
    assert r.timestamps.tolist() == [100, 101, 102, 103]
    assert table.columns == {"user": "user", "item": "item", "rating": "rating", "time": "timestamp"}
    assert table.format == "CSV" and table.n_rows == 4 and not table.is_implicit
    assert r.scale.values == (2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0) and r.scale.origin == "inferred"


@pytest.mark.parametrize(("suffix", "delimiter", "name"), [(".tsv", "\t", "TSV"), (".txt", ";", "';'-separated text")])
def test_delimited_text_of_other_kinds(tmp_path: Path, suffix: str, delimiter: str, name: str) -> None:
    table = read_ratings_table(rows_csv(tmp_path / f"ratings{suffix}", delimiter=delimiter))
    assert triples(table) == EXPECTED and table.format == name


def test_a_parquet_file(tmp_path: Path) -> None:
    frame = pl.DataFrame(ROWS, schema=["userId", "movieId", "rating", "timestamp"], orient="row")
    frame.write_parquet(tmp_path / "ratings.parquet")
    table = read_ratings_table(tmp_path / "ratings.parquet")
    assert triples(table) == EXPECTED and table.format == "Parquet"
    assert table.columns["item"] == "movieId"


def test_a_polars_dataframe() -> None:
    frame = pl.DataFrame(ROWS, schema=["user_id", "item_id", "score", "time"], orient="row")
    table = read_ratings_table(frame)
    assert triples(table) == EXPECTED and table.format == "polars DataFrame" and table.source == "DataFrame"
    assert table.columns == {"user": "user_id", "item": "item_id", "rating": "score", "time": "time"}


def test_a_pandas_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(ROWS, columns=["user", "item", "rating", "timestamp"])
    table = read_ratings_table(frame)
    assert triples(table) == EXPECTED and table.format == "pandas DataFrame"


def test_the_same_ratings_from_every_source_have_the_same_fingerprint(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pl.DataFrame(ROWS, schema=["user", "item", "rating", "timestamp"], orient="row")
    frame.write_parquet(tmp_path / "r.parquet")
    sources = [
        rows_csv(tmp_path / "r.csv"),
        tmp_path / "r.parquet",
        frame,
        pd.DataFrame(frame.to_dict(as_series=False)),
    ]
    prints = {read_ratings_table(source).fingerprint for source in sources}
    assert len(prints) == 1


def test_integer_ids_stay_integers_whatever_the_source(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    csv = write(tmp_path / "r.csv", "userId,movieId,rating\n196,242,3\n186,302,3\n")
    as_text = pl.DataFrame({"userId": ["196", "186"], "movieId": ["242", "302"], "rating": [3, 3]})
    with_gaps = pd.DataFrame({"userId": [196.0, 186.0], "movieId": [242, 302], "rating": [3, 3]})
    for source in (csv, as_text, with_gaps):
        r = read_ratings_table(source).ratings
        assert r.user_ids.id_type == "int" and r.user_ids.raw_ids.tolist() == [186, 196]


def test_movielens_headerless_layouts_are_recognised(tmp_path: Path) -> None:
    u_data = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    dat = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    for path, layout in ((u_data, "u.data"), (dat, "ratings.dat")):
        table = read_ratings_table(path)
        assert layout in table.format and len(table.ratings) == 2 and table.ratings.user_ids.id_type == "int"
        assert table.ratings.timestamps is not None


def test_a_header_is_required_otherwise(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "1,2,3\n4,5,1\n")
    with pytest.raises(DataError, match=r"r\.csv has no header line .*'1,2,3'.*e\.g\. user,item,rating,timestamp"):
        read_ratings_table(path)


def test_latin_1_text_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffuser,item,rating\nZoë,Amélie,5\nbob,Amélie,1\n".encode("utf-8"))
    assert read_ratings_table(path).ratings.user_ids.raw_ids.tolist() == ["Zoë", "bob"]
    path.write_bytes("user,item,rating\nZoë,Amélie,5\nbob,Amélie,1\n".encode("latin-1"))
    table = read_ratings_table(path)
    assert table.ratings.item_ids.raw_ids.tolist() == ["Amélie"] and "Latin-1" in table.format


def test_times_as_date_times(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating,date\na,x,1,2020-01-01\nb,x,2,2020-01-02 06:00:00\n")
    assert read_ratings_table(path).ratings.timestamps.tolist() == [1_577_836_800, 1_577_944_800]
    frame = pl.DataFrame({"user": [1], "item": [2], "when": pl.Series([86_400_000_000], dtype=pl.Datetime("us"))})
    assert read_ratings_table(frame, time_col="when").ratings.timestamps.tolist() == [86_400]


def test_unsupported_sources() -> None:
    with pytest.raises(ConfigError, match="cannot read ratings from a list"):
        read_ratings_table([("a", "b", 1)])
    with pytest.raises(DataError, match=r"ratings file nowhere\.csv does not exist"):
        read_ratings_table("nowhere.csv")


# ---------------------------------------------------------------------------------------------
# Columns


def test_columns_named_explicitly(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "who,what,stars_given,extra\na,x,5,?\nb,y,1,?\n")
    table = read_ratings_table(path, user_col="who", item_col="what", rating_col="stars_given")
    assert triples(table) == [("a", "x", 5.0), ("b", "y", 1.0)] and table.columns["time"] is None


@pytest.mark.parametrize(
    ("header", "options", "phrase"),
    [
        ("who,item,rating", {}, "r.csv has no user id column among 'who', 'item', 'rating'; name it with --user-col"),
        ("user,what,rating", {}, "has no item id column among"),
        ("user,item,rating", {"rating_col": "stars"}, "r.csv has no column 'stars' (given by --rating-col)"),
        ("user,item,rating", {"time_col": "when"}, "has no column 'when' (given by --time-col)"),
    ],
)
def test_missing_columns(tmp_path: Path, header: str, options: dict, phrase: str) -> None:
    path = write(tmp_path / "r.csv", f"{header}\na,b,1\n")
    with pytest.raises(DataError) as caught:
        read_ratings_table(path, **options)
    assert phrase in str(caught.value)


def test_contradictory_options(tmp_path: Path) -> None:
    path = rows_csv(tmp_path / "r.csv")
    with pytest.raises(ConfigError, match="either a rating column"):
        read_ratings_table(path, implicit=True, rating_col="rating")
    with pytest.raises(ConfigError, match="implicit feedback has no rating scale"):
        read_ratings_table(path, implicit=True, scale="1:5")
    with pytest.raises(ConfigError, match="one column serves two roles"):
        read_ratings_table(path, user_col="user", item_col="user")
    with pytest.raises(ConfigError, match="--scale does not apply"):
        read_ratings_table(write(tmp_path / "n.csv", "user,item\na,b\n"), scale="1:5")


# ---------------------------------------------------------------------------------------------
# Scales and implicit feedback


def test_a_declared_scale_is_kept_and_shown(tmp_path: Path) -> None:
    table = read_ratings_table(rows_csv(tmp_path / "r.csv"), scale="0.5:5:0.5")
    assert table.ratings.n_levels == 10 and table.scale.origin == "declared"
    assert "declared as 0.5:5:0.5" in table.describe()
    same = read_ratings_table(rows_csv(tmp_path / "r.csv"), scale=RatingScale.parse("0.5:5:0.5"))
    assert same.ratings.levels.tolist() == table.ratings.levels.tolist() == [7, 9, 3, 8]


def test_ratings_off_a_declared_scale_are_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\na,x,5\nb,x,7\nc,x,3.5\nd,x,0\n")
    with pytest.raises(DataError) as caught:
        read_ratings_table(path, scale="1:5")
    assert str(caught.value) == (
        "r.csv: 3 bad rows: line 3: rating 7 is not on the declared scale 1:5; line 4: rating 3.5 is not on the "
        "declared scale 1:5; line 5: rating 0 is not on the declared scale 1:5; fix the file and read it again"
    )


@pytest.mark.parametrize("how", ["no rating column", "--implicit"])
def test_implicit_feedback(tmp_path: Path, how: str) -> None:
    header = "user,item" if how == "no rating column" else "user,item,rating"
    body = "a,x\nb,x\na,y\na,x\n" if how == "no rating column" else "a,x,5\nb,x,3\na,y,1\na,x,2\n"
    table = read_ratings_table(write(tmp_path / "r.csv", f"{header}\n{body}"), implicit=how == "--implicit")
    r = table.ratings
    assert table.is_implicit and r.is_implicit and r.rating_values.tolist() == [1.0] and r.n_levels == 1
    assert r.levels.tolist() == [0, 0, 0] and table.dropped_repeats == 1  # a repeated interaction is one
    assert "implicit feedback" in table.describe() and how in table.describe()


def test_all_ones_are_implicit_feedback(tmp_path: Path) -> None:
    table = read_ratings_table(write(tmp_path / "r.csv", "user,item,rating\na,x,1\nb,x,1\n"))
    assert table.is_implicit and "every rating is 1" in table.describe()


# ---------------------------------------------------------------------------------------------
# Bad rows and repeated pairs


def test_every_bad_row_is_named_in_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        "user,item,rating,timestamp\n"
        "a,x,4,100\n"  # line 2: fine
        "b,x,five,101\n"  # 3
        "c,x,,102\n"  # 4
        ",x,3,103\n"  # 5
        "d,x\n"  # 6
        "\n"  # 7: a blank line is skipped
        "e,x,inf,104\n"  # 8
        "f,x,2,soon\n"  # 9
        "g,x,1,105,extra\n",  # 10
    )
    with pytest.raises(DataError) as caught:
        read_ratings_table(path)
    assert str(caught.value) == (
        "r.csv: 7 bad rows: line 3: rating 'five' is not a number; line 4: rating is missing; line 5: user id is "
        "missing; line 6: expected 4 fields like the header, found 2; line 8: rating 'inf' is not a finite number; "
        "line 9: time 'soon' is neither whole seconds nor a date-time; line 10: expected 4 fields like the header, "
        "found 5; fix the file and read it again"
    )


def test_many_bad_rows_are_counted_past_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\n" + "".join(f"u{k},i,bad\n" for k in range(25)))
    with pytest.raises(DataError) as caught:
        read_ratings_table(path, max_errors=3)
    assert str(caught.value) == (
        "r.csv: 25 bad rows: line 2: rating 'bad' is not a number; line 3: rating 'bad' is not a number; "
        "line 4: rating 'bad' is not a number; and 22 more; fix the file and read it again"
    )


def test_line_numbers_count_quoted_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", 'user,item,rating\n"a","two\nlines",4\nb,x,oops\n')
    with pytest.raises(DataError, match=r"^r\.csv:4: rating 'oops' is not a number"):
        read_ratings_table(path)


def test_bad_rows_of_a_dataframe_are_named_by_row() -> None:
    frame = pl.DataFrame({"user": ["a", None, "c"], "item": [1, 2, 3], "rating": [1.0, 2.0, None]})
    with pytest.raises(DataError) as caught:
        read_ratings_table(frame)
    assert str(caught.value).startswith("DataFrame: 2 bad rows: row 1: user id is missing; row 2: rating is missing")


def test_mixed_id_types_in_a_pandas_column() -> None:
    pd = pytest.importorskip("pandas")
    with pytest.raises(DataError, match="the user id column: ids must be all integers or all text"):
        read_ratings_table(pd.DataFrame({"user": [1, "a"], "item": [1, 2], "rating": [1, 2]}))


def test_a_repeated_pair_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\na,x,4\nb,x,2\na,x,5\n")
    with pytest.raises(DataError) as caught:
        read_ratings_table(path)
    assert str(caught.value) == (
        "r.csv:4: user 'a' rated item 'x' again (first at line 2); keep one row per (user, item) pair, "
        "or read with --duplicates last to keep the last one"
    )


def test_a_repeated_pair_keeps_its_last_rating_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\na,x,4\nb,x,2\na,x,5\n")
    table = read_ratings_table(path, duplicates="last")
    assert triples(table) == [("b", "x", 2.0), ("a", "x", 5.0)] and table.dropped_repeats == 1
    assert "1 repeated (user, item) rows dropped" in table.describe()


def test_an_empty_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"r\.csv holds no ratings"):
        read_ratings_table(write(tmp_path / "r.csv", "user,item,rating\n\n"))
    with pytest.raises(DataError, match=r"e\.csv is empty"):
        read_ratings_table(write(tmp_path / "e.csv", ""))


def test_summary_for_a_checkpoint(tmp_path: Path) -> None:
    summary = read_ratings_table(rows_csv(tmp_path / "r.csv"), scale="1:5:0.5").summary()
    assert summary["ratings"] == 4 and summary["users"] == 3 and summary["items"] == 3
    assert summary["user_id_type"] == "str" and summary["scale"] == "1:5:0.5" and summary["implicit"] is False
    assert len(summary["fingerprint"]) == 64


# ---------------------------------------------------------------------------------------------
# Item tables


def test_an_items_csv_with_titles_and_pipe_separated_genres(tmp_path: Path) -> None:
    path = write(
        tmp_path / "items.csv",
        'movieId,title,genres\n042,Heat (1995),Action|Crime\nx9,"Toy Story, The (1995)",(no genres listed)\n',
    )
    movies = read_items_table(path, like=IdMap.from_raw(["042", "7"], "item"))
    assert movies.ids.tolist() == ["042", "x9"] and movies.title("042") == "Heat (1995)"
    assert movies.genres("042") == ("Action", "Crime") and movies.genres("x9") == () and movies.year("x9") == 1995
    assert type(movies).from_dict(movies.to_dict()).to_dict() == movies.to_dict()


def test_item_ids_take_the_type_of_the_ratings_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "items.tsv", "item\tname\n7\tSeven\n42\tForty-two\n")
    as_text = read_items_table(path, like=IdMap.from_raw(["7", "x"], "item"))
    as_integer = read_items_table(path, like=IdMap(np.array([7, 42]), "item"))
    assert as_text.ids.tolist() == ["42", "7"] and as_integer.ids.tolist() == [7, 42]
    assert as_integer.title(42) == "Forty-two"


def test_an_items_dataframe_with_a_list_of_genres() -> None:
    frame = pl.DataFrame({"item_id": [2, 1], "title": ["B", "A"], "genres": [["Drama"], []]})
    movies = read_items_table(frame)
    assert movies.ids.tolist() == [1, 2] and movies.genres(2) == ("Drama",) and movies.genre_names == ("Drama",)


def test_movielens_movies_dat_is_recognised(tmp_path: Path) -> None:
    path = write(tmp_path / "movies.dat", "1::Toy Story (1995)::Animation|Comedy\n2::Jumanji (1995)::Adventure\n")
    assert read_items_table(path).genres(1) == ("Animation", "Comedy")


def test_bad_item_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "id,title\n1,A\n1,B\n,C\n3,\n")
    with pytest.raises(DataError) as caught:
        read_items_table(path)
    assert str(caught.value) == (
        "items.csv: 3 bad rows: line 3: item 1 again (first at line 2); line 4: item id is missing; "
        "line 5: title is missing; fix the file and read it again"
    )
    with pytest.raises(DataError, match="has no title column"):
        read_items_table(write(tmp_path / "t.csv", "id,year\n1,1990\n"))
    with pytest.raises(DataError, match="item id 'x' is not an integer like the other ids"):
        read_items_table(write(tmp_path / "u.csv", "id,title\nx,A\n"), like=IdMap(np.array([1])))


def test_fingerprints_identify_the_ratings_not_the_file(tmp_path: Path) -> None:
    table = read_ratings_table(rows_csv(tmp_path / "r.csv"))
    assert table.fingerprint == ratings_fingerprint(table.ratings)


def test_movielens_u_item_is_recognised_with_its_u_genre(tmp_path: Path) -> None:
    write(
        tmp_path / "u.item",
        "1|Toy Story (1995)|01-Jan-1995||http://x|0|1|1\n2|Heat (1995)|01-Jan-1995||http://y|1|0|0\n",
    )
    with pytest.raises(DataError, match=r"u\.item is laid out as ml-100k's u\.item; put its u\.genre beside it"):
        read_items_table("u.item")
    write(tmp_path / "u.genre", "Action|0\nAnimation|1\nComedy|2\n")
    movies = read_items_table("u.item")
    assert movies.genres(1) == ("Animation", "Comedy") and movies.title(2) == "Heat (1995)"
