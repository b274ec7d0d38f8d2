"""The web UI's bundle as served by the app: client paths, cached assets, nothing shadowed."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pytest

from cairn.server import ServerSettings, create_app
from cairn.server.routes import ui

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

INDEX = b"<!doctype html><title>Cairn</title><script type=module src=/assets/index-abc.js></script>"


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_bytes(INDEX)
    (static / "assets" / "index-abc.js").write_text("console.log('cairn')")
    (static / "assets" / "index-abc.css").write_text("body{}")
    monkeypatch.setattr(ui, "STATIC", static)
    return static


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(ServerSettings(backend_store_uri=str(tmp_path / "store")))
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/experiments",
        "/experiments/3",
        "/runs/abc",
        "/compare?runs=a,b",
        "/models",
        "/models/x/y",
    ],
)
def test_client_paths_answer_the_page(bundle: Path, client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_assets_are_cached_for_a_year(bundle: Path, client: TestClient) -> None:
    response = client.get("/assets/index-abc.js")
    assert response.status_code == 200
    assert response.text == "console.log('cairn')"
    assert response.headers["content-type"].startswith("text/javascript")
    assert "immutable" in response.headers["cache-control"]
    assert "max-age=31536000" in response.headers["cache-control"]
    assert client.get("/assets/index-abc.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("name", ["missing.js", "..%2Findex.html", ".hidden"])
def test_unknown_or_unsafe_assets_are_404(bundle: Path, client: TestClient, name: str) -> None:
    response = client.get(f"/assets/{name}")
    assert response.status_code == 404
    assert response.json()["error_code"] in ("RESOURCE_DOES_NOT_EXIST", "ENDPOINT_NOT_FOUND")


def test_api_and_service_paths_are_not_shadowed(bundle: Path, client: TestClient) -> None:
    assert client.get("/health").text == "OK"
    assert client.get("/version").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Cairn tracking server"
    assert client.get("/docs").status_code == 200
    unknown = client.get("/api/2.0/mlflow/runs/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert client.get("/not-a-ui-path").json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_cairn_ui_endpoints_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/2.0/cairn/runs/table" in paths
    assert "/api/2.0/cairn/metrics/get-history-downsampled" in paths
    assert "/" not in paths


def test_missing_bundle_says_how_to_build_it(
    tmp_path: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui, "STATIC", tmp_path / "no-bundle")
    response = client.get("/experiments/1")
    assert response.status_code == 503
    assert "npm run build" in response.text
    assert "scripts/demo.sh" in response.text
    assert client.get("/health").text == "OK"
