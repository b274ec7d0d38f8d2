"""Path traversal regressions, sent byte for byte over a real socket.

Every class of trick (``..``, ``%2e%2e``, ``%252e%252e``, backslashes, ``;``, ``#``, ``?``,
``//proc/self/root``, absolute paths, ``file:`` URIs, NUL, symlinks inside the artifact root
pointing out) is tried on upload, download, list and delete, on every route that takes an
artifact path. Canary files planted outside the root must stay unread (their bytes never appear
in an answer), unchanged and undeleted, and nothing new may appear outside the root.
"""

from __future__ import annotations

import hashlib
import http.client
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

if TYPE_CHECKING:
    from tests.conftest import LiveServer

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
CAIRN = "/api/2.0/cairn/artifacts"
CANARY = b"CANARY-do-not-read-5b1e0c"

# Each class: paths exactly as they appear in the request target (nothing is re-encoded).
CLASSES: dict[str, list[str]] = {
    "dot-dot": ["../canary.txt", "a/../../canary.txt", "../../canary.txt", ".."],
    "percent-encoded": ["%2e%2e/canary.txt", "%2E%2E%2Fcanary.txt", "a/%2e%2e/%2e%2e/canary.txt"],
    "double-encoded": ["%252e%252e/canary.txt", "%252e%252e%252fcanary.txt", "%25252e%25252e/x"],
    "backslash": ["..\\canary.txt", "..%5ccanary.txt", "a%5C..%5C..%5Ccanary.txt"],
    "semicolon": ["..;/canary.txt", "%2e%2e;/canary.txt", "a/..;/..;/canary.txt", "a;b.txt"],
    "hash": ["..#/canary.txt", "%2e%2e%23/canary.txt", "a%23/../../canary.txt", "a%23b.txt"],
    "question-mark": ["a?/../../canary.txt", "..%3f/canary.txt", "a%3Fb.txt", "a%253fb.txt"],
    "proc-self-root": ["/proc/self/root/etc/passwd", "%2F%2Fproc%2Fself%2Froot%2Fcanary.txt"],
    "absolute": ["/etc/passwd", "%2Fetc%2Fpasswd", "C:%5Ccanary.txt", "C:/canary.txt"],
    "scheme": ["file:///etc/passwd", "file:%2F%2F%2Fetc%2Fpasswd", "s3:%2F%2Fbucket%2Fkey"],
    "nul": ["%00canary.txt", "ok%00/%2e%2e/canary.txt"],
    "symlink-out": ["link-out/canary.txt", "link-out", "link-file", "link-out/new.txt"],
}
CASES = [(kind, raw) for kind, raws in CLASSES.items() for raw in raws]
REFUSALS = (b"INVALID_PARAMETER_VALUE", b"RESOURCE_DOES_NOT_EXIST", b"ENDPOINT_NOT_FOUND")


class Planted:
    """Canaries outside the artifact root, links out of it, and a run whose artifacts hold one."""

    def __init__(self, server: LiveServer, base: Path) -> None:
        self.destination = Path(server.app.state.artifacts_destination)
        self.destination.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.outside = base / "outside"
        self.outside.mkdir()
        self.canaries = [
            folder / "canary.txt"
            for folder in (base, self.destination.parent, self.destination.parent.parent)
        ] + [self.outside / "canary.txt", self.outside / "new.txt"]
        for canary in self.canaries:
            canary.write_bytes(CANARY)
        (self.destination / "link-out").symlink_to(self.outside, target_is_directory=True)
        (self.destination / "link-file").symlink_to(self.outside / "canary.txt")
        with httpx.Client(base_url=server.url) as client:
            created = client.post(f"{API}/runs/create", json={"experiment_id": "0"})
            self.run_id = created.json()["run"]["info"]["run_id"]
            client.put(f"{PROXY}/0/{self.run_id}/artifacts/ok.txt", content=b"fine")
            model = client.post(f"{API}/logged-models", json={"experiment_id": "0"}).json()
            self.model_id = model["model"]["info"]["model_id"]
        run_root = self.destination / "0" / self.run_id / "artifacts"
        (run_root / "escape").symlink_to(self.outside, target_is_directory=True)
        (run_root / "escape-file").symlink_to(self.outside / "canary.txt")
        self.before = self.snapshot()
        self.inside_before = sorted(str(p) for p in self.destination.rglob("*"))

    def snapshot(self) -> dict[str, tuple[int, int, str]]:
        """Every file and folder outside the root (the databases aside)."""
        found: dict[str, tuple[int, int, str]] = {}
        for path in self.base.rglob("*"):
            if self.destination in path.parents or path == self.destination:
                continue
            if ".db" in path.name or path.is_symlink():
                continue
            if path.is_file():
                stat = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns, digest)
            elif path.is_dir():
                found[str(path) + "/"] = (0, 0, "")
        return found

    def check_untouched(self, *, inside: bool = True) -> None:
        assert self.snapshot() == self.before
        for canary in self.canaries:
            assert canary.read_bytes() == CANARY
        if inside:  # nothing written inside the root either
            assert sorted(str(p) for p in self.destination.rglob("*")) == self.inside_before


def _raw(
    server: LiveServer, method: str, target: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """Send ``target`` exactly as written: no client-side normalization or encoding."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _refused(status: int, payload: bytes, what: str) -> None:
    assert CANARY not in payload, f"{what} read a canary"
    assert status in (400, 404), (what, status, payload)
    assert any(code in payload for code in REFUSALS), (what, payload)


@pytest.fixture
def planted(live_server: LiveServer, tmp_path: Path) -> Planted:
    return Planted(live_server, tmp_path)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_proxy_upload_download_delete_refuse(
    live_server: LiveServer, planted: Planted, kind: str
) -> None:
    for raw in CLASSES[kind]:
        for method in ("PUT", "GET", "DELETE"):
            body = b"overwritten" if method == "PUT" else None
            status, payload = _raw(live_server, method, f"{PROXY}/{raw}", body)
            if method == "GET" and status == 200:
                pytest.fail(f"GET {raw!r} was answered: {payload[:80]!r}")
            _refused(status, payload, f"{method} {raw}")
            if kind in ("dot-dot", "percent-encoded", "double-encoded", "semicolon"):
                assert status == 400, (method, raw, payload)
    planted.check_untouched()


@pytest.mark.parametrize("kind", list(CLASSES))
def test_listings_refuse_or_stay_inside(
    live_server: LiveServer, planted: Planted, kind: str
) -> None:
    run_prefix = f"0/{planted.run_id}/artifacts"
    for raw in CLASSES[kind]:
        value = raw.replace("#", "%23").replace("?", "%3F")  # keep it inside the query value
        targets = [
            f"{PROXY}?path={value}",
            f"{PROXY}?path={run_prefix}/{value}",
            f"{API}/artifacts/list?run_id={planted.run_id}&path={value}",
            f"{API}/logged-models/{planted.model_id}/artifacts/directories"
            f"?artifact_directory_path={value}",
        ]
        for target in targets:
            status, payload = _raw(live_server, "GET", target)
            assert CANARY not in payload, target
            if status == 200:
                # Only a listing of nothing: a folder that is not there, inside the root.
                assert payload.endswith(b'"files":[]}'), (target, payload)
            else:
                _refused(status, payload, target)
    planted.check_untouched()


@pytest.mark.parametrize("kind", list(CLASSES))
def test_ui_artifact_reads_refuse(live_server: LiveServer, planted: Planted, kind: str) -> None:
    for raw in [*CLASSES[kind], "escape/canary.txt", "escape-file", "escape"]:
        value = raw.replace("#", "%23").replace("?", "%3F")
        for view in ("preview", "get"):
            target = f"{CAIRN}/{view}?run_id={planted.run_id}&path={value}"
            status, payload = _raw(live_server, "GET", target)
            _refused(status, payload, target)
    planted.check_untouched()


def test_symlinks_inside_the_root_are_not_followed_out(
    live_server: LiveServer, planted: Planted
) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        listing = client.get(f"{API}/artifacts/list", params={"run_id": planted.run_id}).json()
        assert [f["path"] for f in listing["files"]] == ["ok.txt"]  # links out are left out
        escape = client.get(
            f"{API}/artifacts/list", params={"run_id": planted.run_id, "path": "escape"}
        )
        assert escape.status_code == 400 and "outside the artifact root" in escape.json()["message"]
        upload = client.put(f"{PROXY}/link-out/planted.txt", content=b"x")
        assert upload.status_code == 400
        assert "leads outside the artifact root" in upload.json()["message"]
    planted.check_untouched()
    assert not (planted.outside / "planted.txt").exists()


def test_the_same_paths_work_when_they_are_harmless(
    live_server: LiveServer, planted: Planted
) -> None:
    """The refusals are not a blanket: ordinary names with dots and spaces still round-trip."""
    with httpx.Client(base_url=live_server.url) as client:
        for name in ("a..b.txt", "...", "v1.2/model.pkl", "with space.txt", "x/.hidden"):
            url = f"{PROXY}/fine/{quote(name)}"
            assert client.put(url, content=b"ok").status_code == 200, name
            assert client.get(url).content == b"ok", name
            assert client.delete(url).status_code == 200, name
    assert not [p for p in (planted.destination / "fine").rglob("*") if p.is_file()]
    planted.check_untouched(inside=False)


@pytest.mark.parametrize(
    "uri", ["file:///etc/passwd", "file:canary.txt", ":/etc/passwd", "/etc/passwd", "canary.txt"]
)
def test_file_and_empty_schemes_are_refused_as_locations_and_sources(
    live_server: LiveServer, planted: Planted, uri: str
) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        experiment = client.post(
            f"{API}/experiments/create", json={"name": "x", "artifact_location": uri}
        )
        assert experiment.status_code == 400
        assert "artifact_location cannot be set by clients" in experiment.json()["message"]
        client.post(f"{API}/registered-models/create", json={"name": "m"})
        version = client.post(f"{API}/model-versions/create", json={"name": "m", "source": uri})
        assert version.status_code == 400
        assert "local paths and file: URIs are not accepted" in version.json()["message"]
        found = client.get(f"{API}/model-versions/search", params={"filter": "name = 'm'"})
        assert found.json().get("model_versions", []) == []
    planted.check_untouched()
