"""The stock ``mlflow`` client against a real Cairn server on 127.0.0.1.

Every value logged through MLflow's fluent API and ``MlflowClient`` is read back through the same
client, so the assertions check the round trip, not just that calls did not fail.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from tests.conftest import LiveServer


@pytest.fixture
def mlflow(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``mlflow`` pointed at the live server; telemetry off, no retries, short timeouts."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    import mlflow as mlflow_module
    from mlflow.tracking import fluent

    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    yield mlflow_module
    while mlflow_module.active_run() is not None:
        mlflow_module.end_run()


def _client(mlflow: ModuleType) -> Any:
    return mlflow.MlflowClient()


def test_experiments(mlflow: ModuleType) -> None:
    from mlflow.exceptions import MlflowException

    client = _client(mlflow)
    exp_id = mlflow.create_experiment("compat-exp", tags={"team": "vision"})
    experiment = mlflow.get_experiment(exp_id)
    assert (experiment.name, experiment.tags) == ("compat-exp", {"team": "vision"})
    assert experiment.lifecycle_stage == "active"
    assert mlflow.get_experiment_by_name("compat-exp").experiment_id == exp_id
    assert mlflow.get_experiment_by_name("no-such-experiment") is None

    names = {e.name for e in mlflow.search_experiments()}
    assert {"Default", "compat-exp"} <= names
    filtered = mlflow.search_experiments(filter_string="name = 'compat-exp'")
    assert [e.experiment_id for e in filtered] == [exp_id]

    assert mlflow.set_experiment("compat-exp").experiment_id == exp_id
    created = mlflow.set_experiment("compat-new")
    assert created.name == "compat-new" and created.experiment_id != exp_id
    client.set_experiment_tag(exp_id, "stage", "dev")
    assert client.get_experiment(exp_id).tags == {"team": "vision", "stage": "dev"}
    with pytest.raises(MlflowException, match="already exists"):
        mlflow.create_experiment("compat-exp")


def test_runs_params_metrics_tags(mlflow: ModuleType) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    client = _client(mlflow)
    exp_id = mlflow.set_experiment("compat-runs").experiment_id
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 4, "kind": "tree"})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.9, "bad": float("nan"), "big": float("inf")}, step=3)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "alice", "temp": "x"})
        mlflow.delete_tag("temp")
        client.log_batch(
            parent.info.run_id,
            metrics=[Metric("batch", float(i), 1_700_000_000_000 + i, i) for i in range(5)],
            params=[Param("batch_param", "b")],
            tags=[RunTag("batch_tag", "t")],
        )
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 2.0)
        with pytest.raises(MlflowException, match="write-once"):
            mlflow.log_param("lr", 0.02)

    run = mlflow.get_run(parent.info.run_id)
    assert run.info.experiment_id == exp_id
    assert (run.info.run_name, run.info.status) == ("parent", "FINISHED")
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.data.params == {
        "lr": "0.01",
        "depth": "4",
        "kind": "tree",
        "batch_param": "b",
    }
    assert run.data.metrics["loss"] == 0.5
    assert run.data.metrics["acc"] == 0.9
    assert math.isnan(run.data.metrics["bad"])
    assert run.data.metrics["big"] == math.inf
    assert run.data.metrics["batch"] == 4.0
    assert run.data.tags["stage"] == "dev"
    assert run.data.tags["owner"] == "alice"
    assert run.data.tags["batch_tag"] == "t"
    assert "temp" not in run.data.tags

    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]
    batch = client.get_metric_history(parent.info.run_id, "batch")
    assert [(m.step, m.value, m.timestamp) for m in batch] == [
        (i, float(i), 1_700_000_000_000 + i) for i in range(5)
    ]

    child_run = mlflow.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child_run.data.metrics == {"child_metric": 2.0}
    assert child_run.info.status == "FINISHED"

    with pytest.raises(MlflowException, match="does not exist") as raised:
        client.get_run("0" * 32)
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_runs_filters_and_ordering(mlflow: ModuleType) -> None:
    client = _client(mlflow)
    exp_id = mlflow.set_experiment("compat-search").experiment_id
    ids = {}
    for name, acc, model in (("a", 0.2, "linear"), ("b", 0.9, "tree"), ("c", 0.5, "tree")):
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_metric("acc", acc)
            mlflow.log_param("model", model)
            mlflow.set_tag("group", "g1" if name != "c" else "g2")
            ids[name] = run.info.run_id

    frame = mlflow.search_runs(
        experiment_ids=[exp_id], filter_string="metrics.acc > 0.3", order_by=["metrics.acc DESC"]
    )
    assert list(frame["run_id"]) == [ids["b"], ids["c"]]
    assert list(frame["metrics.acc"]) == [0.9, 0.5]
    assert list(frame["params.model"]) == ["tree", "tree"]
    assert list(frame["tags.mlflow.runName"]) == ["b", "c"]

    runs = mlflow.search_runs(
        experiment_names=["compat-search"],
        filter_string="params.model = 'tree' and tags.group = 'g1'",
        output_format="list",
    )
    assert [r.info.run_id for r in runs] == [ids["b"]]
    ascending = mlflow.search_runs(
        experiment_ids=[exp_id], order_by=["metrics.acc ASC"], output_format="list"
    )
    assert [r.data.metrics["acc"] for r in ascending] == [0.2, 0.5, 0.9]
    by_name = client.search_runs([exp_id], order_by=["attributes.run_name DESC"], max_results=2)
    assert [r.info.run_name for r in by_name] == ["c", "b"]
    assert by_name.token
    rest = client.search_runs(
        [exp_id], order_by=["attributes.run_name DESC"], max_results=2, page_token=by_name.token
    )
    assert [r.info.run_name for r in rest] == ["a"]

    client.delete_run(ids["a"])
    assert client.get_run(ids["a"]).info.lifecycle_stage == "deleted"
    active = mlflow.search_runs(experiment_ids=[exp_id], output_format="list")
    assert {r.info.run_id for r in active} == {ids["b"], ids["c"]}
    from mlflow.entities import ViewType

    deleted = mlflow.search_runs(
        experiment_ids=[exp_id], run_view_type=ViewType.DELETED_ONLY, output_format="list"
    )
    assert [r.info.run_id for r in deleted] == [ids["a"]]
    client.restore_run(ids["a"])
    assert client.get_run(ids["a"]).info.lifecycle_stage == "active"
    assert len(mlflow.search_runs(experiment_ids=[exp_id])) == 3


def test_artifacts(mlflow: ModuleType, tmp_path: Path) -> None:
    client = _client(mlflow)
    source = tmp_path / "source"
    (source / "nested" / "deeper").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "nested" / "b.json").write_text('{"b": 1}')
    (source / "nested" / "deeper" / "c.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    single = tmp_path / "single.txt"
    single.write_text("just one file")

    mlflow.set_experiment("compat-artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="docs")
        mlflow.log_artifacts(str(source), artifact_path="tree")
        mlflow.log_text("some text", "texts/t.txt")
        mlflow.log_dict({"k": [1, 2]}, "config.json")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("config.json", False),
        ("docs", True),
        ("single.txt", False),
        ("texts", True),
        ("tree", True),
    ]
    assert {f.path: f.file_size for f in top}["single.txt"] == len("just one file")
    nested = client.list_artifacts(run_id, "tree/nested")
    assert [(f.path, f.is_dir) for f in nested] == [
        ("tree/nested/b.json", False),
        ("tree/nested/deeper", True),
    ]
    assert [
        f.path for f in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="docs")
    ] == ["docs/single.txt"]

    whole = client.download_artifacts(run_id, "tree", str(tmp_path / "dl1"))
    downloaded = Path(whole)
    assert (downloaded / "a.txt").read_text() == "alpha"
    assert (downloaded / "nested" / "b.json").read_text() == '{"b": 1}'
    blob = (source / "nested" / "deeper" / "c.bin").read_bytes()
    assert (downloaded / "nested" / "deeper" / "c.bin").read_bytes() == blob

    one = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="docs/single.txt", dst_path=str(tmp_path / "dl2")
    )
    assert Path(one).read_text() == "just one file"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/t.txt") == "some text"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"k": [1, 2]}
    everything = mlflow.artifacts.download_artifacts(
        artifact_uri=run.info.artifact_uri, dst_path=str(tmp_path / "dl3")
    )
    assert sorted(os.listdir(everything)) == ["config.json", "docs", "single.txt", "texts", "tree"]


def test_log_input_dataset(mlflow: ModuleType) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0]})
    dataset = mlflow.data.from_pandas(frame, name="train-set", targets="y")
    mlflow.set_experiment("compat-inputs")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    logged = inputs[0]
    assert logged.dataset.name == "train-set"
    assert logged.dataset.digest == dataset.digest
    assert logged.dataset.source_type == dataset.source.__class__._get_source_type()
    assert logged.dataset.schema == dataset.to_dict()["schema"]
    assert logged.dataset.profile == dataset.to_dict()["profile"]
    assert {t.key: t.value for t in logged.tags} == {"mlflow.data.context": "training"}


def test_sklearn_log_model_and_load(mlflow: ModuleType) -> None:
    import numpy as np
    import pandas as pd
    from mlflow.entities import LoggedModelStatus
    from sklearn.linear_model import LinearRegression

    client = _client(mlflow)
    features = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    target = np.array([1.0, 2.5, 3.0, 4.5])
    model = LinearRegression().fit(features, target)
    exp_id = mlflow.set_experiment("compat-models").experiment_id
    with mlflow.start_run() as run:
        mlflow.log_param("fit_intercept", True)
        mlflow.log_metric("r2", 0.97)  # step 0: log_model links it to the model
        info = mlflow.sklearn.log_model(model, name="model", input_example=features.head(2))
    run_id = run.info.run_id

    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert (logged.name, logged.source_run_id, logged.experiment_id) == ("model", run_id, exp_id)
    assert (
        logged.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{info.model_id}/artifacts"
    )
    assert logged.params["fit_intercept"] == "True"
    assert [(m.key, m.value, m.run_id) for m in logged.metrics] == [("r2", 0.97, run_id)]
    assert [o.model_id for o in mlflow.get_run(run_id).outputs.model_outputs] == [info.model_id]
    assert [m.value for m in client.get_metric_history(run_id, "r2")] == [0.97]  # not doubled
    found = mlflow.search_logged_models(
        experiment_ids=[exp_id], filter_string="name = 'model'", output_format="list"
    )
    assert [m.model_id for m in found] == [info.model_id]
    model_files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= model_files

    loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    predictions = loaded.predict(features)
    np.testing.assert_allclose(predictions, model.predict(features))
    by_id = mlflow.sklearn.load_model(f"models:/{info.model_id}")
    np.testing.assert_allclose(by_id.coef_, model.coef_)


def test_forced_multipart_upload_falls_back_to_one_put(
    mlflow: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Cairn declines MLflow's multipart upload in the words that make the client use one PUT."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1")
    payload = tmp_path / "weights.bin"
    payload.write_bytes(os.urandom(300_000))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(payload), artifact_path="big")
    local = _client(mlflow).download_artifacts(
        run.info.run_id, "big/weights.bin", str(tmp_path / "d")
    )
    assert Path(local).read_bytes() == payload.read_bytes()
