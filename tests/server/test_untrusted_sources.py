"""URIs sent by clients: model version sources and experiment artifact locations.

Registry schemes, object stores and public web hosts pass; ``file:``, local paths, empty
schemes, traversal in the path and hosts of this machine or its private networks are refused
with 400, and nothing is stored. Without the artifact proxy, clients write to the server's
artifact folder directly, so local sources inside that folder (and only there) are accepted.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest

from cairn.errors import InvalidParameterError
from cairn.server import ServerSettings, create_app
from cairn.server._sources import check_model_source, check_remote_host

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

API = "/api/2.0/mlflow"
VERSIONS = f"{API}/model-versions"

ACCEPTED = [
    "mlflow-artifacts:/1/abc/artifacts/model",
    "runs:/abc123/model",
    "models:/m-0123456789abcdef",
    "models:/ratings/3",
    "s3://bucket/models/ratings/3",
    "gs://bucket/model",
    "https://models.example.com/ratings/3.tar.gz",
    "http://93.184.216.34/model",
]
REFUSED = [
    ("file:///etc/passwd", "local paths and file: URIs are not accepted"),
    ("FILE:/etc", "local paths and file: URIs are not accepted"),
    ("file://localhost/etc", "local paths and file: URIs are not accepted"),
    ("/etc/passwd", "local paths and file: URIs are not accepted"),
    ("relative/model", "local paths and file: URIs are not accepted"),
    ("//proc/self/root/etc", "local paths and file: URIs are not accepted"),
    (":/etc/passwd", "local paths and file: URIs are not accepted"),  # empty scheme
    ("C:/Windows/model", "local paths and file: URIs are not accepted"),
    ("~/model", "local paths and file: URIs are not accepted"),
    ("mlflow-artifacts:/../../etc", "its path leaves its root"),
    ("mlflow-artifacts:/1/%2e%2e/%2e%2e/x", "its path leaves its root"),
    ("mlflow-artifacts:/1/%252e%252e/x", "its path leaves its root"),
    ("mlflow-artifacts://evil.example/1/model", "name no host"),
    ("runs:/abc/../../secret", "its path leaves its root"),
    ("models:/x/..%2f..%2fy", "its path leaves its root"),
    ("s3://bucket/a/../../b", "its path leaves its root"),
    ("mlflow-artifacts:/1\\..\\x", "backslashes are not allowed"),
    ("runs:/abc/mo\x00del", "NUL characters are not allowed"),
    ("http://127.0.0.1:5000/model", "loopback, private, link-local or reserved"),
    ("http://localhost/model", "is a local name"),
    ("http://api.localhost/model", "is a local name"),
    ("http://printer.local/model", "is a local name"),
    ("http://metadata.google.internal/computeMetadata", "is a local name"),
    ("http://169.254.169.254/latest/meta-data", "loopback, private, link-local or reserved"),
    ("http://10.0.0.7/m", "loopback, private, link-local or reserved"),
    ("http://192.168.1.1/m", "loopback, private, link-local or reserved"),
    ("http://172.16.5.4/m", "loopback, private, link-local or reserved"),
    ("http://[::1]/m", "loopback, private, link-local or reserved"),
    ("http://[fe80::1]/m", "loopback, private, link-local or reserved"),
    ("http://[::ffff:127.0.0.1]/m", "loopback, private, link-local or reserved"),
    ("http://0.0.0.0/m", "loopback, private, link-local or reserved"),
    ("http://127.1/m", "loopback, private, link-local or reserved"),
    ("http://2130706433/m", "loopback, private, link-local or reserved"),
    ("http://0x7f000001/m", "loopback, private, link-local or reserved"),
    ("http:///m", "it names no host"),
    ("ftp://example.com/model", "the scheme 'ftp' is not allowed"),
    ("gopher://example.com/_", "the scheme 'gopher' is not allowed"),
    ("javascript:alert(1)", "the scheme 'javascript' is not allowed"),
    ("data:text/plain,x", "the scheme 'data' is not allowed"),
]


@pytest.mark.parametrize("uri", ACCEPTED)
def test_registry_object_store_and_public_uris_pass(uri: str) -> None:
    assert check_model_source(uri) == uri


@pytest.mark.parametrize(("uri", "reason"), REFUSED)
def test_local_private_and_traversing_uris_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(InvalidParameterError, match="Invalid model version source") as raised:
        check_model_source(uri)
    assert reason in raised.value.message


def test_remote_host_check_names_the_host() -> None:
    assert check_remote_host("example.com") is None
    assert check_remote_host("8.8.8.8") is None
    reason = check_remote_host("100.64.0.1")  # carrier-grade NAT: not global
    assert reason is not None and "'100.64.0.1'" in reason


def test_local_sources_only_inside_the_folder_clients_write(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "1" / "abc" / "artifacts" / "model").mkdir(parents=True)
    inside = root / "1" / "abc" / "artifacts" / "model"
    assert check_model_source(str(inside), local_root=str(root)) == str(inside)
    assert check_model_source(f"file://{inside}", local_root=str(root)) == f"file://{inside}"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    cases = [
        (str(outside), "outside the server's artifact folder"),
        (str(root / "link" / "x"), "outside the server's artifact folder"),
        (f"{root}/1/../../elsewhere", "'..' components are not allowed"),
        ("1/abc/artifacts/model", "must be an absolute path"),
    ]
    for uri, reason in cases:
        with pytest.raises(InvalidParameterError, match="Invalid model version source") as raised:
            check_model_source(uri, local_root=str(root))
        assert reason in raised.value.message


# -- through the server ---------------------------------------------------------------------


def _client(tmp_path: Path, **options: Any) -> TestClient:
    settings = ServerSettings(backend_store_uri=str(tmp_path / "store"), **options)
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path) as test_client:
        assert test_client.post(f"{API}/registered-models/create", json={"name": "m"}).is_success
        yield test_client


def _versions(client: TestClient) -> list[str]:
    found = client.get(f"{VERSIONS}/search", params={"filter": "name = 'm'"}).json()
    return [v["source"] for v in found.get("model_versions", [])]


@pytest.mark.parametrize(("uri", "reason"), REFUSED)
def test_server_refuses_unsafe_sources_and_stores_nothing(
    client: TestClient, uri: str, reason: str
) -> None:
    response = client.post(f"{VERSIONS}/create", json={"name": "m", "source": uri})
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert reason in response.json()["message"]
    assert _versions(client) == []


def test_server_registers_safe_sources(client: TestClient) -> None:
    for uri in ACCEPTED:
        response = client.post(f"{VERSIONS}/create", json={"name": "m", "source": uri})
        assert response.status_code == 200, response.text
    assert sorted(_versions(client)) == sorted(ACCEPTED)


@pytest.mark.parametrize(
    "location",
    ["file:///etc", "/etc", ":/etc", "mlflow-artifacts:/0", "s3://bucket/x", "relative"],
)
def test_clients_cannot_choose_an_artifact_location(client: TestClient, location: str) -> None:
    response = client.post(
        f"{API}/experiments/create", json={"name": "e", "artifact_location": location}
    )
    assert response.status_code == 400
    assert "artifact_location cannot be set by clients" in response.json()["message"]
    missing = client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "e"})
    assert missing.status_code == 404


def test_without_the_proxy_local_sources_inside_the_artifact_folder_pass(tmp_path: Path) -> None:
    destination = tmp_path / "shared-artifacts"
    with _client(tmp_path, serve_artifacts=False, artifacts_destination=str(destination)) as client:
        client.post(f"{API}/registered-models/create", json={"name": "m"})
        (destination / "1" / "model").mkdir(parents=True)
        ok = client.post(
            f"{VERSIONS}/create", json={"name": "m", "source": str(destination / "1" / "model")}
        )
        assert ok.status_code == 200, ok.text
        refused = client.post(f"{VERSIONS}/create", json={"name": "m", "source": "/etc"})
        assert "outside the server's artifact folder" in refused.json()["message"]


def test_restriction_can_be_turned_off_for_a_trusted_single_user_server(tmp_path: Path) -> None:
    with _client(tmp_path, restrict_client_uris=False) as client:
        client.post(f"{API}/registered-models/create", json={"name": "m"})
        response = client.post(f"{VERSIONS}/create", json={"name": "m", "source": "/models/m"})
        assert response.status_code == 200, response.text
        created = client.post(
            f"{API}/experiments/create",
            json={"name": "e", "artifact_location": str(tmp_path / "elsewhere")},
        )
        assert created.status_code == 200, created.text
