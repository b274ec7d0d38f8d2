"""Warm-up: score one request before the server answers, so no request pays first-call costs.

The first prediction imports modules lazily, fills caches and starts the worker thread; done
at start-up through the same path requests take, the first real request is as fast as later
ones. The app sends the same request through its HTTP handler again on the server's own event
loop before the server accepts connections, so the asynchronous path is warm too. The request
is the model's saved serving example, else one row built from its signature, else there is
nothing to score and only the path's imports are warm.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from cairn.errors import CairnError
from cairn.models.serving.payloads import decode_json
from cairn.models.serving.scorer import Job
from cairn.models.signature import ColSpec, DataType, TensorSpec

if TYPE_CHECKING:
    from cairn.models.pyfunc import PyFuncModel
    from cairn.models.serving.scorer import Scorer
    from cairn.models.signature import Schema

__all__ = ["warm_up", "warm_up_body"]

_log = logging.getLogger("cairn.models.serving")

_SAMPLE_VALUES: dict[DataType, Any] = {
    DataType.boolean: False,
    DataType.integer: 0,
    DataType.long: 0,
    DataType.float: 0.0,
    DataType.double: 0.0,
    DataType.string: "",
    DataType.binary: "",
    DataType.datetime: "2000-01-01T00:00:00",
}


def warm_up_body(model: PyFuncModel) -> bytes | None:
    """A ``/invocations`` JSON body for this model, or None when nothing says what it takes."""
    info = model.metadata.saved_input_example_info or {}
    for key, wrap in (("serving_input_path", None), ("artifact_path", info.get("type"))):
        name = info.get(key)
        if not name:
            continue
        try:
            text = (model.path / str(name)).read_bytes()
            document = orjson.loads(text)
        except (OSError, orjson.JSONDecodeError):
            continue
        if wrap is None:
            return text
        if wrap == "dataframe":
            return orjson.dumps({"dataframe_split": document})
        if wrap == "ndarray":
            return orjson.dumps(document if isinstance(document, dict) else {"inputs": document})
    schema = model.input_schema
    return None if schema is None else orjson.dumps(_sample_request(schema))


def _sample_request(schema: Schema) -> dict[str, Any]:
    if schema.is_tensor:
        spec = schema.inputs[0]
        assert isinstance(spec, TensorSpec)
        return {"inputs": _zeros([1 if dim == -1 else dim for dim in spec.shape], spec.dtype)}
    row = [_SAMPLE_VALUES[spec.type] for spec in schema.inputs if isinstance(spec, ColSpec)]
    if schema.has_names:
        return {"dataframe_split": {"columns": schema.names(), "data": [row]}}
    return {"inputs": [row]}


def _zeros(shape: list[int], dtype: str) -> Any:
    zero: Any = 0.0 if "float" in dtype else False if dtype == "bool" else 0
    value: Any = zero
    for dim in reversed(shape):
        value = [value] * dim
    return value


def warm_up(scorer: Scorer) -> bytes | None:
    """Score the warm-up request twice on the worker thread; the body, or None if none or failed."""
    body = warm_up_body(scorer.model)
    if body is None:
        _log.warning(
            "the model has no input example and no signature: nothing to warm up with, "
            "so the first request may be slower than later ones"
        )
        return None
    try:
        for _ in range(2):  # the second call meets caches the first one filled
            scorer.run_now(Job(learn=False, payload=decode_json(body)))
    except CairnError as exc:
        _log.warning("warm-up request failed (the server still starts): %s", exc.message)
        return None
    return body
