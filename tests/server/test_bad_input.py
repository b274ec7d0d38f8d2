"""Hostile and malformed requests: always a 4xx ``{"error_code", "message"}``, never a 500.

Most cases drive the app in-process. Artifact paths go through a raw ASGI call, because HTTP
clients (httpx included) remove ``..`` segments before sending; the scope is built the way
uvicorn builds it (``path`` percent-decoded once, ``raw_path`` as sent). A few cases go through
a real uvicorn socket. A secret file is planted beside the artifact root, and nothing may read,
change or delete it, nor write anything outside the root.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from cairn.server import ServerSettings, create_app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi import FastAPI
    from starlette.types import Message

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
KiB = 1024
MAX_REQUEST = 64 * KiB
MAX_UPLOAD = 256 * KiB
SECRET = b"the secret beside the artifact root\n"
MISSING_RUN = "0123456789abcdef0123456789abcdef"
METRIC: dict[str, Any] = {"key": "k", "value": 1.0, "timestamp": 1}
TAG = {"key": "k", "value": "v"}


# -- fixtures ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """``base/store`` (database), ``base/root`` (artifacts), ``base/secret.txt`` beside them."""

    base: Path
    store: Path
    root: Path
    secret: Path

    def outside(self) -> dict[str, str]:
        """Digest of every file outside the artifact root, except the live database files."""
        found = {}
        for path in sorted(self.base.rglob("*")):
            if path.is_file() and self.root not in path.parents and self.store not in path.parents:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    base = tmp_path / "base"
    layout = Layout(base, base / "store", base / "root", base / "secret.txt")
    layout.root.mkdir(parents=True)
    layout.secret.write_bytes(SECRET)
    (base / "sub").mkdir()
    (base / "sub" / "other.txt").write_bytes(SECRET)
    return layout


def _settings(layout: Layout) -> ServerSettings:
    return ServerSettings(
        backend_store_uri=str(layout.store),
        artifacts_destination=str(layout.root),
        max_request_bytes=MAX_REQUEST,
        max_upload_bytes=MAX_UPLOAD,
    )


@pytest.fixture
def app(layout: Layout) -> Iterator[FastAPI]:
    app = create_app(_settings(layout))
    try:
        yield app
    finally:
        app.state.store.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a bug must show up as the 500 a real client would get.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def run_id(client: TestClient) -> str:
    response = client.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": 1})
    assert response.status_code == 200, response.text
    return str(response.json()["run"]["info"]["run_id"])


@pytest.fixture
def untouched(layout: Layout) -> Iterator[None]:
    """The files outside the artifact root are the same after the test (the secret included)."""
    before = layout.outside()
    yield
    assert layout.secret.read_bytes() == SECRET
    assert layout.outside() == before


def assert_error(
    response: httpx.Response, status: int | None = None, code: str | None = None
) -> dict[str, Any]:
    """A 4xx with an MLflow error body; ``status``/``code`` pin it down further."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert isinstance(body["error_code"], str) and body["error_code"].isupper()
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error_code"] == code, body
    return dict(body)


def _json(client: TestClient, method: str, path: str, body: bytes) -> httpx.Response:
    response: httpx.Response = client.request(
        method, f"{API}/{path}", content=body, headers={"content-type": "application/json"}
    )
    return response


# -- malformed JSON, wrong types, missing fields ------------------------------------------------


POST_ENDPOINTS = ["experiments/create", "runs/create", "runs/log-metric", "runs/log-batch"]


@pytest.mark.parametrize("endpoint", [*POST_ENDPOINTS, "runs/search", "experiments/search"])
@pytest.mark.parametrize(
    "body",
    [
        b'{"name": ',
        b'{"name": "x",}',
        b"{'name': 'x'}",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b"null",
        b'"a string"',
        b"42",
        b"NaN",
        b'{"a": ' * 2000 + b"1" + b"}" * 2000,  # deep nesting
    ],
    ids=[
        "truncated",
        "trailing-comma",
        "single-quotes",
        "not-utf8",
        "array",
        "null",
        "string",
        "number",
        "nan",
        "deep",
    ],
)
def test_malformed_json_is_400(client: TestClient, endpoint: str, body: bytes) -> None:
    assert_error(_json(client, "POST", endpoint, body), 400)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_empty_body_is_400(client: TestClient, endpoint: str) -> None:
    assert_error(_json(client, "POST", endpoint, b""), 400)


@pytest.mark.parametrize(
    ("endpoint", "body", "parameter"),
    [
        ("experiments/search", {"max_results": "ten"}, "max_results"),
        ("experiments/search", {"max_results": [1]}, "max_results"),
        ("experiments/search", {"max_results": 1.5e300}, "max_results"),
        ("experiments/search", {"order_by": "name"}, "order_by"),
        ("experiments/create", {"name": {"a": 1}}, "name"),
        ("experiments/create", {"name": "x", "tags": "k=v"}, "tags"),
        ("runs/search", {"experiment_ids": ["0"], "max_results": "abc"}, "max_results"),
        ("runs/search", {"experiment_ids": ["0"], "max_results": {"n": 1}}, "max_results"),
        ("runs/search", {"experiment_ids": "0 or 1=1"}, "experiment_ids"),
        ("runs/log-metric", {**METRIC, "run_id": {"a": 1}}, "run_id"),
        ("runs/log-metric", {**METRIC, "run_id": ["x"]}, "run_id"),
        ("runs/log-metric", {**METRIC, "run_id": MISSING_RUN, "value": "high"}, "value"),
        ("runs/log-metric", {**METRIC, "run_id": MISSING_RUN, "timestamp": "now"}, "timestamp"),
        ("runs/log-metric", {**METRIC, "run_id": MISSING_RUN, "step": "x"}, "step"),
        ("runs/log-metric", {**METRIC, "run_id": MISSING_RUN, "key": ["k"]}, "key"),
        ("runs/log-batch", {"run_id": MISSING_RUN, "metrics": "loss=1"}, "metrics"),
        ("runs/log-batch", {"run_id": MISSING_RUN, "metrics": [{**METRIC, "value": "x"}]}, "value"),
        ("runs/log-batch", {"run_id": MISSING_RUN, "params": {"k": "v"}}, "params"),
        ("runs/update", {"run_id": {"a": 1}, "status": "FINISHED"}, "run_id"),
        ("runs/create", {"experiment_id": "0", "start_time": "yesterday"}, "start_time"),
    ],
)  # fmt: skip
def test_wrong_types_are_400_and_name_the_parameter(
    client: TestClient, endpoint: str, body: dict[str, Any], parameter: str
) -> None:
    error = assert_error(client.post(f"{API}/{endpoint}", json=body), 400)
    assert parameter in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        f"{API}/experiments/search?max_results=ten",
        f"{API}/experiments/search?view_type=EVERYTHING",
        f"{API}/metrics/get-history?run_id={MISSING_RUN}&metric_key=k&max_results=many",
    ],
)
def test_wrong_query_types_are_400(client: TestClient, url: str) -> None:
    assert_error(client.get(url), 400)


@pytest.mark.parametrize(
    ("method", "endpoint", "body", "parameter"),
    [
        ("POST", "experiments/create", {}, "name"),
        ("POST", "experiments/update", {"experiment_id": "0"}, "new_name"),
        ("POST", "experiments/delete", {}, "experiment_id"),
        ("POST", "runs/log-metric", METRIC, "run_id"),
        ("POST", "runs/log-metric", {"run_id": MISSING_RUN, "value": 1.0, "timestamp": 1}, "key"),
        ("POST", "runs/log-parameter", {"run_id": MISSING_RUN, "value": "v"}, "key"),
        ("POST", "runs/set-tag", {"key": "k", "value": "v"}, "run_id"),
        ("POST", "runs/log-batch", {"metrics": []}, "run_id"),
        ("POST", "runs/update", {"status": "FINISHED"}, "run_id"),
        ("POST", "runs/delete", {}, "run_id"),
        ("GET", "runs/get", None, "run_id"),
        ("GET", "experiments/get", None, "experiment_id"),
        ("GET", "experiments/get-by-name", None, "experiment_name"),
        ("GET", "metrics/get-history", {"run_id": MISSING_RUN}, "metric_key"),
        ("GET", "artifacts/list", None, "run_id"),
    ],
)
def test_missing_required_fields_are_400(
    client: TestClient, method: str, endpoint: str, body: dict[str, Any] | None, parameter: str
) -> None:
    error = assert_error(_call(client, method, endpoint, body), 400, "INVALID_PARAMETER_VALUE")
    assert f"'{parameter}'" in error["message"]


# -- unknown ids, endpoints and methods ---------------------------------------------------------


UNKNOWN = [
    ("GET", "runs/get", {"run_id": MISSING_RUN}),
    ("GET", "experiments/get", {"experiment_id": "424242"}),
    ("GET", "experiments/get-by-name", {"experiment_name": "no such experiment"}),
    ("GET", "metrics/get-history", {"run_id": MISSING_RUN, "metric_key": "loss"}),
    ("GET", "artifacts/list", {"run_id": MISSING_RUN}),
    ("POST", "runs/create", {"experiment_id": "424242"}),
    ("POST", "runs/update", {"run_id": MISSING_RUN, "status": "FINISHED"}),
    ("POST", "runs/delete", {"run_id": MISSING_RUN}),
    ("POST", "runs/restore", {"run_id": MISSING_RUN}),
    ("POST", "runs/log-metric", {**METRIC, "run_id": MISSING_RUN}),
    ("POST", "runs/log-parameter", {"run_id": MISSING_RUN, "key": "k", "value": "v"}),
    ("POST", "runs/set-tag", {"run_id": MISSING_RUN, **TAG}),
    ("POST", "runs/log-batch", {"run_id": MISSING_RUN, "metrics": [{**METRIC, "step": 0}]}),
    ("POST", "experiments/update", {"experiment_id": "424242", "new_name": "x"}),
    ("POST", "experiments/delete", {"experiment_id": "424242"}),
    ("POST", "experiments/set-experiment-tag", {"experiment_id": "424242", **TAG}),
    ("GET", "logged-models/m-0123456789abcdef0123456789abcdef", None),
]
MALFORMED_IDS = [
    ("GET", "runs/get", {"run_id": "not-a-run"}),
    ("GET", "runs/get", {"run_id": "x" * 5000}),
    ("GET", "runs/get", {"run_id": "'; DROP TABLE runs; --"}),
    ("GET", "runs/get", {"run_id": "\x00"}),
    ("GET", "experiments/get", {"experiment_id": "not-a-number"}),
    ("GET", "experiments/get", {"experiment_id": "-1"}),
    ("GET", "experiments/get", {"experiment_id": "1e3"}),
    ("GET", "experiments/get", {"experiment_id": "99999999999999999999999999"}),
    ("GET", "experiments/get", {"experiment_id": "\x00"}),
    ("POST", "runs/create", {"experiment_id": "99999999999999999999999999"}),
    ("POST", "runs/create", {"experiment_id": "-5"}),
    ("POST", "experiments/delete", {"experiment_id": "99999999999999999999999999"}),
    ("POST", "runs/log-metric", {**METRIC, "run_id": "../../etc"}),
    ("GET", "metrics/get-history", {"run_id": "%", "metric_key": "%"}),
]


def _call(
    client: TestClient, method: str, endpoint: str, body: dict[str, Any] | None
) -> httpx.Response:
    if method == "GET":
        response: httpx.Response = client.get(f"{API}/{endpoint}", params=body)
    else:
        response = client.post(f"{API}/{endpoint}", json=body)
    return response


@pytest.mark.parametrize(("method", "endpoint", "body"), UNKNOWN)
def test_unknown_ids_are_404(
    client: TestClient, method: str, endpoint: str, body: dict[str, Any] | None
) -> None:
    assert_error(_call(client, method, endpoint, body), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(("method", "endpoint", "body"), MALFORMED_IDS)
def test_malformed_ids_are_400_or_404(
    client: TestClient, method: str, endpoint: str, body: dict[str, Any] | None
) -> None:
    response = _call(client, method, endpoint, body)
    assert response.status_code in (400, 404), response.text
    assert_error(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", f"{API}/nope"),
        ("POST", f"{API}/runs/nope"),
        ("GET", f"{API}/experiments/get/extra"),
        ("GET", "/api/2.0/mlflow"),
        ("GET", "/api/2.1/mlflow/experiments/search"),
        ("PUT", "/api/2.0/mlflow-artifacts/nope"),
        ("GET", "/%00"),
        ("GET", "/" + "a" * 10_000),
    ],
)
def test_unknown_endpoints_are_404_endpoint_not_found(
    client: TestClient, method: str, path: str
) -> None:
    assert_error(client.request(method, path), 404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "endpoint"),
    [
        ("GET", "experiments/create"),
        ("PUT", "experiments/create"),
        ("DELETE", "experiments/get"),
        ("POST", "experiments/get"),
        ("GET", "runs/log-metric"),
        ("PATCH", "runs/get"),
        ("GET", "runs/log-batch"),
    ],
)
def test_wrong_method_is_405(client: TestClient, method: str, endpoint: str) -> None:
    assert_error(client.request(method, f"{API}/{endpoint}"), 405)


# -- bodies over the limit ----------------------------------------------------------------------


def _chunks(data: bytes, size: int = 8 * KiB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_api_body_over_the_limit_is_413(client: TestClient, chunked: bool) -> None:
    body = json.dumps({"name": "big", "tags": [{"key": "k", "value": "v" * MAX_REQUEST}]}).encode()
    content = _chunks(body) if chunked else body
    response = client.post(
        f"{API}/experiments/create", content=content, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "REQUEST_LIMIT_EXCEEDED")
    found = client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "big"})
    assert_error(found, 404)  # nothing was created from a refused body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_over_the_limit_is_413(
    client: TestClient, layout: Layout, chunked: bool, untouched: None
) -> None:
    body = b"x" * (MAX_UPLOAD + KiB)
    content = _chunks(body) if chunked else body
    response = client.put(f"{PROXY}/0/big.bin", content=content)
    assert_error(response, 413, "REQUEST_LIMIT_EXCEEDED")
    assert not (layout.root / "0" / "big.bin").exists()  # no truncated artifact left behind
    small = client.put(f"{PROXY}/0/small.bin", content=b"x" * KiB)
    assert small.status_code == 200, small.text


# -- artifact paths that try to leave the root -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.body)


def asgi_request(app: FastAPI, method: str, target: str, body: bytes = b"") -> Raw:
    """One request straight into the ASGI app, the target exactly as a client sent it."""
    raw_path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path),  # what uvicorn does: percent-decoded once
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[Message] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def call() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=30)

    asyncio.run(call())
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Raw(int(start["status"]), headers, content)


def _escapes(layout: Layout, *, reads_system_files: bool) -> list[str]:
    """Artifact paths (as sent on the wire, after ``.../artifacts/``) that leave the root."""
    secret = str(layout.secret)
    paths = [
        "../secret.txt",
        "..",
        "../",
        "sub/../../secret.txt",
        "../sub/other.txt",
        "../store/cairn.db",
        "%2e%2e/secret.txt",
        "%2E%2E/secret.txt",
        ".%2e/secret.txt",
        "%252e%252e/secret.txt",
        "%252e%252e%252fsecret.txt",
        "..%2fsecret.txt",
        "..%2Fsecret.txt",
        "sub%2f..%2f..%2fsecret.txt",
        "..\\secret.txt",
        "..%5csecret.txt",
        "sub\\..\\..\\secret.txt",
        quote(secret, safe="/"),  # → .../artifacts//abs/path/secret.txt
        quote(secret, safe=""),  # → .../artifacts/%2Fabs%2Fpath%2Fsecret.txt
        "/" + quote(secret, safe="/"),
        "secret.txt%00.png",
        "..%00/secret.txt",
        "%00",
        "ok%00/../../secret.txt",
    ]
    if reads_system_files:  # never PUT or DELETE these: a broken server would hit the real ones
        paths += ["/etc/passwd", "//etc/passwd", "%2fetc%2fpasswd", "../" * 20 + "etc/passwd"]
    return paths


def _assert_no_leak(raw: Raw) -> None:
    assert SECRET.strip() not in raw.body
    assert b"root:" not in raw.body  # /etc/passwd
    assert b"SQLite format" not in raw.body


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_artifact_paths_cannot_leave_the_root(
    app: FastAPI, layout: Layout, method: str, untouched: None
) -> None:
    for path in _escapes(layout, reads_system_files=method == "GET"):
        body = b"overwritten" if method == "PUT" else b""
        raw = asgi_request(app, method, f"{PROXY}/{path}", body)
        try:
            assert_error(raw.response())
            _assert_no_leak(raw)
        except AssertionError as exc:
            raise AssertionError(f"{method} {PROXY}/{path}: {exc}") from exc
    assert list(layout.root.rglob("*")) == []  # nothing written inside the root either


def test_artifact_list_cannot_leave_the_root(app: FastAPI, layout: Layout, untouched: None) -> None:
    (layout.root / "0").mkdir()
    (layout.root / "0" / "inside.txt").write_bytes(b"inside")
    paths = _escapes(layout, reads_system_files=True)
    paths += ["%2e%2e", "0/../..", "/", "/etc", str(layout.base)]
    for path in paths:
        raw = asgi_request(app, "GET", f"{PROXY}?path={quote(unquote(path), safe='')}")
        try:
            assert_error(raw.response())  # an error body only: no listing of anything
            _assert_no_leak(raw)
        except AssertionError as exc:
            raise AssertionError(f"list path={path!r}: {exc}") from exc


def test_run_artifact_list_cannot_leave_the_root(
    client: TestClient, layout: Layout, run_id: str, untouched: None
) -> None:
    for path in ["..", "../..", "../../..", "/", "/etc", str(layout.base), "a/../../..", "\x00"]:
        response = client.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": path})
        try:
            assert_error(response, 400)  # an error body only: no listing of anything
        except AssertionError as exc:
            raise AssertionError(f"artifacts/list path={path!r}: {exc}") from exc


def test_artifact_round_trip_stays_inside_the_root(
    client: TestClient, layout: Layout, untouched: None
) -> None:
    """The proxy works at all: the refusals above are not just a broken route."""
    assert client.put(f"{PROXY}/0/abc/artifacts/dir/ok.txt", content=b"payload").status_code == 200
    assert (layout.root / "0" / "abc" / "artifacts" / "dir" / "ok.txt").read_bytes() == b"payload"
    assert client.get(f"{PROXY}/0/abc/artifacts/dir/ok.txt").content == b"payload"
    listed = client.get(PROXY, params={"path": "0/abc/artifacts"}).json()
    assert [f["path"] for f in listed["files"]] == ["dir"]
    assert_error(client.get(f"{PROXY}/0/abc/artifacts/dir/missing.txt"), 404)
    assert client.delete(f"{PROXY}/0/abc/artifacts/dir/ok.txt").status_code == 200
    assert not (layout.root / "0" / "abc" / "artifacts" / "dir" / "ok.txt").exists()


# -- a real socket ------------------------------------------------------------------------------


@pytest.fixture
def socket_server(layout: Layout) -> Iterator[tuple[str, int]]:
    """The same app under uvicorn on 127.0.0.1 (a free port), in a thread."""
    import uvicorn

    app = create_app(_settings(layout))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bad-input-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.partition(":")[::2] for line in lines[1:])
    length = int(next(v for k, v in fields.items() if k.lower() == "content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return status, body[:length]


def _raw_error(status: int, body: bytes) -> dict[str, Any]:
    return assert_error(
        httpx.Response(status, headers={"content-type": "application/json"}, content=body)
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_real_socket_refuses_oversized_bodies_early(
    socket_server: tuple[str, int], chunked: bool
) -> None:
    """413 arrives while the client is still sending; the server stays up."""
    host, port = socket_server
    total = 64 * MAX_REQUEST
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST {API}/experiments/create HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    piece = b"x" * (8 * KiB)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head.encode())
        sent = 0
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        else:
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        status, body = _read_response(sock)
    assert sent < total, "the server read the whole oversized body before refusing it"
    error = _raw_error(status, body)
    assert status == 413 and error["error_code"] == "REQUEST_LIMIT_EXCEEDED", error
    health = httpx.get(f"http://{host}:{port}/health", timeout=5)
    assert health.status_code == 200


def test_real_socket_artifact_escapes(
    socket_server: tuple[str, int], layout: Layout, untouched: None
) -> None:
    host, port = socket_server
    targets = [
        f"{PROXY}/../secret.txt",
        f"{PROXY}/%2e%2e/secret.txt",
        f"{PROXY}/%252e%252e/secret.txt",
        f"{PROXY}/..%2fsecret.txt",
        f"{PROXY}/..%5csecret.txt",
        f"{PROXY}//etc/passwd",
        f"{PROXY}/{quote(str(layout.secret), safe='/')}",
        f"{PROXY}/ok%00/../../secret.txt",
        f"{PROXY}?path=..",
    ]
    for target in targets:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("GET", target)
            response = connection.getresponse()
            status, body = response.status, response.read()
        finally:
            connection.close()
        try:
            _raw_error(status, body)
            _assert_no_leak(Raw(status, {}, body))
        except AssertionError as exc:
            raise AssertionError(f"GET {target}: {exc}") from exc


# -- property-based: the whole OpenAPI surface --------------------------------------------------


GENERATED_EXAMPLES = 30  # per operation and generation mode


def test_generated_requests_never_get_a_server_error(layout: Layout, untouched: None) -> None:
    """Schemathesis over ``/openapi.json``: valid and invalid inputs, never a 5xx."""
    app = create_app(_settings(layout))
    # Uploads and deletes with generated paths are left to the deterministic cases above: a
    # traversal bug must never let random input write to or delete files on the test machine.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
        method=["PUT", "DELETE"], path_regex="mlflow-artifacts"
    )
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=GENERATED_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                response = case.call()
                text = f"{case.as_curl_command()}\n{response.text}"
                if response.status_code == 501:  # as MLflow: clients fall back to a plain PUT
                    assert response.json()["error_code"] == "NOT_IMPLEMENTED", text
                    return
                assert response.status_code < 500, text
                if response.status_code >= 400:
                    assert set(response.json()) == {"error_code", "message"}, response.text

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
            except AssertionError as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
            tried += 1
    app.state.store.close()
    assert tried >= 10, f"only {tried} operations and modes tried"
    assert not failures, "\n\n".join(failures)
