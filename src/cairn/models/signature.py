"""Model signatures: the column names and types a model takes and returns.

Serialized exactly as MLflow does in the ``MLmodel`` file (a JSON string per side), so a
signature written by either tool reads in the other:

    signature:
      inputs: '[{"type": "double", "name": "a", "required": true}]'
      outputs: '[{"type": "long", "required": true}]'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ColSpec",
    "DataType",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "infer_schema",
    "infer_signature",
]


class DataType(StrEnum):
    """Column types of a signature, named as MLflow names them."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"

    @property
    def numpy_dtype(self) -> str:
        return _NUMPY_DTYPES[self]


_NUMPY_DTYPES: dict[DataType, str] = {
    DataType.boolean: "bool",
    DataType.integer: "int32",
    DataType.long: "int64",
    DataType.float: "float32",
    DataType.double: "float64",
    DataType.string: "object",
    DataType.binary: "object",
    DataType.datetime: "datetime64[ns]",
}


@dataclass(frozen=True)
class ColSpec:
    """One named (or positional, when ``name`` is None) column."""

    type: DataType
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass(frozen=True)
class TensorSpec:
    """A numpy array input: dtype and shape, ``-1`` for a free dimension."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)},
        }
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class Schema:
    """An ordered list of column specs, or of tensor specs (never mixed)."""

    inputs: tuple[ColSpec | TensorSpec, ...]

    def __post_init__(self) -> None:
        kinds = {type(spec) for spec in self.inputs}
        if len(kinds) > 1:
            raise ModelFormatError("a schema mixes column and tensor specs")

    @property
    def is_tensor(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    @property
    def has_names(self) -> bool:
        return bool(self.inputs) and all(spec.name is not None for spec in self.inputs)

    def names(self) -> list[str]:
        return [spec.name for spec in self.inputs if spec.name is not None]

    def to_json(self) -> str:
        return json.dumps([spec.to_dict() for spec in self.inputs])

    @classmethod
    def from_json(cls, text: str) -> Schema:
        try:
            items = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"signature is not valid JSON: {exc}") from exc
        if not isinstance(items, list):
            raise ModelFormatError("a signature schema must be a JSON list of column specs")
        return cls(tuple(_spec_from_dict(item) for item in items))


def _spec_from_dict(item: Any) -> ColSpec | TensorSpec:
    if not isinstance(item, dict) or "type" not in item:
        raise ModelFormatError(f"signature entry {item!r} has no 'type'")
    kind = item["type"]
    name = item.get("name")
    if kind == "tensor":
        spec = item.get("tensor-spec") or {}
        try:
            return TensorSpec(str(spec["dtype"]), tuple(int(d) for d in spec["shape"]), name)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"bad tensor spec {item!r}") from exc
    try:
        data_type = DataType(kind)
    except ValueError:
        known = ", ".join(t.value for t in DataType)
        raise ModelFormatError(
            f"signature column {name!r} has type {kind!r}, which Cairn does not know "
            f"(known: {known}, tensor)"
        ) from None
    return ColSpec(data_type, name, bool(item.get("required", True)))


@dataclass(frozen=True)
class ModelSignature:
    """What a model takes and returns; ``outputs`` may be unknown."""

    inputs: Schema
    outputs: Schema | None = None
    params: list[dict[str, Any]] | None = field(default=None)

    def to_dict(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {
            "inputs": self.inputs.to_json(),
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
        }
        if self.params is not None:
            out["params"] = json.dumps(self.params)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        if not isinstance(data, dict) or not data.get("inputs"):
            raise ModelFormatError("the MLmodel signature has no 'inputs'")
        outputs = data.get("outputs")
        params = data.get("params")
        return cls(
            Schema.from_json(data["inputs"]),
            Schema.from_json(outputs) if outputs else None,
            json.loads(params) if isinstance(params, str) and params else None,
        )


def _dtype_to_type(dtype: Any, values: Any = None) -> DataType | None:
    """Map a numpy/pandas dtype to a signature type; None when it cannot be represented."""
    import numpy as np

    kind = getattr(dtype, "kind", None)
    if kind == "b":
        return DataType.boolean
    if kind in ("i", "u"):
        return DataType.long if dtype.itemsize > 4 or kind == "u" else DataType.integer
    if kind == "f":
        return DataType.float if dtype.itemsize <= 4 else DataType.double
    if kind == "M":
        return DataType.datetime
    if kind in ("U", "S"):
        return DataType.string if kind == "U" else DataType.binary
    if str(dtype) in ("string", "str") or getattr(dtype, "name", "") in ("string", "str"):
        return DataType.string
    if str(dtype) == "boolean":
        return DataType.boolean
    if kind == "O" and values is not None:
        present = [v for v in values if v is not None and not _is_nan(v)]
        if present and all(isinstance(v, str) for v in present):
            return DataType.string
        if present and all(isinstance(v, bytes | bytearray) for v in present):
            return DataType.binary
        if present and all(isinstance(v, bool | np.bool_) for v in present):
            return DataType.boolean
    return None


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def infer_schema(data: Any) -> Schema:
    """A schema that describes ``data``: a DataFrame, Series, dict of columns, list or array."""
    import numpy as np
    import pandas as pd

    if isinstance(data, dict):
        data = pd.DataFrame(data)
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        data = pd.DataFrame.from_records(data)
    elif isinstance(data, list):
        data = np.asarray(data)
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else None)
        return _frame_schema(data, positional=data.columns[0] is None)
    if isinstance(data, pd.DataFrame):
        return _frame_schema(data, positional=False)
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            data_type = _dtype_to_type(data.dtype, data)
            if data_type is None:
                raise ModelFormatError(f"cannot describe arrays of dtype {data.dtype}")
            return Schema((ColSpec(data_type),))
        return Schema((TensorSpec(str(data.dtype), (-1, *data.shape[1:])),))
    if np.isscalar(data):
        return infer_schema(np.asarray([data]))
    raise ModelFormatError(
        f"cannot infer a signature from {type(data).__name__}; "
        "pass a pandas DataFrame, a dict of columns, a list or a numpy array"
    )


def _frame_schema(frame: pd.DataFrame, *, positional: bool) -> Schema:
    specs: list[ColSpec | TensorSpec] = []
    for name in frame.columns:
        column = frame[name]
        data_type = _dtype_to_type(column.dtype, column.to_numpy())
        if data_type is None:
            raise ModelFormatError(
                f"column {name!r} has dtype {column.dtype}, which a signature cannot describe"
            )
        required = not bool(column.isna().any())
        specs.append(ColSpec(data_type, None if positional else str(name), required))
    return Schema(tuple(specs))


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """Describe a model by an example of its input and, optionally, of its output."""
    outputs = infer_schema(model_output) if model_output is not None else None
    return ModelSignature(infer_schema(model_input), outputs)
