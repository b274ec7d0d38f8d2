"""``cairn models register|list|versions|alias`` on a real store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

import cairn
from cairn.cli import cli
from cairn.models.registry import RegistryClient

if TYPE_CHECKING:
    from pathlib import Path


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
def run_id(runner: CliRunner) -> str:
    with cairn.start_run() as run:
        cairn.log_text("weights", "model/weights.txt")
    return run.info.run_id


def test_register_list_versions_alias(runner: CliRunner, run_id: str, tmp_path: Path) -> None:
    out = _invoke(
        runner, "models", "register", "-m", f"runs:/{run_id}/model", "--name", "churn",
        "--tag", "team=growth", "--tag", "note=a=b",
    )  # fmt: skip
    assert "Registered version 1 of model 'churn'" in out
    assert "models:/churn/1" in out
    local = tmp_path / "local-model"
    local.mkdir()
    second = json.loads(
        _invoke(runner, "models", "register", "--model-uri", str(local), "-n", "churn", "--json")
    )
    assert (second["version"], second["source"], second["run_id"]) == (2, str(local), None)
    _invoke(runner, "models", "register", "-m", "s3://bucket/fraud", "-n", "fraud's model")

    set_out = _invoke(runner, "models", "alias", "churn", "champion", "1")
    assert "points at version 1" in set_out and "models:/churn@champion" in set_out
    table = _invoke(runner, "models", "list")
    assert "churn" in table and "champion→1" in table and "fraud's model" in table
    listed = json.loads(_invoke(runner, "models", "list", "--filter", "name LIKE 'ch%'", "--json"))
    assert [m["name"] for m in listed["registered_models"]] == ["churn"]
    assert listed["registered_models"][0]["aliases"] == {"champion": 1}

    versions = json.loads(_invoke(runner, "models", "versions", "churn", "--json"))
    rows = [(v["version"], v["aliases"], v["run_id"]) for v in versions["model_versions"]]
    assert rows == [(2, [], None), (1, ["champion"], run_id)]
    assert versions["model_versions"][1]["tags"] == {"team": "growth", "note": "a=b"}
    table = _invoke(runner, "models", "versions", "churn")
    assert "champion" in table and run_id in table and "Versions of churn (2)" in table
    quoted = json.loads(_invoke(runner, "models", "versions", "fraud's model", "--json"))
    assert [v["source"] for v in quoted["model_versions"]] == ["s3://bucket/fraud"]

    _invoke(runner, "models", "alias", "churn", "champion", "--delete")
    assert RegistryClient().get_registered_model("churn").aliases == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "versions", "nope"), "Error: Registered model 'nope' does not exist"),
        (("models", "alias", "nope", "champion", "1"), "Error: Registered model 'nope'"),
        (("models", "alias", "m", "v1", "1"), "Error: Invalid alias 'v1'"),
        (("models", "alias", "m", "champion", "9"), "Error: Version 9 of registered model 'm'"),
        (("models", "alias", "m", "champion", "--delete"), "Error: Registered model 'm' has no"),
        (("models", "list", "--filter", "bogus = 1"), "Error: unknown field 'bogus'"),
        (("models", "register", "-m", "runs:/nope/model", "-n", "m"), "Error: Run 'nope'"),
        (("models", "register", "-m", "s3://b/m", "-n", "a/b"), "Error: Invalid model name"),
    ],
)
def test_bad_arguments_give_one_line_error(
    runner: CliRunner, args: tuple[str, ...], message: str
) -> None:
    RegistryClient().create_registered_model("m")
    RegistryClient().create_model_version("m", "s3://b/m")
    out = _invoke(runner, *args, code=1)
    assert out.startswith(message)
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "alias", "m", "champion"), "Give the VERSION"),
        (("models", "alias", "m", "champion", "1", "--delete"), "--delete takes no VERSION"),
        (("models", "register", "-m", "s3://b/m", "-n", "m", "--tag", "novalue"), "KEY=VALUE"),
        (("models", "register", "-n", "m"), "Missing option '-m'"),
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: tuple[str, ...], message: str) -> None:
    assert message in _invoke(runner, *args, code=2)
