"""Request parsing: the fast table builders never change what the schema check sees.

Numeric tables skip pandas' per-cell inference; the property test checks, for random tables
of numbers, booleans, nulls and strings, that the checked input (or the error) is exactly
what building the table with pandas gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.errors import ModelInputError
from cairn.models.enforcement import enforce_schema
from cairn.models.serving.payloads import (
    UnsupportedContentType,
    batch_key,
    decode_csv,
    decode_json,
    media_type,
    merge,
    to_model_input,
)
from cairn.models.signature import ColSpec, DataType, Schema

COLUMNS = ["a", "b", "c"]
SCHEMAS = {
    kind: Schema(tuple(ColSpec(DataType(kind), name) for name in COLUMNS))
    for kind in ("double", "long", "float")
}
SCHEMAS["mixed"] = Schema(
    (ColSpec(DataType.double, "a"), ColSpec(DataType.long, "b"), ColSpec(DataType.double, "c"))
)

numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**62), 2**62))
cells = st.one_of(numbers, numbers, numbers, st.booleans(), st.none(), st.text(max_size=3))


def _checked(build: Any, schema: Schema) -> Any:
    """The enforced table as (columns, dtypes, values), or the error message."""
    try:
        frame = enforce_schema(build(), schema)
    except ModelInputError as exc:
        return exc.message
    values = [["NaN" if v != v else v for v in row] for row in frame.to_numpy().tolist()]
    return list(frame.columns), [str(t) for t in frame.dtypes], values


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=6),
    schema_name=st.sampled_from(sorted(SCHEMAS)),
    as_records=st.booleans(),
)
def test_fast_tables_check_like_pandas_tables(
    rows: list[list[Any]], schema_name: str, as_records: bool
) -> None:
    schema = SCHEMAS[schema_name]
    if as_records:
        body = orjson.dumps(
            {"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in rows]}
        )
    else:
        body = orjson.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}})
    payload = decode_json(body)
    fast = _checked(lambda: to_model_input(payload, schema), schema)
    slow = _checked(lambda: pd.DataFrame(rows, columns=COLUMNS), schema)
    assert fast == slow


def test_numeric_bodies_are_recognised_from_the_raw_bytes() -> None:
    split = decode_json(b'{"dataframe_split": {"columns": ["a"], "data": [[1.5], [2e-3]]}}')
    assert split.numbers_only and not split.may_hold_bools
    with_index = decode_json(
        b'{"dataframe_split": {"data": [[1]], "index": [0], "columns": ["a"]}}'
    )
    assert not with_index.numbers_only  # names after the rows: the slower, exact check
    assert not with_index.may_hold_bools
    flags = decode_json(b'{"inputs": [[1, true]]}')
    assert not flags.numbers_only and flags.may_hold_bools
    assert not decode_json(b'{"inputs": [[1, null]]}').numbers_only


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[1.0, 2.0, 3.0], [4.0, 5.0]], "row 1 has 2 values for 3 columns"),
        ([[[1.0], [2.0], [3.0]]], "column 'a': expected double, got mixed values"),
        ([1.0, 2.0, 3.0], "not a valid table"),
    ],
    ids=["ragged", "nested", "flat"],
)
def test_malformed_tables_are_refused(rows: list[Any], match: str) -> None:
    payload = decode_json(orjson.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}}))
    with pytest.raises(ModelInputError, match=match):
        enforce_schema(to_model_input(payload, SCHEMAS["double"]), SCHEMAS["double"])


def test_merged_payloads_keep_their_rows_in_order() -> None:
    bodies = [
        {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2, 3]]}},
        {"dataframe_split": {"columns": COLUMNS, "data": [[4, 5, 6], [7, 8, 9]]}},
    ]
    payloads = [decode_json(orjson.dumps(body)) for body in bodies]
    assert batch_key(payloads[0]) == batch_key(payloads[1]) == ("dataframe_split", tuple(COLUMNS))
    frame = to_model_input(merge(payloads), SCHEMAS["double"])
    np.testing.assert_array_equal(frame.to_numpy(), [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    other = decode_json(
        orjson.dumps({"dataframe_split": {"columns": ["c", "b", "a"], "data": [[1, 2, 3]]}})
    )
    assert batch_key(other) != batch_key(payloads[0])
    with_params = decode_json(orjson.dumps({**bodies[0], "params": {"k": 1}}))
    assert batch_key(with_params) is None
    assert batch_key(decode_json(b'{"inputs": [[1, 2, 3]]}')) is None
    odd_names = b'{"dataframe_split": {"columns": [1, {"a": 1}], "data": [[1, 2]]}}'
    assert batch_key(decode_json(odd_names)) is None


def test_csv_is_read_with_the_schema_types() -> None:
    frame = to_model_input(decode_csv(b"a,b,c\n1,2,3\n4,5,6\n"), SCHEMAS["double"])
    assert [str(t) for t in frame.dtypes] == ["float64"] * 3
    with pytest.raises(ModelInputError, match="cannot be read as a table"):
        to_model_input(decode_csv(b"a,b,c\n1,2,x\n"), SCHEMAS["long"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", "json"),
        ("Application/JSON; charset=UTF-8", "json"),
        ("text/csv", "csv"),
        ('text/csv; charset="utf-8"', "csv"),
    ],
)
def test_media_types(header: str, expected: str) -> None:
    assert media_type(header) == expected


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "no Content-Type"),
        ("application/parquet", "unsupported Content-Type"),
        ("application/json; charset=utf-16", "UTF-8 only"),
        ("text/csv; header=present", "unsupported Content-Type parameter 'header'"),
    ],
)
def test_refused_media_types(header: str | None, match: str) -> None:
    with pytest.raises(UnsupportedContentType, match=match) as caught:
        media_type(header)
    assert caught.value.http_status == 415
