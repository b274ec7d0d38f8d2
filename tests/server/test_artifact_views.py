"""Cairn's artifact preview and download for the UI: kinds, parsing, limits, confinement."""

from __future__ import annotations

import json
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

ARTIFACTS = "/api/2.0/cairn/artifacts"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings(backend_store_uri=str(tmp_path)))) as test_client:
        yield test_client


@pytest.fixture
def run_id(client: TestClient) -> str:
    from urllib.parse import urlsplit

    from cairn.tracking.artifacts import ArtifactRepository

    state = client.app.state  # type: ignore[attr-defined]
    run = state.client.create_run("0", 0, {}, "files")
    run_id: str = run.info.run_id
    # Written straight into the proxy's destination: where the server finds the run's files.
    rel = urlsplit(run.info.artifact_uri).path.lstrip("/")
    repository = ArtifactRepository(f"{state.artifacts_destination}/{rel}")
    files = {
        "notes.txt": "line one\nline two\n",
        "config.json": json.dumps({"depth": 3, "features": ["a", "b"]}),
        "bad.json": "{not json",
        "env.yaml": "python: 3.11\nwhen: 2024-01-02\n",
        "data/table.csv": "a,b\n1,2\n3,4\n",
        "model/MLmodel": "flavors:\n  python_function:\n    loader_module: cairn.sklearn\n",
        "page.html": "<script>alert(1)</script>",
    }
    for path, text in files.items():
        repository.write_text(path, text)
    repository.write_bytes("plots/a.png", PNG)
    repository.write_bytes("blob.bin", b"\x00\x01\x02")
    return run_id


def _preview(client: TestClient, run_id: str, path: str) -> Any:
    response = client.get(f"{ARTIFACTS}/preview", params={"run_id": run_id, "path": path})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("path", "kind", "expected"),
    [
        ("notes.txt", "text", {"text": "line one\nline two\n"}),
        ("config.json", "json", {"data": {"depth": 3, "features": ["a", "b"]}}),
        ("env.yaml", "yaml", {"data": {"python": 3.11, "when": "2024-01-02"}}),
        ("data/table.csv", "csv", {"rows": [["a", "b"], ["1", "2"], ["3", "4"]]}),
        (
            "model/MLmodel",
            "mlmodel",
            {"data": {"flavors": {"python_function": {"loader_module": "cairn.sklearn"}}}},
        ),
        ("plots/a.png", "image", {"size": len(PNG)}),
        ("blob.bin", "binary", {"size": 3}),
        ("page.html", "text", {"text": "<script>alert(1)</script>"}),
    ],
)
def test_previews_say_what_a_file_is(
    client: TestClient, run_id: str, path: str, kind: str, expected: dict[str, Any]
) -> None:
    preview = _preview(client, run_id, path)
    assert preview["kind"] == kind
    assert preview["path"] == path
    for key, value in expected.items():
        assert preview[key] == value


def test_a_parse_error_is_reported_with_the_text(client: TestClient, run_id: str) -> None:
    preview = _preview(client, run_id, "bad.json")
    assert preview["text"] == "{not json"
    assert preview["parse_error"].startswith("Cannot parse JSON")


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("missing.txt", 404, "has no artifact 'missing.txt'"),
        ("data", 400, "is a folder"),
        ("../../etc/passwd", 400, ""),
        ("%2e%2e/secret", 400, ""),
    ],
)
def test_missing_folders_and_escapes_are_refused(
    client: TestClient, run_id: str, path: str, status: int, message: str
) -> None:
    for endpoint in ("preview", "get"):
        response = client.get(f"{ARTIFACTS}/{endpoint}", params={"run_id": run_id, "path": path})
        assert response.status_code == status, response.text
        assert message in response.json()["message"]


def test_get_serves_images_inline_and_everything_else_as_attachments(
    client: TestClient, run_id: str
) -> None:
    image = client.get(f"{ARTIFACTS}/get", params={"run_id": run_id, "path": "plots/a.png"})
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    page = client.get(f"{ARTIFACTS}/get", params={"run_id": run_id, "path": "page.html"})
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["content-disposition"] == "attachment"
    assert page.headers["content-security-policy"] == "sandbox"
