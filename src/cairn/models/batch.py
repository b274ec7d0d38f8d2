"""Batch scoring: a model's predictions for every row of a file, a chunk of rows at a time.

The input streams through in chunks of ``chunk_size`` rows: each chunk is checked against the
model's signature, scored and appended to the output, so files larger than memory score in
constant memory. Signature columns are parsed as the signature's types (a value that does not
fit is reported with its line), other columns are skipped unless ``keep_columns`` copies them
into the output. The output appears under its name only once every row is scored.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.errors import CairnError, InvalidParameterError, ModelInputError
from cairn.models.pyfunc import PyFuncModel
from cairn.models.signature import ColSpec, DataType
from cairn.models.table_io import BLOCK_BYTES, TableReader, TableWriter, file_spec, rechunk

if TYPE_CHECKING:
    import os
    from collections.abc import Callable

    import pyarrow as pa

    from cairn.models.signature import Schema

__all__ = ["DEFAULT_CHUNK_ROWS", "Progress", "predict_file"]

DEFAULT_CHUNK_ROWS = 50_000
PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True)
class Progress:
    """How far scoring has got: reported once before the model loads, then after each chunk."""

    chunks: int
    rows: int
    bytes_read: int
    total_bytes: int | None  # None when reading stdin


def predict_file(
    model_uri: str | os.PathLike[str] | PyFuncModel,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_ROWS,
    keep_columns: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    block_size: int = BLOCK_BYTES,
) -> int:
    """Score every row of ``input_path`` and write the predictions; returns the rows written.

    Args:
        model_uri: a model URI (folder, ``runs:/``, ``models:/``) or a loaded ``PyFuncModel``.
        input_path: a CSV, Parquet or JSON-lines file (``.gz``, ``.bz2`` and ``.zst`` work for
            CSV and JSON lines), or ``-`` for stdin.
        output_path: where predictions go, in the format its extension names; ``-`` for stdout.
        input_format, output_format: ``csv``, ``parquet`` or ``jsonl``, overriding extensions
            (``-`` is CSV unless told otherwise).
        chunk_size: rows scored at a time; memory grows with it.
        keep_columns: copy every input column into the output, before the predictions.
        on_progress: called once the input is open (``chunks == 0``), then after each chunk.
        block_size: bytes parsed at a time from CSV and JSON lines.

    The output has one row per input row: a ``prediction`` column, or one column per output
    for models with several (named after the output signature, else ``prediction_0``, ...).
    Raises ``ModelInputError`` for input that cannot be parsed or does not fit the signature,
    naming the line or rows; the output file is then not created.
    """
    if chunk_size < 1:
        raise InvalidParameterError(f"chunk_size must be at least 1, got {chunk_size}")
    source = file_spec(input_path, input_format, stream="stdin")
    target = file_spec(output_path, output_format, stream="stdout")
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(TableReader(source, block_size=block_size))
        if on_progress is not None:
            on_progress(Progress(0, 0, 0, reader.total_bytes))  # the model loads next
        model = model_uri if isinstance(model_uri, PyFuncModel) else _load(model_uri)
        schema = model.input_schema
        select, types = _read_plan(schema, keep_columns)
        output_names = _output_names(model)
        rows = 0
        writer = stack.enter_context(TableWriter(target))
        batches = reader.batches(select, types, parquet_rows=min(chunk_size, 65_536))
        for chunks, chunk in enumerate(rechunk(batches, chunk_size), start=1):
            if chunks == 1 and reader.columns is None and schema is not None:
                _check_present(chunk, schema, source.name)
            predictions = _score(model, chunk, schema, keep_columns, source.name, rows)
            table = _predictions_table(predictions, chunk.num_rows, output_names, model)
            if keep_columns:
                table = _beside(chunk, table)
            writer.write(table)
            rows += chunk.num_rows
            if on_progress is not None:
                on_progress(Progress(chunks, rows, reader.bytes_read, reader.total_bytes))
        if rows == 0:
            raise ModelInputError(f"{source.name} holds no rows to score")
        writer.commit()
    return rows


def _load(model_uri: str | os.PathLike[str]) -> PyFuncModel:
    from cairn.models.pyfunc import load_model

    return load_model(model_uri)


def _arrow_type(data_type: DataType) -> Any:
    """The Arrow type that parses a column of ``data_type``; None to let pyarrow infer it."""
    import pyarrow as pa

    return {
        DataType.boolean: pa.bool_(),
        DataType.integer: pa.int32(),
        DataType.long: pa.int64(),
        DataType.float: pa.float32(),
        DataType.double: pa.float64(),
        DataType.string: pa.string(),
        DataType.datetime: pa.timestamp("ns"),
    }.get(data_type)


def _read_plan(
    schema: Schema | None, keep_columns: bool
) -> tuple[list[str] | None, dict[str, Any]]:
    """Which columns to read (None: all) and the types to parse the signature's columns as."""
    if schema is None or not schema.has_names or schema.is_tensor:
        return None, {}
    types = {}
    for spec in schema.inputs:
        assert isinstance(spec, ColSpec) and spec.name is not None
        arrow_type = _arrow_type(spec.type)
        if arrow_type is not None:
            types[spec.name] = arrow_type
    return (None if keep_columns else schema.names()), types


def _check_present(chunk: pa.Table, schema: Schema, name: str) -> None:
    """JSON lines has no header: a required column null in every row of the first chunk is
    taken as missing, as a CSV without it would be."""
    missing = [
        spec
        for spec in schema.inputs
        if isinstance(spec, ColSpec)
        and spec.required
        and spec.name is not None
        and (
            spec.name not in chunk.column_names
            or chunk.column(spec.name).null_count == chunk.num_rows
        )
    ]
    if missing:
        problems = "; ".join(
            f"column {spec.name!r}: missing (expected {spec.type.value})" for spec in missing
        )
        raise ModelInputError(f"{name}: the input does not match the model signature: {problems}")


def _score(
    model: PyFuncModel,
    chunk: pa.Table,
    schema: Schema | None,
    keep_columns: bool,
    name: str,
    done: int,
) -> Any:
    if keep_columns and schema is not None and schema.has_names and not schema.is_tensor:
        wanted = set(schema.names())
        chunk = chunk.select([c for c in chunk.column_names if c in wanted])
    frame = chunk.to_pandas()
    where = f"{name}, rows {done + 1:,}-{done + chunk.num_rows:,}"
    try:
        return model.predict(frame)
    except ModelInputError as exc:
        raise ModelInputError(f"{where}: {_one_line(exc.message)}") from exc
    except CairnError:
        raise
    except Exception as exc:
        # The model's own failure (a bug, or data it cannot handle): one line, cause attached.
        raise CairnError(f"{where}: the model failed: {type(exc).__name__}: {exc}") from exc


def _one_line(message: str) -> str:
    """A multi-line enforcement message (a list of problems) on one line."""
    head, _, rest = message.partition(":\n")
    if not rest:
        return " ".join(message.split())
    items = [line.strip().removeprefix("- ") for line in rest.splitlines() if line.strip()]
    return f"{head}: {'; '.join(items)}"


def _output_names(model: PyFuncModel) -> list[str] | None:
    signature = model.signature
    outputs = signature.outputs if signature is not None else None
    if outputs is None or not outputs.has_names or outputs.is_tensor:
        return None
    return outputs.names()


def _predictions_table(
    predictions: Any, rows: int, names: list[str] | None, model: PyFuncModel
) -> pa.Table:
    """The model's output for one chunk as a table: one column, or one per output."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    try:
        if isinstance(predictions, pd.DataFrame):
            frame = predictions.set_axis([str(c) for c in predictions.columns], axis=1)
            table = pa.Table.from_pandas(frame, preserve_index=False)
        elif isinstance(predictions, pd.Series):
            table = pa.table({PREDICTION_COLUMN: pa.Array.from_pandas(predictions)})
        elif isinstance(predictions, dict):
            table = pa.table({str(k): np.asarray(v) for k, v in predictions.items()})
        else:
            table = _array_table(np.asarray(predictions), names, model)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise CairnError(
            f"the predictions of {model!r} cannot be written to a table: {exc}"
        ) from exc
    if table.num_rows != rows:
        raise CairnError(f"the model returned {table.num_rows:,} predictions for {rows:,} rows")
    return table


def _array_table(array: Any, names: list[str] | None, model: PyFuncModel) -> pa.Table:
    import pyarrow as pa

    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 1:
        name = names[0] if names is not None and len(names) == 1 else PREDICTION_COLUMN
        return pa.table({name: array})
    if array.ndim == 2:
        width = array.shape[1]
        if names is None or len(names) != width:
            names = [f"{PREDICTION_COLUMN}_{i}" for i in range(width)]
        return pa.table({name: array[:, i] for i, name in enumerate(names)})
    raise CairnError(
        f"the model returns predictions of shape {array.shape}; a file takes one row of "
        "values per input row"
    )


def _beside(chunk: pa.Table, predictions: pa.Table) -> pa.Table:
    """The input columns, then the prediction columns."""
    import pyarrow as pa

    taken = set(chunk.column_names) & set(predictions.column_names)
    if taken:
        raise InvalidParameterError(
            f"the input already has a column named {sorted(taken)[0]!r}, which the predictions "
            "would take; rename it, or score without --keep-columns"
        )
    return pa.Table.from_arrays(
        [*chunk.columns, *predictions.columns],
        names=[*chunk.column_names, *predictions.column_names],
    )
