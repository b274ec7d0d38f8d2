"""``cairn sync``: what was logged offline reaches the server exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

import cairn
from cairn.cli import cli
from cairn.entities import RunStatus, ViewType
from cairn.errors import UnavailableError
from cairn.tracking._environment import PACKAGES_ARTIFACT
from cairn.tracking._spool import Spool, spool_path

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cairn.tracking.stores.sql.store import SqlStore


@contextlib.contextmanager
def serve(port: int, store_dir: Path) -> Iterator[SqlStore]:
    """A real tracking server on ``port`` (uvicorn in a thread); yields its SQL store."""
    import uvicorn

    from cairn.server import ServerSettings, create_app

    app = create_app(ServerSettings(backend_store_uri=str(store_dir)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="cairn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("tracking server did not start")
        time.sleep(0.01)
    try:
        yield app.state.store
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def url(port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("CAIRN_HTTP_RETRY_SECONDS", "0.3")
    monkeypatch.setenv("CAIRN_SPOOL_REPLAY_SECONDS", "3600")  # only `cairn sync` uploads
    monkeypatch.setenv("COLUMNS", "250")
    return f"http://127.0.0.1:{port}"


def _sync(url: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--tracking-uri", url, "sync", *args])
    assert result.exit_code == code, result.output
    return result.output


def _server_runs(server: SqlStore) -> list[Any]:
    return list(server.search_runs(["0"], None, ViewType.ALL, 100, None, None))


def test_offline_run_then_sync(url: str, port: int, tmp_path: Path) -> None:
    cairn.set_tracking_uri(url)
    with cairn.start_run(run_name="offline", tags={"team": "a"}) as run:
        cairn.log_param("alpha", 0.5)
        for step in range(1000):
            cairn.log_metric("loss", 1.0 / (step + 1), step=step)
        cairn.set_tag("stage", "dev")
    offline_id = run.info.run_id
    assert offline_id.startswith("offline-")
    with pytest.raises(UnavailableError, match="spool"):
        cairn.get_run(offline_id)

    status = json.loads(_sync(url, "--status", "--json"))
    assert status["pending_ops"] >= 3
    assert [(r["run_id"], r["metrics"], r["params"]) for r in status["runs"]] == [
        (offline_id, 1000, 1)
    ]
    assert status["runs"][0]["artifact_files"] == 1  # environment/packages.txt
    assert status["oldest"] is not None
    table = _sync(url, "--status")
    assert "operation(s) wait for" in table and offline_id in table

    out = _sync(url, code=1)  # the server is still down
    assert "Cannot reach the tracking server" in out and "stay in the spool" in out

    with serve(port, tmp_path / "server") as server:
        out = _sync(url)
        assert f"run {offline_id} -> " in out
        assert "1000 metric value(s), 1 param(s)" in out
        assert "1 artifact file(s)" in out
        runs = _server_runs(server)
        assert len(runs) == 1
        run_id = runs[0].info.run_id
        assert len(server.get_metric_history(run_id, "loss")) == 1000
        stored = server.get_run(run_id)
        assert stored.info.status is RunStatus.FINISHED
        assert stored.data.params == {"alpha": "0.5"}
        assert stored.data.tags["stage"] == "dev" and stored.data.tags["team"] == "a"
        assert [f.path for f in cairn.list_artifacts("environment", run_id=run_id)] == [
            PACKAGES_ARTIFACT
        ]

        assert "Nothing to upload" in _sync(url)  # again: nothing changes
        assert len(_server_runs(server)) == 1
        assert len(server.get_metric_history(run_id, "loss")) == 1000
        assert "Nothing waits" in _sync(url, "--status")
        assert cairn.get_run(offline_id).info.run_id == run_id


def test_sync_json_report(url: str, port: int, tmp_path: Path) -> None:
    cairn.set_tracking_uri(url)
    with cairn.start_run(log_system_info=False) as run:
        cairn.log_metric("m", 1.0)
    with serve(port, tmp_path / "server"):
        report = json.loads(_sync(url, "--json"))
    assert report["created_runs"][0]["offline_run_id"] == run.info.run_id
    assert (report["metrics"], report["run_updates"], report["remaining"]) == (1, 1, 0)
    assert report["interrupted"] is None


def test_sync_refused_operations_can_be_retried(url: str, port: int, tmp_path: Path) -> None:
    from cairn.tracking.stores.rest import RestStore

    store = RestStore(url, background_replay=False)
    try:
        store.create_run("424242", "ana", 1, [], "lost")
    finally:
        store.close()
    with serve(port, tmp_path / "server") as server:
        out = _sync(url, code=1)
        assert "refused by the server" in out and "does not exist" in out
        assert "Experiment '424242'" in _sync(url, "--status")
        server.create_experiment("e1")  # id 1: still not 424242, so it is refused again
        assert "refused" in _sync(url, "--retry-failed", code=1)
        assert json.loads(_sync(url, "--status", "--json"))["failed"][0]["kind"] == "create_run"


def test_sync_needs_a_server_uri(tmp_path: Path) -> None:
    out = _sync(str(tmp_path / "local-store"), code=1)
    assert "is not a tracking server" in out


def test_sync_without_a_spool(url: str) -> None:
    assert "Nothing to upload" in _sync(url)
    assert "Nothing waits" in _sync(url, "--status")


def test_spooled_writes_survive_sigkill(url: str, port: int, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        import cairn
        cairn.set_tracking_uri({url!r})
        run = cairn.start_run(log_system_info=False)
        for step in range(300):
            cairn.log_metric("loss", step / 10, step=step)
        cairn.log_param("alpha", "0.1")
        cairn.flush()
        print(run.info.run_id, flush=True)
        time.sleep(120)
        """
    )
    env = {**os.environ, "CAIRN_TRACKING_URI": url}
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the logging subprocess did not finish logging in 60 s"
        offline_id = child.stdout.readline().strip()  # the logging calls have returned
        assert offline_id.startswith("offline-")
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)

    spool = Spool(spool_path(url))
    try:
        [backlog] = spool.status().runs
    finally:
        spool.close()
    assert (backlog.run_id, backlog.metrics, backlog.params) == (offline_id, 300, 1)

    with serve(port, tmp_path / "server") as server:
        assert "300 metric value(s)" in _sync(url)
        [run] = _server_runs(server)
        assert len(server.get_metric_history(run.info.run_id, "loss")) == 300
        assert run.data.params == {"alpha": "0.1"}
        assert run.info.status is RunStatus.RUNNING  # it never ended: the process was killed
