"""Check model input against a signature and convert it where that loses nothing.

Widening is allowed (int to float, int32 to int64, float64 to float32 for JSON numbers);
narrowing that changes values is not (float to int, string to number). Every offending column
is reported in one error, with the expected and received type, so a caller fixes the payload
in one go instead of one column per request.

Checks cost O(columns) for typed arrays; object columns need one C-level pass of
``pandas.api.types.infer_dtype``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.errors import ModelInputError
from cairn.models.signature import ColSpec, DataType, Schema, TensorSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["enforce_schema", "to_dataframe"]

_INT_RANGE = {DataType.integer: (-(2**31), 2**31 - 1)}
# numpy dtypes that need no check or conversion for a column of this type.
_EXACT_DTYPES = {
    DataType.double: "float64",
    DataType.float: "float32",
    DataType.long: "int64",
    DataType.integer: "int32",
    DataType.boolean: "bool",
}


def to_dataframe(data: Any, schema: Schema | None = None) -> pd.DataFrame:
    """Turn the input shapes users pass (dicts, records, arrays, Series) into a DataFrame."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, dict):
        if all(np.ndim(value) == 0 for value in data.values()):
            return pd.DataFrame([data])
        return pd.DataFrame(data)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame.from_records(data)
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1) if _width(schema) == 1 else array.reshape(1, -1)
    if array.ndim != 2:
        raise ModelInputError(f"expected tabular input, got an array of shape {array.shape}")
    columns = schema.names() if schema is not None and schema.has_names else None
    if columns is not None and len(columns) != array.shape[1]:
        raise ModelInputError(
            f"input has {array.shape[1]} columns but the signature names {len(columns)}: "
            f"{', '.join(columns)}"
        )
    return pd.DataFrame(array, columns=columns)


def _width(schema: Schema | None) -> int | None:
    return None if schema is None else len(schema.inputs)


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Return ``data`` shaped and typed as ``schema`` says, or raise ``ModelInputError``."""
    if schema.is_tensor:
        return _enforce_tensor(data, schema)
    frame = to_dataframe(data, schema)
    problems: list[str] = []
    if schema.has_names:
        frame = _select_named(frame, schema, problems)
        specs = [spec for spec in schema.inputs if spec.name in frame.columns]
    else:
        if frame.shape[1] != len(schema.inputs):
            raise ModelInputError(
                f"the model takes {len(schema.inputs)} unnamed columns, got {frame.shape[1]}"
            )
        specs = list(schema.inputs)
    converted: dict[Any, Any] = {}
    # One dtype lookup for the table instead of one Series per column: columns that already
    # have the exact type (the common case) cost nothing more.
    dtypes = list(frame.dtypes) if frame.shape[1] == len(specs) else [None] * len(specs)
    for position, spec in enumerate(specs):
        assert isinstance(spec, ColSpec)
        exact = _EXACT_DTYPES.get(spec.type)
        if exact is not None and dtypes[position] == exact:
            continue
        key = spec.name if spec.name is not None else frame.columns[position]
        column = frame[key]
        label = repr(spec.name) if spec.name is not None else f"#{position}"
        result = _convert_column(column, spec.type)
        if isinstance(result, str):
            problems.append(f"column {label}: expected {spec.type.value}, got {result}")
        elif result is not column:
            converted[key] = result
    if problems:
        raise ModelInputError(
            "the input does not match the model signature:\n  - " + "\n  - ".join(problems)
        )
    if converted:
        frame = frame.copy(deep=False)  # never change the caller's frame
        for key, column in converted.items():
            frame[key] = column
    return frame


def _select_named(frame: pd.DataFrame, schema: Schema, problems: list[str]) -> pd.DataFrame:
    import pandas as pd

    names = schema.names()
    if isinstance(frame.columns, pd.RangeIndex) and frame.shape[1] == len(names):
        # Unnamed columns of the right count (arrays, lists of lists): take them by position.
        return frame.set_axis(names, axis=1)
    present = set(frame.columns)
    for spec in schema.inputs:
        if isinstance(spec, ColSpec) and spec.name not in present and spec.required:
            problems.append(f"column {spec.name!r}: missing (expected {spec.type.value})")
    keep = [name for name in names if name in present]
    # Extra columns are dropped, as MLflow does; order follows the signature.
    return frame if keep == list(frame.columns) else frame[keep]


def _convert_column(column: pd.Series, expected: DataType) -> pd.Series | str:
    """The column converted to ``expected``, or a description of what was received."""
    import numpy as np
    import pandas as pd

    dtype = column.dtype
    kind = getattr(dtype, "kind", "O")
    if kind == "O" or isinstance(dtype, pd.StringDtype):
        return _convert_object(column, expected)
    received = _describe(dtype)
    dtype = np.dtype(dtype)  # type: ignore[arg-type]  # extension dtypes were handled above
    if expected is DataType.double:
        if kind == "f" and dtype.itemsize == 8:
            return column
        if kind in "fiu":
            return column.astype(np.float64)
        return received
    if expected is DataType.float:
        if kind == "f" and dtype.itemsize == 4:
            return column
        if kind in "fiu":
            return column.astype(np.float32)
        return received
    if expected in (DataType.long, DataType.integer):
        if kind not in "iu":
            return received
        target = np.int64 if expected is DataType.long else np.int32
        if np.dtype(dtype) == np.dtype(target):
            return column
        if np.can_cast(dtype, target, "safe"):
            return column.astype(target)
        low, high = _INT_RANGE.get(expected, (-(2**63), 2**63 - 1))
        if column.empty or (column.min() >= low and column.max() <= high):
            return column.astype(target)
        return f"{received} with values outside the {expected.value} range"
    if expected is DataType.boolean:
        return column if kind == "b" else received
    if expected is DataType.datetime:
        return column if kind == "M" else received
    return received


def _convert_object(column: pd.Series, expected: DataType) -> pd.Series | str:
    import numpy as np
    import pandas as pd

    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred == "empty":
        return column
    if expected in (DataType.string,):
        return column if inferred == "string" else _describe_inferred(inferred)
    if expected is DataType.binary:
        return column if inferred == "bytes" else _describe_inferred(inferred)
    if expected in (DataType.double, DataType.float):
        if inferred in ("floating", "integer", "mixed-integer-float", "decimal"):
            return column.astype(np.float64 if expected is DataType.double else np.float32)
        return _describe_inferred(inferred)
    if expected in (DataType.long, DataType.integer):
        if inferred == "integer":
            return _convert_column(column.astype(np.int64), expected)
        return _describe_inferred(inferred)
    if expected is DataType.boolean:
        return column.astype(bool) if inferred == "boolean" else _describe_inferred(inferred)
    if expected is DataType.datetime:
        if inferred in ("datetime", "datetime64", "date", "string"):
            try:
                return pd.to_datetime(column)
            except (ValueError, TypeError):
                return "strings that are not dates"
        return _describe_inferred(inferred)
    return _describe_inferred(inferred)


def _describe(dtype: Any) -> str:
    from cairn.models.signature import _dtype_to_type

    data_type = _dtype_to_type(dtype)
    return data_type.value if data_type is not None else str(dtype)


_INFERRED_NAMES = {
    "string": "string",
    "bytes": "binary",
    "floating": "double",
    "integer": "long",
    "mixed-integer-float": "double",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
}


def _describe_inferred(inferred: str) -> str:
    return _INFERRED_NAMES.get(inferred, f"mixed values ({inferred})")


def _enforce_tensor(data: Any, schema: Schema) -> np.ndarray[Any, Any]:
    import numpy as np
    import pandas as pd

    spec = schema.inputs[0]
    assert isinstance(spec, TensorSpec)
    array = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else np.asarray(data)
    target = np.dtype(spec.dtype)
    if array.dtype != target:
        if not np.can_cast(array.dtype, target, "same_kind") or (
            array.dtype.kind == "f" and target.kind in "iu"
        ):
            raise ModelInputError(
                f"the input does not match the model signature: expected a {spec.dtype} "
                f"tensor, got {array.dtype}"
            )
        array = array.astype(target)
    if len(array.shape) != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=False)
    ):
        shape = tuple(spec.shape)
        raise ModelInputError(
            f"the input does not match the model signature: expected shape {shape}, "
            f"got {array.shape}"
        )
    return array
