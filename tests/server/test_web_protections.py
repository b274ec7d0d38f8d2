"""Browser-facing protections: Host validation (DNS rebinding), cross-site writes, headers.

In-process requests check each rule and that a refused request changed nothing; a real socket
checks what uvicorn hands the app; chromium checks that the built UI runs under its CSP and that
a page of another origin cannot write to the server.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cairn.server import ServerSettings, create_app
from cairn.server._web_guard import host_name
from cairn.server.routes import ui

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import LiveServer

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
CHROMIUM = Path("/usr/bin/chromium")
BUNDLE = ui.STATIC / "index.html"


def _client(tmp_path: Path, base_url: str = "http://127.0.0.1:5000", **options: Any) -> TestClient:
    settings = ServerSettings(backend_store_uri=str(tmp_path / "store"), **options)
    return TestClient(create_app(settings), base_url=base_url)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path) as test_client:
        yield test_client


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    return str(body["message"])


def _experiment_names(client: TestClient) -> list[str]:
    found = client.post(f"{API}/experiments/search", json={"max_results": 100}).json()
    return sorted(e["name"] for e in found["experiments"])


# -- Host validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("example.com:5000", "example.com"),
        ("EXAMPLE.com.", "example.com"),
        ("[::1]:5000", "::1"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_host_name_drops_port_brackets_case_and_final_dot(raw: str, name: str) -> None:
    assert host_name(raw) == name


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:5000",
        "http://localhost:5000",
        "http://LOCALHOST",
        "http://api.localhost:8080",
        "http://[::1]:5000",
        "http://10.1.2.3",
    ],
)
def test_loopback_names_and_addresses_are_served_by_default(tmp_path: Path, base_url: str) -> None:
    with _client(tmp_path, base_url) as client:
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "base_url", ["http://rebind.attacker.example", "http://localhost.attacker.example:5000"]
)
def test_other_names_are_refused_and_change_nothing(tmp_path: Path, base_url: str) -> None:
    with _client(tmp_path, base_url) as client:
        response = client.post(f"{API}/experiments/create", json={"name": "planted"})
        message = _error(response, 400, "BAD_REQUEST")
        assert re.search(r"Host '[^']+' is not served here: start the server with", message)
        assert "--allowed-hosts" in message
        _error(client.get("/health"), 400, "BAD_REQUEST")
        client.base_url = httpx.URL("http://127.0.0.1:5000")
        assert "planted" not in _experiment_names(client)


def test_allowed_hosts_add_names_and_subdomain_patterns(tmp_path: Path) -> None:
    settings = {"allowed_hosts": ("cairn.example.com", "*.corp.example")}
    for base_url in ("http://cairn.example.com", "http://a.corp.example:8080", "http://127.0.0.1"):
        with _client(tmp_path, base_url, **settings) as client:
            assert client.get("/health").status_code == 200, base_url
    for base_url in ("http://evil.example.com", "http://corp.example.evil", "http://xcorp.example"):
        with _client(tmp_path, base_url, **settings) as client:
            assert "is not served here" in _error(client.get("/health"), 400, "BAD_REQUEST")
    with _client(tmp_path, "http://anything.example", allowed_hosts=("*",)) as client:
        assert client.get("/health").status_code == 200


def test_testserver_is_only_a_test_allowance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.server import _web_guard

    monkeypatch.setattr(_web_guard, "EXTRA_NAMES", frozenset())
    with _client(tmp_path, "http://testserver") as client:
        assert "'testserver'" in _error(client.get("/health"), 400, "BAD_REQUEST")


def test_rebinding_host_over_a_real_socket(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as web:
        refused = web.post(
            f"{API}/experiments/create",
            json={"name": "rebound"},
            headers={"Host": "attacker.example:80"},
        )
        assert "'attacker.example:80' is not served here" in _error(refused, 400, "BAD_REQUEST")
        assert refused.headers["x-frame-options"] == "DENY"
        found = web.get(f"{API}/experiments/get-by-name", params={"experiment_name": "rebound"})
        assert "does not exist" in _error(found, 404, "RESOURCE_DOES_NOT_EXIST")


# -- cross-site writes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Origin": "http://evil.example"}, "origin 'http://evil.example' is not this server's"),
        ({"Origin": "http://127.0.0.1:6000"}, "is not this server's"),  # same host, other port
        ({"Origin": "null"}, "origin 'null'"),
        ({"Sec-Fetch-Site": "cross-site"}, "the browser marks it 'cross-site'"),
        ({"Sec-Fetch-Site": "same-site"}, "the browser marks it 'same-site'"),
        ({"Referer": "http://evil.example/page"}, "its Referer is not a page of this server"),
        ({"Cookie": "session=abc"}, "carries cookies but no Origin or Referer"),
        # Basic credentials a browser remembers are sent cross-site like cookies.
        (
            {"Origin": "http://evil.example", "Authorization": "Basic YWRtaW46c2VjcmV0"},
            "origin 'http://evil.example' is not this server's",
        ),
    ],
)
def test_cross_site_writes_are_refused_and_change_nothing(
    client: TestClient, headers: dict[str, str], reason: str
) -> None:
    response = client.post(f"{API}/experiments/create", json={"name": "csrf"}, headers=headers)
    message = _error(response, 403, "PERMISSION_DENIED")
    assert message.startswith("Cross-site request refused: ")
    assert reason in message
    assert "csrf" not in _experiment_names(client)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # not a browser: no Origin, no Sec-Fetch-Site
        {"Origin": "http://127.0.0.1:5000", "Sec-Fetch-Site": "same-origin"},
        {"Referer": "http://127.0.0.1:5000/experiments"},
        {"Cookie": "session=abc", "Origin": "http://127.0.0.1:5000"},
        {"Cookie": "session=abc", "Authorization": "Bearer token"},
        {"Cookie": "session=abc", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_same_origin_and_non_browser_writes_pass(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post(f"{API}/experiments/create", json={"name": "ok"}, headers=headers)
    assert response.status_code == 200, response.text
    assert "ok" in _experiment_names(client)


def test_pages_served_over_tls_by_a_proxy_may_write(tmp_path: Path) -> None:
    """The proxy ends TLS and keeps ``Host``: the page's origin is https, the request http."""
    for index, base_url in enumerate(("http://cairn.example.com", "http://cairn.example.com:443")):
        with _client(tmp_path, base_url, allowed_hosts=("cairn.example.com",)) as client:
            page = {"Origin": "https://cairn.example.com", "Sec-Fetch-Site": "same-origin"}
            body = {"name": f"tls-{index}"}
            response = client.post(f"{API}/experiments/create", json=body, headers=page)
            assert response.status_code == 200, response.text


def test_reads_from_other_origins_are_answered(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers  # no CORS: it cannot read it


def test_trusted_origins_may_write(tmp_path: Path) -> None:
    options = {"trusted_origins": ("https://cairn.example.com",)}
    with _client(tmp_path, **options) as client:
        allowed = {"Origin": "https://cairn.example.com", "Sec-Fetch-Site": "cross-site"}
        assert client.post(f"{API}/experiments/create", json={"name": "a"}, headers=allowed)
        refused = {"Origin": "http://cairn.example.com"}  # scheme-default port differs
        _error(
            client.post(f"{API}/experiments/create", json={"name": "b"}, headers=refused),
            403,
            "PERMISSION_DENIED",
        )
        assert _experiment_names(client) == ["Default", "a"]


def test_cross_site_metric_and_upload_are_refused(client: TestClient, tmp_path: Path) -> None:
    run = client.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    body = f'{{"run_id": "{run["run_id"]}", "key": "m", "value": 1, "timestamp": 1, "step": 0}}'
    # The fast log-metric path answers before routing: it must be guarded too.
    _error(
        client.post(f"{API}/runs/log-metric", content=body, headers=evil), 403, "PERMISSION_DENIED"
    )
    _error(client.put(f"{PROXY}/planted.txt", content=b"x", headers=evil), 403, "PERMISSION_DENIED")
    _error(client.delete(f"{PROXY}/planted.txt", headers=evil), 403, "PERMISSION_DENIED")
    got = client.get(f"{API}/runs/get", params={"run_id": run["run_id"]}).json()
    assert got["run"]["data"].get("metrics", []) == []
    destination = Path(client.app.state.artifacts_destination)  # type: ignore[attr-defined]
    assert not (destination / "planted.txt").exists()


# -- headers ----------------------------------------------------------------------------------


def _assert_defaults(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_api_answers_carry_security_headers(tmp_path: Path) -> None:
    with _client(tmp_path, max_request_bytes=1024) as client:
        ok = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
        missing = client.get("/no/such/endpoint")
        too_big = client.post(f"{API}/experiments/create", content=b"x" * 2048)
        run = client.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"]
        fast = client.post(
            f"{API}/runs/log-metric",
            json={"run_id": run["info"]["run_id"], "key": "m", "value": 1.0},
        )
        assert [r.status_code for r in (ok, missing, too_big, fast)] == [200, 404, 413, 200]
        for response in (ok, missing, too_big, fast):
            _assert_defaults(response)
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script" not in csp


def test_artifact_bytes_keep_their_own_stricter_headers(client: TestClient) -> None:
    client.put(f"{PROXY}/page.html", content=b"<script>alert(1)</script>")
    response = client.get(f"{PROXY}/page.html")
    _assert_defaults(response)
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


def test_ui_page_keeps_its_csp_without_inline_script(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code in (200, 503)  # 503: the bundle is not built here
    _assert_defaults(response)
    if response.status_code == 200:
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors" in directives and "object-src" in directives


def test_not_built_page_runs_no_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui, "STATIC", tmp_path / "no-bundle")
    with _client(tmp_path) as client:
        response = client.get("/")
    assert response.status_code == 503
    _assert_defaults(response)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp


def test_cli_allows_the_name_it_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn.cli import _serving as cli

    monkeypatch.setattr(cli.socket, "gethostname", lambda: "trainbox")
    assert cli.allowed_hosts("cairn.lan", "a.example, *.corp.example,") == (
        "a.example",
        "*.corp.example",
        "cairn.lan",
    )
    assert cli.allowed_hosts("0.0.0.0", "") == ("trainbox",)
    assert cli.allowed_hosts("::", "x.example") == ("x.example", "trainbox")


def test_built_ui_has_no_inline_script_or_handlers() -> None:
    if not BUNDLE.is_file():
        pytest.skip("the web UI is not built (bash -c 'source scripts/_venv.sh; build_ui')")
    page = BUNDLE.read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S | re.I)
    assert scripts, "the bundle's page loads its script"
    for attributes, content in scripts:
        assert "src=" in attributes and content.strip() == ""
    assert not re.search(r"\son[a-z]+\s*=", page, re.I)
    assert "javascript:" not in page.lower()


def test_docs_page_csp_allows_only_its_own_inline_script(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    _assert_defaults(response)
    csp = response.headers["content-security-policy"]
    inline = re.findall(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", response.content, re.S)
    assert inline, "FastAPI's docs page starts Swagger UI from an inline script"
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert response.headers["content-length"] == str(len(response.content))


# -- in a browser ----------------------------------------------------------------------------


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    """Serves one page, on another port of 127.0.0.1, that tries to write to the server."""

    target = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><title>attacker</title>
<form id=f method=POST action="{self.target}/api/2.0/mlflow/experiments/create"
 enctype="text/plain"><input name='{{"name":"csrf-form","x":"' value='"}}'></form>
<script>
fetch("{self.target}/api/2.0/mlflow/experiments/create", {{
  method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{name: "csrf-fetch"}})
}}).finally(() => {{ document.title = "sent"; document.getElementById("f").submit(); }});
</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CAIRN_TEST_SKIP_BROWSER") == "1":
            pytest.skip(f"{CHROMIUM} is missing; CAIRN_TEST_SKIP_BROWSER=1")
        pytest.fail(f"{CHROMIUM} is missing (install Debian's chromium package)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.slow
def test_built_ui_runs_under_its_csp(live_server: LiveServer, chromium: Any) -> None:
    if not BUNDLE.is_file():
        pytest.fail(f"The web UI is not built ({BUNDLE} is missing)", pytrace=False)
    from cairn.tracking.client import TrackingClient

    tracking = TrackingClient(live_server.url)
    experiment_id = tracking.create_experiment("csp")
    run = tracking.create_run(experiment_id, run_name="under-csp")
    tracking.log_metric(run.info.run_id, "loss", 0.5, step=0)
    tracking.log_metric(run.info.run_id, "loss", 0.25, step=1)
    tracking.log_text(run.info.run_id, "hello", "notes.txt")
    tracking.set_terminated(run.info.run_id)

    context = chromium.new_context()  # CSP enforced (no bypass_csp)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        page.goto(f"{live_server.url}/")
        page.get_by_text("csp", exact=True).first.wait_for()
        page.goto(f"{live_server.url}/experiments/{experiment_id}")
        page.get_by_text("under-csp").first.wait_for()
        page.goto(f"{live_server.url}/runs/{run.info.run_id}")
        page.locator("table.metrics-summary").wait_for()
        page.goto(f"{live_server.url}/runs/{run.info.run_id}?tab=charts")
        page.locator(".chart[data-metric='loss'] canvas").wait_for()
        page.goto(f"{live_server.url}/runs/{run.info.run_id}?tab=artifacts")
        tree = page.get_by_role("navigation", name="Artifacts")
        tree.get_by_role("button", name="notes.txt").click()
        page.locator(".preview pre", has_text="hello").wait_for()
        page.goto(f"{live_server.url}/models")
        page.wait_for_load_state("networkidle")
        assert page.title().endswith("Cairn")
        assert problems == [], f"the UI broke under its CSP: {problems}"
        # The policy is enforced: a script injected into the page does not run.
        ran = page.evaluate(
            """() => { const s = document.createElement('script');
                       s.textContent = 'window.injected = true';
                       document.body.appendChild(s); return window.injected === true; }"""
        )
        assert ran is False
        page.wait_for_timeout(100)
        assert any("Content Security Policy" in p for p in problems), problems
    finally:
        context.close()


@pytest.mark.slow
def test_a_page_of_another_origin_cannot_write(live_server: LiveServer, chromium: Any) -> None:
    _AttackerPage.target = live_server.url
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AttackerPage)
    thread = threading.Thread(target=attacker.serve_forever, daemon=True)
    thread.start()
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        # The form submission navigates to the server's answer: the JSON refusal.
        page.wait_for_url(f"{live_server.url}/**")
        assert "Cross-site request refused" in page.content()
    finally:
        context.close()
        attacker.shutdown()
        thread.join(timeout=5)
    with httpx.Client(base_url=live_server.url) as web:
        found = web.post(f"{API}/experiments/search", json={"max_results": 100}).json()
    assert sorted(e["name"] for e in found["experiments"]) == ["Default"]


def test_with_auth_a_cross_site_write_is_refused_even_with_valid_credentials(
    tmp_path: Path,
) -> None:
    from cairn.server.auth import ensure_admin
    from cairn.server.auth.stores.sql import AuthStore

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = AuthStore.open(uri)
    ensure_admin(store, "admin", "correct horse battery")
    store.close()
    settings = ServerSettings(
        backend_store_uri=uri, artifacts_destination=str(tmp_path / "artifacts"), auth=True
    )
    admin = {"Authorization": "Basic " + base64.b64encode(b"admin:correct horse battery").decode()}
    with TestClient(create_app(settings), base_url="http://localhost:5000") as client:
        cross = {**admin, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        refused = client.post(f"{API}/experiments/create", json={"name": "x"}, headers=cross)
        assert "Cross-site request refused" in _error(refused, 403, "PERMISSION_DENIED")
        _assert_defaults(client.get("/api/2.0/mlflow/experiments/get?experiment_id=0"))  # 401
        same = {**admin, "Origin": "http://localhost:5000", "Sec-Fetch-Site": "same-origin"}
        created = client.post(f"{API}/experiments/create", json={"name": "y"}, headers=same)
        assert created.status_code == 200, created.text
        found = client.post(f"{API}/experiments/search", json={}, headers=admin).json()
        assert sorted(e["name"] for e in found["experiments"]) == ["Default", "y"]
