"""Batch scoring of files: formats, chunking, streaming, and every kind of bad input."""

from __future__ import annotations

import gzip
import io
import json
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cairn
import cairn.pyfunc
import cairn.sklearn
from cairn.errors import CairnError, InvalidParameterError, ModelInputError, NotFoundError
from cairn.models.batch import Progress, predict_file

if TYPE_CHECKING:
    from pathlib import Path

ROWS = 1_000
FORMATS = ("csv", "parquet", "jsonl")
SUFFIX = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl"}


def _features(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows) * 10,
            "c": rng.integers(0, 100, size=rows),
        }
    )


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _features(200, seed=1)


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory, train: pd.DataFrame) -> Path:
    target = train["a"] * 2 - train["b"] + train["c"] / 10
    model = make_pipeline(StandardScaler(), Ridge()).fit(train, target)
    path = tmp_path_factory.mktemp("models") / "regressor"
    cairn.sklearn.save_model(model, path, input_example=train[:5])
    return path


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory, train: pd.DataFrame) -> Path:
    labels = np.where(train["a"] > 0, "high", "low")
    model = LogisticRegression().fit(train, labels)
    path = tmp_path_factory.mktemp("models") / "classifier"
    cairn.sklearn.save_model(model, path, input_example=train[:5])
    return path


@pytest.fixture
def frame() -> pd.DataFrame:
    return _features(ROWS)


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    return path


def _read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        # pandas' own parser may round the last digit
        options = pcsv.ConvertOptions(strings_can_be_null=True)
        return pcsv.read_csv(path, convert_options=options).to_pandas()
    if fmt == "parquet":
        return pd.read_parquet(path)
    with open(path) as handle:
        return pd.DataFrame.from_records([json.loads(line) for line in handle])


def _expected(
    model_path: Path, frame: pd.DataFrame, chunk_size: int | None = None
) -> np.ndarray[Any, Any]:
    """``model.predict`` on the frame, in the same chunks as the file was scored: BLAS may
    round a one-row product differently from a many-row one."""
    model = cairn.pyfunc.load_model(model_path)
    step = chunk_size or len(frame)
    parts = [np.asarray(model.predict(frame[i : i + step])) for i in range(0, len(frame), step)]
    return np.concatenate(parts)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("out_fmt", FORMATS)
@pytest.mark.parametrize("in_fmt", FORMATS)
def test_each_format_in_and_out_matches_predict(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame, in_fmt: str, out_fmt: str
) -> None:
    source = _write(frame, tmp_path / f"in{SUFFIX[in_fmt]}", in_fmt)
    target = tmp_path / f"out{SUFFIX[out_fmt]}"
    assert predict_file(regressor, source, target) == ROWS
    # The model sees the file's values exactly: JSON written by pandas keeps 15 digits.
    scored = frame if in_fmt != "jsonl" else _read(source, "jsonl")
    written = _read(target, out_fmt)
    assert list(written.columns) == ["prediction"]
    np.testing.assert_array_equal(written["prediction"].to_numpy(), _expected(regressor, scored))


def test_formats_can_be_named_instead_of_implied(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    source = _write(frame, tmp_path / "features.data", "parquet")
    target = tmp_path / "scores.txt"
    predict_file(regressor, source, target, input_format="parquet", output_format="jsonl")
    np.testing.assert_array_equal(
        _read(target, "jsonl")["prediction"].to_numpy(), _expected(regressor, frame)
    )


def test_compressed_csv_in_and_json_lines_out(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    source = tmp_path / "in.csv.gz"
    frame.to_csv(source, index=False, compression="gzip")
    target = tmp_path / "out.jsonl.gz"
    assert predict_file(regressor, source, target, chunk_size=300) == ROWS
    with gzip.open(target, "rt") as handle:
        values = [json.loads(line)["prediction"] for line in handle]
    np.testing.assert_array_equal(values, _expected(regressor, frame, 300))


def test_stdin_to_stdout(
    monkeypatch: pytest.MonkeyPatch, regressor: Path, frame: pd.DataFrame
) -> None:
    stdout = io.BytesIO()
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(frame.to_csv(index=False).encode()))
    )
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
    assert predict_file(regressor, "-", "-", output_format="jsonl", chunk_size=128) == ROWS
    lines = stdout.getvalue().decode().splitlines()
    np.testing.assert_array_equal(
        [json.loads(line)["prediction"] for line in lines], _expected(regressor, frame, 128)
    )


def test_string_predictions(tmp_path: Path, classifier: Path, frame: pd.DataFrame) -> None:
    source = _write(frame, tmp_path / "in.csv", "csv")
    for fmt in FORMATS:
        target = tmp_path / f"out{SUFFIX[fmt]}"
        predict_file(classifier, source, target)
        assert _read(target, fmt)["prediction"].tolist() == _expected(classifier, frame).tolist()


def test_one_column_per_output(tmp_path: Path, train: pd.DataFrame, frame: pd.DataFrame) -> None:
    targets = np.column_stack([train["a"] + train["b"], train["c"] * 2.0])
    path = tmp_path / "two-outputs"
    cairn.sklearn.save_model(LinearRegression().fit(train, targets), path, input_example=train[:5])
    target = tmp_path / "out.parquet"
    predict_file(path, _write(frame, tmp_path / "in.parquet", "parquet"), target)
    written = pd.read_parquet(target)
    assert list(written.columns) == ["prediction_0", "prediction_1"]
    np.testing.assert_array_equal(written.to_numpy(), _expected(path, frame))


def test_keep_columns_carries_every_input_column(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    extra = frame.assign(
        id=[f"row-{i}" for i in range(ROWS)],
        note=['say "hi"\nthen\tleave \\ é' if i % 2 else None for i in range(ROWS)],
        score=[float("nan") if i % 3 == 0 else i / 7 for i in range(ROWS)],
    )
    source = _write(extra, tmp_path / "in.parquet", "parquet")
    for fmt in FORMATS:
        target = tmp_path / f"out{SUFFIX[fmt]}"
        predict_file(regressor, source, target, keep_columns=True, chunk_size=333)
        written = _read(target, fmt)
        assert list(written.columns) == [*extra.columns, "prediction"]
        np.testing.assert_array_equal(written["prediction"], _expected(regressor, frame, 333))
        assert written["id"].tolist() == extra["id"].tolist()
        # Quotes, control characters and non-ASCII survive; missing stays missing.
        assert (
            written["note"].fillna("<missing>").tolist()
            == extra["note"].fillna("<missing>").tolist()
        )
        np.testing.assert_array_equal(written["c"], extra["c"])
        np.testing.assert_array_equal(written["score"].astype(float), extra["score"])


def test_model_saved_by_mlflow(tmp_path: Path, train: pd.DataFrame, frame: pd.DataFrame) -> None:
    import mlflow.sklearn

    path = tmp_path / "mlflow-model"
    model = make_pipeline(StandardScaler(), Ridge()).fit(train, train["a"] - train["c"])
    mlflow.sklearn.save_model(model, str(path), input_example=train[:5])
    target = tmp_path / "out.csv"
    predict_file(path, _write(frame, tmp_path / "in.csv", "csv"), target)
    np.testing.assert_array_equal(_read(target, "csv")["prediction"], model.predict(frame))


def test_runs_uri(tmp_path: Path, train: pd.DataFrame, frame: pd.DataFrame) -> None:
    model = make_pipeline(StandardScaler(), Ridge()).fit(train, train["b"])
    with cairn.start_run() as run:
        cairn.sklearn.log_model(model, "model", input_example=train[:5])
    target = tmp_path / "out.parquet"
    predict_file(
        f"runs:/{run.info.run_id}/model", _write(frame, tmp_path / "in.csv", "csv"), target
    )
    np.testing.assert_array_equal(pd.read_parquet(target)["prediction"], model.predict(frame))


# -- chunking and streaming -------------------------------------------------------------------


def test_chunks_across_block_and_chunk_boundaries(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = cairn.pyfunc.load_model(regressor)
    sizes: list[int] = []
    predict = model.predict
    monkeypatch.setattr(model, "predict", lambda data: sizes.append(len(data)) or predict(data))
    reports: list[Progress] = []
    source = _write(frame, tmp_path / "in.csv", "csv")
    target = tmp_path / "out.csv"
    # Blocks of 2 KiB hold ~40 rows: chunks of 64 rows straddle blocks.
    rows = predict_file(
        model, source, target, chunk_size=64, block_size=2048, on_progress=reports.append
    )
    assert rows == ROWS
    assert sizes == [64] * 15 + [40]
    assert reports[0] == Progress(0, 0, 0, source.stat().st_size)  # before the first chunk
    assert [r.chunks for r in reports] == list(range(17))
    assert [r.rows for r in reports] == [min(64 * i, ROWS) for i in range(17)]
    assert reports[-1].bytes_read == reports[-1].total_bytes == source.stat().st_size
    written = _read(target, "csv")["prediction"]
    np.testing.assert_array_equal(written, _expected(regressor, frame, 64))


def test_a_large_file_is_read_a_block_at_a_time(tmp_path: Path, regressor: Path) -> None:
    frame = _features(40_000)
    source = _write(frame, tmp_path / "in.csv", "csv")
    reports: list[Progress] = []
    predict_file(
        regressor,
        source,
        tmp_path / "out.parquet",
        chunk_size=1_000,
        block_size=4096,
        on_progress=reports.append,
    )
    assert len(reports) == 1 + 40
    # The first chunk spans ~10 blocks and pyarrow queues at most 32 more (its background
    # read-ahead): a small part of the file has been read when the first chunk is scored.
    size = source.stat().st_size
    assert size > 1_500_000
    assert 0 < reports[1].bytes_read < 100 * 4096 < size / 4
    assert [r.bytes_read for r in reports] == sorted(r.bytes_read for r in reports)


def test_parquet_is_read_in_batches(tmp_path: Path, regressor: Path) -> None:
    frame = _features(5_000)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame), source, row_group_size=700)
    reports: list[Progress] = []
    predict_file(
        regressor, source, tmp_path / "out.csv", chunk_size=900, on_progress=reports.append
    )
    assert [r.rows for r in reports] == [*range(0, 5_000, 900), 5_000]
    assert 0 < reports[1].bytes_read < reports[-1].bytes_read == source.stat().st_size


# -- bad input --------------------------------------------------------------------------------


def _fails(
    tmp_path: Path,
    model: Path,
    source: Path | str,
    error: type[Exception],
    match: str,
    **kwargs: Any,
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous results\n")
    with pytest.raises(error, match=match):
        predict_file(model, source, target, **kwargs)
    assert target.read_text() == "previous results\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl", "empty.parquet"])
def test_empty_file(tmp_path: Path, regressor: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    _fails(tmp_path, regressor, tmp_path / name, ModelInputError, f"^{tmp_path / name} is empty$")


def test_blank_csv_and_header_only_csv(tmp_path: Path, regressor: Path) -> None:
    (tmp_path / "blank.csv").write_text("\n\n")
    _fails(tmp_path, regressor, tmp_path / "blank.csv", ModelInputError, "blank.csv is empty")
    (tmp_path / "header.csv").write_text("a,b,c\n")
    _fails(tmp_path, regressor, tmp_path / "header.csv", ModelInputError, "holds no rows to score")


def test_csv_row_with_too_many_fields_names_its_line(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    lines = frame.to_csv(index=False).splitlines()
    lines[901] += ",17"  # line 902 of the file, far past the first block
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    _fails(
        tmp_path,
        regressor,
        source,
        ModelInputError,
        r"in\.csv, line 902: expected 3 columns, got 4: ",
        chunk_size=100,
        block_size=4096,
    )


def test_csv_value_the_signature_refuses_names_line_and_column(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    lines = frame.to_csv(index=False).splitlines()
    fields = lines[700].split(",")
    lines[700] = ",".join([fields[0], "twelve", fields[2]])
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    _fails(
        tmp_path,
        regressor,
        source,
        ModelInputError,
        r"in\.csv, line 701: column 'b': expected double, got 'twelve'$",
        chunk_size=100,
        block_size=4096,
    )


def test_csv_float_in_a_long_column(tmp_path: Path, regressor: Path, frame: pd.DataFrame) -> None:
    source = _write(frame.assign(c=frame["c"] + 0.5), tmp_path / "in.csv", "csv")
    _fails(
        tmp_path, regressor, source, ModelInputError, r"line 2: column 'c': expected long, got '"
    )


def test_missing_columns_are_all_named(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    for fmt in FORMATS:
        source = _write(frame.drop(columns=["a", "c"]), tmp_path / f"in{SUFFIX[fmt]}", fmt)
        _fails(
            tmp_path,
            regressor,
            source,
            ModelInputError,
            r"does not match the model signature: column 'a': missing \(expected double\); "
            r"column 'c': missing \(expected long\)$",
        )


def test_parquet_column_of_the_wrong_type(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    source = _write(frame.assign(b=frame["b"].astype(str)), tmp_path / "in.parquet", "parquet")
    _fails(
        tmp_path,
        regressor,
        source,
        ModelInputError,
        r"in\.parquet, rows 1-400: the input does not match the model signature: "
        r"column 'b': expected double, got string$",
        chunk_size=400,
    )


def test_json_lines_value_of_the_wrong_type_names_its_line(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    lines = frame.to_json(orient="records", lines=True).splitlines()
    lines[812] = json.dumps({"a": 1.0, "b": "twelve", "c": 3})
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    _fails(
        tmp_path,
        regressor,
        source,
        ModelInputError,
        r"in\.jsonl, line 813: column 'b' changed from number to string$",
        block_size=4096,
    )


def test_json_lines_syntax_error_names_its_line(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    lines = frame.to_json(orient="records", lines=True).splitlines()
    lines[3] = lines[3][:-1]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    _fails(tmp_path, regressor, source, ModelInputError, r"in\.jsonl, line 4: ")


def test_unreadable_inputs(tmp_path: Path, regressor: Path) -> None:
    _fails(tmp_path, regressor, tmp_path / "nope.csv", NotFoundError, "no such file: .*nope.csv")
    (tmp_path / "folder.csv").mkdir()
    _fails(tmp_path, regressor, tmp_path / "folder.csv", InvalidParameterError, "is a folder")
    (tmp_path / "fake.parquet").write_text("a,b,c\n1,2,3\n")
    _fails(
        tmp_path,
        regressor,
        tmp_path / "fake.parquet",
        ModelInputError,
        "fake.parquet is not a readable Parquet file: ",
    )
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    _fails(tmp_path, regressor, tmp_path / "broken.csv.gz", InvalidParameterError, "broken.csv.gz")


def test_unknown_formats(tmp_path: Path, regressor: Path, frame: pd.DataFrame) -> None:
    source = _write(frame, tmp_path / "in.txt", "csv")
    _fails(tmp_path, regressor, source, InvalidParameterError, "cannot tell the format of .*in.txt")
    with pytest.raises(InvalidParameterError, match="unknown format 'xlsx'"):
        predict_file(regressor, source, tmp_path / "out.csv", input_format="xlsx")
    with pytest.raises(InvalidParameterError, match=r"cannot tell the format of .*out\.dat"):
        predict_file(regressor, source, tmp_path / "out.dat", input_format="csv")
    with pytest.raises(InvalidParameterError, match="Parquet cannot be read from stdin"):
        predict_file(regressor, "-", tmp_path / "out.csv", input_format="parquet")
    assert (tmp_path / "out.csv").read_text() == "previous results\n"


def test_a_failure_after_written_chunks_leaves_no_output(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    lines = frame.to_csv(index=False).splitlines()
    lines[-1] = "1.0,oops,3"
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    for fmt in FORMATS:
        target = tmp_path / f"new{SUFFIX[fmt]}"
        reports: list[Progress] = []
        with pytest.raises(ModelInputError, match=f"line {ROWS + 1}: column 'b'"):
            predict_file(
                regressor,
                source,
                target,
                chunk_size=50,
                block_size=4096,
                on_progress=reports.append,
            )
        assert len(reports) >= 1 + 10  # chunks had been written before the bad row
        assert not target.exists()
        assert _leftovers(tmp_path) == []


def test_output_folder_must_exist(tmp_path: Path, regressor: Path, frame: pd.DataFrame) -> None:
    source = _write(frame, tmp_path / "in.csv", "csv")
    with pytest.raises(NotFoundError, match=r"folder .*missing does not exist"):
        predict_file(regressor, source, tmp_path / "missing" / "out.csv")


def test_keep_columns_refuses_a_column_named_prediction(
    tmp_path: Path, regressor: Path, frame: pd.DataFrame
) -> None:
    source = _write(frame.assign(prediction=1.0), tmp_path / "in.csv", "csv")
    _fails(
        tmp_path,
        regressor,
        source,
        InvalidParameterError,
        "already has a column named 'prediction'",
        keep_columns=True,
    )
    predict_file(regressor, source, tmp_path / "ok.csv")  # without --keep-columns it is ignored


class _Failing(cairn.pyfunc.PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame) -> Any:
        if (model_input["a"] > 100).any():
            raise ValueError("a is out of range")
        return model_input["a"] * 2


def test_a_model_that_fails_names_the_rows(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "failing"
    cairn.pyfunc.save_model(path, _Failing(), input_example=frame[:5])
    frame.loc[450, "a"] = 1_000.0
    source = _write(frame, tmp_path / "in.parquet", "parquet")
    _fails(
        tmp_path,
        path,
        source,
        CairnError,
        r"in\.parquet, rows 401-600: the model failed: ValueError: a is out of range$",
        chunk_size=200,
    )


def test_chunk_size_must_be_positive(tmp_path: Path, regressor: Path) -> None:
    with pytest.raises(InvalidParameterError, match="chunk_size must be at least 1, got 0"):
        predict_file(regressor, tmp_path / "in.csv", tmp_path / "out.csv", chunk_size=0)
