"""URIs sent by clients: model version sources and experiment artifact locations.

Registry schemes, object stores and public web hosts pass; ``file:``, local paths, empty
schemes, traversal in the path and hosts of this machine or its private networks are refused
with 400, and nothing is stored. Without the artifact proxy, clients write to the server's
artifact folder directly, so local sources inside that folder (and only there) are accepted.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
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


# -- YAML and file permissions ----------------------------------------------------------------

SRC = Path(__file__).resolve().parents[2] / "src" / "cairn"
UNSAFE_YAML = re.compile(
    r"yaml\.(load|load_all|full_load|full_load_all|unsafe_load|unsafe_load_all)\s*\("
    r"|yaml\.(Loader|FullLoader|UnsafeLoader|UnsafeConstructor|Constructor)\b"
)


def test_yaml_is_parsed_with_the_safe_loader_everywhere() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNSAFE_YAML.search(line)
    ]
    assert offenders == []
    assert any("safe_load" in p.read_text() for p in SRC.rglob("*.py")), "the scan sees YAML use"


def test_a_yaml_python_tag_is_an_error_not_a_call(tmp_path: Path) -> None:
    from cairn.errors import ModelFormatError
    from cairn.models.mlmodel import Model

    marker = tmp_path / "ran"
    (tmp_path / "MLmodel").write_text(
        f"flavors: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(ModelFormatError, match="is not valid YAML"):
        Model.load(tmp_path)
    assert not marker.exists()


def test_yaml_artifact_preview_does_not_construct_python_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with _client(tmp_path) as client:
        run = client.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        evil = f"x: !!python/object/apply:os.system ['touch {marker}']\n".encode()
        proxy = "/api/2.0/mlflow-artifacts/artifacts"
        client.put(f"{proxy}/0/{run['run_id']}/artifacts/evil.yaml", content=evil)
        preview = client.get(
            "/api/2.0/cairn/artifacts/preview",
            params={"run_id": run["run_id"], "path": "evil.yaml"},
        ).json()
    assert "Cannot parse YAML" in preview["parse_error"]
    assert "python/object" in preview["parse_error"]
    assert not marker.exists()


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def test_proxy_uploads_are_private_files_in_private_folders(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with _client(tmp_path) as client:
            proxy = "/api/2.0/mlflow-artifacts/artifacts"
            assert client.put(f"{proxy}/new/deep/folder/f.bin", content=b"x").is_success
            destination = Path(client.app.state.artifacts_destination)  # type: ignore[attr-defined]
    finally:
        os.umask(old)
    modes = _modes(destination / "new")
    assert modes["."] == 0o700
    assert modes["deep"] == modes["deep/folder"] == 0o700
    assert modes["deep/folder/f.bin"] == 0o600


@pytest.mark.slow
def test_cairn_server_creates_nothing_others_can_read(cairn_server: Any, tmp_path: Path) -> None:
    import httpx

    store = tmp_path / "store"
    server = cairn_server(str(store))
    with httpx.Client(base_url=server.url) as client:
        run = client.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        client.post(
            f"{API}/runs/log-metric", json={"run_id": run["run_id"], "key": "m", "value": 1}
        )
        proxy = "/api/2.0/mlflow-artifacts/artifacts"
        uploaded = client.put(f"{proxy}/0/{run['run_id']}/artifacts/a/b.txt", content=b"x")
        assert uploaded.status_code == 200, uploaded.text
    server.kill()
    created = {
        **_modes(store),
        **{f"artifacts/{k}": v for k, v in _modes(tmp_path / "artifacts").items()},
    }
    assert any(name.endswith("b.txt") for name in created)
    assert any(name.endswith(".db") for name in created)
    shared = {name: oct(mode) for name, mode in created.items() if mode & 0o077}
    assert shared == {}
