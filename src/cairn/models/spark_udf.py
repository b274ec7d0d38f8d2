"""Score Spark DataFrames with any pyfunc model through an Arrow pandas UDF.

The driver reads ``MLmodel`` (never the model itself) and gets the folder to the executors: a
local path when they share the driver's filesystem (``local[*]`` masters), else a tar archive
shipped with ``SparkContext.addFile``. Each Python worker loads the model once, on its first
batch, and keeps it in ``_MODELS`` for every later batch, task and query on that worker.

Per batch the worker does only what the model needs: the argument Series become one DataFrame
named after the signature (same-typed numeric columns as one 2-D block, which estimators read
without another copy), ``PyFuncModel.predict`` checks it against the signature, and the
predictions go back as they are, for Arrow to convert in one call.

pyspark is imported inside functions only, so importing this module needs no Spark.
"""

from __future__ import annotations

import functools
import os
import shutil
import tarfile
import tempfile
import typing
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cairn.errors import InvalidParameterError, ModelFormatError, ModelInputError
from cairn.models.mlmodel import PYFUNC_FLAVOR, Model

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cairn.models.pyfunc import PyFuncModel

__all__ = ["spark_udf"]

# Spark types a result (or its array elements, or its struct fields) may have.
_PRIMITIVES = ("double", "float", "long", "integer", "string", "boolean")
# At most this many models stay loaded in one Python worker; the oldest is dropped first.
_MAX_MODELS = 4
_MODELS: dict[str, PyFuncModel] = {}


@dataclass(frozen=True)
class _Output:
    """How predictions become the UDF's result: a scalar, array or struct column."""

    kind: str  # "scalar" | "array" | "struct"
    element: str = ""  # Spark type name of the scalar or of the array elements
    fields: tuple[tuple[str, _Output], ...] = ()


@dataclass(frozen=True)
class _Plan:
    """Everything a Python worker needs to score batches; pickled into the UDF."""

    key: str  # identifies the model in ``_MODELS``
    uri: str  # as the user gave it, for messages
    path: str | None  # the model folder, when executors share the driver's filesystem
    archive: str | None  # else the ``SparkFiles`` name of its tar archive
    names: tuple[str, ...] | None  # signature input names; None: pass columns by position
    output: _Output
    params: dict[str, Any] | None


def spark_udf(
    spark: Any,
    model_uri: str | os.PathLike[str],
    result_type: Any = "double",
    env_manager: str | None = "local",
    params: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """A Spark UDF that scores rows with the model at ``model_uri``.

    Call it with column names or ``Column`` objects (``udf("a", "b")``, mapped by position
    onto the signature's inputs), with one ``struct(...)`` column (fields matched by name), or
    with no arguments to use the columns the signature names.

    Args:
        spark: the active ``SparkSession``.
        model_uri: a model folder or any model URI (``runs:/``, ``models:/``, ...).
        result_type: a Spark ``DataType`` or DDL string: ``double``, ``float``, ``long``,
            ``int``, ``string``, ``boolean``, ``array<...>`` of those (one value per model
            output), or ``struct<name: type, ...>`` (one field per output column).
        env_manager: only ``"local"``: executors score in their own Python environment.
        params: passed to the model's ``predict`` with every batch.
    """
    from pyspark.sql.pandas.functions import pandas_udf

    from cairn.models.uri import download_model, model_folder

    if env_manager not in (None, "local"):
        raise InvalidParameterError(
            f"env_manager={env_manager!r} is not supported: spark_udf scores in the executors' "
            "own Python environment (env_manager='local'); install the model's requirements "
            "(requirements.txt in the model folder) on the cluster"
        )
    local = _shares_filesystem(spark)
    data_type = _parse_result_type(result_type)
    output = _output_for(data_type)
    folder = model_folder(download_model(model_uri)).resolve()
    metadata = Model.load(folder)
    if PYFUNC_FLAVOR not in metadata.flavors:
        have = ", ".join(sorted(metadata.flavors))
        raise ModelFormatError(
            f"the model at {os.fspath(model_uri)} has no python_function flavor (it has: {have})"
        )
    inputs = metadata.signature.inputs if metadata.signature is not None else None
    names = tuple(inputs.names()) if inputs is not None and inputs.has_names else None
    stamp = (folder / "MLmodel").stat().st_mtime_ns
    if local:
        path, archive = str(folder), None
        key = f"{metadata.model_uuid}:{folder}:{stamp}"
    else:
        path, archive = None, _ship(spark, folder)
        key = f"{metadata.model_uuid}:{archive}"
    plan = _Plan(key, os.fspath(model_uri), path, archive, names, output, params)

    def predict(batches: Iterator[Any]) -> Iterator[Any]:
        return _score(batches, plan)

    # pyspark picks the UDF kind from type hints it evaluates, in the typing module's
    # spelling; this module's annotations are strings (PEP 563).
    argument = typing.Union[pd.Series, pd.DataFrame]  # noqa: UP007
    predict.__annotations__ = {
        "batches": typing.Iterator[typing.Tuple[argument, ...]],  # noqa: UP006
        "return": typing.Iterator[pd.DataFrame]
        if output.kind == "struct"
        else typing.Iterator[pd.Series],
    }
    udf = pandas_udf(predict, data_type)  # type: ignore[call-overload]

    @functools.wraps(udf)
    def call(*columns: Any) -> Any:
        if not columns:
            if names is None:
                raise InvalidParameterError(
                    "the model's signature names no input columns: pass the columns to score, "
                    "as in udf('a', 'b') or udf(struct('a', 'b'))"
                )
            columns = names
        elif len(columns) > 1 and names is not None and len(columns) > len(names):
            raise InvalidParameterError(
                f"the UDF got {len(columns)} columns but the model takes {len(names)}: "
                f"{', '.join(names)}"
            )
        return udf(*columns)

    return call


def _shares_filesystem(spark: Any) -> bool:
    """True when executors run on this machine (``local``/``local-cluster`` masters)."""
    try:
        master = str(spark.sparkContext.master)
    except Exception as exc:  # Spark Connect sessions have no SparkContext
        raise InvalidParameterError(
            f"spark_udf needs a classic SparkSession; this one has no SparkContext ({exc})"
        ) from exc
    return master.startswith("local")


def _ship(spark: Any, folder: Path) -> str:
    """Archive the model folder and add it to the job's files; returns the file name.

    The archive stays where it is written: executors fetch it from the driver while the
    application runs.
    """
    name = f"cairn-model-{uuid.uuid4().hex}.tar"
    staging = Path(tempfile.mkdtemp(prefix="cairn-spark-udf-"))
    archive = staging / name
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=".")
    spark.sparkContext.addFile(str(archive))
    return name


def _parse_result_type(result_type: Any) -> Any:
    from pyspark.sql.types import DataType

    if isinstance(result_type, DataType):
        return result_type
    if not isinstance(result_type, str):
        raise InvalidParameterError(
            "result_type must be a Spark DataType or a DDL string, "
            f"got {type(result_type).__name__}"
        )
    try:
        return DataType.fromDDL(result_type)
    except Exception as exc:
        raise InvalidParameterError(f"result_type {result_type!r} does not parse: {exc}") from exc


def _output_for(data_type: Any, nested: bool = False) -> _Output:
    from pyspark.sql.types import ArrayType, StructType

    name = data_type.typeName()
    if name in _PRIMITIVES:
        return _Output("scalar", name)
    if isinstance(data_type, ArrayType) and data_type.elementType.typeName() in _PRIMITIVES:
        return _Output("array", data_type.elementType.typeName())
    if isinstance(data_type, StructType) and not nested and data_type.fields:
        fields = tuple((f.name, _output_for(f.dataType, nested=True)) for f in data_type.fields)
        return _Output("struct", fields=fields)
    supported = ", ".join(("int" if t == "integer" else t) for t in _PRIMITIVES)
    raise InvalidParameterError(
        f"result_type {data_type.simpleString()} is not supported; use one of {supported}, "
        "an array<...> of one of them, or a struct<...> of those"
    )


# -- in the Python worker ---------------------------------------------------------------------


def _score(batches: Iterator[Any], plan: _Plan) -> Iterator[Any]:
    """Predictions for each batch of argument columns, with the model loaded once per worker."""
    model = _MODELS.get(plan.key)
    if model is None:
        model = _load(plan)
    for batch in batches:
        frame = _input_frame(batch, plan.names)
        try:
            predictions = model.predict(frame, plan.params) if len(frame) else None
        except ModelInputError as exc:
            mapping = (
                f" (UDF columns map by position onto the signature's {', '.join(plan.names)})"
                if plan.names is not None and not isinstance(batch, pd.DataFrame)
                else ""
            )
            raise ModelInputError(
                f"spark_udf({plan.uri}): a batch of {len(frame)} rows does not fit the "
                f"model{mapping}: {exc.message}"
            ) from None
        yield _to_output(predictions, plan.output)


def _load(plan: _Plan) -> PyFuncModel:
    from cairn.models.pyfunc import load_model

    folder = plan.path if plan.path is not None else _unpack(plan.archive or "")
    model = load_model(folder)
    while len(_MODELS) >= _MAX_MODELS:
        del _MODELS[next(iter(_MODELS))]
    _MODELS[plan.key] = model
    return model


def _unpack(name: str) -> str:
    """The shipped archive extracted once per machine under the temp folder."""
    from pyspark import SparkFiles

    target = Path(tempfile.gettempdir(), "cairn-spark-models", name.removesuffix(".tar"))
    if target.is_dir():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    with tarfile.open(SparkFiles.get(name)) as tar:
        tar.extractall(staging, filter="data")
    try:
        staging.rename(target)
    except OSError:  # another worker on this machine unpacked it first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def _input_frame(batch: Any, names: tuple[str, ...] | None) -> pd.DataFrame:
    """One DataFrame of the UDF's arguments, named as the signature names its inputs."""
    if isinstance(batch, pd.DataFrame):  # one struct column: its fields carry the names
        return batch
    columns: tuple[pd.Series, ...] = (batch,) if isinstance(batch, pd.Series) else tuple(batch)
    labels: Any = list(names[: len(columns)]) if names is not None else None
    dtype = columns[0].dtype
    if (
        isinstance(dtype, np.dtype)
        and dtype.kind in "fiub"
        and all(c.dtype == dtype for c in columns)
    ):
        # Same-typed numeric features: one 2-D block, the layout estimators read without a
        # copy; a frame built from a dict of Series costs 2-3x more and is copied again later.
        block = np.empty((len(columns[0]), len(columns)), dtype=dtype, order="F")
        for position, column in enumerate(columns):
            block[:, position] = column.to_numpy()
        return pd.DataFrame(block, columns=labels, copy=False)
    if labels is None:  # no names to give: positional columns, as for an unnamed signature
        return pd.concat(columns, axis=1, ignore_index=True)
    return pd.DataFrame(dict(zip(labels, columns, strict=False)))


def _to_output(predictions: Any, output: _Output) -> Any:
    """Predictions as the pandas object pyspark turns into the result column.

    Numbers keep their dtype: Arrow casts them to the result type and refuses lossy casts
    (2.5 into a long, overflows), so only text results are converted here.
    """
    if predictions is None:  # an empty batch
        if output.kind == "struct":
            return pd.DataFrame({name: pd.Series([], dtype=object) for name, _ in output.fields})
        return pd.Series([], dtype=object)
    if output.kind == "struct":
        return _to_struct(predictions, output)
    if output.kind == "scalar":
        column = _single_column(predictions, output)
        if output.element == "string" and not _is_text(column):
            return column.astype(str)
        return column
    values = np.asarray(
        predictions.to_numpy() if isinstance(predictions, pd.DataFrame | pd.Series) else predictions
    )
    if values.dtype == object and values.ndim == 1:  # already one sequence per row
        return pd.Series(values)
    if values.ndim == 1:  # one value per row: one-element arrays
        values = values.reshape(-1, 1)
    if values.ndim != 2:
        raise InvalidParameterError(
            f"the model returns predictions of shape {values.shape}; array result types need "
            "one row of values per input row"
        )
    if output.element == "string" and values.dtype.kind not in "OUS":
        values = values.astype(str)
    return pd.Series(list(values))


def _single_column(predictions: Any, output: _Output) -> pd.Series:
    if isinstance(predictions, pd.Series):
        return predictions
    if isinstance(predictions, pd.DataFrame):
        width = predictions.shape[1]
        values = predictions.iloc[:, 0] if width == 1 else None
    else:
        array = np.asarray(predictions)
        width = array.shape[1] if array.ndim == 2 else 1
        values = None if array.ndim > 2 or width != 1 else pd.Series(array.reshape(-1))
    if values is None:
        raise InvalidParameterError(
            f"the model returns {width} values per row; ask for them all with "
            f"result_type='array<{output.element}>' or a struct<...>"
        )
    return values


def _to_struct(predictions: Any, output: _Output) -> pd.DataFrame:
    names = [name for name, _ in output.fields]
    if isinstance(predictions, dict):
        predictions = pd.DataFrame(predictions)
    elif not isinstance(predictions, pd.DataFrame):
        array = np.asarray(predictions)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise InvalidParameterError(
                f"the model returns predictions of shape {array.shape}; struct result types "
                f"need {len(names)} columns per row ({', '.join(names)})"
            )
        predictions = pd.DataFrame(array, columns=names)
    missing = [name for name in names if name not in predictions.columns]
    if missing:
        raise InvalidParameterError(
            f"the model's output has no column {', '.join(map(repr, missing))} named in "
            f"result_type; it has {', '.join(map(str, predictions.columns))}"
        )
    frame: pd.DataFrame = predictions[names]
    converted = {
        name: _to_output(frame[name].to_numpy(), spec).to_numpy()
        for name, spec in output.fields
        if spec.kind == "array" or (spec.element == "string" and not _is_text(frame[name]))
    }
    return frame.assign(**converted) if converted else frame


def _is_text(column: pd.Series) -> bool:
    return bool(pd.api.types.is_string_dtype(column.dtype))
