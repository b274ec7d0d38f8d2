"""``cairn models predict``: files and pipes in and out, one-line errors, no partial output."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv
import pytest
from click.testing import CliRunner
from sklearn.linear_model import Ridge

import cairn
import cairn.sklearn
from cairn.cli import cli

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import Result


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # rich draws the bar only on a terminal; CI settings must not pretend to be one.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    # The command sets this default for its process; undo it for the test process afterwards.
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")
    return CliRunner()


@pytest.fixture(scope="module")
def model_and_frame(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ridge, pd.DataFrame]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    model = Ridge().fit(frame, frame["x"] * 3 - frame["y"])
    path = tmp_path_factory.mktemp("cli-model") / "model"
    cairn.sklearn.save_model(model, path, input_example=frame[:5])
    return path, model, frame


@pytest.fixture
def model_path(model_and_frame: tuple[Path, Ridge, pd.DataFrame]) -> Path:
    return model_and_frame[0]


@pytest.fixture
def frame(model_and_frame: tuple[Path, Ridge, pd.DataFrame]) -> pd.DataFrame:
    return model_and_frame[2]


def _predict(runner: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = runner.invoke(cli, ["models", "predict", *args], input=stdin)
    assert result.exit_code == code, result.output
    return result


def _one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def _csv_predictions(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    return pcsv.read_csv(path).column("prediction").to_numpy()


def test_file_to_file(
    runner: CliRunner,
    tmp_path: Path,
    model_and_frame: tuple[Path, Ridge, pd.DataFrame],
) -> None:
    path, model, frame = model_and_frame
    frame.to_parquet(tmp_path / "in.parquet")
    result = _predict(
        runner, "-m", str(path), "-i", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "o.csv")
    )
    assert result.stdout == ""
    assert result.stderr == f"Wrote 500 predictions to {tmp_path / 'o.csv'}\n"  # no progress bar
    np.testing.assert_array_equal(_csv_predictions(tmp_path / "o.csv"), model.predict(frame))


def test_stdin_to_stdout_with_formats_and_options(
    runner: CliRunner,
    model_and_frame: tuple[Path, Ridge, pd.DataFrame],
) -> None:
    path, model, frame = model_and_frame
    lines = frame.to_json(orient="records", lines=True, double_precision=15)
    result = _predict(
        runner,
        *("-m", str(path), "-i", "-", "--input-format", "jsonl", "--output-format", "jsonl"),
        *("--keep-columns", "--chunk-size", "64", "--no-progress"),
        stdin=lines,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 500
    assert list(rows[0]) == ["x", "y", "prediction"]
    sent = pd.read_json(io.StringIO(lines), lines=True, precise_float=True)
    assert [row["x"] for row in rows] == sent["x"].tolist()
    np.testing.assert_allclose([row["prediction"] for row in rows], model.predict(sent), rtol=1e-12)


def test_models_uri_through_the_tracking_store(
    runner: CliRunner,
    tmp_path: Path,
    model_and_frame: tuple[Path, Ridge, pd.DataFrame],
) -> None:
    _, model, frame = model_and_frame
    store = str(tmp_path / "store")
    cairn.set_tracking_uri(store)
    with cairn.start_run() as run:
        cairn.sklearn.log_model(model, "model", input_example=frame[:5])
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(
        cli,
        [
            *("--tracking-uri", store, "models", "predict"),
            *("-m", f"runs:/{run.info.run_id}/model", "-i", str(tmp_path / "in.csv")),
        ],
    )
    assert result.exit_code == 0, result.output
    written = pcsv.read_csv(io.BytesIO(result.stdout_bytes)).column("prediction")
    np.testing.assert_array_equal(written.to_numpy(), model.predict(frame))


def test_model_saved_by_mlflow(runner: CliRunner, tmp_path: Path, frame: pd.DataFrame) -> None:
    import mlflow.sklearn

    model = Ridge(alpha=2).fit(frame, frame["y"])
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), input_example=frame[:5])
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = (
        "-m",
        str(tmp_path / "m"),
        "-i",
        str(tmp_path / "in.csv"),
        "-o",
        str(tmp_path / "o.csv"),
    )
    _predict(runner, *args)
    np.testing.assert_array_equal(_csv_predictions(tmp_path / "o.csv"), model.predict(frame))


def test_progress_bar_on_a_terminal(
    runner: CliRunner,
    tmp_path: Path,
    model_path: Path,
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ("-m", str(model_path), "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"))
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich's switch for "this is a terminal"
    drawn = _predict(runner, *args).stderr
    assert "scoring" in drawn
    assert "500 rows" in drawn
    assert "Wrote 500 predictions" in drawn
    assert _predict(runner, *args, "--no-progress").stderr == (
        f"Wrote 500 predictions to {tmp_path / 'o.csv'}\n"
    )


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("", "in.csv", r"in\.csv is empty$"),
        ("x,y\n", "in.csv", r"in\.csv holds no rows to score$"),
        ("x,y\n1,2\n3,4,5\n", "in.csv", r"in\.csv, line 3: expected 2 columns, got 3: 3,4,5$"),
        (
            "x,y\n1,2\n3,abc\n",
            "in.csv",
            r"in\.csv, line 3: column 'y': expected double, got 'abc'$",
        ),
        ("x,z\n1,2\n", "in.csv", r"signature: column 'y': missing \(expected double\)$"),
        ('{"x": 1, "y": 2}\n{"x": 1, "y": "a"}\n', "in.jsonl", r"line 2: column 'y' changed from"),
        ("x,y\n1,2\n", "in.parquet", r"in\.parquet is not a readable Parquet file: "),
        ("x,y\n1,2\n", "in.xlsx", r"cannot tell the format of .*in\.xlsx from its extension"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_output(
    runner: CliRunner, tmp_path: Path, model_path: Path, content: str, name: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    target = tmp_path / "out.csv"
    result = _predict(
        runner, "-m", str(model_path), "-i", str(tmp_path / name), "-o", str(target), code=1
    )
    assert re.search(message, _one_line_error(result))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_missing_input_and_model(runner: CliRunner, tmp_path: Path, model_path: Path) -> None:
    result = _predict(runner, "-m", str(model_path), "-i", str(tmp_path / "nope.csv"), code=1)
    assert _one_line_error(result) == f"Error: no such file: {tmp_path / 'nope.csv'}"
    (tmp_path / "in.csv").write_text("x,y\n1,2\n")
    result = _predict(
        runner, "-m", str(tmp_path / "nomodel"), "-i", str(tmp_path / "in.csv"), code=1
    )
    assert "no model at" in _one_line_error(result)


def test_usage_errors(runner: CliRunner, model_path: Path) -> None:
    result = _predict(runner, "-m", str(model_path), "-i", "-", "--input-format", "xml", code=2)
    assert "'xml' is not one of 'csv', 'parquet', 'jsonl'" in result.stderr
    result = _predict(runner, "-m", str(model_path), "-i", "-", "--chunk-size", "0", code=2)
    assert "--chunk-size" in result.stderr
    assert "Missing option '-i'" in _predict(runner, "-m", str(model_path), code=2).stderr


def test_in_process_runs_give_the_collector_back(
    runner: CliRunner, tmp_path: Path, model_path: Path, frame: pd.DataFrame
) -> None:
    import gc

    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ("-m", str(model_path), "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"))
    _predict(runner, *args)
    _predict(runner, "-m", str(model_path), "-i", str(tmp_path / "none.csv"), code=1)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_help_does_not_load_the_data_stack() -> None:
    code = (
        "import sys\n"
        "from cairn.cli import main\n"
        "sys.argv = ['cairn', 'models', 'predict', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('pandas', 'pyarrow', 'numpy', 'sklearn', 'rich')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--keep-columns" in proc.stdout
    assert "LOADED []" in proc.stdout


def test_the_cairn_process_flushes_everything_before_it_ends(
    tmp_path: Path, model_and_frame: tuple[Path, Ridge, pd.DataFrame]
) -> None:
    """``main`` skips the interpreter's teardown after scoring: stdout must still be whole."""
    path, model, frame = model_and_frame
    frame.to_csv(tmp_path / "in.csv", index=False)
    command = [sys.executable, "-c", "from cairn.cli import main; main()", "models", "predict"]
    args = ["-m", str(path), "-i", str(tmp_path / "in.csv"), "--chunk-size", "100"]
    proc = subprocess.run([*command, *args], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    written = pcsv.read_csv(io.BytesIO(proc.stdout)).column("prediction").to_numpy()
    np.testing.assert_array_equal(
        written, np.concatenate([model.predict(frame[i : i + 100]) for i in range(0, 500, 100)])
    )
    (tmp_path / "bad.csv").write_text("x,y\n1,oops\n")
    args = ["-m", str(path), "-i", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "o.csv")]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert (
        proc.stderr
        == f"Error: {tmp_path / 'bad.csv'}, line 2: column 'y': expected double, got 'oops'\n"
    )
