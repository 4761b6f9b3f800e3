"""The data layer's building blocks: id maps, rating scales, bad-row reports, Ratings and fingerprints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from recsys_rbm.data.fingerprint import ratings_fingerprint
from recsys_rbm.data.ids import IdMap, typed_ids
from recsys_rbm.data.problems import BadRows, RowNames
from recsys_rbm.data.ratings import Ratings, RawRatings, drop_repeated_pairs, index_ratings
from recsys_rbm.data.scale import RatingScale
from recsys_rbm.errors import ConfigError, DataError, UnknownIdError

# ---------------------------------------------------------------------------------------------
# Id maps


def test_an_id_map_of_integers_converts_both_ways() -> None:
    ids = IdMap.from_raw([196, 7, 42, 7], "user")
    assert ids.id_type == "int" and len(ids) == 3 and ids.raw_ids.dtype == np.int64
    np.testing.assert_array_equal(ids.raw_ids, [7, 42, 196])
    np.testing.assert_array_equal(ids.to_inner([196, 7]), [2, 0])
    np.testing.assert_array_equal(ids.to_raw([1, 2]), [42, 196])
    np.testing.assert_array_equal(ids.contains([7, 8]), [True, False])


def test_an_id_map_of_text_keeps_ids_raw() -> None:
    ids = IdMap.from_raw(["bob", "042", "alice", "42"], "user")
    assert ids.id_type == "str"
    assert ids.raw_ids.tolist() == ["042", "42", "alice", "bob"]  # sorted by code point; "042" stays "042"
    np.testing.assert_array_equal(ids.to_inner(["alice", "042"]), [2, 0])
    assert ids.to_raw([3]).tolist() == ["bob"]
    np.testing.assert_array_equal(ids.contains(["42", "43", 42]), [True, False, True])  # 42 is looked up as "42"


def test_lookups_accept_an_id_in_the_other_form_only_when_it_is_the_same_id() -> None:
    ids = IdMap(np.array([1, 42]), "user")
    np.testing.assert_array_equal(ids.to_inner(["42", 1]), [1, 0])  # what a user types at a prompt
    np.testing.assert_array_equal(ids.contains(["042", "+42", "x"]), [False, False, False])  # not how 42 is written
    np.testing.assert_array_equal(ids.contains(np.array([42.0, 42.5])), [True, False])
    assert int(ids.to_inner(np.int32(42))) == 1  # a scalar keeps its shape


def test_an_unknown_id_is_one_line_naming_what_is_known() -> None:
    with pytest.raises(UnknownIdError) as caught:
        IdMap(np.arange(1, 41), "user").to_inner([3, 999])
    assert str(caught.value) == "unknown user 999; known user ids range over 1..40 (40 of them); give one of those"
    with pytest.raises(UnknownIdError) as caught:
        IdMap.from_raw(["alice", "bob"], "user").to_inner(["carol"])
    assert str(caught.value) == (
        "unknown user 'carol'; the 2 known user ids are text, e.g. 'alice', 'bob'; give one of those"
    )
    with pytest.raises(UnknownIdError, match="the model knows no items"):
        IdMap(np.zeros(0, dtype=np.int64), "item").to_inner([1])


def test_an_id_map_must_be_sorted_unique_and_of_one_type() -> None:
    with pytest.raises(ValueError, match="sorted ascending and unique"):
        IdMap(np.array([2, 1]))
    with pytest.raises(ValueError, match="sorted ascending and unique"):
        IdMap(np.array(["a", "a"]))
    with pytest.raises(ValueError, match="int64 or text"):
        IdMap(np.array([1.5, 2.5]))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["196", "7", "-3"], [196, 7, -3]),  # canonical integers: the ids are integers
        (np.array([1, 2], dtype=np.int32), [1, 2]),
        (np.array([3.0, 4.0]), [3, 4]),  # a float column of whole numbers (pandas, with missing values)
        (["042", "7"], ["042", "7"]),  # "042" would not survive int(): the column stays text
        (["+5", "7"], ["+5", "7"]),
        (["alice", "7"], ["alice", "7"]),
        (np.array(["x", "y"], dtype=object), ["x", "y"]),
    ],
)
def test_a_column_of_ids_is_integers_only_when_every_id_is_one(values: object, expected: list) -> None:
    typed = typed_ids(values)
    assert typed.tolist() == expected
    assert typed.dtype == (np.int64 if isinstance(expected[0], int) else typed.dtype) and typed.dtype.kind in "iU"


@pytest.mark.parametrize(
    "values", [np.array([1, "a"], dtype=object), np.array([1.5]), np.array([True, False]), np.array([None], object)]
)
def test_ids_that_are_neither_integers_nor_text_are_refused(values: np.ndarray) -> None:
    with pytest.raises(ValueError):
        typed_ids(values)


@pytest.mark.parametrize("raw", [[3, 196, 1_000_000_007], ["alice", "042", "Zoë", "名前", ""]])
def test_id_maps_round_trip_through_safetensors_and_json(tmp_path: Path, raw: list) -> None:
    ids = IdMap(np.unique(typed_ids(raw)), "user")
    arrays = ids.to_arrays("user")
    if ids.id_type == "int":
        assert set(arrays) == {"user_raw_ids"} and arrays["user_raw_ids"].dtype == np.int64  # the name checkpoints use
    else:
        assert set(arrays) == {"user_raw_utf8", "user_raw_offsets"}
        assert arrays["user_raw_utf8"].dtype == np.uint8 and arrays["user_raw_offsets"].dtype == np.int64
        assert arrays["user_raw_offsets"][-1] == len("".join(ids.raw_ids.tolist()).encode("utf-8"))
    save_file(arrays, str(tmp_path / "ids.safetensors"))  # no pickle, no torch
    again = IdMap.from_arrays(load_file(str(tmp_path / "ids.safetensors")), "user", "user")
    assert again.raw_ids.tolist() == ids.raw_ids.tolist() and again.id_type == ids.id_type
    as_json = json.loads(json.dumps(ids.to_json()))
    assert IdMap.from_json(as_json, "user").raw_ids.tolist() == ids.raw_ids.tolist()


def test_json_keeps_text_and_integer_ids_apart() -> None:
    assert IdMap.from_json({"type": "str", "ids": ["42"]}).raw_ids.tolist() == ["42"]
    assert IdMap.from_json({"type": "int", "ids": [42]}).raw_ids.tolist() == [42]
    with pytest.raises(ValueError):
        IdMap.from_json({"type": "int", "ids": ["42"]})
    with pytest.raises(ValueError, match="offsets"):
        IdMap.from_arrays({"x_raw_utf8": np.zeros(3, np.uint8), "x_raw_offsets": np.array([0, 5])}, "x")


# ---------------------------------------------------------------------------------------------
# Rating scales


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1:5", [1, 2, 3, 4, 5]),
        ("0.5:5:0.5", [k / 2 for k in range(1, 11)]),
        (" 0:1:0.1 ", [round(k / 10, 12) for k in range(11)]),
        ("1,2,4", [1, 2, 4]),
        ("-2:2", [-2, -1, 0, 1, 2]),
    ],
)
def test_a_declared_scale(text: str, values: list[float]) -> None:
    scale = RatingScale.parse(text)
    assert list(scale.values) == values and scale.origin == "declared" and not scale.is_implicit
    assert RatingScale.parse(scale.spec()).values == scale.values  # the shown form reads back


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "is not understood"),
        ("five", "is not understood"),
        ("1:x", "is not a number"),
        ("5:1", "HIGH must be above LOW"),
        ("1:1", "HIGH must be above LOW"),
        ("1:5:0", "the step must be positive"),
        ("1:5:-1", "the step must be positive"),
        ("0:1:0.3", "not LOW plus a whole number of steps"),
        ("1:5:1:2", "is not understood"),
        ("1,1", "at least 2 different values"),
        ("1,x", "not a list of numbers"),
        ("0:inf", "not finite"),
        ("0:10000", "levels; at most 1,000"),
    ],
)
def test_a_scale_that_cannot_be_read_is_one_config_error_line(text: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RatingScale.parse(text)
    assert phrase in str(caught.value) and "\n" not in str(caught.value)


def test_an_inferred_scale_fills_the_grid_and_says_so() -> None:
    scale = RatingScale.infer(np.array([1.0, 2, 5, 4, 2]))
    assert scale.values == (1, 2, 3, 4, 5) and scale.origin == "inferred"
    assert scale.describe() == "1, 2, 3, 4, 5 (K = 5, inferred from the data, 1 of them unused)"
    assert RatingScale.infer(np.array([0.5, 5.0, 3.5, 1.0])).n_levels == 10  # half stars
    assert RatingScale.infer(np.array([0.5, 3.5, 5.0])).values == (0.5, 2.0, 3.5, 5.0)  # all the data can tell
    assert RatingScale.infer(np.array([0.1234567, 1, 2])).values == (0.1234567, 1, 2)  # off any grid: the values read


def test_one_distinct_value_is_implicit_feedback() -> None:
    scale = RatingScale.infer(np.array([5.0, 5.0]))
    assert scale.is_implicit and scale.values == (1.0,) and scale.n_levels == 1
    assert "every rating is 5" in scale.describe()
    levels, on_scale = scale.levels(np.array([5.0, 5.0]))
    assert levels.tolist() == [0, 0] and on_scale.all()
    with pytest.raises(ValueError, match="implicit feedback"):
        RatingScale((5.0,))


def test_too_many_distinct_values_ask_for_a_declared_scale() -> None:
    expected = r"ratings\.csv holds 41 different rating values from 0 to 4\.1.*--scale 0:4\.1"
    with pytest.raises(DataError, match=expected):
        RatingScale.infer(np.concatenate([np.linspace(0, 4, 40), [4.1]]), "ratings.csv")


def test_levels_match_within_a_tolerance_and_flag_the_rest() -> None:
    scale = RatingScale.parse("0:1:0.1")
    levels, on_scale = scale.levels(np.array([0.1 * 3, 1.0, 0.35, np.nan, 7]))
    assert levels[:2].tolist() == [3, 10] and on_scale.tolist() == [True, True, False, False, False]


# ---------------------------------------------------------------------------------------------
# Bad rows


def test_one_bad_row_is_named_file_colon_line() -> None:
    bad = BadRows(RowNames("ratings.csv", "line", 2))
    bad.add(3, "rating 'x' is not a number")
    assert str(bad.error()) == "ratings.csv:5: rating 'x' is not a number; fix the file and read it again"


def test_many_bad_rows_are_one_line_with_a_count_past_the_limit() -> None:
    bad = BadRows(RowNames("ratings.csv", "line", 2), limit=3)
    bad.add_many(np.array([9, 1, 5, 7]), lambda row: f"rating {row} is odd")
    bad.add(1, "a second problem of row 1 (not shown)")
    bad.add(0, "user id is\nmissing")
    message = str(bad.error("fix them"))
    assert message == (
        "ratings.csv: 5 bad rows: line 2: user id is missing; line 3: rating 1 is odd; line 7: rating 5 is odd; "
        "and 2 more; fix them"
    )


def test_rows_of_a_dataframe_or_a_parquet_file() -> None:
    frame = BadRows(RowNames("DataFrame", "row", 0))
    frame.add_many(np.array([0, 4]), "user id is missing")
    assert str(frame.error()).startswith("DataFrame: 2 bad rows: row 0: user id is missing; row 4:")
    parquet = BadRows(RowNames("x.parquet", "row", 1))
    parquet.add(2, "rating is missing")
    assert str(parquet.error()).startswith("x.parquet row 3: rating is missing")


# ---------------------------------------------------------------------------------------------
# Ratings


def _raw(users: list, items: list, values: list[float], source: str = "r.csv") -> RawRatings:
    return RawRatings(typed_ids(users), typed_ids(items), np.asarray(values, dtype=float), None, source, first_line=2)


def test_ratings_with_text_ids_and_their_scale() -> None:
    ratings = index_ratings(_raw(["bob", "alice", "bob"], ["x", "y", "y"], [1, 4, 5]))
    assert ratings.user_ids.raw_ids.tolist() == ["alice", "bob"] and ratings.users.tolist() == [1, 0, 1]
    assert ratings.item_ids.kind == "item" and ratings.timestamps is None
    assert ratings.scale.origin == "inferred" and ratings.n_levels == 5 and not ratings.is_implicit
    part = ratings.subset(np.array([0, 2]))
    assert part.scale is ratings.scale and part.rating_values is ratings.rating_values


def test_ratings_built_from_arrays_derive_their_scale() -> None:
    ids = IdMap(np.array([1]))
    plain = Ratings(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), ids, ids, np.array([1.0, 2]))
    assert plain.scale.values == (1.0, 2.0) and plain.scale.origin == "given"
    implicit = Ratings(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), ids, ids, np.array([1.0]))
    assert implicit.is_implicit and implicit.n_levels == 1


def test_a_scale_that_disagrees_with_the_rating_values_is_refused() -> None:
    ids = IdMap(np.array([1]))
    with pytest.raises(ValueError, match="the scale's values"):
        Ratings(
            np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), ids, ids, np.array([1.0, 3]),
            None, RatingScale.parse("1:2"),
        )  # fmt: skip


def test_every_repeated_pair_is_named_with_its_first_line() -> None:
    raw = _raw(["a", "b", "a", "a", "b"], [1, 1, 1, 1, 2], [1, 2, 3, 4, 5])
    with pytest.raises(DataError) as caught:
        index_ratings(raw)
    assert str(caught.value).startswith(
        "r.csv: 2 bad rows: line 4: user 'a' rated item 1 again (first at line 2); "
        "line 5: user 'a' rated item 1 again (first at line 2)"
    )
    kept, dropped = drop_repeated_pairs(raw)
    assert dropped == 2 and kept.values.tolist() == [2, 4, 5]  # each pair's last row, in source order
    assert kept.row_names.at(1) == "line 5"  # rows keep their place in the source for messages


def test_ids_outside_a_given_id_space_are_bad_rows() -> None:
    users, items = IdMap.from_raw(["a"], "user"), IdMap.from_raw([1, 2], "item")
    with pytest.raises(DataError, match=r"r\.csv: 2 bad rows: line 2: user 'z' does not appear in train\.csv"):
        index_ratings(_raw(["z", "a"], [1, 3], [1, 2]), users, items, known_from="train.csv")


# ---------------------------------------------------------------------------------------------
# Fingerprints


def test_the_fingerprint_of_integer_ids_is_the_one_checkpoints_already_hold() -> None:
    ratings = index_ratings(_raw([7, 3, 7], [10, 10, 20], [5, 4, 3]))
    legacy = hashlib.sha256()
    for array in (
        ratings.rating_values.astype("<f8"),
        np.array([7, 3, 7], dtype="<i8"),
        np.array([10, 10, 20], dtype="<i8"),
        np.array([5.0, 4, 3], dtype="<f8"),
    ):
        legacy.update(array.tobytes())
    assert ratings_fingerprint(ratings) == legacy.hexdigest()


def test_the_fingerprint_of_text_ids_depends_only_on_the_triples() -> None:
    ratings = index_ratings(_raw(["a", "b", "c"], ["x", "y", "x"], [1, 2, 3]))
    first_two = ratings.subset(np.array([0, 1]))  # "c" stays in its id map, unused
    alone = index_ratings(_raw(["a", "b"], ["x", "y"], [1, 2]), scale=RatingScale.parse("1:3"))
    assert ratings_fingerprint(first_two) == ratings_fingerprint(alone)
    assert ratings_fingerprint(first_two) != ratings_fingerprint(ratings)
    as_text = index_ratings(_raw(["042"], ["x"], [1]))
    as_integer = index_ratings(_raw([42], ["x"], [1]))
    assert ratings_fingerprint(as_text) != ratings_fingerprint(as_integer)
