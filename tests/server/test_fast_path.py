"""The plain-ASGI log-metric path answers exactly as the FastAPI route would."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from cairn.server import ServerSettings, create_app
from cairn.server._fast_path import _plain_metric

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

API = "/api/2.0/mlflow"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings(backend_store_uri=str(tmp_path)))) as test_client:
        yield test_client


@pytest.fixture
def run_id(client: TestClient) -> str:
    response = client.post(f"{API}/runs/create", json={"experiment_id": "0"})
    return str(response.json()["run"]["info"]["run_id"])


def _history(client: TestClient, run_id: str, key: str) -> list[dict[str, Any]]:
    response = client.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key}
    )
    return list(response.json().get("metrics", []))


@pytest.mark.parametrize(
    ("body", "plain"),
    [
        ({"run_id": "r", "key": "k", "value": 1.5, "timestamp": 1, "step": 2}, True),
        ({"run_uuid": "r", "key": "k", "value": "NaN"}, True),
        ({"run_id": "r", "key": "k", "value": 1, "model_id": "m-1"}, False),
        ({"run_id": "r", "key": "k", "value": True}, False),
        ({"run_id": "r", "key": "k", "value": 1, "step": 1.5}, False),
        ({"run_id": "r", "key": "k", "value": 1, "step": 2**63}, False),
        ({"run_id": 5, "key": "k", "value": 1}, False),
        (["not", "an", "object"], False),
    ],
)
def test_only_the_common_shape_takes_the_fast_path(body: Any, plain: bool) -> None:
    assert (_plain_metric(body) is not None) is plain


def test_plain_metric_is_stored(client: TestClient, run_id: str) -> None:
    body = {"run_id": run_id, "key": "loss", "value": 0.25, "timestamp": 7, "step": 3}
    response = client.post(f"{API}/runs/log-metric", json=body)
    assert (response.status_code, response.json()) == (200, {})
    client.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "loss", "value": "NaN"})
    by_step = {m["step"]: m for m in _history(client, run_id, "loss")}  # ordered by step
    assert by_step[3] == {"key": "loss", "value": 0.25, "timestamp": 7, "step": 3}
    assert by_step[0]["value"] == "NaN"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"run_id": "nope", "key": "k", "value": 1}, 404, "RESOURCE_DOES_NOT_EXIST", "nope"),
        ({"key": "k", "value": 1}, 400, "INVALID_PARAMETER_VALUE", "run_id"),
        ({"run_id": "RUN", "key": "bad*key", "value": 1}, 400, "INVALID_PARAMETER_VALUE", "bad"),
        ({"run_id": "RUN", "key": "k", "value": "high"}, 400, "INVALID_PARAMETER_VALUE", "high"),
    ],
)
def test_errors_match_the_route(
    client: TestClient, run_id: str, body: dict[str, Any], status: int, code: str, message: str
) -> None:
    if body.get("run_id") == "RUN":
        body = {**body, "run_id": run_id}
    response = client.post(f"{API}/runs/log-metric", json=body)
    assert response.status_code == status
    assert response.json()["error_code"] == code
    assert message in response.json()["message"]


def test_finished_run_is_refused(client: TestClient, run_id: str) -> None:
    client.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"})
    response = client.post(
        f"{API}/runs/log-metric", json={"run_id": run_id, "key": "k", "value": 1}
    )
    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_STATE")


def test_malformed_json_falls_through_to_the_route(client: TestClient) -> None:
    response = client.post(
        f"{API}/runs/log-metric", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
