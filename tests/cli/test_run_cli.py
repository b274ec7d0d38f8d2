from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

import cairn
from cairn.cli import cli
from cairn.entities import RunStatus

if TYPE_CHECKING:
    from pathlib import Path

MLPROJECT = """\
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
    command: "python train.py --alpha {alpha}"
  fail:
    command: "echo broken >&2; exit 3"
"""

TRAIN_PY = """\
import sys
import cairn
alpha = float(sys.argv[2])
print(f"alpha={alpha}")
cairn.log_metric("score", alpha * 2)
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAIRN_TRACKING_URI", str(tmp_path / "store"))
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "cache"))
    cairn.set_tracking_uri(str(tmp_path / "store"))
    return CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    return folder


def _runs(experiment: str = "0") -> list[cairn.entities.Run]:
    return list(cairn.TrackingClient().search_runs([experiment], run_view_type="ALL"))


def test_run_then_reproduce(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "run",
            str(project),
            "-P",
            "alpha=0.25",
            "--env-manager",
            "local",
            "--experiment-name",
            "cli-projects",
            "--run-name",
            "first",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "alpha=0.25" in result.stdout
    experiment = cairn.get_experiment_by_name("cli-projects")
    assert experiment is not None
    (first,) = _runs(experiment.experiment_id)
    assert first.info.run_name == "first" and first.info.status is RunStatus.FINISHED
    assert first.data.metrics == {"score": 0.5}
    assert f"run {first.info.run_id} FINISHED" in result.stderr

    again = runner.invoke(cli, ["runs", "reproduce", first.info.run_id, "-P", "alpha=1.5"])
    assert again.exit_code == 0, again.output
    second = next(r for r in _runs(experiment.experiment_id) if r.info.run_id != first.info.run_id)
    assert second.data.tags["cairn.project.reproduces"] == first.info.run_id
    assert second.data.metrics == {"score": 3.0}


def test_failed_command_exits_1_with_the_reason(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(cli, ["run", str(project), "-e", "fail", "--env-manager", "local"])
    assert result.exit_code == 1
    (failed,) = _runs()
    assert f"Error: Run {failed.info.run_id} FAILED: The command exited with status 3" in (
        result.stderr
    )
    assert "broken" in result.stderr  # the command's stderr, shown live


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-P", "alpha"], 2, "'alpha' is not KEY=VALUE"),
        (["--env-manager", "conda"], 2, "'conda' is not one of 'uv', 'local'"),
        (["--experiment-name", "a", "--experiment-id", "0"], 2, "not both"),
        (["-e", "nope"], 1, "Error: Unknown entry point 'nope'"),
        (["-P", "alpha=high"], 1, "Error: Parameter 'alpha' of entry point 'main' must be a float"),
        (["--backend-config", "{bad"], 1, "Error: Backend config (inline JSON) is not valid JSON"),
    ],
)
def test_bad_input_exits_non_zero_and_creates_no_run(
    runner: CliRunner, project: Path, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(cli, ["run", str(project), *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert _runs() == []


def test_reproduce_of_a_plain_run_is_refused(runner: CliRunner) -> None:
    with cairn.start_run() as plain:
        pass
    result = runner.invoke(cli, ["runs", "reproduce", plain.info.run_id])
    assert result.exit_code == 1
    assert "was not started by `cairn run`" in result.output


def test_help_lists_run(runner: CliRunner) -> None:
    out = runner.invoke(cli, ["--help"]).output
    assert "run " in out and "Run a project" in out
    assert "--backend-config" in runner.invoke(cli, ["run", "--help"]).output
