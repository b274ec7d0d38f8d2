"""The web UI's data endpoints: recorded Delta tables, history, versions, diffs and lineage.

Tables are real Delta tables written with ``cairn.data``; runs read them through the fluent API
on the server's own store, so the endpoints see what a training script records.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

import cairn
from cairn import data
from cairn.models.registry import RegistryClient
from cairn.server import ServerSettings, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CAIRN = "/api/2.0/cairn"


def _rows(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sqft = rng.normal(100, 10, n) * scale
    return pd.DataFrame({"sqft": sqft, "rooms": rng.integers(1, 6, n).astype("int64")})


class World:
    def __init__(self, client: TestClient, uri: str, unrecorded: str, runs: dict[str, str]):
        self.client = client
        self.uri = uri
        self.unrecorded = unrecorded
        self.runs = runs

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"{CAIRN}/{path}", params=params)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()


def _world(tmp_path: Path, store: str, **settings: Any) -> Iterator[World]:
    """A table with 3 versions (v2 shifts ``sqft``), a loader run that wrote v1, two training
    runs reading v1 and v2, model ``prices`` v1 from the second; and a Delta table no run used."""
    cairn.set_tracking_uri(store)
    uri = str(tmp_path / "listings")
    data.write_table(_rows(50, 0), uri)
    runs = {}
    with cairn.start_run(run_name="load") as run:
        data.write_table(_rows(20, 1), uri)
    runs["load"] = run.info.run_id
    data.write_table(_rows(30, 2, scale=10.0), uri, mode="overwrite")
    for name, version in (("train-v1", 1), ("train-v2", 2)):
        with cairn.start_run(run_name=name) as run:
            data.read_table(uri, version=version)
            cairn.log_param("alpha", "0.5")
        runs[name] = run.info.run_id
    registry = RegistryClient(store)
    registry.create_registered_model("prices")
    registry.create_model_version("prices", f"runs:/{runs['train-v2']}/model", runs["train-v2"])
    unrecorded = str(tmp_path / "secret_table")
    data.write_table(_rows(5, 3), unrecorded)
    app = create_app(ServerSettings(backend_store_uri=store, **settings))
    with TestClient(app) as client:
        yield World(client, uri, unrecorded, runs)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, str(tmp_path / "store"))


def test_the_endpoints_on_postgresql(tmp_path: Path, postgres_uri: str) -> None:
    for pg in _world(tmp_path, postgres_uri):
        [table] = pg.ok("data/tables")["tables"]
        assert [v["readers"] + v["writers"] for v in table["versions"]] == [1, 2]
        found = pg.ok("data/history", uri=pg.uri)
        assert len(found["uses"]) == 3 and len(found["commits"]) == 3
        assert pg.ok("data/diff", uri=pg.uri, **{"from": 1, "to": 2})["shifted"] == ["sqft"]
        assert pg.ok("lineage", model="prices", version="1")["tables"][0]["version"] == 2
        assert pg.get("data/history", uri=pg.unrecorded).status_code == 404


def test_tables_lists_each_recorded_version_with_its_readers_and_writers(world: World) -> None:
    [table] = world.ok("data/tables")["tables"]
    assert table["uri"] == world.uri and table["name"] == "listings"
    assert table["versions"] == [
        {"version": 2, "readers": 1, "writers": 0},
        {"version": 1, "readers": 1, "writers": 1},
    ]
    assert table["last_used"] > 0


def test_history_gives_commits_and_the_runs_of_each_version(world: World) -> None:
    found = world.ok("data/history", uri=world.uri)
    assert found["error"] is None and found["name"] == "listings"
    assert [c["version"] for c in found["commits"]] == [2, 1, 0]
    assert [c["operation"] for c in found["commits"]] == ["WRITE", "WRITE", "WRITE"]
    assert found["commits"][1]["run_id"] == world.runs["load"]
    uses = {(u["run_name"], u["version"], u["role"]) for u in found["uses"]}
    assert uses == {("load", 1, "output"), ("train-v1", 1, "input"), ("train-v2", 2, "input")}
    assert found["versions"] == [
        {"version": 2, "readers": 1, "writers": 0},
        {"version": 1, "readers": 1, "writers": 1},
    ]
    latest = world.ok("data/history", uri=world.uri, runs=1)["uses"]
    assert [u["run_name"] for u in latest] == ["train-v2"]
    assert [c["version"] for c in world.ok("data/history", uri=world.uri, limit=1)["commits"]] == [
        2
    ]


def test_version_describes_one_version_from_the_log(world: World) -> None:
    found = world.ok("data/version", uri=world.uri, version=1)
    assert (found["version"], found["num_rows"]) == (1, 70)
    assert found["schema"] == {"sqft": "double", "rooms": "long"}
    assert found["timestamp_ms"] > 0


def test_diff_reports_rows_stats_and_the_shifted_column(world: World) -> None:
    found = world.ok("data/diff", uri=world.uri, **{"from": 1, "to": 2})
    assert (found["from_rows"], found["to_rows"]) == (70, 30)
    assert found["shifted"] == ["sqft"]
    assert found["schema_changes"] == []
    assert found["columns"]["sqft"]["to"]["mean"] > 5 * found["columns"]["sqft"]["from"]["mean"]
    assert [c["version"] for c in found["commits"]] == [2]


@pytest.mark.parametrize(
    "uri", ["/etc", "/etc/passwd", "../..", "listings", "/", "s3://bucket/t", "file:///etc"]
)
def test_paths_no_run_recorded_are_refused_before_anything_is_opened(
    world: World, uri: str
) -> None:
    for path, params in (
        ("data/history", {}),
        ("data/version", {"version": 0}),
        ("data/diff", {"from": 0, "to": 1}),
    ):
        response = world.get(path, uri=uri, **params)
        assert response.status_code == 404, (path, uri, response.text)
        assert "No run recorded a Delta table" in response.json()["message"]


def test_a_real_delta_table_no_run_recorded_is_refused(world: World) -> None:
    for path, params in (
        ("data/history", {}),
        ("data/version", {"version": 0}),
        ("data/diff", {"from": 0, "to": 0}),
    ):
        response = world.get(path, uri=world.unrecorded, **params)
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # A path spelled differently from the recorded one is another path.
    response = world.get("data/history", uri=world.uri + "/")
    assert response.status_code == 404


def test_bad_versions_and_missing_parameters_are_clear_errors(world: World) -> None:
    response = world.get("data/version", uri=world.uri, version=9)
    assert response.status_code == 404
    assert "has no version 9" in response.json()["message"]
    response = world.get("data/diff", uri=world.uri, **{"from": -1, "to": 2})
    assert response.status_code == 400
    assert world.get("data/history").status_code == 400


def test_a_recorded_table_that_is_gone_still_shows_its_runs(world: World) -> None:
    import shutil

    shutil.rmtree(world.uri)
    found = world.ok("data/history", uri=world.uri)
    assert found["commits"] == []
    assert "not a Delta table" in found["error"]
    assert len(found["uses"]) == 3


def test_lineage_of_a_model_version_reaches_the_table_version_its_run_read(world: World) -> None:
    found = world.ok("lineage", model="prices", version="1")
    assert found["model"]["name"] == "prices" and found["model"]["version"] in (1, "1")
    assert found["run"]["run_id"] == world.runs["train-v2"]
    assert found["params"] == {"alpha": "0.5"}
    [table] = found["tables"]
    assert (table["uri"], table["version"], table["role"]) == (world.uri, 2, "input")
    assert [c["version"] for c in table["commits"]] == [2, 1, 0]
    by_run = world.ok("lineage", run_id=world.runs["train-v1"])
    assert by_run["model"] is None and by_run["tables"][0]["version"] == 1


def test_lineage_errors(world: World) -> None:
    assert world.get("lineage").status_code == 400
    assert world.get("lineage", model="prices").status_code == 400
    assert world.get("lineage", model="prices", version="7").status_code == 404
    assert world.get("lineage", model="nope", alias="champion").status_code == 404
    assert world.get("lineage", run_id="0" * 32).status_code == 404
    response = world.get("lineage", model="a/b", version="1")
    assert response.status_code == 400 and "'/'" in response.json()["message"]


def test_dataset_records_that_are_not_readable_delta_sources_are_left_out(world: World) -> None:
    from cairn.entities import Dataset, DatasetInput

    tracking = world.client.app.state.client  # type: ignore[attr-defined]
    run_id = world.runs["train-v1"]
    for source in ("not json", '{"path": 3, "delta_table_version": 0}', '{"path": "/etc"}'):
        dataset = Dataset(f"odd-{len(source)}", f"d{len(source)}", "delta_table", source)
        tracking.log_inputs(run_id, [DatasetInput(dataset, {})])
    [table] = world.ok("data/tables")["tables"]
    assert table["uri"] == world.uri
    assert world.get("data/history", uri="/etc").status_code == 404


def test_with_auth_data_is_for_admins_and_lineage_needs_the_model_and_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from argon2 import PasswordHasher

    from cairn.server.auth import ensure_admin, passwords
    from cairn.server.auth.stores.sql import AuthStore

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", lambda: cheap)
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    password = "data-views-password-1"
    auth = AuthStore.open(uri)
    ensure_admin(auth, "admin", password)
    auth.create_user("reader", password)
    auth.close()

    def as_(user: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }

    settings = {"auth": True, "auth_default_permission": "NO_PERMISSIONS", "auth_cache_seconds": 0}
    for world in _world(tmp_path, uri, **settings):
        client = world.client
        lineage = {"model": "prices", "version": "1"}
        assert client.get(f"{CAIRN}/data/tables", headers=as_("reader")).status_code == 403
        assert client.get(f"{CAIRN}/data/tables", headers=as_("admin")).status_code == 200
        history = {"uri": world.uri}
        assert (
            client.get(f"{CAIRN}/data/history", params=history, headers=as_("reader")).status_code
            == 403
        )
        assert (
            client.get(f"{CAIRN}/lineage", params=lineage, headers=as_("reader")).status_code == 403
        )

        grant = {"username": "reader", "permission": "READ"}
        response = client.post(
            "/api/2.0/mlflow/registered-models/permissions/create",
            json={"name": "prices", **grant},
            headers=as_("admin"),
        )
        assert response.status_code == 200, response.text
        response = client.get(f"{CAIRN}/lineage", params=lineage, headers=as_("reader"))
        assert response.status_code == 403
        assert "experiment of run" in response.json()["message"]

        experiment_id = client.get(
            "/api/2.0/mlflow/runs/get",
            params={"run_id": world.runs["train-v2"]},
            headers=as_("admin"),
        ).json()["run"]["info"]["experiment_id"]
        response = client.post(
            "/api/2.0/mlflow/experiments/permissions/create",
            json={"experiment_id": experiment_id, **grant},
            headers=as_("admin"),
        )
        assert response.status_code == 200, response.text
        response = client.get(f"{CAIRN}/lineage", params=lineage, headers=as_("reader"))
        assert response.status_code == 200, response.text
        assert response.json()["tables"][0]["version"] == 2
