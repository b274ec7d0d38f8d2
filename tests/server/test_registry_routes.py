"""The model-registry routes in-process: MLflow's paths, bodies and answers, and bad input."""

from __future__ import annotations

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

MODELS = "/api/2.0/mlflow/registered-models"
VERSIONS = "/api/2.0/mlflow/model-versions"


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
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    return str(body["message"])


def _delete(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    return client.request("DELETE", path, json=body)


def _model_with_versions(client: TestClient, name: str = "churn", count: int = 2) -> None:
    _ok(client.post(f"{MODELS}/create", json={"name": name}))
    for i in range(count):
        body = {"name": name, "source": f"s3://b/{name}/{i + 1}", "run_id": f"run{i + 1}"}
        _ok(client.post(f"{VERSIONS}/create", json=body))


def test_registered_model_json_round_trip(client: TestClient) -> None:
    created = _ok(
        client.post(
            f"{MODELS}/create",
            json={
                "name": "churn",
                "tags": [{"key": "team", "value": "growth"}],
                "description": "predicts churn",
            },
        )
    )["registered_model"]
    assert created["name"] == "churn"
    assert created["tags"] == [{"key": "team", "value": "growth"}]
    assert created["description"] == "predicts churn"
    assert isinstance(created["creation_timestamp"], int)
    assert "latest_versions" not in created and "aliases" not in created  # empty: left out

    version = _ok(
        client.post(
            f"{VERSIONS}/create",
            json={
                "name": "churn",
                "source": "mlflow-artifacts:/1/abc/artifacts/model",
                "run_id": "abc",
                "tags": [{"key": "k", "value": "v"}],
                "description": "first",
            },
        )
    )["model_version"]
    assert version == {
        "name": "churn",
        "version": "1",
        "creation_timestamp": version["creation_timestamp"],
        "last_updated_timestamp": version["last_updated_timestamp"],
        "current_stage": "None",
        "description": "first",
        "source": "mlflow-artifacts:/1/abc/artifacts/model",
        "run_id": "abc",
        "status": "READY",
        "tags": [{"key": "k", "value": "v"}],
    }
    _ok(client.post(f"{MODELS}/alias", json={"name": "churn", "alias": "champion", "version": "1"}))
    model = _ok(client.get(f"{MODELS}/get", params={"name": "churn"}))["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    by_alias = _ok(client.get(f"{MODELS}/alias", params={"name": "churn", "alias": "champion"}))
    assert by_alias["model_version"]["aliases"] == ["champion"]
    uri = _ok(client.get(f"{VERSIONS}/get-download-uri", params={"name": "churn", "version": "1"}))
    assert uri == {"artifact_uri": "mlflow-artifacts:/1/abc/artifacts/model"}


def test_every_registry_endpoint(client: TestClient) -> None:
    _model_with_versions(client, "churn", 3)
    ref = {"name": "churn", "version": "2"}
    _ok(client.post(f"{MODELS}/set-tag", json={"name": "churn", "key": "a", "value": "1"}))
    _ok(client.post(f"{VERSIONS}/set-tag", json={**ref, "key": "b", "value": "2"}))
    updated = _ok(client.patch(f"{MODELS}/update", json={"name": "churn", "description": "d"}))
    assert updated["registered_model"]["description"] == "d"
    patched = _ok(client.patch(f"{VERSIONS}/update", json={**ref, "description": "two"}))
    assert patched["model_version"]["description"] == "two"
    fetched = _ok(client.get(f"{VERSIONS}/get", params=ref))["model_version"]
    assert (fetched["description"], fetched["tags"]) == ("two", [{"key": "b", "value": "2"}])

    staged = _ok(
        client.post(
            f"{VERSIONS}/transition-stage",
            json={**ref, "stage": "production", "archive_existing_versions": True},
        )
    )["model_version"]
    assert staged["current_stage"] == "Production"
    latest = _ok(client.post(f"{MODELS}/get-latest-versions", json={"name": "churn"}))
    assert [v["version"] for v in latest["model_versions"]] == ["3", "2"]
    production = _ok(
        client.get(
            f"{MODELS}/get-latest-versions", params={"name": "churn", "stages": ["Production"]}
        )
    )
    assert [v["version"] for v in production["model_versions"]] == ["2"]

    found = _ok(
        client.get(
            f"{VERSIONS}/search",
            params={"filter": "name = 'churn'", "order_by": ["version_number ASC"]},
        )
    )
    assert [v["version"] for v in found["model_versions"]] == ["1", "2", "3"]
    page = _ok(
        client.get(
            f"{VERSIONS}/search",
            params={"max_results": 2, "order_by": ["version_number DESC"]},
        )
    )
    assert [v["version"] for v in page["model_versions"]] == ["3", "2"]
    rest = _ok(
        client.get(
            f"{VERSIONS}/search",
            params={
                "max_results": 2,
                "order_by": ["version_number DESC"],
                "page_token": page["next_page_token"],
            },
        )
    )
    assert [v["version"] for v in rest["model_versions"]] == ["1"]
    assert "next_page_token" not in rest

    _ok(_delete(client, f"{VERSIONS}/delete-tag", {**ref, "key": "b"}))
    _ok(_delete(client, f"{MODELS}/delete-tag", {"name": "churn", "key": "a"}))
    _ok(client.post(f"{MODELS}/alias", json={"name": "churn", "alias": "prod", "version": 3}))
    _ok(_delete(client, f"{MODELS}/alias", {"name": "churn", "alias": "prod"}))
    _ok(_delete(client, f"{VERSIONS}/delete", ref))
    renamed = _ok(client.post(f"{MODELS}/rename", json={"name": "churn", "new_name": "attrition"}))
    assert renamed["registered_model"]["name"] == "attrition"
    versions = _ok(client.get(f"{VERSIONS}/search", params={"filter": "name = 'attrition'"}))
    assert sorted(v["version"] for v in versions["model_versions"]) == ["1", "3"]
    _model_with_versions(client, "fraud", 1)
    models = _ok(client.get(f"{MODELS}/search", params={"filter": "name LIKE '%a%'"}))
    assert [m["name"] for m in models["registered_models"]] == ["attrition", "fraud"]
    _ok(_delete(client, f"{MODELS}/delete", {"name": "attrition"}))
    left = _ok(client.get(f"{MODELS}/search"))["registered_models"]
    assert [m["name"] for m in left] == ["fraud"]
    assert _ok(client.get(f"{VERSIONS}/search"))["model_versions"][0]["name"] == "fraud"


def test_unknown_things_are_404(client: TestClient) -> None:
    _model_with_versions(client, "m", 1)
    cases = [
        (client.get(f"{MODELS}/get", params={"name": "nope"}), "Registered model 'nope'"),
        (client.get(f"{VERSIONS}/get", params={"name": "m", "version": "7"}), "Version 7"),
        (client.get(f"{VERSIONS}/get", params={"name": "nope", "version": "1"}), "'nope'"),
        (client.get(f"{MODELS}/alias", params={"name": "m", "alias": "gone"}), "alias 'gone'"),
        (_delete(client, f"{MODELS}/delete", {"name": "nope"}), "'nope' does not exist"),
        (_delete(client, f"{VERSIONS}/delete", {"name": "m", "version": "7"}), "Version 7"),
        (_delete(client, f"{MODELS}/alias", {"name": "m", "alias": "gone"}), "alias 'gone'"),
        (
            client.post(f"{MODELS}/alias", json={"name": "m", "alias": "a", "version": "5"}),
            "Version 5",
        ),
        (client.post(f"{VERSIONS}/create", json={"name": "nope", "source": "s3://b/x"}), "'nope'"),
        (
            client.get(f"{VERSIONS}/get-download-uri", params={"name": "m", "version": "9"}),
            "Version 9",
        ),
        (client.post(f"{MODELS}/get-latest-versions", json={"name": "nope"}), "'nope'"),
    ]
    for response, message in cases:
        assert message in _error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_bad_input_is_400_and_the_server_keeps_going(client: TestClient) -> None:
    _model_with_versions(client, "m", 1)
    duplicate = client.post(f"{MODELS}/create", json={"name": "m"})
    assert "already exists" in _error(duplicate, 400, "RESOURCE_ALREADY_EXISTS")
    cases = [
        (client.post(f"{MODELS}/create", json={"name": ""}), "expected a non-empty string"),
        (client.post(f"{MODELS}/create", json={"name": "x" * 300}), "the limit is 256"),
        (client.post(f"{MODELS}/create", json={"name": "a/b"}), "cannot contain '/'"),
        (client.post(f"{MODELS}/create", json={}), "Missing value for required parameter 'name'"),
        (client.post(f"{MODELS}/create", json={"name": 5}), "parameter 'name'"),
        (client.post(f"{MODELS}/create", content=b"{nope"), "Malformed JSON"),
        (
            client.post(f"{MODELS}/alias", json={"name": "m", "alias": "v1", "version": "1"}),
            "looks like a version",
        ),
        (
            client.post(f"{MODELS}/alias", json={"name": "m", "alias": "latest", "version": "1"}),
            "reserved",
        ),
        (client.get(f"{VERSIONS}/get", params={"name": "m", "version": "abc"}), "positive integer"),
        (client.get(f"{VERSIONS}/get", params={"name": "m"}), "'version'"),
        (client.get(f"{MODELS}/search", params={"filter": "run_id = 'x'"}), "unknown field"),
        (client.get(f"{MODELS}/search", params={"filter": "name = "}), "expected a value"),
        (client.get(f"{MODELS}/search", params={"max_results": 5000}), "between 1 and 1000"),
        (client.get(f"{MODELS}/search", params={"max_results": "x"}), "'max_results'"),
        (client.get(f"{VERSIONS}/search", params={"page_token": "???"}), "Invalid page token"),
        (
            client.get(f"{VERSIONS}/search", params={"order_by": ["tags.x"]}),
            "cannot order model versions",
        ),
        (
            client.post(f"{VERSIONS}/create", json={"name": "m", "source": "/x\x00y"}),
            "NUL character",
        ),
        (
            client.post(
                f"{VERSIONS}/transition-stage",
                json={"name": "m", "version": "1", "stage": "Live"},
            ),
            "Invalid stage 'Live'",
        ),
        (
            client.post(f"{MODELS}/set-tag", json={"name": "m", "key": "", "value": "v"}),
            "Invalid tag name",
        ),
    ]
    for response, message in cases:
        assert message in _error(response, 400, "INVALID_PARAMETER_VALUE")
    wrong_method = client.put(f"{MODELS}/create", json={"name": "z"})
    _error(wrong_method, 405, "ENDPOINT_NOT_FOUND")
    assert _ok(client.get(f"{MODELS}/get", params={"name": "m"}))["registered_model"]["name"] == "m"
