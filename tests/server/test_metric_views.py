"""Cairn's chart endpoints over HTTP: downsampled history and per-run metric summaries."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import pytest

from cairn.entities import Metric
from cairn.server import ServerSettings, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

METRICS = "/api/2.0/cairn/metrics"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings(backend_store_uri=str(tmp_path)))) as test_client:
        yield test_client


def _run(client: TestClient, steps: int) -> str:
    tracking = client.app.state.client  # type: ignore[attr-defined]
    run_id: str = tracking.create_run("0", 0, {}, "curve").info.run_id
    values = [1.0 / (s + 1) for s in range(steps)]
    values[steps // 2] = 99.0
    tracking.log_batch(run_id, metrics=[Metric("loss", v, s, s) for s, v in enumerate(values)])
    tracking.log_batch(run_id, metrics=[Metric("bad", math.inf, 0, 0)])
    return run_id


def test_a_long_history_comes_back_in_buckets_with_min_and_max(client: TestClient) -> None:
    run_id = _run(client, 10_000)
    response = client.get(
        f"{METRICS}/get-history-downsampled",
        params={"run_id": run_id, "metric_key": "loss", "max_points": 500},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["downsampled"] is True
    assert body["total"] == 10_000
    assert len(body["steps"]) == len(body["values"]) == len(body["mins"]) == 500
    assert max(body["maxs"]) == 99.0
    assert body["mins"][-1] == pytest.approx(1 / 10_000)


def test_a_short_history_comes_back_as_points(client: TestClient) -> None:
    run_id = _run(client, 10)
    body = client.get(
        f"{METRICS}/get-history-downsampled", params={"run_id": run_id, "metric_key": "loss"}
    ).json()
    assert body["downsampled"] is False
    assert body["steps"] == list(range(10))
    assert "mins" not in body
    infinite = client.get(
        f"{METRICS}/get-history-downsampled", params={"run_id": run_id, "metric_key": "bad"}
    ).json()
    assert infinite["values"] == [None]  # charts cannot draw infinity


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"run_id": "missing", "metric_key": "loss"}, 404, "Run 'missing' does not exist"),
        ({"run_id": "x", "metric_key": "loss", "max_points": 1}, 400, "max_points"),
        ({"run_id": "x"}, 400, "metric_key"),
    ],
)
def test_bad_requests_are_refused(
    client: TestClient, params: dict[str, object], status: int, message: str
) -> None:
    response = client.get(f"{METRICS}/get-history-downsampled", params=params)
    assert response.status_code == status
    assert message in response.json()["message"]


def test_summary_lists_latest_min_and_max_of_each_metric(client: TestClient) -> None:
    run_id = _run(client, 20)
    body = client.get(f"{METRICS}/summary", params={"run_id": run_id}).json()
    by_key = {m["key"]: m for m in body["metrics"]}
    assert by_key["loss"] == {
        "key": "loss",
        "latest": 1 / 20,
        "step": 19,
        "min": 1 / 20,
        "max": 99.0,
        "count": 20,
    }
    assert by_key["bad"]["latest"] == "Infinity"
