"""Cairn's run-table endpoints: the same runs and order as runs/search, as compact columns."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from cairn.entities import Metric, Param, RunTag
from cairn.server import ServerSettings, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cairn.tracking.client import TrackingClient

CAIRN = "/api/2.0/cairn"
API = "/api/2.0/mlflow"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings(backend_store_uri=str(tmp_path)))) as test_client:
        yield test_client


def _tracking(client: TestClient) -> TrackingClient:
    tracking: TrackingClient = client.app.state.client  # type: ignore[attr-defined]
    return tracking


def _seed(client: TestClient, runs: int = 12) -> tuple[str, list[str]]:
    tracking = _tracking(client)
    experiment_id = tracking.create_experiment("table")
    ids = []
    for i in range(runs):
        run = tracking.create_run(experiment_id, 1_000 + i, {"team": f"t{i % 2}"}, f"run-{i:02d}")
        metrics = [Metric("rmse", (i * 7 % runs) / runs, 5, 0)]
        if i % 3 == 0:
            metrics.append(Metric("nan_metric", math.nan, 5, 0))
        tracking.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param("model", "ridge" if i % 2 else "lasso"), Param("i", str(i))],
            tags=[RunTag("note", f"n{i}")],
        )
        ids.append(run.info.run_id)
    return experiment_id, ids


def _table(client: TestClient, **body: Any) -> Any:
    response = client.post(f"{CAIRN}/runs/table", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _search_ids(client: TestClient, **body: Any) -> list[str]:
    response = client.post(f"{API}/runs/search", json=body)
    assert response.status_code == 200, response.text
    return [run["info"]["run_id"] for run in response.json().get("runs", [])]


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        (None, []),
        (None, ["metrics.rmse DESC"]),
        ("params.model = 'ridge'", ["params.i ASC"]),
        ("metrics.rmse < 0.5", ["attributes.run_name DESC"]),
        (None, ["params.model DESC"]),  # walks the (key, value prefix) index
        ("metrics.rmse < 0.5", ["tags.note"]),
    ],
)
def test_pages_hold_what_runs_search_finds_in_its_order(
    client: TestClient, filter_string: str | None, order_by: list[str]
) -> None:
    experiment_id, _ = _seed(client)
    query = {"experiment_ids": [experiment_id], "filter": filter_string, "order_by": order_by}
    expected = _search_ids(client, **query, max_results=100)
    first = _table(client, **query, max_results=5)
    second = _table(client, **query, max_results=100, page_token=first["next_page_token"])
    counted = {key: value for key, value in query.items() if key != "order_by"}
    assert client.post(f"{CAIRN}/runs/count", json=counted).json() == {"total": len(expected)}
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == expected
    assert "next_page_token" not in second
    window = _table(client, **query, max_results=3, offset=2)
    assert [r["run_id"] for r in window["runs"]] == expected[2:5]
    assert window["offset"] == 2


def test_columns_line_up_with_rows_and_hold_only_the_keys_asked_for(client: TestClient) -> None:
    experiment_id, ids = _seed(client, runs=4)
    page = _table(
        client,
        experiment_ids=[experiment_id],
        order_by=["attributes.run_name ASC"],
        params=["model"],
        metrics=["rmse", "nan_metric"],
        tags=[],
    )
    assert [r["run_name"] for r in page["runs"]] == ["run-00", "run-01", "run-02", "run-03"]
    assert page["runs"][0]["run_id"] == ids[0]
    assert page["params"] == {"model": ["lasso", "ridge", "lasso", "ridge"]}
    assert page["metrics"]["rmse"] == [0.0, 0.75, 0.5, 0.25]
    assert page["metrics"]["nan_metric"] == ["NaN", None, None, "NaN"]  # NaN vs missing
    assert page["tags"] == {}
    everything = _table(client, experiment_ids=[experiment_id], max_results=1)
    assert set(everything["params"]) == {"model", "i"}
    assert {"note", "team", "mlflow.runName"} <= set(everything["tags"])


def test_a_bad_filter_is_a_400_with_the_parsers_message(client: TestClient) -> None:
    experiment_id, _ = _seed(client, runs=1)
    response = client.post(
        f"{CAIRN}/runs/table", json={"experiment_ids": [experiment_id], "filter": "metrics.rmse 1"}
    )
    assert response.status_code == 400
    assert "expected a comparison operator" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_results": 0}, "max_results must be between 1 and 5000"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"experiment_ids": ["x"]}, "Invalid experiment id 'x'"),
        ({"page_token": "garbage"}, "Invalid page token"),
    ],
)
def test_bad_paging_is_refused(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = client.post(f"{CAIRN}/runs/table", json={"experiment_ids": ["0"], **body})
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_column_keys_of_an_experiment_whole_or_sampled(client: TestClient) -> None:
    tracking = _tracking(client)
    experiment_id = tracking.create_experiment("keys")
    old = tracking.create_run(experiment_id, 1, {}, "old")
    tracking.log_batch(old.info.run_id, metrics=[Metric("old_metric", 1.0, 1, 0)])
    new = tracking.create_run(experiment_id, 2, {}, "new")
    tracking.log_batch(new.info.run_id, params=[Param("p", "1")], metrics=[Metric("m", 1, 1, 0)])
    query = {"experiment_ids": experiment_id}
    whole = client.get(f"{CAIRN}/runs/columns", params=query).json()
    assert whole["metrics"] == ["m", "old_metric"]
    assert whole["params"] == ["p"]
    assert whole["complete"] is True
    sampled = client.get(f"{CAIRN}/runs/columns", params={**query, "sample": 1}).json()
    assert sampled["metrics"] == ["m"]
    assert sampled["complete"] is False


def test_experiment_activity_counts_runs_and_their_latest_time(client: TestClient) -> None:
    tracking = _tracking(client)
    experiment_id = tracking.create_experiment("busy")
    for start in (1_000, 5_000):
        tracking.create_run(experiment_id, start, {}, f"r{start}")
    ended = tracking.create_run(experiment_id, 2_000, {}, "ended")
    tracking.set_terminated(ended.info.run_id, end_time=9_000)
    deleted = tracking.create_run(experiment_id, 50_000, {}, "deleted")
    tracking.delete_run(deleted.info.run_id)
    found = client.get(f"{CAIRN}/experiments/activity").json()["experiments"]
    busy = next(e for e in found if e["experiment_id"] == experiment_id)
    assert busy == {"experiment_id": experiment_id, "run_count": 3, "last_activity": 9_000}
    every = client.get(f"{CAIRN}/experiments/activity", params={"view_type": "ALL"}).json()
    busy = next(e for e in every["experiments"] if e["experiment_id"] == experiment_id)
    assert busy["run_count"] == 4


def test_column_keys_of_most_of_the_runs_skip_along_the_key_indexes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.tracking.stores.sql import views

    experiment_id, _ = _seed(client)
    query = {"experiment_ids": experiment_id}
    by_run = client.get(f"{CAIRN}/runs/columns", params=query).json()
    monkeypatch.setattr(views, "KEYS_BY_RUN", 1)  # the experiment holds every run: skip
    skipped = client.get(f"{CAIRN}/runs/columns", params=query).json()
    assert skipped == by_run
    assert skipped["params"] == ["i", "model"]
    assert skipped["metrics"] == ["nan_metric", "rmse"]
    assert {"note", "team"} <= set(skipped["tags"])
    assert skipped["complete"] is True
