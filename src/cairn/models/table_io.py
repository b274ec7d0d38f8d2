"""Tables in files, read and written a chunk at a time: CSV, Parquet and JSON lines.

pyarrow parses and writes; this module is where its errors become Cairn's, naming the file and,
where the parser knows it, the line. Readers stream: CSV and JSON lines are parsed in blocks of
``block_size`` bytes (pyarrow reads at most 32 blocks ahead), Parquet a row group at a time, so
memory does not grow with the file. Writers write to a hidden file beside the target and rename
it into place on ``commit``, so a failed run never leaves a half-written output behind.

pyarrow is imported inside functions: ``FORMATS`` and ``file_spec`` cost nothing to import.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cairn.errors import InvalidParameterError, ModelInputError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from types import TracebackType

    import pyarrow as pa

__all__ = [
    "BLOCK_BYTES",
    "FORMATS",
    "STDIO",
    "FileSpec",
    "TableReader",
    "TableWriter",
    "file_spec",
    "rechunk",
]

FORMATS = ("csv", "parquet", "jsonl")
STDIO = "-"
BLOCK_BYTES = 1 << 20
_HEAD_BYTES = 1 << 20  # how much of a CSV file is read ahead of time to find its header
_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
# Arrow type names in the words of model signatures, for error messages.
_TYPE_WORDS = {
    "int32": "integer",
    "int64": "long",
    "bool": "boolean",
    "timestamp[ns]": "datetime",
    "timestamp[s]": "datetime",
}
_CSV_ROW_ERROR = re.compile(r"^CSV parse error: Row #(\d+): (.*)$", re.DOTALL)
_CSV_VALUE_ERROR = re.compile(
    r"^In CSV column #(\d+): Row #(\d+): CSV conversion error to (.+?): invalid value '(.*)'$",
    re.DOTALL,
)
_JSON_ERROR = re.compile(r"^JSON parse error: (.*) in row (\d+)$", re.DOTALL)
_JSON_COLUMN = re.compile(r"Column\(/(.*?)\)")


@dataclass(frozen=True)
class FileSpec:
    """A file to read or write: its path (``-`` for stdin/stdout), format and compression."""

    path: str
    format: str
    compression: str | None = None
    stream: str = "stdin"

    @property
    def is_stdio(self) -> bool:
        return self.path == STDIO

    @property
    def name(self) -> str:
        """How messages name the file."""
        return self.stream if self.is_stdio else self.path


def file_spec(
    path: str | os.PathLike[str], explicit_format: str | None = None, *, stream: str = "stdin"
) -> FileSpec:
    """Where ``path`` is and what it holds: ``explicit_format``, else its extension.

    ``-`` stands for ``stream`` (stdin or stdout), which is CSV unless told otherwise.
    """
    text = os.fspath(path)
    if explicit_format is not None and explicit_format not in FORMATS:
        raise InvalidParameterError(
            f"unknown format {explicit_format!r}; use one of {', '.join(FORMATS)}"
        )
    if text == STDIO:
        return FileSpec(text, explicit_format or "csv", None, stream)
    suffixes = [s.lower() for s in Path(text).suffixes]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression is not None:
        suffixes.pop()
    found = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    fmt = explicit_format or found
    if fmt is None:
        raise InvalidParameterError(
            f"cannot tell the format of {text} from its extension; name it .csv, .parquet or "
            f".jsonl, or say --{'input' if stream == 'stdin' else 'output'}-format "
            f"{'|'.join(FORMATS)}"
        )
    if compression is not None and fmt == "parquet":
        raise InvalidParameterError(
            f"{text}: Parquet files compress their pages themselves; drop the "
            f"{suffixes[-1] if suffixes else ''} suffix"
        )
    return FileSpec(text, fmt, compression, stream)


# -- reading ----------------------------------------------------------------------------------


class _StdinSource(io.RawIOBase):
    """Standard input that counts the bytes handed out and can show its start ahead of time."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._head = b""
        self.count = 0

    def readable(self) -> bool:
        return True

    def head(self, size: int) -> bytes:
        while len(self._head) < size:
            data = self._raw.read(size - len(self._head))
            if not data:
                break
            self._head += data
        return self._head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            take = len(self._head) if size < 0 else min(size, len(self._head))
            data, self._head = self._head[:take], self._head[take:]
        else:
            data = self._raw.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class TableReader:
    """The record batches of one input file, and how far reading has got.

    Opening checks the file is there and readable; ``batches`` parses it. ``columns`` is the
    header (CSV) or schema (Parquet) once known, None for JSON lines, which has neither.
    """

    def __init__(self, spec: FileSpec, *, block_size: int = BLOCK_BYTES) -> None:
        self.spec = spec
        self.block_size = block_size
        self.columns: list[str] | None = None
        self.rows_read = 0
        self.total_bytes: int | None = None
        self._file: Any = None  # the native file whose position is the progress
        self._stdin: _StdinSource | None = None
        self._readers: list[Any] = []
        self._parquet_rows = 0
        self._open()

    def _open(self) -> None:
        import pyarrow as pa

        spec = self.spec
        if spec.is_stdio:
            if spec.format == "parquet":
                raise InvalidParameterError(
                    "Parquet cannot be read from stdin (its index is at the end of the file); "
                    "save it to a file first"
                )
            self._stdin = _StdinSource(sys.stdin.buffer)
            return
        try:
            stat = os.stat(spec.path)
        except FileNotFoundError:
            raise NotFoundError(f"no such file: {spec.path}") from None
        except OSError as exc:
            raise InvalidParameterError(f"cannot read {spec.path}: {exc.strerror}") from exc
        if os.path.isdir(spec.path):
            raise InvalidParameterError(f"{spec.path} is a folder, not a file")
        if stat.st_size == 0:
            raise ModelInputError(f"{spec.path} is empty")
        self.total_bytes = stat.st_size
        try:
            self._file = pa.OSFile(spec.path, mode="r")
        except OSError as exc:
            raise InvalidParameterError(f"cannot read {spec.path}: {_reason(exc)}") from exc

    @property
    def bytes_read(self) -> int:
        """Bytes of the (possibly compressed) file read so far, read-ahead included."""
        if self._stdin is not None:
            return self._stdin.count
        if self._file is None or self._file.closed:
            return self.total_bytes or 0
        if self.spec.format == "parquet":
            # Parquet reads column chunks out of order: estimate from the rows read.
            share = self.rows_read / self._parquet_rows if self._parquet_rows else 0.0
            return int((self.total_bytes or 0) * share)
        position: int = self._file.tell()
        return position

    def batches(
        self,
        select: Sequence[str] | None = None,
        types: Mapping[str, pa.DataType] | None = None,
        parquet_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """The file's rows in record batches.

        Args:
            select: read only these columns (those the file has); None reads every column.
            types: parse these columns as these types instead of inferring them from the
                first block, so a value that does not fit is reported where it stands.
            parquet_rows: rows per batch read from Parquet (CSV and JSON lines go by blocks).
        """
        import pyarrow as pa

        types = dict(types or {})
        try:
            if self.spec.format == "csv":
                batches = self._csv(select, types)
            elif self.spec.format == "jsonl":
                batches = self._jsonl(select, types)
            else:
                batches = self._parquet(select, parquet_rows)
            for batch in batches:
                self.rows_read += batch.num_rows
                yield batch
        except pa.ArrowInvalid as exc:
            raise ModelInputError(self._explain(str(exc), types)) from exc
        except (pa.ArrowException, OSError) as exc:
            raise InvalidParameterError(f"cannot read {self.spec.name}: {_reason(exc)}") from exc

    def _source(self) -> Any:
        import pyarrow as pa

        if self._stdin is not None:
            return pa.PythonFile(self._stdin, mode="r")
        if self.spec.compression is not None:
            return pa.CompressedInputStream(self._file, self.spec.compression)
        return self._file

    def _head(self) -> bytes:
        """The first bytes of the (decompressed) file, without consuming them."""
        import pyarrow as pa

        if self._stdin is not None:
            return self._stdin.head(_HEAD_BYTES)
        with pa.input_stream(self.spec.path, compression=self.spec.compression) as stream:
            head: bytes = stream.read(_HEAD_BYTES)
        return head

    def _csv(self, select: Sequence[str] | None, types: dict[str, Any]) -> Iterator[Any]:
        import pyarrow.csv as pcsv

        head = self._head()
        if not head.strip():
            raise ModelInputError(f"{self.spec.name} is empty")
        self.columns = _csv_header(head)
        include: list[str] = []
        if select is not None and self.columns is not None:
            present = set(self.columns)
            include = [name for name in select if name in present]
        reader = pcsv.open_csv(
            self._source(),
            # One thread: the parser then reports the line of a bad row or value.
            read_options=pcsv.ReadOptions(block_size=self.block_size, use_threads=False),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                include_columns=include,
                strings_can_be_null=True,  # empty cells are missing values, as pandas reads them
            ),
        )
        yield from self._drain(reader)

    def _jsonl(self, select: Sequence[str] | None, types: dict[str, Any]) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.json as pjson

        if self._stdin is not None and not self._stdin.head(1):
            raise ModelInputError(f"{self.spec.name} is empty")
        # Unlisted fields can only be dropped when every selected column has a type.
        drop = select is not None and all(name in types for name in select)
        reader = pjson.open_json(
            self._source(),
            read_options=pjson.ReadOptions(block_size=self.block_size),
            parse_options=pjson.ParseOptions(
                explicit_schema=pa.schema(list(types.items())) if types else None,
                unexpected_field_behavior="ignore" if drop else "infer",
            ),
        )
        yield from self._drain(reader)

    def _parquet(self, select: Sequence[str] | None, batch_rows: int) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self._file)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ModelInputError(
                f"{self.spec.name} is not a readable Parquet file: {_reason(exc)}"
            ) from exc
        self.columns = list(parquet.schema_arrow.names)
        self._parquet_rows = parquet.metadata.num_rows
        columns = None
        if select is not None:
            present = set(self.columns)
            columns = [name for name in select if name in present]
        try:
            yield from parquet.iter_batches(batch_size=batch_rows, columns=columns)
        finally:
            parquet.close()

    def _drain(self, reader: Any) -> Iterator[Any]:
        # A streaming reader left open keeps a read-ahead thread that can hang interpreter
        # exit when it reads through Python (stdin): close it however iteration ends.
        self._readers.append(reader)
        try:
            yield from reader
        finally:
            reader.close()

    def _explain(self, message: str, types: Mapping[str, Any]) -> str:
        """pyarrow's parse error as one line naming the file, line and column."""
        name = self.spec.name
        message = message.strip()
        if message in ("Empty CSV file", "Empty JSON stream"):
            return f"{name} is empty"
        match = _CSV_VALUE_ERROR.match(message)
        if match:
            index, line, arrow_type, value = match.groups()
            column = (
                self.columns[int(index)]
                if self.columns and int(index) < len(self.columns)
                else f"#{int(index) + 1}"
            )
            hint = "" if column in types else " (its type was inferred from the first rows)"
            expected = _TYPE_WORDS.get(arrow_type, arrow_type)
            return (
                f"{name}, line {line}: column {column!r}: expected {expected}, got {value!r}{hint}"
            )
        match = _CSV_ROW_ERROR.match(message)
        if match:
            line, detail = match.groups()
            return f"{name}, line {line}: {_lower_first(detail)}"
        match = _JSON_ERROR.match(message)
        if match:
            detail, row = match.groups()
            # The row counts from the start of the failing block, which follows the rows read.
            line = self.rows_read + int(row) + 1
            detail = _JSON_COLUMN.sub(lambda m: f"column {m.group(1)!r}", detail)
            return f"{name}, line {line}: {_lower_first(detail.rstrip('.'))}"
        return f"{name}: {_lower_first(message.splitlines()[0])}"

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _csv_header(head: bytes) -> list[str] | None:
    """The column names of a CSV file from its first bytes; None if the header is longer."""
    text = head.decode("utf-8-sig", errors="replace")
    if len(head) >= _HEAD_BYTES and "\n" not in text:
        return None
    try:
        return next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration):
        return None


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one may be shorter), sliced without copying."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


# -- writing ----------------------------------------------------------------------------------


class TableWriter:
    """Writes tables to one output; a file appears under its name only on ``commit``.

    Every table after the first is cast to the first one's schema (CSV and Parquet writers
    need one schema). Leaving the ``with`` block without committing removes the partial file.
    """

    def __init__(self, spec: FileSpec) -> None:
        self.spec = spec
        self.rows_written = 0
        self._schema: pa.Schema | None = None
        self._sink: Any = None
        self._writer: Any = None
        self._temp: Path | None = None
        self._done = False

    def _open_sink(self) -> Any:
        import pyarrow as pa

        if self.spec.is_stdio:
            return pa.PythonFile(sys.stdout.buffer, mode="w")
        target = Path(self.spec.path)
        if target.is_dir():
            raise InvalidParameterError(f"{target} is a folder; name the output file")
        if not target.parent.is_dir():
            raise NotFoundError(f"cannot write {target}: folder {target.parent} does not exist")
        self._temp = target.with_name(f".{target.name}.{os.urandom(4).hex()}.partial")
        try:
            sink = pa.OSFile(str(self._temp), mode="w")
        except OSError as exc:
            raise InvalidParameterError(f"cannot write {target}: {_reason(exc)}") from exc
        if self.spec.compression is not None:
            return pa.CompressedOutputStream(sink, self.spec.compression)
        return sink

    def write(self, table: pa.Table) -> None:
        import pyarrow as pa

        if self._sink is None:
            self._sink = self._open_sink()
            self._schema = table.schema
            self._writer = self._format_writer(table.schema)
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ModelInputError(
                    f"rows {self.rows_written + 1:,} on have columns {_describe(table.schema)}, "
                    f"which do not fit the earlier rows' {_describe(self._schema)}: {exc}"
                ) from exc
        try:
            if self._writer is not None:
                self._writer.write_table(table)
            else:
                self._sink.write(_jsonl(table))
        except pa.ArrowNotImplementedError as exc:
            raise InvalidParameterError(
                f"cannot write {_describe(table.schema)} as {self.spec.format}: {exc}"
            ) from exc
        except OSError as exc:
            raise InvalidParameterError(f"cannot write {self.spec.name}: {_reason(exc)}") from exc
        self.rows_written += table.num_rows

    def _format_writer(self, schema: pa.Schema) -> Any:
        import pyarrow as pa

        try:
            if self.spec.format == "csv":
                import pyarrow.csv as pcsv

                return pcsv.CSVWriter(self._sink, schema)
            if self.spec.format == "parquet":
                import pyarrow.parquet as pq

                return pq.ParquetWriter(self._sink, schema)
        except pa.ArrowNotImplementedError as exc:
            raise InvalidParameterError(
                f"cannot write {_describe(schema)} as {self.spec.format}: {exc}"
            ) from exc
        return None  # JSON lines: serialized table by table

    def commit(self) -> None:
        """Finish the file and move it into place."""
        self._close()
        if self._temp is not None:
            os.replace(self._temp, self.spec.path)
            self._temp = None
        self._done = True

    def abort(self) -> None:
        """Drop whatever was written."""
        try:
            self._close()
        finally:
            if self._temp is not None:
                self._temp.unlink(missing_ok=True)
                self._temp = None

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        sink, self._sink = self._sink, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if sink is not None:
                if self.spec.is_stdio:
                    sink.flush()  # leave stdout itself open
                else:
                    sink.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._done:
            self.abort()


def _jsonl(table: pa.Table) -> bytes:
    """``table`` as JSON lines, built column-wise by Arrow; floats keep every digit."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return b""
    fields = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        key = json.dumps(str(name)) + ":"
        fields.append(pc.binary_join_element_wise(key, _json_values(column.combine_chunks()), ""))
    body = pc.binary_join_element_wise(*fields, ",")
    lines = pc.binary_join_element_wise("{", body, "}\n", "")
    return "".join(lines.to_pylist()).encode()


def _json_values(column: Any) -> Any:
    """Each value of ``column`` as JSON text; missing and non-finite numbers become null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_large_string(kind):
        column, kind = column.cast(pa.string()), pa.string()  # one chunk stays under 2 GiB
    if pa.types.is_floating(kind):
        text = pc.if_else(pc.is_finite(column), pc.cast(column, pa.string()), "null")
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        text = pc.cast(column, pa.string())
    elif pa.types.is_string(kind):
        if pc.any(pc.match_substring_regex(column, r'["\\\x00-\x1f]')).as_py():
            text = pa.array([None if v is None else json.dumps(v) for v in column.to_pylist()])
        else:
            text = pc.binary_join_element_wise('"', column, '"', "")
    elif pa.types.is_temporal(kind):
        text = pc.binary_join_element_wise('"', pc.cast(column, pa.string()), '"', "")
    elif pa.types.is_null(kind):
        return pa.array(["null"] * len(column))
    else:
        text = pa.array(
            [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
        )
    return pc.fill_null(text, "null")


def _describe(schema: pa.Schema | None) -> str:
    if schema is None:
        return "()"
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in schema) + ")"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
