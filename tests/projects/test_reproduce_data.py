"""``cairn runs reproduce`` and ``cairn run`` pin the Delta table versions a job reads."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from click.testing import CliRunner

import cairn
from cairn.cli import cli
from cairn.data import read_table, table_inputs, write_table
from cairn.errors import InvalidParameterError, TableNotFoundError, TableVersionError
from cairn.projects import reproduce, run
from cairn.projects.reproduce import recorded_pins

if TYPE_CHECKING:
    from pathlib import Path

    from cairn.entities import Run

MLPROJECT = """\
name: counting
entry_points:
  main:
    parameters:
      table: string
    command: "python count.py {table}"
"""

# Reads the table without naming a version: the latest, unless the launcher pinned one.
COUNT_PY = """\
import sys

import cairn
import cairn.data

frame = cairn.data.read_table(sys.argv[1])
print(f"rows={len(frame)} total={int(frame['x'].sum())}")
cairn.log_metric("rows", len(frame))
cairn.log_metric("total", int(frame["x"].sum()))
"""


@pytest.fixture
def cli_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    store = str(tmp_path / "store")
    monkeypatch.setenv("CAIRN_TRACKING_URI", store)
    monkeypatch.delenv("CAIRN_DATA_PINS", raising=False)
    cairn.set_tracking_uri(store)
    return CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "count.py").write_text(textwrap.dedent(COUNT_PY))
    return folder


@pytest.fixture
def table(tmp_path: Path) -> str:
    """A table at version 0 with 3 rows (x = 1, 2, 3)."""
    uri = str(tmp_path / "tables" / "events")
    assert write_table(pd.DataFrame({"x": [1, 2, 3]}), uri) == 0
    return uri


def _runs() -> list[Run]:
    return list(cairn.TrackingClient().search_runs(["0"], order_by=["attributes.start_time ASC"]))


def _invoke(runner: CliRunner, *args: str) -> Run:
    """Run the CLI, expect success, and return the run it created."""
    before = {r.info.run_id for r in _runs()}
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    (created,) = [r for r in _runs() if r.info.run_id not in before]
    return created


def _read_versions(run: Run) -> list[tuple[str, int]]:
    return [(t.uri, t.version) for t in table_inputs(run) if t.role == "input"]


def test_reproduce_reads_the_recorded_version_and_data_version_overrides_it(
    cli_runner: CliRunner, project: Path, table: str
) -> None:
    first = _invoke(
        cli_runner, "run", str(project), "-P", f"table={table}", "--env-manager", "local"
    )
    assert first.data.metrics == {"rows": 3.0, "total": 6.0}
    assert _read_versions(first) == [(table, 0)]
    assert "cairn.data.pins" not in first.data.tags  # a fresh run reads the latest

    assert write_table(pd.DataFrame({"x": [10, 20]}), table) == 1

    again = _invoke(cli_runner, "runs", "reproduce", first.info.run_id)
    assert again.data.tags["cairn.project.reproduces"] == first.info.run_id
    assert again.data.metrics == {"rows": 3.0, "total": 6.0}  # version 0, not the latest
    assert _read_versions(again) == [(table, 0)]
    assert json.loads(again.data.tags["cairn.data.pins"]) == {table: 0}

    newer = _invoke(
        cli_runner, "runs", "reproduce", first.info.run_id, "--data-version", f"{table}=1"
    )
    assert newer.data.metrics == {"rows": 5.0, "total": 36.0}
    assert _read_versions(newer) == [(table, 1)]
    assert json.loads(newer.data.tags["cairn.data.pins"]) == {table: 1}

    # A reproduction of the reproduction reads what that one read.
    third = _invoke(cli_runner, "runs", "reproduce", newer.info.run_id)
    assert third.data.metrics == {"rows": 5.0, "total": 36.0}


def test_cairn_run_takes_data_versions_too(
    cli_runner: CliRunner,
    project: Path,
    table: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_table(pd.DataFrame({"x": [10, 20]}), table)
    monkeypatch.chdir(tmp_path)
    relative = "tables/events"  # normalized against the launcher's directory, not the job's
    pinned = _invoke(
        cli_runner,
        "run",
        str(project),
        "-P",
        f"table={table}",
        "--env-manager",
        "local",
        "--data-version",
        f"{relative}=0",
    )
    assert pinned.data.metrics["rows"] == 3.0
    assert json.loads(pinned.data.tags["cairn.data.pins"]) == {table: 0}
    latest = _invoke(
        cli_runner, "run", str(project), "-P", f"table={table}", "--env-manager", "local"
    )
    assert latest.data.metrics["rows"] == 5.0
    assert _read_versions(latest) == [(table, 1)]


@pytest.mark.parametrize(
    "value", ["no-equals-sign", "/some/table=", "/some/table=v1", "/t=-1", "=3"]
)
def test_a_malformed_data_version_is_a_usage_error(
    cli_runner: CliRunner, project: Path, table: str, value: str
) -> None:
    for args in (["runs", "reproduce", "some-run"], ["run", str(project)]):
        result = cli_runner.invoke(cli, [*args, "--data-version", value])
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--data-version'" in result.output
        assert "--data-version takes URI=VERSION with a non-negative integer version" in (
            result.output
        )
    assert _runs() == []


def test_a_pin_to_a_missing_version_or_table_fails_before_any_run(
    cli_runner: CliRunner, project: Path, table: str, tmp_path: Path
) -> None:
    first = _invoke(
        cli_runner, "run", str(project), "-P", f"table={table}", "--env-manager", "local"
    )
    result = cli_runner.invoke(
        cli, ["runs", "reproduce", first.info.run_id, "--data-version", f"{table}=7"]
    )
    assert result.exit_code == 1, result.output
    assert f"Error: {table} has no version 7; its latest version is 0" in result.output
    with pytest.raises(TableVersionError, match=r"has no version 4; its latest version is 0"):
        reproduce(first.info.run_id, data_versions={table: 4}, echo=False)
    plain = tmp_path / "not-a-table"
    plain.mkdir()
    with pytest.raises(TableNotFoundError, match="is not a Delta table"):
        run(
            str(project),
            parameters={"table": table},
            env_manager="local",
            data_pins={str(plain): 0},
        )
    with pytest.raises(InvalidParameterError, match="must be a non-negative integer, got '1'"):
        run(str(project), parameters={"table": table}, env_manager="local", data_pins={table: "1"})  # type: ignore[dict-item]
    assert [r.info.run_id for r in _runs()] == [first.info.run_id]  # nothing else was started


def test_pins_skip_versions_the_run_wrote_itself_and_take_the_newest_read(
    cli_runner: CliRunner, table: str, tmp_path: Path
) -> None:
    other = str(tmp_path / "tables" / "prices")
    write_table(pd.DataFrame({"x": [1]}), other)
    write_table(pd.DataFrame({"x": [2]}), other)
    with cairn.start_run() as started:
        read_table(table)  # version 0, from before the run
        write_table(pd.DataFrame({"x": [4]}), table)  # version 1, its own output...
        read_table(table)  # ...read back
        read_table(other, version=0)
        read_table(other)
    messages: list[str] = []
    pins = recorded_pins(cairn.get_run(started.info.run_id), messages.append)
    assert pins == {table: 0, other: 1}
    # In one process the read-back is recorded on the run's output link (cairn.data.read_back);
    # a read-back recorded by another process is found through the Delta history instead.
    assert any(f"read {other} at versions 0, 1: pinning the newest, 1" in m for m in messages)


def test_a_read_back_recorded_by_another_process_is_not_pinned(table: str) -> None:
    from cairn.data import lineage

    with cairn.start_run() as started:
        read_table(table)  # version 0
        write_table(pd.DataFrame({"x": [4]}), table)  # version 1, this run's commit
        lineage._recorded.clear()  # as if a second process of the job read it back
        read_table(table)
    messages: list[str] = []
    pins = recorded_pins(cairn.get_run(started.info.run_id), messages.append)
    assert pins == {table: 0}
    assert any(
        f"read {table} at version(s) 1 that it wrote itself: not pinned" in m for m in messages
    )
