"""Response bodies: predictions and errors as JSON, encoded by orjson.

Predictions keep MLflow's shapes: arrays and lists as lists, DataFrames as records, Series as
records of a one-column table. Numeric numpy arrays are written by orjson straight from their
buffer (NaN as ``null``); other arrays go through ``tolist()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from cairn.errors import CairnError

__all__ = ["error_json", "json_bytes", "predictions_json"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def predictions_json(predictions: Any) -> bytes:
    """``{"predictions": ...}`` for whatever the model returned."""
    return orjson.dumps({"predictions": _plain(predictions)}, default=_default, option=_OPTIONS)


def json_bytes(document: Any) -> bytes:
    return orjson.dumps(document, default=_default, option=_OPTIONS)


def error_json(exc: CairnError) -> bytes:
    return orjson.dumps(exc.to_dict())


def _plain(value: Any) -> Any:
    """DataFrames and Series as records; everything else as is (orjson handles numpy)."""
    kind = type(value).__name__
    if kind == "DataFrame":
        return _records(value)
    if kind == "Series":
        return _records(value.to_frame())
    return value


def _records(frame: Any) -> list[dict[Any, Any]]:
    # ~5x faster than ``to_dict(orient="records")``: one list per column, zipped per row.
    columns = list(frame.columns)
    values = [frame[name].tolist() for name in columns] if frame.columns.is_unique else None
    if values is None:
        return list(frame.to_dict(orient="records"))
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _default(value: Any) -> Any:
    """What orjson cannot write itself."""
    if hasattr(value, "tolist"):  # numpy arrays of strings/objects, numpy scalars, pandas
        kind = type(value).__name__
        if kind in ("DataFrame", "Series"):
            return _plain(value)
        return value.tolist()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
