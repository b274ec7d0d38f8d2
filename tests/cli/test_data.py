"""``cairn data history|show|diff|restore`` on real Delta tables."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

import cairn
from cairn import data
from cairn.cli import cli

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def runner(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAIRN_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich folds no cell
    cairn.set_tracking_uri(sqlite_uri)
    return CliRunner()


def _invoke(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _listings(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sqft": rng.normal(0, 1, n) * scale,
            "rooms": rng.integers(1, 5, n),
            "city": rng.choice(["lyon", "nantes"], n),
        }
    )


@pytest.fixture
def table(tmp_path: Path, runner: CliRunner) -> tuple[str, str]:
    """(uri, run id): v0 normalized rows; v1 un-normalized rows appended by a run."""
    uri = str(tmp_path / "listings")
    data.write_table(_listings(200, 0), uri)
    with cairn.start_run(run_name="nightly-load") as run:
        data.write_table(_listings(100, 1, scale=1000.0), uri)
    return uri, run.info.run_id


def test_history_lists_commits_newest_first_with_the_run(table: tuple[str, str]) -> None:
    uri, run_id = table
    runner = CliRunner()
    out = _invoke(runner, "data", "history", uri)
    assert f"History of {uri} (2 commits)" in out
    lines = [line for line in out.splitlines() if "WRITE" in line]
    assert len(lines) == 2 and run_id in lines[0] and "100" in lines[0]
    assert run_id not in lines[1] and "200" in lines[1]

    payload = json.loads(_invoke(runner, "data", "history", uri, "--json"))
    assert payload["uri"] == uri
    commits = payload["commits"]
    assert [c["version"] for c in commits] == [1, 0]
    assert commits[0]["run_id"] == run_id and commits[0]["operation"] == "WRITE"
    assert commits[0]["metrics"]["num_added_rows"] == 100
    assert set(commits[0]) == {
        "version",
        "timestamp_ms",
        "time",
        "operation",
        "user",
        "run_id",
        "parameters",
        "metrics",
    }

    out = _invoke(runner, "data", "history", uri, "--limit", "1")
    assert "(1+ commits)" in out and "pass --limit 2 to see more" in out
    newest = json.loads(_invoke(runner, "data", "history", uri, "-n", "1", "--json"))
    assert [c["version"] for c in newest["commits"]] == [1]


def test_show_prints_version_info_schema_and_rows(table: tuple[str, str]) -> None:
    uri, _ = table
    runner = CliRunner()
    info = data.table_info(uri, 0)
    out = _invoke(runner, "data", "show", uri, "--version", "0", "--limit", "3")
    assert "listings version 0" in out and "Rows (3 of 200)" in out
    assert info.content_digest in out and info.schema_hash in out and info.digest in out
    assert "sqft" in out and "double" in out and "city" in out and "string" in out

    payload = json.loads(_invoke(runner, "data", "show", uri, "--json"))
    assert payload["table"]["version"] == 1 and payload["table"]["num_rows"] == 300
    assert payload["table"]["num_files"] == 2 and payload["table"]["timestamp_ms"] > 0
    assert payload["columns"] == ["sqft", "rooms", "city"]
    assert len(payload["rows"]) == 10 and all(len(row) == 3 for row in payload["rows"])
    known = data.read_table(uri)
    cities = set(known["city"])
    assert all(row[2] in cities for row in payload["rows"])

    none = json.loads(_invoke(runner, "data", "show", uri, "-v", "0", "-n", "0", "--json"))
    assert none["rows"] == [] and none["table"]["num_rows"] == 200
    assert "Rows (" not in _invoke(runner, "data", "show", uri, "-n", "0")


def test_show_json_carries_dates_bytes_and_nulls(tmp_path: Path, runner: CliRunner) -> None:
    uri = str(tmp_path / "events")
    frame = pa.table(
        {
            "at": pa.array([dt.datetime(2026, 1, 2, 3, 4, 5)], pa.timestamp("us", tz="UTC")),
            "blob": pa.array([b"\x01\xff"], pa.binary()),
            "note": pa.array([None], pa.string()),
        }
    )
    data.write_table(frame, uri)
    payload = json.loads(_invoke(runner, "data", "show", uri, "--json"))
    assert payload["rows"] == [["2026-01-02T03:04:05+00:00", "01ff", None]]
    assert "null" in _invoke(runner, "data", "show", uri)


def test_diff_shows_shifted_columns_and_the_commit_that_brought_them(
    table: tuple[str, str],
) -> None:
    uri, run_id = table
    runner = CliRunner()
    out = _invoke(runner, "data", "diff", uri, "0", "1")
    assert f"{uri}: version 0 → 1" in out and "Rows: 200 → 300 (+100)" in out
    assert "Schema: unchanged" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("│ sqft"))
    sqft_v0, sqft_v1 = lines[at], lines[at + 1]
    assert "SHIFTED" in sqft_v0 and "│ v0 " in sqft_v0 and "│ v1 " in sqft_v1
    v0_std, v1_std = (float(line.split("│")[5]) for line in (sqft_v0, sqft_v1))
    assert v1_std > 100 * v0_std
    [rooms] = [line for line in out.splitlines() if line.startswith("│ rooms")]
    assert "SHIFTED" not in rooms
    assert "Shifted columns: sqft (" in out
    [commit] = [line for line in out.splitlines() if "WRITE" in line]
    assert run_id in commit and "100" in commit
    assert f"cairn data restore {uri} --version 0" in out

    payload = json.loads(_invoke(runner, "data", "diff", uri, "0", "1", "--json"))
    assert payload["shifted"] == ["sqft"]
    assert (payload["from_rows"], payload["to_rows"]) == (200, 300)
    assert payload["columns"]["sqft"]["to"]["std"] > 100 * payload["columns"]["sqft"]["from"]["std"]
    assert [c["run_id"] for c in payload["commits"]] == [run_id]
    assert payload["schema_changes"] == []
    assert data.diff(uri, 0, 1).shifted == ["sqft"]  # still the function after the CLI ran


def test_diff_shows_schema_changes(table: tuple[str, str]) -> None:
    uri, _ = table
    data.write_table(
        _listings(5, 3).assign(garden=True), uri, schema_mode="merge"
    )  # version 2 adds a column
    out = _invoke(CliRunner(), "data", "diff", uri, "0", "2")
    assert "Schema changes" in out
    lines = out.splitlines()
    change, stats = [i for i, line in enumerate(lines) if line.startswith("│ garden")]
    assert "added" in lines[change] and "boolean" in lines[change]
    assert "│ —  " in lines[stats] and "(absent)" in lines[stats]
    assert "boolean" in lines[stats + 1] and "│ v2 " in lines[stats + 1]
    payload = json.loads(_invoke(CliRunner(), "data", "diff", uri, "2", "0", "--json"))
    assert payload["schema_changes"] == [
        {"column": "garden", "change": "removed", "old_type": "boolean", "new_type": None}
    ]
    assert [c["version"] for c in payload["commits"]] == [2, 1]
    same = _invoke(CliRunner(), "data", "diff", uri, "1", "1")
    assert "No commits in between" in same and "SHIFTED" not in same


def test_restore_commits_the_old_content_as_a_new_version(table: tuple[str, str]) -> None:
    uri, _ = table
    runner = CliRunner()
    out = _invoke(runner, "data", "restore", uri, "--version", "0")
    assert f"Restored {uri} to the content of version 0 as version 2" in out
    assert f"cairn data diff {uri} 0 2" in out
    assert len(data.read_table(uri)) == 200
    assert data.table_info(uri, 2).content_digest == data.table_info(uri, 0).content_digest
    payload = json.loads(_invoke(runner, "data", "restore", uri, "-v", "1", "--json"))
    assert payload == {"uri": uri, "restored_version": 1, "version": 3}
    assert len(data.read_table(uri)) == 300
    operations = [c.operation for c in data.history(uri)]
    assert operations == ["RESTORE", "RESTORE", "WRITE", "WRITE"]
    assert "RESTORE" in _invoke(runner, "data", "history", uri)


def test_paths_that_are_not_delta_tables_are_refused(tmp_path: Path, runner: CliRunner) -> None:
    folder = tmp_path / "csvs"
    folder.mkdir()
    (folder / "part.csv").write_text("a,b\n1,2\n")
    for args in (
        ("history", str(folder)),
        ("show", str(folder)),
        ("diff", str(folder), "0", "1"),
        ("restore", str(folder), "--version", "0"),
        ("show", str(tmp_path / "missing")),
    ):
        out = _invoke(runner, "data", *args, code=1)
        assert "Error:" in out and "is not a Delta table" in out, args
    out = _invoke(runner, "data", "show", str(folder / "part.csv"), code=1)
    assert "is a file, not a Delta table folder" in out


def test_missing_versions_are_refused(table: tuple[str, str]) -> None:
    uri, _ = table
    runner = CliRunner()
    expected = f"Error: {uri} has no version 9; its latest version is 1"
    assert expected in _invoke(runner, "data", "show", uri, "--version", "9", code=1)
    assert expected in _invoke(runner, "data", "diff", uri, "0", "9", code=1)
    restore = _invoke(runner, "data", "restore", uri, "--version", "9", code=1)
    assert f"Error: {uri} has no version 9" in restore
    assert len(data.history(uri)) == 2  # nothing was committed
    negative = _invoke(runner, "data", "show", uri, "--version", "-1", code=2)
    assert "-1 is not in the range x>=0" in negative
    missing = _invoke(runner, "data", "restore", uri, code=2)
    assert "Missing option '--version'" in missing
