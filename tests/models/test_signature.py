from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cairn.errors import ModelFormatError
from cairn.models.signature import (
    ColSpec,
    DataType,
    ModelSignature,
    Schema,
    TensorSpec,
    infer_schema,
    infer_signature,
)


def test_infers_column_types_from_a_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "f64": [1.0, 2.0],
            "f32": np.array([1, 2], dtype=np.float32),
            "i64": [1, 2],
            "i32": np.array([1, 2], dtype=np.int32),
            "flag": [True, False],
            "text": ["a", "b"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "blob": [b"x", b"y"],
        }
    )
    schema = infer_schema(frame)
    assert [(s.name, s.type) for s in schema.inputs if isinstance(s, ColSpec)] == [
        ("f64", DataType.double),
        ("f32", DataType.float),
        ("i64", DataType.long),
        ("i32", DataType.integer),
        ("flag", DataType.boolean),
        ("text", DataType.string),
        ("when", DataType.datetime),
        ("blob", DataType.binary),
    ]


def test_columns_with_missing_values_are_optional() -> None:
    schema = infer_schema(pd.DataFrame({"a": [1.0, None], "b": [1.0, 2.0]}))
    assert [s.required for s in schema.inputs if isinstance(s, ColSpec)] == [False, True]


def test_dicts_records_and_arrays_are_described() -> None:
    assert infer_schema({"a": [1.0], "b": ["x"]}).names() == ["a", "b"]
    assert infer_schema([{"a": 1}, {"a": 2}]).names() == ["a"]
    tensor = infer_schema(np.zeros((5, 3), dtype=np.float32))
    assert tensor.is_tensor and tensor.inputs == (TensorSpec("float32", (-1, 3)),)
    vector = infer_schema(np.array([1.0, 2.0]))
    assert vector.inputs == (ColSpec(DataType.double),)


def test_signature_json_matches_mlflow_layout() -> None:
    signature = infer_signature(pd.DataFrame({"a": [1.0], "b": [2]}), np.array([0.5]))
    data = signature.to_dict()
    assert json.loads(data["inputs"] or "") == [
        {"type": "double", "name": "a", "required": True},
        {"type": "long", "name": "b", "required": True},
    ]
    assert json.loads(data["outputs"] or "") == [{"type": "double", "required": True}]
    assert ModelSignature.from_dict(data) == signature


def test_mlflow_written_signature_reads_back() -> None:
    from mlflow.models import infer_signature as mlflow_infer

    frame = pd.DataFrame({"a": [1.0], "b": [1], "c": ["x"]})
    theirs = mlflow_infer(frame, np.array([1.0])).to_dict()
    ours = ModelSignature.from_dict(theirs)
    assert ours.inputs.names() == ["a", "b", "c"]
    assert json.loads(ours.inputs.to_json()) == json.loads(theirs["inputs"])


def test_tensor_spec_round_trips() -> None:
    schema = Schema((TensorSpec("float64", (-1, 4)),))
    assert Schema.from_json(schema.to_json()) == schema


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "double"}', "JSON list"),
        ('[{"name": "a"}]', "has no 'type'"),
        ('[{"type": "complex", "name": "a"}]', "type 'complex'"),
        ('[{"type": "tensor", "tensor-spec": {}}]', "bad tensor spec"),
    ],
)
def test_bad_signature_json_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ModelFormatError, match=message):
        Schema.from_json(text)


def test_a_schema_cannot_mix_columns_and_tensors() -> None:
    with pytest.raises(ModelFormatError, match="mixes"):
        Schema((ColSpec(DataType.double, "a"), TensorSpec("float64", (-1,))))


def test_unsupported_inputs_name_the_type() -> None:
    with pytest.raises(ModelFormatError, match="object"):
        infer_schema(object())
