"""``cairn lineage``: a registered model traced to its run, code and the table commits it read."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cairn
from cairn import data
from cairn.cli import cli
from cairn.models.registry import RegistryClient

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def runner(sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAIRN_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich folds no cell
    cairn.set_tracking_uri(sqlite_uri)
    return CliRunner()


def _invoke(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _listings(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sqft = rng.normal(0, 1, n)
    return pd.DataFrame({"sqft": sqft, "price": 3 * sqft + rng.normal(0, 0.1, n)})


@pytest.fixture
def chain(runner: CliRunner, tmp_path: Path) -> dict[str, str]:
    """v0 written by hand, v1 appended by a load run; a training run reads v1, logs and
    registers a sklearn model (prices version 1, alias champion); v2 lands afterwards."""
    from sklearn.linear_model import LinearRegression

    import cairn.sklearn

    uri = str(tmp_path / "listings")
    data.write_table(_listings(40, 0), uri)
    with cairn.start_run(run_name="load") as load:
        data.write_table(_listings(10, 1), uri)
    tags = {"mlflow.source.git.commit": "c0ffee12", "mlflow.project.entryPoint": "train"}
    with cairn.start_run(run_name="train", tags=tags) as train:
        frame = data.read_table(uri)
        cairn.log_params({"alpha": 0.5, "fit_intercept": True})
        model = LinearRegression().fit(frame[["sqft"]], frame["price"])
        cairn.sklearn.log_model(model, "model")
    cairn.register_model(f"runs:/{train.info.run_id}/model", "prices")
    RegistryClient().set_registered_model_alias("prices", "champion", 1)
    data.write_table(_listings(5, 2), uri)
    return {"uri": uri, "load": load.info.run_id, "train": train.info.run_id}


def test_lineage_of_a_registered_model_shows_the_table_version_and_its_commits(
    runner: CliRunner, chain: dict[str, str]
) -> None:
    out = _invoke(runner, "lineage", "models:/prices/1")
    assert "Lineage of models:/prices/1" in out
    assert "prices version 1 (@champion)" in out
    assert chain["train"] in out and "(train)" in out
    assert "c0ffee12" in out and "entry point" in out
    assert "alpha" in out and "fit_intercept" in out
    assert f"Run read {chain['uri']} version 1 (50 rows;" in out and "content unchanged" in out
    commits = [line for line in out.splitlines() if "WRITE" in line]
    assert len(commits) == 2
    assert "1 ←" in commits[0] and chain["load"] in commits[0] and "10" in commits[0]
    assert commits[1].startswith("│ 0 ") and "40" in commits[1]
    assert "│ 2 " not in out  # the commit after the version read is not part of the chain


def test_lineage_json_for_scripts(runner: CliRunner, chain: dict[str, str]) -> None:
    by_alias = json.loads(_invoke(runner, "lineage", "models:/prices@champion", "--json"))
    assert by_alias["target"] == "models:/prices@champion"
    assert by_alias["model"]["version"] == 1 and by_alias["model"]["aliases"] == ["champion"]
    assert by_alias["run"]["run_id"] == chain["train"] and by_alias["run"]["status"] == "FINISHED"
    assert by_alias["code"]["git_commit"] == "c0ffee12"
    assert by_alias["code"]["entry_point"] == "train"
    assert by_alias["params"] == {"alpha": "0.5", "fit_intercept": "True"}
    [table] = by_alias["tables"]
    assert (table["uri"], table["version"], table["role"]) == (chain["uri"], 1, "input")
    assert [c["version"] for c in table["commits"]] == [1, 0]
    assert [c["run_id"] for c in table["commits"]] == [chain["load"], None]

    by_run = json.loads(_invoke(runner, "lineage", chain["train"], "--commits", "1", "--json"))
    assert by_run["model"] is None and by_run["run"]["run_id"] == chain["train"]
    assert [c["version"] for c in by_run["tables"][0]["commits"]] == [1]
    by_uri = json.loads(_invoke(runner, "lineage", f"runs:/{chain['train']}/model", "--json"))
    assert by_uri["tables"] == by_alias["tables"]


def test_lineage_of_the_load_run_shows_what_it_wrote(
    runner: CliRunner, chain: dict[str, str]
) -> None:
    out = _invoke(runner, "lineage", chain["load"])
    assert f"Run wrote {chain['uri']} version 1" in out
    assert "Parameters" not in out  # the load run logged none


def test_lineage_says_what_is_missing(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    RegistryClient().register_model(str(folder), "loose")
    out = _invoke(runner, "lineage", "models:/loose/1")
    assert "registered without a run" in out
    with cairn.start_run() as run:
        cairn.log_param("alpha", 1)
    assert "The run recorded no table versions" in _invoke(runner, "lineage", run.info.run_id)


def test_lineage_of_a_deleted_table_keeps_the_recorded_version(
    runner: CliRunner, chain: dict[str, str]
) -> None:
    shutil.rmtree(chain["uri"])
    out = _invoke(runner, "lineage", "models:/prices/1")
    assert f"Run read {chain['uri']} version 1 (50 rows;" in out
    assert "cannot read the table now" in out and "is not a Delta table" in out


def test_lineage_flags_a_version_whose_content_changed(
    runner: CliRunner, chain: dict[str, str]
) -> None:
    shutil.rmtree(chain["uri"])
    data.write_table(_listings(3, 5), chain["uri"])
    data.write_table(_listings(3, 6), chain["uri"])  # a version 1 again, with other rows
    out = _invoke(runner, "lineage", "models:/prices/1")
    assert "version 1 (50 rows;" in out and "CONTENT DIFFERS from what the run recorded" in out
    found = json.loads(_invoke(runner, "lineage", "models:/prices/1", "--json"))
    assert found["tables"][0]["content_matches"] is False


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("0123456789abcdef", "Error: Run '0123456789abcdef' does not exist"),
        ("runs:/0123456789abcdef/model", "Error: Run '0123456789abcdef' does not exist"),
        ("models:/nope/1", "Error: Registered model 'nope' does not exist"),
        ("models:/prices/9", "Error: Version 9 of registered model 'prices' does not exist"),
        ("models:/prices@gone", "Error: Registered model 'prices' has no alias 'gone'"),
        ("some/folder", "Error: Cannot trace 'some/folder': give models:/<name>/<version>"),
    ],
)
def test_unknown_or_malformed_targets_exit_1(
    runner: CliRunner, chain: dict[str, str], target: str, message: str
) -> None:
    assert message in _invoke(runner, "lineage", target, code=1)


MLPROJECT = """\
entry_points:
  main:
    parameters:
      table: path
      alpha: {type: float, default: 0.1}
    command: "python train.py {table} {alpha}"
"""

TRAIN_PY = """\
import sys
import cairn
import cairn.sklearn
from cairn.data import read_table
from sklearn.linear_model import Ridge
frame = read_table(sys.argv[1])
model = Ridge(alpha=float(sys.argv[2])).fit(frame[["sqft"]], frame["price"])
cairn.sklearn.log_model(model, "model")
"""


@pytest.mark.slow
def test_lineage_of_a_project_run_names_the_code_commit_and_entry_point(
    runner: CliRunner, tmp_path: Path
) -> None:
    uri = str(tmp_path / "listings")
    data.write_table(_listings(30, 0), uri)
    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(MLPROJECT)
    (project / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "train"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    _invoke(runner, "run", str(project), "-P", f"table={uri}", "-P", "alpha=0.3",
            "--env-manager", "local")  # fmt: skip
    [run] = cairn.TrackingClient().search_runs(["0"])
    _invoke(runner, "models", "register", "-m", f"runs:/{run.info.run_id}/model", "-n", "rent")

    found = json.loads(_invoke(runner, "lineage", "models:/rent/1", "--json"))
    assert found["run"]["run_id"] == run.info.run_id
    assert found["code"]["git_commit"] == head and found["code"]["git_dirty"] == "false"
    assert found["code"]["entry_point"] == "main" and found["code"]["source_type"] == "PROJECT"
    assert found["environment"]["env_manager"] == "local"
    assert found["params"] == {"table": uri, "alpha": "0.3"}
    [table] = found["tables"]
    assert (table["uri"], table["version"], table["num_rows"]) == (uri, 0, 30)
    assert [c["version"] for c in table["commits"]] == [0]
    out = _invoke(runner, "lineage", "models:/rent/1")
    assert head in out and "main" in out and f"Run read {uri} version 0" in out
