from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import cairn
from cairn.cli import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAIRN_TRACKING_URI", str(tmp_path / "store"))
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich folds no cell
    cairn.set_tracking_uri(str(tmp_path / "store"))
    return CliRunner()


def _invoke(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def populated(runner: CliRunner) -> list[str]:
    cairn.set_experiment("cli-exp")
    ids = []
    for alpha in (0.1, 0.5):
        with cairn.start_run(run_name=f"alpha-{alpha}") as run:
            cairn.log_param("alpha", alpha)
            cairn.log_metric("mae", alpha)
            cairn.log_text("hi", "notes/a.txt")
        ids.append(run.info.run_id)
    return ids


def test_help_lists_commands(runner: CliRunner) -> None:
    out = _invoke(runner, "--help")
    for name in ("experiments", "runs", "artifacts"):
        assert name in out
    assert cairn.__version__ in _invoke(runner, "--version")


def test_experiments_commands(runner: CliRunner) -> None:
    assert "Created experiment 'e1' with id 1" in _invoke(runner, "experiments", "create", "e1")
    listed = json.loads(_invoke(runner, "experiments", "list", "--json"))
    assert [e["name"] for e in listed] == ["Default", "e1"]
    _invoke(runner, "experiments", "rename", "e1", "e2")
    _invoke(runner, "experiments", "delete", "e2")
    assert "e2" in _invoke(runner, "experiments", "list", "--view", "deleted")
    _invoke(runner, "experiments", "restore", "1")
    assert "e2" in _invoke(runner, "experiments", "list")
    out = _invoke(runner, "experiments", "create", "e2", code=1)
    assert "Error: Experiment 'e2' already exists" in out


def test_runs_list_show_search(runner: CliRunner, populated: list[str]) -> None:
    table = _invoke(runner, "runs", "list", "-e", "cli-exp")
    assert "alpha-0.1" in table and "metrics.mae" in table
    found = json.loads(
        _invoke(runner, "runs", "search", "-e", "cli-exp", "-f", "metrics.mae > 0.2", "--json")
    )
    assert [r["info"]["run_name"] for r in found["runs"]] == ["alpha-0.5"]
    ordered = json.loads(
        _invoke(runner, "runs", "search", "-e", "cli-exp", "-o", "metrics.mae ASC", "--json")
    )
    assert [r["data"]["params"]["alpha"] for r in ordered["runs"]] == ["0.1", "0.5"]
    shown = json.loads(_invoke(runner, "runs", "show", populated[0], "--json"))
    assert shown["data"]["metrics"] == {"mae": 0.1}
    assert populated[0] in _invoke(runner, "runs", "show", populated[0])


def test_runs_delete_restore(runner: CliRunner, populated: list[str]) -> None:
    _invoke(runner, "runs", "delete", populated[0])
    listed = json.loads(_invoke(runner, "runs", "list", "-e", "cli-exp", "--json"))
    assert [r["info"]["run_id"] for r in listed["runs"]] == [populated[1]]
    _invoke(runner, "runs", "restore", populated[0])
    assert len(json.loads(_invoke(runner, "runs", "list", "-e", "cli-exp", "--json"))["runs"]) == 2


def test_artifacts_list_download(runner: CliRunner, populated: list[str], tmp_path: Path) -> None:
    files = json.loads(
        _invoke(runner, "artifacts", "list", populated[0], "--path", "notes", "--json")
    )
    assert files == [{"path": "notes/a.txt", "is_dir": False, "file_size": 2}]
    out = _invoke(
        runner, "artifacts", "download", populated[0], "-p", "notes", "-d", str(tmp_path / "dl")
    )
    assert (Path(out.strip()) / "a.txt").read_text() == "hi"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "show", "nope"), "Error: Run 'nope' does not exist"),
        (("runs", "list", "-e", "missing"), "Error: Experiment 'missing' does not exist"),
        (("runs", "search", "-f", "metrics.mae <"), "Error: "),
        (("runs", "search", "-f", "mae < 1"), "Error: "),
        (("artifacts", "list", "nope"), "Error: Run 'nope' does not exist"),
    ],
)
def test_bad_arguments_give_one_line_error(
    runner: CliRunner, populated: list[str], args: tuple[str, ...], message: str
) -> None:
    out = _invoke(runner, *args, code=1)
    assert out.startswith(message)
    assert "Traceback" not in out


def test_artifact_traversal_refused(runner: CliRunner, populated: list[str]) -> None:
    out = _invoke(runner, "artifacts", "download", populated[0], "-p", "../../etc/passwd", code=1)
    assert out.startswith("Error: ") and ".." in out


def test_usage_error_exit_code(runner: CliRunner) -> None:
    assert "No such command" in _invoke(runner, "nonsense", code=2)
