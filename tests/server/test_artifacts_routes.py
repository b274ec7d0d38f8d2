"""The artifact routes in-process: the proxy (upload, download, list, delete) and a run's listing.

The traversal matrix checks the file system itself: whatever a request asks for, nothing
outside the artifact destination is read, written or deleted, and the answer is a JSON 400/404.
"""

from __future__ import annotations

import hashlib
import http.client
import os
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

    from tests.conftest import LiveServer

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/2.0/mlflow"
SECRET = b"TOP-SECRET-7f3a9c"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # The store two levels down, so '..' and '../..' from the destination land on sentinels.
    app = create_app(ServerSettings(backend_store_uri=str(tmp_path / "a" / "b")))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def destination(client: TestClient) -> Path:
    from pathlib import Path

    return Path(client.app.state.artifacts_destination)  # type: ignore[attr-defined]


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    return str(body["message"])


def test_upload_download_list_delete_round_trip(client: TestClient, destination: Path) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB of every byte value
    assert client.put(f"{PROXY}/1/run/artifacts/data/blob.bin", content=payload).json() == {}
    assert client.put(f"{PROXY}/1/run/artifacts/notes.txt", content=b"hello").status_code == 200
    assert client.put(f"{PROXY}/1/run/artifacts/empty.txt", content=b"").status_code == 200

    assert (destination / "1/run/artifacts/data/blob.bin").read_bytes() == payload
    downloaded = client.get(f"{PROXY}/1/run/artifacts/data/blob.bin")
    assert downloaded.status_code == 200
    assert downloaded.content == payload
    assert downloaded.headers["content-length"] == str(len(payload))
    assert client.get(f"{PROXY}/1/run/artifacts/empty.txt").content == b""

    listing = client.get(PROXY, params={"path": "1/run/artifacts"}).json()
    assert listing == {
        "files": [
            {"path": "data", "is_dir": True},
            {"path": "empty.txt", "is_dir": False, "file_size": 0},
            {"path": "notes.txt", "is_dir": False, "file_size": 5},
        ]
    }
    nested = client.get(PROXY, params={"path": "1/run/artifacts/data"}).json()
    assert nested == {"files": [{"path": "blob.bin", "is_dir": False, "file_size": len(payload)}]}

    assert client.put(f"{PROXY}/1/run/artifacts/notes.txt", content=b"v2").status_code == 200
    assert client.get(f"{PROXY}/1/run/artifacts/notes.txt").content == b"v2"

    assert client.delete(f"{PROXY}/1/run/artifacts/data").json() == {}
    assert not (destination / "1/run/artifacts/data").exists()
    assert [
        f["path"] for f in client.get(PROXY, params={"path": "1/run/artifacts"}).json()["files"]
    ] == [
        "empty.txt",
        "notes.txt",
    ]
    assert not [p for p in destination.rglob("*.part")]


def test_upload_streams_a_chunked_body(client: TestClient, destination: Path) -> None:
    chunk = os.urandom(64 * 1024)
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(48):  # 3 MiB, more than one 1 MiB write
            digest.update(chunk)
            yield chunk

    response = client.put(f"{PROXY}/big/stream.bin", content=body())
    assert response.status_code == 200, response.text
    written = (destination / "big" / "stream.bin").read_bytes()
    assert len(written) == 48 * len(chunk)
    assert hashlib.sha256(written).digest() == digest.digest()


def test_missing_and_folder_paths(client: TestClient) -> None:
    client.put(f"{PROXY}/exp/run/file.txt", content=b"x")
    assert "download artifact 'exp/run/nope.txt': no such artifact" in _error(
        client.get(f"{PROXY}/exp/run/nope.txt"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert "is a folder" in _error(client.get(f"{PROXY}/exp/run"), 400, "INVALID_PARAMETER_VALUE")
    assert "delete artifact 'exp/nope': no such artifact" in _error(
        client.delete(f"{PROXY}/exp/nope"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert "it is a folder" in _error(
        client.put(f"{PROXY}/exp/run", content=b"x"), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "in each other's way" in _error(
        client.put(f"{PROXY}/exp/run/file.txt/inner.txt", content=b"x"),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "name a file" in _error(client.get(f"{PROXY}/"), 400, "INVALID_PARAMETER_VALUE")
    assert "name a file" in _error(client.delete(f"{PROXY}/"), 400, "INVALID_PARAMETER_VALUE")
    assert client.get(PROXY, params={"path": "no/such/folder"}).json() == {"files": []}
    assert client.get(PROXY, params={"path": "exp/run/file.txt"}).json() == {"files": []}


def test_active_content_is_served_as_plain_text(client: TestClient) -> None:
    client.put(f"{PROXY}/page.html", content=b"<script>alert(1)</script>")
    response = client.get(f"{PROXY}/page.html")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    client.put(f"{PROXY}/table.csv", content=b"a,b\n")
    assert client.get(f"{PROXY}/table.csv").headers["content-type"].startswith("text/csv")


def test_multipart_upload_is_declined_so_clients_fall_back(client: TestClient) -> None:
    for step in ("create", "complete", "abort"):
        response = client.post(f"/api/2.0/mlflow-artifacts/mpu/{step}/x/model.bin", json={})
        message = _error(response, 501, "NOT_IMPLEMENTED")
        # MLflow's HttpArtifactRepository recognizes this sentence and uses a single PUT.
        assert message.startswith(
            "Multipart upload is not supported for the current artifact repository"
        )


def test_proxy_is_off_without_serve_artifacts(tmp_path: Path) -> None:
    settings = ServerSettings(backend_store_uri=str(tmp_path), serve_artifacts=False)
    with TestClient(create_app(settings)) as no_proxy:
        response = no_proxy.put(f"{PROXY}/x.txt", content=b"x")
        assert "does not proxy artifacts" in _error(response, 503, "TEMPORARILY_UNAVAILABLE")
        assert not (tmp_path / "artifacts" / "x.txt").exists()


def test_run_artifact_listing(client: TestClient) -> None:
    run = client.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    root = run["artifact_uri"]
    assert root == f"mlflow-artifacts:/0/{run['run_id']}/artifacts"
    prefix = f"{PROXY}/0/{run['run_id']}/artifacts"
    client.put(f"{prefix}/model/MLmodel", content=b"flavors: {}\n")
    client.put(f"{prefix}/metrics.json", content=b"{}")

    top = client.get(f"{API}/artifacts/list", params={"run_id": run["run_id"]}).json()
    assert top == {
        "root_uri": root,
        "files": [
            {"path": "metrics.json", "is_dir": False, "file_size": 2},
            {"path": "model", "is_dir": True},
        ],
    }
    inner = client.get(
        f"{API}/artifacts/list", params={"run_uuid": run["run_id"], "path": "model"}
    ).json()
    assert inner["files"] == [{"path": "model/MLmodel", "is_dir": False, "file_size": 12}]

    assert "Run 'nope' does not exist" in _error(
        client.get(f"{API}/artifacts/list", params={"run_id": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "run_id" in _error(client.get(f"{API}/artifacts/list"), 400, "INVALID_PARAMETER_VALUE")
    assert "'..' components" in _error(
        client.get(f"{API}/artifacts/list", params={"run_id": run["run_id"], "path": "../.."}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# -- traversal ------------------------------------------------------------------------------

# Paths as they appear in the request line; the server percent-decodes once before routing.
TRAVERSALS = [
    "%2e%2e/outside.txt",
    "%2E%2E%2Foutside.txt",
    "x/%2e%2e/%2e%2e/outside.txt",
    "%2e%2e/%2e%2e/outside.txt",
    "%252e%252e/outside.txt",
    "%25252e%25252e%25252foutside.txt",
    "..%5Coutside.txt",
    "x%5C..%5C..%5Coutside.txt",
    "%2Foutside.txt",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "file:%2F%2F%2Fetc%2Fpasswd",
    "file:/etc/passwd",
    "s3:%2F%2Fbucket%2Fkey",
    "%00outside.txt",
    "ok%00/%2e%2e/outside.txt",
    "~/outside.txt",
    "C:%5Coutside.txt",
    "C:/outside.txt",
    "link-out/outside.txt",
    "link-out",
    "link-file",
]


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` but outside ``skip`` and the database: size, mtime, digest."""
    found = {}
    for path in root.rglob("*"):
        if skip in path.parents or path == skip or ".db" in path.name:
            continue
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
        elif path.is_dir() and not path.is_symlink():
            found[str(path.relative_to(root)) + "/"] = (0, 0, "")
    return found


def test_traversal_matrix_never_leaves_the_destination(
    client: TestClient, destination: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for folder in (tmp_path, tmp_path / "a", tmp_path / "a" / "b", outside):
        (folder / "outside.txt").write_bytes(SECRET)
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "link-out").symlink_to(outside, target_is_directory=True)
    (destination / "link-file").symlink_to(outside / "outside.txt")
    before = _snapshot(tmp_path, destination)

    for raw in TRAVERSALS:
        url = f"{PROXY}/{raw}"
        answers = {
            "PUT": client.put(url, content=b"overwritten"),
            "GET": client.get(url),
            "DELETE": client.delete(url),
        }
        for method, response in answers.items():
            assert response.status_code in (400, 404), (method, raw, response.text)
            assert response.json()["error_code"] in (
                "INVALID_PARAMETER_VALUE",
                "RESOURCE_DOES_NOT_EXIST",
            ), (method, raw)
            assert SECRET.decode() not in response.text
        # The listing takes its path from the query string, where nothing is decoded twice.
        listing = client.get(PROXY, params={"path": raw.replace("%2F", "/")})
        assert listing.status_code in (400, 404) or listing.json() == {"files": []}, raw

    for unsafe in ("..", "../..", "../a", "link-out", "/", "/etc", "%2e%2e", "x\\..\\..", "s3://b"):
        response = client.get(PROXY, params={"path": unsafe})
        _error(response, 400, "INVALID_PARAMETER_VALUE")

    assert _snapshot(tmp_path, destination) == before
    assert (outside / "outside.txt").read_bytes() == SECRET
    assert (destination / "link-out").is_symlink() and (destination / "link-file").is_symlink()
    # Nothing new inside the destination either, apart from the links we made.
    assert sorted(p.name for p in destination.rglob("*")) == ["link-file", "link-out"]


def test_plain_dot_dot_over_a_real_socket(live_server: LiveServer, tmp_path: Path) -> None:
    """Literal '..' segments (which HTTP client libraries normalize away) sent as-is."""
    from pathlib import Path

    destination = Path(live_server.app.state.artifacts_destination)
    secret = destination.parent / "outside.txt"
    secret.write_bytes(SECRET)
    host, port = live_server.url.removeprefix("http://").split(":")
    for method in ("PUT", "GET", "DELETE"):
        for raw in ("../outside.txt", "a/../../outside.txt", "..\\outside.txt"):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                body = b"overwritten" if method == "PUT" else None
                connection.request(method, f"{PROXY}/{raw}", body=body)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            assert response.status == 400, (method, raw, payload)
            assert b"INVALID_PARAMETER_VALUE" in payload
    assert secret.read_bytes() == SECRET
    assert not destination.exists() or not any(destination.rglob("*outside*"))
