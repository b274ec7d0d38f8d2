from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cairn.errors import ModelInputError
from cairn.models.enforcement import enforce_schema, to_dataframe
from cairn.models.signature import ColSpec, DataType, Schema, TensorSpec

SCHEMA = Schema(
    (
        ColSpec(DataType.double, "x"),
        ColSpec(DataType.long, "n"),
        ColSpec(DataType.string, "s"),
    )
)


def test_matching_input_passes_unchanged() -> None:
    frame = pd.DataFrame({"x": [1.5], "n": [2], "s": ["a"]})
    out = enforce_schema(frame, SCHEMA)
    assert out is frame


def test_int_widens_to_float_and_smaller_ints_to_long() -> None:
    frame = pd.DataFrame({"x": [1, 2], "n": np.array([3, 4], dtype=np.int8), "s": ["a", "b"]})
    out = enforce_schema(frame, SCHEMA)
    assert out["x"].dtype == np.float64 and out["x"].tolist() == [1.0, 2.0]
    assert out["n"].dtype == np.int64


def test_float_to_int_is_refused() -> None:
    frame = pd.DataFrame({"x": [1.0], "n": [2.5], "s": ["a"]})
    with pytest.raises(ModelInputError, match=r"column 'n': expected long, got double"):
        enforce_schema(frame, SCHEMA)


def test_every_offending_column_is_named_in_one_error() -> None:
    frame = pd.DataFrame({"x": ["oops"], "s": [1.0]})
    with pytest.raises(ModelInputError) as caught:
        enforce_schema(frame, SCHEMA)
    message = caught.value.message
    assert "column 'x': expected double, got string" in message
    assert "column 'n': missing (expected long)" in message
    assert "column 's': expected string, got double" in message


def test_extra_columns_are_dropped_and_order_follows_the_signature() -> None:
    frame = pd.DataFrame({"s": ["a"], "extra": [0], "n": [1], "x": [0.5]})
    out = enforce_schema(frame, SCHEMA)
    assert list(out.columns) == ["x", "n", "s"]


def test_optional_columns_may_be_missing() -> None:
    schema = Schema((ColSpec(DataType.double, "x"), ColSpec(DataType.double, "y", False)))
    out = enforce_schema(pd.DataFrame({"x": [1.0]}), schema)
    assert list(out.columns) == ["x"]


def test_json_shaped_inputs_convert() -> None:
    # JSON numbers arrive as Python objects; records and dicts are accepted like DataFrames.
    records = [{"x": 1, "n": 2, "s": "a"}, {"x": 2.5, "n": 3, "s": "b"}]
    out = enforce_schema(records, SCHEMA)
    assert out["x"].dtype == np.float64 and out["n"].dtype == np.int64
    out = enforce_schema({"x": 1.0, "n": 1, "s": "z"}, SCHEMA)
    assert len(out) == 1


def test_object_column_of_numbers_converts_but_of_strings_does_not() -> None:
    frame = pd.DataFrame({"x": pd.Series([1, 2.5], dtype=object), "n": [1, 2], "s": ["a", "b"]})
    assert enforce_schema(frame, SCHEMA)["x"].dtype == np.float64
    frame["n"] = pd.Series(["1", "2"], dtype=object)
    with pytest.raises(ModelInputError, match="column 'n': expected long, got string"):
        enforce_schema(frame, SCHEMA)


def test_int64_narrows_to_int32_only_when_values_fit() -> None:
    schema = Schema((ColSpec(DataType.integer, "i"),))
    assert enforce_schema(pd.DataFrame({"i": [1, 2]}), schema)["i"].dtype == np.int32
    with pytest.raises(ModelInputError, match="outside the integer range"):
        enforce_schema(pd.DataFrame({"i": [2**40]}), schema)


def test_booleans_and_datetimes() -> None:
    schema = Schema((ColSpec(DataType.boolean, "b"), ColSpec(DataType.datetime, "t")))
    out = enforce_schema({"b": [True], "t": ["2024-05-01"]}, schema)
    assert out["t"].dtype.kind == "M"
    with pytest.raises(ModelInputError, match="column 'b': expected boolean, got long"):
        enforce_schema({"b": [1], "t": ["2024-05-01"]}, schema)
    with pytest.raises(ModelInputError, match="not dates"):
        enforce_schema({"b": [True], "t": ["soon"]}, schema)


def test_unnamed_arrays_take_signature_names_by_position() -> None:
    schema = Schema((ColSpec(DataType.double, "a"), ColSpec(DataType.double, "b")))
    out = enforce_schema(np.array([[1.0, 2.0]]), schema)
    assert list(out.columns) == ["a", "b"]
    with pytest.raises(ModelInputError, match="3 columns but the signature names 2"):
        enforce_schema(np.array([[1.0, 2.0, 3.0]]), schema)


def test_positional_schema_checks_column_count() -> None:
    schema = Schema((ColSpec(DataType.double),))
    out = enforce_schema(np.array([1, 2, 3]), schema)
    assert out.iloc[:, 0].dtype == np.float64
    with pytest.raises(ModelInputError, match="takes 1 unnamed columns, got 2"):
        enforce_schema(np.array([[1.0, 2.0]]), schema)


def test_tensors_cast_safely_and_check_shape() -> None:
    schema = Schema((TensorSpec("float64", (-1, 2)),))
    out = enforce_schema(np.array([[1, 2]], dtype=np.int32), schema)
    assert out.dtype == np.float64
    with pytest.raises(ModelInputError, match="expected shape"):
        enforce_schema(np.zeros((2, 3)), schema)
    int_schema = Schema((TensorSpec("int64", (-1,)),))
    with pytest.raises(ModelInputError, match="expected a int64 tensor, got float64"):
        enforce_schema(np.array([1.5]), int_schema)


def test_to_dataframe_refuses_3d_arrays() -> None:
    with pytest.raises(ModelInputError, match="tabular"):
        to_dataframe(np.zeros((2, 2, 2)))
