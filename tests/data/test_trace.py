"""Tracing a model version to its run, code, parameters and the table commits it was trained on."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

import cairn
from cairn import data
from cairn.data.trace import trace
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.models.registry import RegistryClient

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _sqlite_store(sqlite_uri: str) -> None:
    cairn.set_tracking_uri(sqlite_uri)


def _rows(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sqft = rng.normal(0, 1, n) * scale
    return pd.DataFrame({"sqft": sqft, "price": 2 * sqft + rng.normal(0, 0.1, n)})


@pytest.fixture
def table(tmp_path: Path) -> tuple[str, str]:
    """(uri, loader run id): v0 written outside a run, v1 appended by the loader run."""
    uri = str(tmp_path / "listings")
    data.write_table(_rows(50, 0), uri)
    with cairn.start_run(run_name="load") as loader:
        data.write_table(_rows(20, 1), uri)
    return uri, loader.info.run_id


def _train(uri: str, version: int, name: str = "prices") -> str:
    """A training run that reads ``version``, logs and registers a model; returns the run id."""
    from sklearn.linear_model import LinearRegression

    import cairn.sklearn

    with cairn.start_run(run_name="train", tags={"mlflow.source.git.commit": "abc123"}) as run:
        frame = data.read_table(uri, version=version)
        cairn.log_params({"alpha": 0.5, "features": "sqft"})
        model = LinearRegression().fit(frame[["sqft"]], frame["price"])
        cairn.sklearn.log_model(model, "model")
    cairn.register_model(f"runs:/{run.info.run_id}/model", name)
    return run.info.run_id


def test_a_model_traces_to_the_commits_of_the_version_its_run_read(table: tuple[str, str]) -> None:
    uri, loader = table
    run_id = _train(uri, 1)
    data.write_table(_rows(10, 2, scale=1000.0), uri)  # a later commit the run never saw

    found = trace("models:/prices/1")

    assert found.model is not None and (found.model.name, found.model.version) == ("prices", 1)
    assert found.run is not None and found.run.info.run_id == run_id
    assert found.params == {"alpha": "0.5", "features": "sqft"}
    assert found.code["git_commit"] == "abc123" and found.code["entry_point"] is None
    assert found.environment["python"]  # every run records its interpreter
    [read] = found.tables
    assert (read.table.uri, read.table.version, read.table.role) == (uri, 1, "input")
    assert read.table.num_rows == 70 and read.content_matches is True and read.error is None
    assert [c.version for c in read.commits] == [1, 0]
    assert [c.run_id for c in read.commits] == [loader, None]
    assert [c.operation for c in read.commits] == ["WRITE", "WRITE"]
    assert read.commits[0].metrics["num_added_rows"] == 20
    assert read.commits[0].user


def test_every_way_of_naming_the_model_or_run_reaches_the_same_run(table: tuple[str, str]) -> None:
    uri, _ = table
    run_id = _train(uri, 0)
    RegistryClient().set_registered_model_alias("prices", "champion", 1)
    targets = [
        "models:/prices/1",
        "models:/prices@champion",
        "models:/prices/latest",
        f"runs:/{run_id}/model",
        run_id,
        f"  {run_id}\n",
    ]
    for target in targets:
        found = trace(target)
        assert found.run is not None and found.run.info.run_id == run_id, target
        assert [t.table.version for t in found.tables] == [0], target
    assert trace("models:/prices@champion").to_dict()["model"]["aliases"] == ["champion"]
    assert trace(run_id).model is None


def test_commits_are_limited_to_the_newest_before_the_version_read(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    for seed in range(6):
        data.write_table(_rows(3, seed), uri)
    with cairn.start_run() as run:
        data.read_table(uri, version=4)
    run_id = run.info.run_id
    assert [c.version for c in trace(run_id, commits=2).tables[0].commits] == [4, 3]
    assert [c.version for c in trace(run_id, commits=10).tables[0].commits] == [4, 3, 2, 1, 0]
    assert trace(run_id, commits=0).tables[0].commits == ()
    with pytest.raises(InvalidParameterError, match="commits must be a non-negative integer"):
        trace(run_id, commits=-1)


def test_outputs_are_traced_after_inputs(table: tuple[str, str], tmp_path: Path) -> None:
    uri, _ = table
    out = str(tmp_path / "scored")
    with cairn.start_run() as run:
        frame = data.read_table(uri)
        data.write_table(frame.assign(score=frame["sqft"]), out)
    found = trace(run.info.run_id)
    assert [(t.table.uri, t.table.role) for t in found.tables] == [(uri, "input"), (out, "output")]
    [commit] = found.tables[1].commits
    assert commit.run_id == run.info.run_id and commit.version == 0


def test_project_tags_become_code_and_environment(tmp_path: Path) -> None:
    tags = {
        "mlflow.source.name": "https://example.com/repo.git",
        "mlflow.source.type": "PROJECT",
        "mlflow.source.git.commit": "deadbeef",
        "cairn.source.git.dirty": "true",
        "mlflow.project.entryPoint": "train",
        "cairn.project.command": "python train.py --alpha 0.5",
        "mlflow.project.env": "uv",
        "cairn.project.env_hash": "e3b0c442",
        "cairn.project.python": "3.11.7",
        "mlflow.project.backend": "local",
        "cairn.project.reproduces": "0" * 32,
    }
    with cairn.start_run(tags=tags, log_system_info=False) as run:
        cairn.log_param("alpha", "0.5")
    found = trace(run.info.run_id).to_dict()
    assert found["code"] == {
        "source_name": "https://example.com/repo.git",
        "source_type": "PROJECT",
        "git_commit": "deadbeef",
        "git_repo_url": None,
        "git_dirty": "true",
        "git_version": None,
        "entry_point": "train",
        "command": "python train.py --alpha 0.5",
    }
    assert found["environment"] == {
        "env_manager": "uv",
        "env_hash": "e3b0c442",
        "python": "3.11.7",
        "docker_image": None,
        "backend": "local",
    }
    assert found["run"]["reproduces"] == "0" * 32
    assert found["params"] == {"alpha": "0.5"} and found["tables"] == []


def test_to_dict_has_the_documented_keys(table: tuple[str, str]) -> None:
    uri, _ = table
    _train(uri, 1)
    found = trace("models:/prices/1").to_dict()
    assert list(found) == ["target", "model", "run", "code", "environment", "params", "tables"]
    assert set(found["model"]) == {
        "name",
        "version",
        "aliases",
        "source",
        "run_id",
        "creation_timestamp",
    }
    assert set(found["run"]) == {
        "run_id",
        "run_name",
        "experiment_id",
        "status",
        "user",
        "start_time",
        "end_time",
        "reproduces",
    }
    assert set(found["tables"][0]) == {
        "uri",
        "version",
        "role",
        "name",
        "digest",
        "num_rows",
        "schema_hash",
        "content_digest",
        "context",
        "content_matches",
        "error",
        "commits",
    }
    assert set(found["tables"][0]["commits"][0]) == {
        "version",
        "timestamp_ms",
        "time",
        "operation",
        "user",
        "run_id",
        "parameters",
        "metrics",
    }


def test_a_model_registered_without_a_run_stops_at_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    RegistryClient().register_model(str(folder), "loose")
    found = trace("models:/loose/1")
    assert found.model is not None and found.model.source == str(folder)
    assert found.run is None and found.tables == ()
    assert found.to_dict()["run"] is None and found.to_dict()["params"] == {}


def test_a_deleted_table_keeps_what_the_run_recorded(table: tuple[str, str]) -> None:
    uri, _ = table
    run_id = _train(uri, 1)
    shutil.rmtree(uri)
    [read] = trace(run_id).tables
    assert (read.table.version, read.table.num_rows) == (1, 70)
    assert read.commits == () and read.content_matches is None
    assert read.error is not None and "is not a Delta table" in read.error


def test_a_table_recreated_at_the_same_path_is_flagged(table: tuple[str, str]) -> None:
    uri, _ = table
    run_id = _train(uri, 1)
    shutil.rmtree(uri)
    data.write_table(_rows(5, 7), uri)
    [read] = trace(run_id).tables
    assert read.error is not None and "has no version 1" in read.error
    data.write_table(_rows(5, 8), uri)  # now version 1 exists again, with other content
    [read] = trace(run_id).tables
    assert read.error is None and read.content_matches is False
    assert [c.version for c in read.commits] == [1, 0]


def test_unknown_runs_and_models_are_not_found(table: tuple[str, str]) -> None:
    uri, _ = table
    _train(uri, 0)
    with pytest.raises(NotFoundError, match="Run 'f00' does not exist"):
        trace("f00")
    with pytest.raises(NotFoundError, match="Run 'f00' does not exist"):
        trace("runs:/f00/model")
    with pytest.raises(NotFoundError, match="Registered model 'nope' does not exist"):
        trace("models:/nope/1")
    with pytest.raises(
        NotFoundError, match="Version 7 of registered model 'prices' does not exist"
    ):
        trace("models:/prices/7")
    with pytest.raises(NotFoundError, match="Registered model 'prices' has no alias 'missing'"):
        trace("models:/prices@missing")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("", "Cannot trace ''"),
        ("some/path", "Cannot trace 'some/path'"),
        ("s3://bucket/model", "Cannot trace 's3://bucket/model'"),
        ("models:/prices/one", "the version must be a number or 'latest'"),
        ("models:/", "bad model URI"),
        ("runs:/", "bad model URI"),
    ],
)
def test_malformed_targets_are_refused(target: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        trace(target)


def test_tracing_through_a_tracking_server(live_server: Any, tmp_path: Path) -> None:
    """Inputs and registry go over REST; the trace reads them back through the same server."""
    cairn.set_tracking_uri(live_server.url)
    uri = str(tmp_path / "listings")
    data.write_table(_rows(30, 0), uri)
    with cairn.start_run() as run:
        data.read_table(uri)
        cairn.log_param("alpha", 1)
        cairn.log_text("weights", "model/weights.txt")
    RegistryClient(live_server.url).register_model(f"runs:/{run.info.run_id}/model", "remote")
    found = trace("models:/remote/1", tracking_uri=live_server.url)
    assert found.run is not None and found.run.info.run_id == run.info.run_id
    assert found.params == {"alpha": "1"}
    [read] = found.tables
    assert (read.table.uri, read.table.version, read.content_matches) == (uri, 0, True)
    assert [c.version for c in read.commits] == [0]
    with pytest.raises(NotFoundError, match="Registered model 'nope' does not exist"):
        trace("models:/nope/1", tracking_uri=live_server.url)


def test_a_model_whose_run_is_gone_says_so(tmp_path: Path) -> None:
    client = RegistryClient()
    client.create_registered_model("orphan")
    client.create_model_version("orphan", str(tmp_path), run_id="0badc0de")
    with pytest.raises(NotFoundError, match="version 1 of 'orphan'\\) was made by run '0badc0de'"):
        trace("models:/orphan/1")
