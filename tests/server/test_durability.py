"""Durability settings of the stores a server writes to.

SQLite runs in WAL mode with ``synchronous=FULL`` unless ``$CAIRN_SQLITE_SYNCHRONOUS`` says
otherwise: every commit is on disk before the server answers. The crash and load tests beside
this file check the behaviour with real processes; these check the settings themselves.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cairn.cli import cli
from cairn.errors import InvalidParameterError
from cairn.server import ServerSettings, create_app
from cairn.tracking.stores.sql.engine import ENV_SQLITE_SYNCHRONOUS, sqlite_synchronous
from cairn.tracking.stores.sql.store import SqlStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# PRAGMA synchronous answers with a number.
LEVELS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


def _pragmas(store: SqlStore) -> list[tuple[str, int]]:
    """journal_mode and synchronous of two connections open at the same time (pool members)."""
    found = []
    with store.engine.connect() as first, store.engine.connect() as second:
        for conn in (first, second):
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            found.append((str(mode), int(level)))  # type: ignore[arg-type]
    return found


def test_sqlite_commits_are_synced_by_default(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_SQLITE_SYNCHRONOUS, raising=False)
    assert sqlite_synchronous() == "FULL"
    store = SqlStore(sqlite_uri, str(tmp_path / "artifacts"))
    try:
        assert _pragmas(store) == [("wal", LEVELS["FULL"])] * 2
    finally:
        store.close()


def test_server_store_syncs_every_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SQLITE_SYNCHRONOUS, raising=False)
    app = create_app(ServerSettings(backend_store_uri=str(tmp_path / "store")))
    with TestClient(app):
        assert _pragmas(app.state.store) == [("wal", LEVELS["FULL"])] * 2


@pytest.mark.parametrize(("raw", "level"), [("normal", "NORMAL"), (" EXTRA ", "EXTRA")])
def test_sqlite_synchronous_level_is_a_setting(
    raw: str, level: str, sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SQLITE_SYNCHRONOUS, raw)
    store = SqlStore(sqlite_uri, str(tmp_path / "artifacts"))
    try:
        assert _pragmas(store) == [("wal", LEVELS[level])] * 2
    finally:
        store.close()


@pytest.mark.parametrize("raw", ["OFF", "0", "fast"])
def test_unknown_or_unsafe_synchronous_level_is_refused(
    raw: str, sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SQLITE_SYNCHRONOUS, raw)
    message = rf"CAIRN_SQLITE_SYNCHRONOUS='{raw}' is not a synchronous level .* FULL, NORMAL, EXTRA"
    with pytest.raises(InvalidParameterError, match=message):
        SqlStore(sqlite_uri, str(tmp_path / "artifacts"))


def test_server_with_an_unknown_level_fails_before_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SQLITE_SYNCHRONOUS, "OFF")
    store = str(tmp_path / "store")
    result = CliRunner().invoke(cli, ["server", "--port", "0", "--backend-store-uri", store])
    assert result.exit_code == 1, result.output
    assert "CAIRN_SQLITE_SYNCHRONOUS='OFF' is not a synchronous level" in result.output


# -- one request, one transaction ---------------------------------------------------------

API = "/api/2.0/mlflow"
CAIRN_API = "/api/2.0/cairn"


@pytest.fixture(params=["sqlite", "postgresql"])
def app_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    uri = (
        str(request.getfixturevalue("postgres_uri"))
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'cairn.db'}"
    )
    settings = ServerSettings(backend_store_uri=uri, artifacts_destination=str(tmp_path / "art"))
    with TestClient(create_app(settings)) as client:
        yield client


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _run_and_model(client: TestClient) -> tuple[str, str]:
    run = _ok(client.post(f"{API}/runs/create", json={"experiment_id": "0", "run_name": "r"}))
    run_id = run["run"]["info"]["run_id"]
    body = {"experiment_id": "0", "name": "m", "source_run_id": run_id}
    model_id = _ok(client.post(f"{API}/logged-models", json=body))["model"]["info"]["model_id"]
    return run_id, model_id


def _drop_table(client: TestClient, table: str) -> None:
    """Make the database fail every write to ``table``, as a real fault would, mid-request."""
    app: Any = client.app
    with app.state.store.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {table}"))


def _server_error(response: Any, table: str) -> None:
    assert response.status_code in (500, 503), response.text
    body = response.json()
    assert body["error_code"] in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"), body
    assert table in body["message"], body


def _batch(run_id: str, model_id: str) -> dict[str, Any]:
    plain = [{"key": "loss", "value": 1 / (s + 1), "timestamp": 10, "step": s} for s in range(50)]
    linked = [{"key": "acc", "value": 0.9, "timestamp": 10, "step": 0, "model_id": model_id}]
    return {
        "run_id": run_id,
        "metrics": plain + linked,
        "params": [{"key": "alpha", "value": "0.5"}],
        "tags": [{"key": "team", "value": "vision"}],
    }


def test_log_batch_with_model_metrics_is_all_or_nothing(app_client: TestClient) -> None:
    run_id, model_id = _run_and_model(app_client)
    _drop_table(app_client, "logged_model_metrics")  # the last write of the batch fails
    response = app_client.post(f"{API}/runs/log-batch", json=_batch(run_id, model_id))
    _server_error(response, "logged_model_metrics")
    run = _ok(app_client.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert run["data"].get("params", []) == []
    assert run["data"].get("metrics", []) == []
    assert {t["key"] for t in run["data"]["tags"]} == {"mlflow.runName"}
    history = {"run_id": run_id, "metric_key": "loss"}
    assert _ok(app_client.get(f"{API}/metrics/get-history", params=history)).get("metrics") == []


def test_log_inputs_with_models_is_all_or_nothing(app_client: TestClient) -> None:
    run_id, model_id = _run_and_model(app_client)
    _drop_table(app_client, "run_input_tags")  # written after the model link and the dataset
    body = {
        "run_id": run_id,
        "datasets": [
            {
                "dataset": {"name": "d", "digest": "x1", "source_type": "local", "source": "/d"},
                "tags": [{"key": "mlflow.data.context", "value": "train"}],
            }
        ],
        "models": [{"model_id": model_id}],
    }
    _server_error(app_client.post(f"{API}/runs/log-inputs", json=body), "run_input_tags")
    run = _ok(app_client.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert run.get("inputs", {}).get("dataset_inputs", []) == []
    assert run.get("inputs", {}).get("model_inputs", []) == []


def test_a_retried_batch_records_model_metrics_once(app_client: TestClient) -> None:
    run_id, model_id = _run_and_model(app_client)
    body = {**_batch(run_id, model_id), "request_id": "batch-1"}
    for _ in range(2):  # the client's retry of a batch whose answer it did not get
        _ok(app_client.post(f"{CAIRN_API}/runs/log-batch", json=body))
    model = _ok(app_client.get(f"{API}/logged-models/{model_id}"))["model"]
    assert [m["key"] for m in model["data"]["metrics"]] == ["acc"]
    history = {"run_id": run_id, "metric_key": "loss"}
    assert len(_ok(app_client.get(f"{API}/metrics/get-history", params=history))["metrics"]) == 50
