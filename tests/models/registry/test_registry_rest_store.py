"""RegistryClient over REST against a real Cairn server (uvicorn on a socket)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import cairn
from cairn.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from cairn.models.registry import RegistryClient
from cairn.models.registry.stores.rest import RestRegistryStore

if TYPE_CHECKING:
    from tests.conftest import LiveServer


@pytest.fixture(autouse=True)
def _spool_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("CAIRN_HTTP_RETRY_SECONDS", "2")


def test_rest_registry_round_trip(live_server: LiveServer) -> None:
    client = RegistryClient(live_server.url)
    assert isinstance(client.store, RestRegistryStore)
    created = client.create_registered_model("churn", {"team": "growth"}, "about churn")
    assert (created.name, created.tags, created.description) == (
        "churn",
        {"team": "growth"},
        "about churn",
    )
    for i in range(3):
        client.create_model_version("churn", f"s3://b/{i}", run_id=f"r{i}", tags={"i": str(i)})
    client.set_registered_model_alias("churn", "champion", 2)
    champion = client.get_model_version_by_alias("churn", "champion")
    assert (champion.version, champion.source, champion.aliases) == (2, "s3://b/1", ("champion",))
    assert champion.tags == {"i": "1"} and champion.run_id == "r1"
    assert [v.version for v in client.get_latest_versions("churn")] == [3]
    assert client.get_model_version_download_uri("churn", "3") == "s3://b/2"
    model = client.get_registered_model("churn")
    assert (model.aliases, [v.version for v in model.latest_versions]) == ({"champion": 2}, [3])

    client.update_registered_model("churn", "new words")
    client.update_model_version("churn", 1, "first")
    client.set_registered_model_tag("churn", "owner", "ann")
    client.set_model_version_tag("churn", 1, "checked", "yes")
    client.transition_model_version_stage("churn", 1, "Staging")
    first = client.get_model_version("churn", 1)
    assert (first.description, first.tags, first.current_stage.value) == (
        "first",
        {"i": "0", "checked": "yes"},
        "Staging",
    )
    assert client.get_registered_model("churn").tags == {"team": "growth", "owner": "ann"}
    client.delete_model_version_tag("churn", 1, "checked")
    client.delete_registered_model_tag("churn", "owner")

    page = client.search_model_versions("name = 'churn'", max_results=2, order_by=["version"])
    assert [v.version for v in page] == [1, 2] and page.token
    rest = client.search_model_versions(
        "name = 'churn'", max_results=2, order_by=["version"], page_token=page.token
    )
    assert [v.version for v in rest] == [3] and rest.token is None
    client.rename_registered_model("churn", "attrition")
    assert [m.name for m in client.search_registered_models("name ILIKE 'ATTR%'")] == ["attrition"]
    client.delete_registered_model_alias("attrition", "champion")
    client.delete_model_version("attrition", 3)
    assert [v.version for v in client.search_model_versions("run_id = 'r2'")] == []
    client.delete_registered_model("attrition")
    assert client.search_registered_models() == []


def test_rest_errors_arrive_as_cairn_errors(live_server: LiveServer) -> None:
    client = RegistryClient(live_server.url)
    client.create_registered_model("m")
    with pytest.raises(AlreadyExistsError, match="Registered model 'm' already exists"):
        client.create_registered_model("m")
    with pytest.raises(NotFoundError, match="Version 1 of registered model 'm' does not exist"):
        client.get_model_version("m", 1)
    with pytest.raises(NotFoundError, match="Registered model 'm' has no alias 'champion'"):
        client.get_model_version_by_alias("m", "champion")
    with pytest.raises(InvalidParameterError, match="unknown field 'foo' for registered models"):
        client.search_registered_models("foo = 'x'")
    # The server checks too, for clients that do not (MLflow's, or raw HTTP).
    response = httpx.post(
        f"{live_server.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": "m", "alias": "v2", "version": "1"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert httpx.get(f"{live_server.url}/health").status_code == 200


def test_register_model_against_the_server(live_server: LiveServer, tmp_path: Path) -> None:
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(b"weights")
    cairn.set_tracking_uri(live_server.url)
    with cairn.start_run() as run:
        cairn.log_artifact(str(model_file), artifact_path="model")
    version = cairn.register_model(f"runs:/{run.info.run_id}/model", "remote", {"via": "cairn"})
    assert version.source == f"{run.info.artifact_uri}/model"
    assert version.source.startswith("mlflow-artifacts:/")
    assert (version.version, version.run_id, version.tags) == (
        1,
        run.info.run_id,
        {"via": "cairn"},
    )
    assert cairn.register_model(f"runs:/{run.info.run_id}/model", "remote").version == 2
    # The server's own registry holds what the REST client wrote.
    served = live_server.app.state.registry.get_model_version("remote", 1)
    assert (served.source, served.run_id) == (version.source, run.info.run_id)
    downloaded = cairn.download_artifacts("model/model.pkl", run_id=run.info.run_id)
    assert Path(downloaded).read_bytes() == b"weights"
