"""The run routes in-process: MLflow's bodies and answers, error JSON, limits, idempotency."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from cairn.server import ServerSettings, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

API = "/api/2.0/mlflow"
CAIRN = "/api/2.0/cairn"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings(backend_store_uri=str(tmp_path)))) as test_client:
        yield test_client


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


def _post(client: TestClient, path: str, body: Any) -> Any:
    return _ok(client.post(f"{API}/{path}", json=body))


def _new_run(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"experiment_id": "0", **fields}
    run: dict[str, Any] = _post(client, "runs/create", body)["run"]
    return run


def _get_run(client: TestClient, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = _ok(client.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    return run


def _history(client: TestClient, run_id: str, key: str, **params: Any) -> Any:
    query = {"run_id": run_id, "metric_key": key, **params}
    return _ok(client.get(f"{API}/metrics/get-history", params=query))


def test_create_get_update_run(client: TestClient) -> None:
    exp_id = _post(client, "experiments/create", {"name": "e"})["experiment_id"]
    run = _new_run(
        client,
        experiment_id=exp_id,
        user_id="alice",
        run_name="first",
        start_time=1_700_000_000_000,
        tags=[{"key": "team", "value": "vision"}],
    )
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert (info["experiment_id"], info["user_id"], info["run_name"]) == (exp_id, "alice", "first")
    assert (info["status"], info["lifecycle_stage"]) == ("RUNNING", "active")
    assert info["start_time"] == 1_700_000_000_000
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{info['run_id']}/artifacts"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags == {"team": "vision", "mlflow.runName": "first"}

    fetched = _ok(client.get(f"{API}/runs/get", params={"run_uuid": info["run_id"]}))["run"]
    assert fetched["info"] == info
    assert fetched["inputs"] == {"dataset_inputs": []}

    updated = _post(
        client,
        "runs/update",
        {"run_uuid": info["run_id"], "status": "FINISHED", "end_time": 1_700_000_005_000},
    )["run_info"]
    assert (updated["status"], updated["end_time"]) == ("FINISHED", 1_700_000_005_000)
    renamed = _post(client, "runs/update", {"run_id": info["run_id"], "run_name": "second"})
    assert renamed["run_info"]["run_name"] == "second"
    again = _get_run(client, info["run_id"])
    assert {t["key"]: t["value"] for t in again["data"]["tags"]}["mlflow.runName"] == "second"
    assert again["info"]["end_time"] == 1_700_000_005_000


def test_run_name_comes_from_tag_or_is_generated(client: TestClient) -> None:
    named = _new_run(client, tags=[{"key": "mlflow.runName", "value": "from-tag"}])
    assert named["info"]["run_name"] == "from-tag"
    generated = _new_run(client)["info"]["run_name"]
    assert generated and "-" in generated


def test_metrics_params_tags_round_trip(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    _post(client, "runs/log-metric", {"run_id": run_id, "key": "loss", "value": 0.5, "step": 1})
    _post(
        client,
        "runs/log-metric",
        {"run_uuid": run_id, "key": "loss", "value": "NaN", "timestamp": 5, "step": 2},
    )
    _post(client, "runs/log-metric", {"run_id": run_id, "key": "inf", "value": "Infinity"})
    _post(client, "runs/log-metric", {"run_id": run_id, "key": "int", "value": 3, "step": 0})
    _post(client, "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"})
    _post(client, "runs/log-parameter", {"run_uuid": run_id, "key": "lr", "value": "0.01"})
    _post(client, "runs/set-tag", {"run_id": run_id, "key": "stage", "value": "dev"})
    _post(client, "runs/set-tag", {"run_id": run_id, "key": "stage", "value": "prod"})
    _post(client, "runs/set-tag", {"run_id": run_id, "key": "gone", "value": "x"})
    _post(client, "runs/delete-tag", {"run_id": run_id, "key": "gone"})

    data = _get_run(client, run_id)["data"]
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["loss"]["value"] == "NaN" and metrics["loss"]["step"] == 2
    assert metrics["inf"]["value"] == "Infinity"
    assert metrics["int"]["value"] == 3.0
    assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.01"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["stage"] == "prod" and "gone" not in tags

    history = _history(client, run_id, "loss")
    assert [(m["value"], m["step"]) for m in history["metrics"]] == [(0.5, 1), ("NaN", 2)]
    assert history["metrics"][1]["timestamp"] == 5
    assert "next_page_token" not in history


def test_metric_history_pages(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    metrics = [{"key": "m", "value": i / 10, "timestamp": i, "step": i} for i in range(5)]
    _post(client, "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    first = _history(client, run_id, "m", max_results=3)
    assert [m["step"] for m in first["metrics"]] == [0, 1, 2]
    rest = _history(client, run_id, "m", max_results=3, page_token=first["next_page_token"])
    assert [m["value"] for m in rest["metrics"]] == [0.3, 0.4]
    assert "next_page_token" not in rest
    by_uuid = _ok(
        client.get(f"{API}/metrics/get-history", params={"run_uuid": run_id, "metric_key": "m"})
    )
    assert len(by_uuid["metrics"]) == 5
    assert _history(client, run_id, "unknown") == {"metrics": []}


def test_log_batch(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "acc", "value": 0.7, "timestamp": 10, "step": 0},
            {"key": "acc", "value": 0.9, "timestamp": 20, "step": 1},
            {"key": "neg", "value": "-Infinity", "timestamp": 10},
        ],
        "params": [{"key": "depth", "value": "4"}, {"key": "empty", "value": ""}],
        "tags": [{"key": "t", "value": "1"}],
    }
    assert _post(client, "runs/log-batch", body) == {}
    data = _get_run(client, run_id)["data"]
    assert {m["key"]: m["value"] for m in data["metrics"]} == {"acc": 0.9, "neg": "-Infinity"}
    assert {p["key"]: p["value"] for p in data["params"]} == {"depth": "4", "empty": ""}
    assert {"key": "t", "value": "1"} in data["tags"]


@pytest.mark.parametrize(
    ("counts", "what"),
    [
        ((1001, 0, 0), "1000 metrics, got 1001"),
        ((0, 101, 0), "100 params, got 101"),
        ((0, 0, 101), "100 tags, got 101"),
        ((900, 100, 1), "1000 entries in total, got 1001"),
    ],
)
def test_log_batch_over_limits_is_refused(
    client: TestClient, counts: tuple[int, int, int], what: str
) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    n_metrics, n_params, n_tags = counts
    body = {
        "run_id": run_id,
        "metrics": [{"key": f"m{i}", "value": i, "timestamp": 1} for i in range(n_metrics)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(n_params)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(n_tags)],
    }
    message = _error(
        client.post(f"{API}/runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE"
    )
    assert what in message
    assert _get_run(client, run_id)["data"]["metrics"] == []  # nothing of it was applied


def test_batch_at_the_limits_is_accepted(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(800)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(100)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(100)],
    }
    _post(client, "runs/log-batch", body)
    assert len(_history(client, run_id, "m")["metrics"]) == 800


def test_param_overwrite_is_refused(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    _post(client, "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    message = _error(
        client.post(
            f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "1"}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "already '0.1'" in message and "write-once" in message
    batch = {"run_id": run_id, "params": [{"key": "lr", "value": "2"}]}
    _error(client.post(f"{API}/runs/log-batch", json=batch), 400, "INVALID_PARAMETER_VALUE")
    assert _get_run(client, run_id)["data"]["params"] == [{"key": "lr", "value": "0.1"}]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "runs/get", {"run_id": "0" * 32}),
        ("POST", "runs/update", {"run_id": "0" * 32, "status": "FINISHED"}),
        ("POST", "runs/delete", {"run_id": "0" * 32}),
        ("POST", "runs/restore", {"run_id": "0" * 32}),
        ("POST", "runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": 1}),
        ("POST", "runs/log-parameter", {"run_id": "0" * 32, "key": "p", "value": "1"}),
        ("POST", "runs/set-tag", {"run_id": "0" * 32, "key": "t", "value": "1"}),
        ("POST", "runs/delete-tag", {"run_id": "0" * 32, "key": "t"}),
        ("POST", "runs/log-batch", {"run_id": "0" * 32, "tags": [{"key": "t", "value": "1"}]}),
        ("GET", "metrics/get-history", {"run_id": "0" * 32, "metric_key": "m"}),
        ("GET", "artifacts/list", {"run_id": "0" * 32}),
        ("POST", "runs/outputs", {"run_id": "0" * 32, "models": []}),
        ("POST", "runs/log-inputs", {"run_id": "0" * 32}),
    ],
)
def test_unknown_run_is_404(client: TestClient, method: str, path: str, body: Any) -> None:
    if method == "GET":
        response = client.get(f"{API}/{path}", params=body)
    else:
        response = client.post(f"{API}/{path}", json=body)
    message = _error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert f"Run '{'0' * 32}' does not exist" in message


def test_missing_tag_and_unknown_experiment(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    message = _error(
        client.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "has no tag 'nope'" in message
    message = _error(
        client.post(f"{API}/runs/create", json={"experiment_id": "42"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "Experiment '42' does not exist" in message


def test_malformed_json_and_wrong_types(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    bad = client.post(
        f"{API}/runs/log-metric",
        content=b'{"run_id": "x", "key": ',
        headers={"content-type": "application/json"},
    )
    assert "Malformed JSON" in _error(bad, 400, "INVALID_PARAMETER_VALUE")
    not_object = client.post(f"{API}/runs/log-batch", json=[1, 2])
    _error(not_object, 400, "INVALID_PARAMETER_VALUE")

    cases: list[tuple[str, dict[str, Any], str]] = [
        ("runs/log-metric", {"run_id": run_id, "key": 5, "value": 1}, "'key'"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": "abc"}, "'value'"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": None}, "'value'"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": True}, "'value'"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "step": "x"}, "'step'"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "step": 1.5}, "'step'"),
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": 3}, "'value'"),
        ("runs/log-batch", {"run_id": run_id, "metrics": {"key": "m"}}, "'metrics'"),
        ("runs/log-batch", {"run_id": run_id, "params": [{"value": "v"}]}, "'params.0.key'"),
        ("runs/search", {"experiment_ids": "0"}, "'experiment_ids'"),
        ("runs/search", {"experiment_ids": ["0"], "run_view_type": "SOME"}, "'run_view_type'"),
        ("runs/update", {"run_id": run_id, "status": "DONE"}, "'status'"),
        ("runs/create", {"experiment_id": "0", "start_time": "soon"}, "'start_time'"),
        ("runs/create", {"experiment_id": "0", "start_time": 2**63}, "'start_time'"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "step": 10**30}, "'step'"),
        ("runs/update", {"run_id": run_id, "end_time": -(2**64)}, "'end_time'"),
        ("runs/create", {"experiment_id": "0", "tags": [{"key": 1}]}, "'tags.0.key'"),
    ]
    for path, body, names in cases:
        message = _error(client.post(f"{API}/{path}", json=body), 400, "INVALID_PARAMETER_VALUE")
        assert names in message, (path, body, message)
    bad_name = {"run_id": run_id, "key": "bad\nname", "value": 1}
    assert "Invalid metric name" in _error(
        client.post(f"{API}/runs/log-metric", json=bad_name), 400, "INVALID_PARAMETER_VALUE"
    )


def test_missing_fields(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("runs/log-metric", {"key": "m", "value": 1}, "run_id"),
        ("runs/log-metric", {"run_id": run_id, "value": 1}, "key"),
        ("runs/log-metric", {"run_id": run_id, "key": "m"}, "value"),
        ("runs/log-parameter", {"run_id": run_id, "value": "1"}, "key"),
        ("runs/set-tag", {"value": "1", "key": "k"}, "run_id"),
        ("runs/delete", {}, "run_id"),
        ("runs/create", {}, "experiment_id"),
        ("runs/log-model", {"run_id": run_id}, "model_json"),
    ]
    for path, body, name in cases:
        message = _error(client.post(f"{API}/{path}", json=body), 400, "INVALID_PARAMETER_VALUE")
        assert f"Missing value for required parameter '{name}'" in message, (path, message)
    for path in ("runs/get", "metrics/get-history"):
        response = client.get(f"{API}/{path}", params={"metric_key": "m"})
        message = _error(response, 400, "INVALID_PARAMETER_VALUE")
        assert "Missing value for required parameter 'run_id'" in message
    response = client.get(f"{API}/metrics/get-history", params={"run_id": run_id})
    assert "'metric_key'" in _error(response, 400, "INVALID_PARAMETER_VALUE")


def test_finished_and_deleted_runs(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    _post(client, "runs/update", {"run_id": run_id, "status": "FINISHED"})
    finished = client.post(
        f"{API}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1}
    )
    assert "is FINISHED" in _error(finished, 400, "INVALID_STATE")
    _post(client, "runs/set-tag", {"run_id": run_id, "key": "note", "value": "tags still work"})

    _post(client, "runs/delete", {"run_id": run_id})
    assert _get_run(client, run_id)["info"]["lifecycle_stage"] == "deleted"
    tagged = client.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"})
    assert "is deleted" in _error(tagged, 400, "INVALID_STATE")
    _post(client, "runs/restore", {"run_uuid": run_id})
    assert _get_run(client, run_id)["info"]["lifecycle_stage"] == "active"


def test_search_runs(client: TestClient) -> None:
    exp_id = _post(client, "experiments/create", {"name": "search"})["experiment_id"]
    ids = []
    for i, acc in enumerate([0.2, 0.9, 0.5]):
        run_id = _new_run(client, experiment_id=exp_id, run_name=f"r{i}")["info"]["run_id"]
        _post(
            client,
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": acc, "timestamp": 1}],
                "params": [{"key": "model", "value": "tree" if i else "linear"}],
            },
        )
        ids.append(run_id)
    _post(client, "runs/delete", {"run_id": ids[0]})

    def search(**body: Any) -> Any:
        return _post(client, "runs/search", {"experiment_ids": [exp_id], **body})

    found = search(filter="metrics.acc > 0.3", order_by=["metrics.acc DESC"])
    assert [r["info"]["run_id"] for r in found["runs"]] == [ids[1], ids[2]]
    assert "next_page_token" not in found
    assert [
        r["info"]["run_name"] for r in search(order_by=["attributes.run_name ASC"])["runs"]
    ] == [
        "r1",
        "r2",
    ]
    assert search(filter="params.model = 'linear'")["runs"] == []
    deleted = search(run_view_type="DELETED_ONLY")["runs"]
    assert [r["info"]["run_id"] for r in deleted] == [ids[0]]
    assert len(search(run_view_type="ALL")["runs"]) == 3

    page = search(run_view_type="ALL", max_results=2, order_by=["metrics.acc ASC"])
    assert [r["info"]["run_id"] for r in page["runs"]] == [ids[0], ids[2]]
    rest = search(
        run_view_type="ALL",
        max_results=2,
        order_by=["metrics.acc ASC"],
        page_token=page["next_page_token"],
    )
    assert [r["info"]["run_id"] for r in rest["runs"]] == [ids[1]]

    for max_results in (0, 50_001):
        response = client.post(
            f"{API}/runs/search", json={"experiment_ids": [exp_id], "max_results": max_results}
        )
        assert "'max_results'" in _error(response, 400, "INVALID_PARAMETER_VALUE")
    syntax = client.post(
        f"{API}/runs/search", json={"experiment_ids": [exp_id], "filter": "metrics.acc >> 1"}
    )
    _error(syntax, 400, "INVALID_PARAMETER_VALUE")
    bad_token = client.post(
        f"{API}/runs/search", json={"experiment_ids": [exp_id], "page_token": "garbage"}
    )
    assert "Invalid page token" in _error(bad_token, 400, "INVALID_PARAMETER_VALUE")


def test_log_inputs(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    dataset = {
        "name": "train",
        "digest": "abc123",
        "source_type": "local",
        "source": '{"uri": "/data/train.csv"}',
        "schema": '{"mlflow_colspec": []}',
        "profile": '{"num_rows": 3}',
    }
    body = {
        "run_id": run_id,
        "datasets": [
            {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}
        ],
    }
    _post(client, "runs/log-inputs", body)
    _post(client, "runs/log-inputs", body)  # the same dataset again is recorded once
    inputs = _get_run(client, run_id)["inputs"]["dataset_inputs"]
    assert inputs == [
        {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}
    ]
    no_digest = {"run_id": run_id, "datasets": [{"dataset": {"name": "x"}}]}
    message = _error(
        client.post(f"{API}/runs/log-inputs", json=no_digest), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "'datasets.0.dataset.digest'" in message
    long_name = {"run_id": run_id, "datasets": [{"dataset": {"name": "x" * 501, "digest": "d"}}]}
    _error(client.post(f"{API}/runs/log-inputs", json=long_name), 400, "INVALID_PARAMETER_VALUE")


def test_log_model_appends_history(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    model = {
        "artifact_path": "model",
        "flavors": {"python_function": {}},
        "utc_time_created": "2026-11-24 00:00:00",
        "run_id": run_id,
    }
    _post(client, "runs/log-model", {"run_id": run_id, "model_json": json.dumps(model)})
    second = {**model, "artifact_path": "other"}
    _post(client, "runs/log-model", {"run_uuid": run_id, "model_json": json.dumps(second)})
    tags = {t["key"]: t["value"] for t in _get_run(client, run_id)["data"]["tags"]}
    assert json.loads(tags["mlflow.log-model.history"]) == [model, second]

    not_json = {"run_id": run_id, "model_json": "{nope"}
    assert "not JSON" in _error(
        client.post(f"{API}/runs/log-model", json=not_json), 400, "INVALID_PARAMETER_VALUE"
    )
    partial = {"run_id": run_id, "model_json": json.dumps({"artifact_path": "m"})}
    message = _error(
        client.post(f"{API}/runs/log-model", json=partial), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "missing mandatory fields" in message and "flavors" in message


def test_idempotent_create_run(client: TestClient) -> None:
    body = {"experiment_id": "0", "run_name": "once", "request_id": "req-create-1"}
    first = _ok(client.post(f"{CAIRN}/runs/create", json=body))["run"]
    again = _ok(client.post(f"{CAIRN}/runs/create", json={**body, "run_name": "ignored"}))["run"]
    assert again["info"]["run_id"] == first["info"]["run_id"]
    assert again["info"]["run_name"] == "once"
    found = _post(client, "runs/search", {"experiment_ids": ["0"]})["runs"]
    assert [r["info"]["run_id"] for r in found] == [first["info"]["run_id"]]
    other = _ok(client.post(f"{CAIRN}/runs/create", json={**body, "request_id": "req-create-2"}))
    assert other["run"]["info"]["run_id"] != first["info"]["run_id"]

    for bad, message in (({}, "request_id"), ({"request_id": ""}, "request_id")):
        response = client.post(f"{CAIRN}/runs/create", json={"experiment_id": "0", **bad})
        assert message in _error(response, 400, "INVALID_PARAMETER_VALUE")
    too_long = {"experiment_id": "0", "request_id": "r" * 65}
    _error(client.post(f"{CAIRN}/runs/create", json=too_long), 400, "INVALID_PARAMETER_VALUE")


def test_idempotent_log_batch(client: TestClient) -> None:
    run_id = _new_run(client)["info"]["run_id"]
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(3)],
        "params": [{"key": "p", "value": "1"}],
        "request_id": "batch-1",
    }
    assert _ok(client.post(f"{CAIRN}/runs/log-batch", json=body)) == {}
    assert _ok(client.post(f"{CAIRN}/runs/log-batch", json=body)) == {}
    assert len(_history(client, run_id, "m")["metrics"]) == 3
    _ok(client.post(f"{CAIRN}/runs/log-batch", json={**body, "request_id": "batch-2"}))
    assert len(_history(client, run_id, "m")["metrics"]) == 6

    missing = {k: v for k, v in body.items() if k != "request_id"}
    response = client.post(f"{CAIRN}/runs/log-batch", json=missing)
    assert "'request_id'" in _error(response, 400, "INVALID_PARAMETER_VALUE")
    unknown = {**body, "run_id": "f" * 32, "request_id": "batch-3"}
    _error(client.post(f"{CAIRN}/runs/log-batch", json=unknown), 404, "RESOURCE_DOES_NOT_EXIST")
    over = {**body, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}
    over["request_id"] = "batch-4"
    _error(client.post(f"{CAIRN}/runs/log-batch", json=over), 400, "INVALID_PARAMETER_VALUE")


def test_logged_model_flow(client: TestClient) -> None:
    """What ``mlflow.<flavor>.log_model`` does over REST, and what loading it reads back."""
    run = _new_run(client)["info"]
    run_id, exp_id = run["run_id"], run["experiment_id"]
    _post(
        client,
        "runs/log-batch",
        {"run_id": run_id, "metrics": [{"key": "acc", "value": 0.75, "timestamp": 7}]},
    )
    created = _post(
        client,
        "logged-models",
        {
            "experiment_id": exp_id,
            "name": "model",
            "source_run_id": run_id,
            "params": [{"key": "alpha", "value": "0.1"}],
            "tags": [{"key": "mlflow.user", "value": "alice"}],
        },
    )["model"]
    info = created["info"]
    model_id = info["model_id"]
    assert model_id.startswith("m-")
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/models/{model_id}/artifacts"
    assert created["data"]["params"] == [{"key": "alpha", "value": "0.1"}]

    _post(client, "runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})
    # The client re-sends the run's metrics at that step, linked to the model.
    linked = {"key": "acc", "value": 0.75, "timestamp": 7, "step": 0, "model_id": model_id}
    _post(client, "runs/log-batch", {"run_id": run_id, "metrics": [linked]})
    assert len(_history(client, run_id, "acc")["metrics"]) == 1

    finalized = client.patch(
        f"{API}/logged-models/{model_id}",
        json={"model_id": model_id, "status": "LOGGED_MODEL_READY"},
    )
    assert _ok(finalized)["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    fetched = _ok(client.get(f"{API}/logged-models/{model_id}"))["model"]
    assert fetched["data"]["metrics"] == [
        {
            "key": "acc",
            "value": 0.75,
            "timestamp": 7,
            "step": 0,
            "model_id": model_id,
            "run_id": run_id,
        }
    ]
    outputs = _get_run(client, run_id)["outputs"]
    assert outputs == {"model_outputs": [{"model_id": model_id, "step": 0}]}

    found = _post(
        client, "logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'model'"}
    )
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    assert _post(
        client, "logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'other'"}
    ) == {"models": []}

    client.patch(
        f"{API}/logged-models/{model_id}/tags", json={"tags": [{"key": "stage", "value": "x"}]}
    )
    _ok(client.delete(f"{API}/logged-models/{model_id}/tags/stage"))
    _ok(client.delete(f"{API}/logged-models/{model_id}"))
    gone = client.get(f"{API}/logged-models/{model_id}")
    assert f"Logged model '{model_id}' does not exist" in _error(
        gone, 404, "RESOURCE_DOES_NOT_EXIST"
    )
    kept = _ok(client.get(f"{API}/logged-models/{model_id}", params={"allow_deleted": "true"}))
    assert kept["model"]["info"]["model_id"] == model_id

    unknown = {"run_id": run_id, "models": [{"model_id": "m-nope"}]}
    _error(client.post(f"{API}/runs/outputs", json=unknown), 404, "RESOURCE_DOES_NOT_EXIST")
    bad_name = {"experiment_id": exp_id, "name": "a/b"}
    _error(client.post(f"{API}/logged-models", json=bad_name), 400, "INVALID_PARAMETER_VALUE")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A client over a SQLite store and over a PostgreSQL one."""
    uri = (
        str(request.getfixturevalue("postgres_uri"))
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'cairn.db'}"
    )
    settings = ServerSettings(backend_store_uri=uri, artifacts_destination=str(tmp_path / "art"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_logged_model_search(any_store_client: TestClient) -> None:
    client = any_store_client
    exp_id = _post(client, "experiments/create", {"name": "models"})["experiment_id"]
    run_id = _new_run(client, experiment_id=exp_id)["info"]["run_id"]
    specs = [
        ("alpha", "0.1", "prod", "tree", [(0.4, "train"), (0.6, "eval")]),
        ("beta", "0.2", "dev", "tree", [(0.9, "train")]),
        ("gamma", "0.1", "prototype", "linear", [(0.7, "train"), (0.2, "train")]),
    ]
    ids = {}
    for name, alpha, stage, kind, values in specs:
        model = _post(
            client,
            "logged-models",
            {
                "experiment_id": exp_id,
                "name": name,
                "model_type": kind,
                "source_run_id": run_id,
                "params": [{"key": "alpha", "value": alpha}],
                "tags": [{"key": "stage", "value": stage}],
            },
        )["model"]["info"]
        ids[name] = model["model_id"]
        metrics = [
            {
                "key": "acc",
                "value": value,
                "timestamp": 100,
                "step": step,
                "model_id": model["model_id"],
                "dataset_name": dataset,
                "dataset_digest": "d1",
            }
            for step, (value, dataset) in enumerate(values)
        ]
        _post(client, "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    for name in ("alpha", "gamma"):
        client.patch(f"{API}/logged-models/{ids[name]}", json={"status": "LOGGED_MODEL_READY"})

    def names(**body: Any) -> list[str]:
        found = _post(client, "logged-models/search", {"experiment_ids": [exp_id], **body})
        return [m["info"]["name"] for m in found["models"]]

    assert names() == ["gamma", "beta", "alpha"]  # newest first
    assert names(filter="name = 'beta'") == ["beta"]
    assert names(filter="params.alpha = '0.1'", order_by=[{"field_name": "name"}]) == [
        "alpha",
        "gamma",
    ]
    assert names(filter="tags.stage LIKE 'pro%' AND status = 'READY'") == ["gamma", "alpha"]
    assert names(filter="tags.stage ILIKE 'PRO%' and model_type = 'linear'") == ["gamma"]
    assert names(filter="model_type IN ('tree', 'none')", order_by=[{"field_name": "name"}]) == [
        "alpha",
        "beta",
    ]
    assert names(filter=f"source_run_id = '{run_id}' AND name != 'beta'") == ["gamma", "alpha"]
    # metrics.<key> is the latest value: gamma's acc ended at 0.2, alpha's at 0.6.
    assert names(filter="metrics.acc > 0.5") == ["beta", "alpha"]
    best = [{"field_name": "metrics.acc", "ascending": False}]
    assert names(order_by=best) == ["beta", "alpha", "gamma"]
    # Restricted to the train dataset, alpha's latest acc is 0.4 (its 0.6 was on eval).
    on_train = {"datasets": [{"dataset_name": "train", "dataset_digest": "d1"}]}
    assert names(filter="metrics.acc < 0.5", **on_train) == ["gamma", "alpha"]
    assert names(filter="metrics.acc < 0.5") == ["gamma"]
    assert names(filter="metrics.acc < 0.5", datasets=[{"dataset_name": "eval"}]) == []

    first = _post(
        client,
        "logged-models/search",
        {"experiment_ids": [exp_id], "max_results": 2, "order_by": [{"field_name": "name"}]},
    )
    assert [m["info"]["name"] for m in first["models"]] == ["alpha", "beta"]
    rest = _post(
        client,
        "logged-models/search",
        {
            "experiment_ids": [exp_id],
            "max_results": 2,
            "order_by": [{"field_name": "name"}],
            "page_token": first["next_page_token"],
        },
    )
    assert [m["info"]["name"] for m in rest["models"]] == ["gamma"]
    assert "next_page_token" not in rest

    _ok(client.delete(f"{API}/logged-models/{ids['beta']}"))
    assert names(order_by=[{"field_name": "name"}]) == ["alpha", "gamma"]

    for bad in ("name >> 'x'", "unknown = 'x'", "metrics.acc > 'high'", "name = 'x' AND"):
        response = client.post(
            f"{API}/logged-models/search", json={"experiment_ids": [exp_id], "filter": bad}
        )
        _error(response, 400, "INVALID_PARAMETER_VALUE")
    params = client.post(
        f"{API}/logged-models/{ids['alpha']}/params",
        json={"params": [{"key": "alpha", "value": "0.5"}]},
    )
    assert "write-once" in _error(params, 400, "INVALID_PARAMETER_VALUE")
    _ok(
        client.post(
            f"{API}/logged-models/{ids['alpha']}/params",
            json={"params": [{"key": "alpha", "value": "0.1"}, {"key": "beta", "value": "2"}]},
        )
    )
    fetched = _ok(client.get(f"{API}/logged-models/{ids['alpha']}"))["model"]
    assert {p["key"]: p["value"] for p in fetched["data"]["params"]} == {
        "alpha": "0.1",
        "beta": "2",
    }
    assert [(m["value"], m["dataset_name"]) for m in fetched["data"]["metrics"]] == [
        (0.4, "train"),
        (0.6, "eval"),
    ]
