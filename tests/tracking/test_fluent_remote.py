"""The fluent API and artifacts against a real tracking server (``cairn.set_tracking_uri(url)``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.entities import RunStatus
from cairn.errors import InvalidParameterError, NotFoundError, UnsafePathError
from cairn.tracking._environment import PACKAGES_ARTIFACT
from cairn.tracking._http_artifacts import HttpArtifactRepository, resolve_proxy_uri
from cairn.tracking.artifacts import get_artifact_repository
from cairn.tracking.stores import get_store
from cairn.tracking.stores.rest import RestStore


@pytest.fixture(autouse=True)
def _spool_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("CAIRN_HTTP_RETRY_SECONDS", "2")


@pytest.fixture(params=["async", "sync"])
def remote(
    request: pytest.FixtureRequest, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("CAIRN_ASYNC_LOGGING", "true" if request.param == "async" else "false")
    cairn.set_tracking_uri(live_server.url)
    return str(live_server.url)


def test_tracking_uri_selects_the_rest_store(remote: str) -> None:
    assert isinstance(get_store(remote), RestStore)


def test_fluent_run_round_trip(remote: str, tmp_path: Path) -> None:
    cairn.set_experiment("remote-fluent")
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several upload/download chunks
    with cairn.start_run(run_name="train", tags={"team": "vision"}) as run:
        cairn.log_param("layers", 3)
        cairn.log_params({"alpha": 0.5, "optimizer": "adam"})
        for step in range(50):
            cairn.log_metric("mae", 1.0 / (step + 1), step=step)
        cairn.log_metrics({"rmse": 0.3, "r2": 0.8}, step=49)
        cairn.set_tag("stage", "dev")
        cairn.log_artifact(str(model), artifact_path="model")
        cairn.log_text("hello", "notes/readme.txt")
        cairn.log_dict({"a": 1}, "config.json")
        artifact_uri = cairn.get_artifact_uri("model/model.bin")
    run_id = run.info.run_id
    assert artifact_uri == f"{run.info.artifact_uri}/model/model.bin"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")

    stored = cairn.get_run(run_id)
    assert stored.info.status is RunStatus.FINISHED
    assert stored.info.end_time is not None
    assert stored.data.params == {"layers": "3", "alpha": "0.5", "optimizer": "adam"}
    assert stored.data.metrics["mae"] == pytest.approx(1 / 50)
    assert stored.data.tags["stage"] == "dev"
    assert stored.data.tags["team"] == "vision"
    history = cairn.TrackingClient().get_metric_history(run_id, "mae")
    assert [m.step for m in history] == list(range(50))

    top = cairn.list_artifacts(run_id=run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("config.json", False),
        ("environment", True),
        ("model", True),
        ("notes", True),
    ]
    assert [(f.path, f.file_size) for f in cairn.list_artifacts("model", run_id=run_id)] == [
        ("model/model.bin", model.stat().st_size)
    ]
    assert [f.path for f in cairn.list_artifacts("environment", run_id=run_id)] == [
        PACKAGES_ARTIFACT
    ]

    one = cairn.download_artifacts("model/model.bin", run_id=run_id, dst_path=tmp_path / "one")
    assert Path(one).read_bytes() == model.read_bytes()
    everything = Path(cairn.download_artifacts(run_id=run_id, dst_path=tmp_path / "all"))
    assert (everything / "notes" / "readme.txt").read_text() == "hello"
    assert (everything / "model" / "model.bin").read_bytes() == model.read_bytes()
    assert (everything / "config.json").read_text().strip().startswith("{")

    with pytest.raises(NotFoundError, match=r"(?i)no (such )?artifact"):
        cairn.download_artifacts("nope.txt", run_id=run_id, dst_path=tmp_path / "x")


def test_search_runs_over_rest(remote: str) -> None:
    cairn.set_experiment("remote-search")
    for alpha in (0.1, 0.5, 0.9):
        with cairn.start_run(run_name=f"alpha-{alpha}", log_system_info=False):
            cairn.log_param("alpha", alpha)
            cairn.log_metric("mae", alpha)
    found = cairn.search_runs(filter_string="metrics.mae > 0.2", order_by=["metrics.mae ASC"])
    assert [r.info.run_name for r in found] == ["alpha-0.5", "alpha-0.9"]
    frame = cairn.search_runs(output_format="pandas", experiment_names=["remote-search"])
    assert sorted(frame["params.alpha"]) == ["0.1", "0.5", "0.9"]


def test_nested_runs_and_resume(remote: str) -> None:
    with (
        cairn.start_run(log_system_info=False) as parent,
        cairn.start_run(nested=True, log_system_info=False) as child,
    ):
        cairn.log_metric("x", 1.0)
    assert cairn.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    with cairn.start_run(run_id=parent.info.run_id, log_system_info=False):
        cairn.log_metric("y", 2.0)
    resumed = cairn.get_run(parent.info.run_id)
    assert resumed.data.metrics["y"] == 2.0
    assert resumed.info.status is RunStatus.FINISHED


def test_artifact_repository_over_http_url(remote: str, tmp_path: Path) -> None:
    with cairn.start_run(log_system_info=False) as run:
        pass
    suffix = run.info.artifact_uri.split(":", 1)[1].lstrip("/")
    url = f"{remote}/api/2.0/mlflow-artifacts/artifacts/{suffix}"
    repository = get_artifact_repository(url)
    assert isinstance(repository, HttpArtifactRepository)
    assert repository.root_uri == url

    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b b.txt").write_text("b")
    (tree / "sub" / "deeper" / "c.txt").write_text("c")
    repository.log_artifacts(tree, "data")
    repository.write_bytes("raw/blob.bin", b"\x00\x01")

    assert [f.path for f in repository.list_artifacts("data")] == ["data/a.txt", "data/sub"]
    assert [f.path for f in repository.list_artifacts("data/sub")] == [
        "data/sub/b b.txt",
        "data/sub/deeper",
    ]
    assert repository.read_bytes("data/sub/b b.txt") == b"b"
    assert repository.read_bytes("raw/blob.bin") == b"\x00\x01"
    assert repository.exists("data/sub/deeper/c.txt")
    assert repository.exists("data/sub")
    assert not repository.exists("data/missing.txt")

    local = Path(repository.download_artifacts("data/sub", tmp_path / "dl"))
    assert (local / "deeper" / "c.txt").read_text() == "c"
    # The same files through the run's own mlflow-artifacts: URI.
    assert get_artifact_repository(run.info.artifact_uri).read_bytes("data/a.txt") == b"a"

    repository.delete_artifacts("data/a.txt")
    assert not repository.exists("data/a.txt")
    repository.delete_artifacts("data/never-there.txt")  # missing is a no-op
    with pytest.raises(NotFoundError, match=r"(?i)no (such )?artifact"):
        repository.read_bytes("data/a.txt")
    with pytest.raises(UnsafePathError, match=r"'\.\.' components"):
        repository.write_text("../escape.txt", "x")
    with pytest.raises(UnsafePathError, match="percent-decoding"):
        repository.read_bytes("data/%2e%2e/%2e%2e/x")


def test_mlflow_artifacts_uri_resolution() -> None:
    assert resolve_proxy_uri("mlflow-artifacts:/1/abc/artifacts", "http://h:5000/") == (
        "http://h:5000",
        "1/abc/artifacts",
    )
    assert resolve_proxy_uri("mlflow-artifacts://other:81/2/x", "https://h") == (
        "https://other:81",
        "2/x",
    )
    url = "https://h/prefix/api/2.0/mlflow-artifacts/artifacts/3/r%20x/artifacts"
    assert resolve_proxy_uri(url) == ("https://h/prefix", "3/r x/artifacts")
    with pytest.raises(InvalidParameterError, match="is not a server"):
        resolve_proxy_uri("mlflow-artifacts:/1/abc/artifacts", "/tmp/local-store")
    with pytest.raises(UnsafePathError, match=r"'\.\.' components"):
        resolve_proxy_uri("mlflow-artifacts:/1/../../etc", "http://h")
