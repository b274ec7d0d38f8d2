"""Offline logging: writes spooled while the server is down, replayed once, never twice."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

import cairn
from cairn.entities import Metric, Param, RunStatus, RunTag, ViewType
from cairn.errors import NotFoundError, RequestLimitExceededError, UnavailableError
from cairn.tracking import _spool
from cairn.tracking._spool import Spool, spool_path
from cairn.tracking.stores.rest import RestStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from cairn.tracking.stores.sql.store import SqlStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(
    port: int, store_dir: Path, wrap: Callable[[Any], Any] | None = None
) -> Iterator[SqlStore]:
    """A real tracking server on ``port`` (uvicorn in a thread); yields its SQL store."""
    import uvicorn

    from cairn.server import ServerSettings, create_app

    app = create_app(ServerSettings(backend_store_uri=str(store_dir)))
    config = uvicorn.Config(
        wrap(app) if wrap else app, host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
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


class Flaky:
    """ASGI wrapper: the ``fail_at``-th idempotent log-batch is applied but answered 503, and
    every request after it fails with 503 until ``heal()``: a replay cut short mid-way."""

    def __init__(self, app: Any, fail_at: int) -> None:
        self.app = app
        self.fail_at = fail_at
        self.batches = 0
        self.broken = False

    def heal(self) -> None:
        self.broken = False
        self.fail_at = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.broken:
            await self._unavailable(send)
            return
        if scope["path"].endswith("/cairn/runs/log-batch"):
            self.batches += 1
            if self.batches == self.fail_at:
                self.broken = True

                async def lost(message: Any) -> None:
                    pass  # the server applied it; its answer never arrives

                await self.app(scope, receive, lost)
                await self._unavailable(send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _unavailable(send: Any) -> None:
        body = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "restarting"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(autouse=True)
def _offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("CAIRN_HTTP_RETRY_SECONDS", "0.3")
    monkeypatch.setenv("CAIRN_SPOOL_REPLAY_SECONDS", "3600")  # tests replay explicitly
    monkeypatch.setenv("CAIRN_CAPTURE_ENVIRONMENT", "false")


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def store(url: str) -> Iterator[RestStore]:
    rest = RestStore(url, background_replay=False)
    yield rest
    rest.close()


def _only_run(server: SqlStore) -> str:
    runs = server.search_runs(["0"], None, ViewType.ALL, 100, None, None)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0].info.run_id


def _log_offline(store: RestStore, batches: int = 5, per_batch: int = 200) -> str:
    run_id = store.create_run("0", "ana", 1_000, [RunTag("team", "a")], "offline").info.run_id
    for b in range(batches):
        steps = range(b * per_batch, (b + 1) * per_batch)
        metrics = [Metric("loss", 1.0 / (s + 1), 2_000 + s, s) for s in steps]
        store.log_batch(run_id, metrics, [Param(f"p{b}", str(b))])
    store.update_run_info(run_id, RunStatus.FINISHED, 9_000)
    return run_id


# -- the spool itself ---------------------------------------------------------------------------


def test_spool_file_is_durable_and_per_server(tmp_path: Path) -> None:
    first = spool_path("http://127.0.0.1:5000/", tmp_path)
    assert first == spool_path("http://127.0.0.1:5000", tmp_path)
    assert first != spool_path("http://127.0.0.1:5001", tmp_path)
    spool = Spool(first)
    try:
        mode = spool._conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = spool._conn.execute("PRAGMA synchronous").fetchone()[0]
        assert (mode, sync) == ("wal", 2)  # 2 = FULL
        spool.append(_spool.LOG_BATCH, "r1", {"request_id": "a"}, (3, 0, 0))
        spool.append(_spool.LOG_BATCH, "r2", {"request_id": "b"}, (0, 1, 0))
        spool.append(_spool.UPDATE_RUN, "r1", {"request_id": "c"})
        assert spool.has_pending("r1") and not spool.has_pending("r3")
        ops = []
        seq = 0
        while (op := spool.next_op(seq)) is not None:
            ops.append((op.run_id, op.request_id))
            seq = op.seq
        assert ops == [("r1", "a"), ("r2", "b"), ("r1", "c")]
        status = spool.status()
        assert [(r.run_id, r.ops, r.metrics, r.params) for r in status.runs] == [
            ("r1", 2, 3, 0),
            ("r2", 1, 0, 1),
        ]
    finally:
        spool.close()


def test_replay_stops_on_transient_errors_and_sets_aside_permanent_ones(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    for name in ("too-big", "throttled", "later"):
        spool.append(_spool.LOG_BATCH, "r1", {"request_id": name, "run_id": "r1"}, (1, 0, 0))
    sent: list[str] = []

    def send(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        sent.append(body["request_id"])
        error = RequestLimitExceededError(
            "too large" if body["request_id"] == "too-big" else "slow"
        )
        error.http_status = 413 if body["request_id"] == "too-big" else 429
        raise error

    def upload(uri: str, files: list[Path], folder: Path) -> int:
        raise AssertionError("no artifacts here")

    try:
        report = _spool.replay(spool, send, upload)
        assert sent == ["too-big", "throttled"]
        assert [op.error for op in report.failed] == ["too large"]
        assert report.interrupted == "slow" and report.remaining == 2
    finally:
        spool.close()


# -- offline behaviour of the store --------------------------------------------------------------


def test_writes_are_spooled_when_the_server_is_down(store: RestStore) -> None:
    start = time.monotonic()
    run = store.create_run("0", "ana", 1_000, [], "offline")
    assert run.info.run_id.startswith("offline-")
    assert run.info.status is RunStatus.RUNNING
    assert run.data.tags["mlflow.runName"] == "offline"
    for step in range(200):  # once offline, writes go straight to disk
        store.log_batch(run.info.run_id, [Metric("m", float(step), 1, step)])
    ended = store.update_run_info(run.info.run_id, RunStatus.FINISHED, 5_000)
    assert (ended.status, ended.end_time) == (RunStatus.FINISHED, 5_000)
    assert time.monotonic() - start < 5

    status = Spool(store.spool_path).status()
    assert status.pending_ops == 202
    assert status.runs[0].metrics == 200

    with pytest.raises(UnavailableError, match="local spool"):
        store.get_run(run.info.run_id)
    with pytest.raises(UnavailableError, match="local spool"):
        store.search_runs(["0"], None, ViewType.ALL, 10, None, None)
    with pytest.raises(UnavailableError, match="local spool"):
        store.get_experiment("0")


def test_without_offline_logging_writes_fail(url: str) -> None:
    rest = RestStore(url, offline_logging=False, background_replay=False)
    try:
        with pytest.raises(UnavailableError, match="Cannot reach the tracking server"):
            rest.create_run("0", "ana", 1, [], "r")
    finally:
        rest.close()
    assert not rest.spool_path.exists()


def test_replay_uploads_everything_once(store: RestStore, port: int, tmp_path: Path) -> None:
    offline_id = _log_offline(store)
    with serve(port, tmp_path / "server") as server:
        report = store.replay()
        assert report.interrupted is None and report.remaining == 0
        assert [local for local, _ in report.created_runs] == [offline_id]
        assert (report.metrics, report.params, report.run_updates) == (1000, 5, 1)
        run_id = _only_run(server)
        assert len(server.get_metric_history(run_id, "loss")) == 1000
        stored = server.get_run(run_id)
        assert stored.info.status is RunStatus.FINISHED and stored.info.end_time == 9_000
        assert stored.data.params == {f"p{b}": str(b) for b in range(5)}
        assert stored.data.tags["team"] == "a"

        assert store.replay().ops == 0  # nothing left; nothing sent again
        assert len(server.get_metric_history(run_id, "loss")) == 1000
        # The offline id keeps working in this process, now mapped to the server's run.
        assert store.get_run(offline_id).info.run_id == run_id
        store.log_batch(offline_id, tags=[RunTag("after", "sync")])
        assert server.get_run(run_id).data.tags["after"] == "sync"


def test_replay_cut_short_then_resumed_duplicates_nothing(
    store: RestStore, port: int, tmp_path: Path
) -> None:
    _log_offline(store)
    flaky: Flaky | None = None

    def wrap(app: Any) -> Any:
        nonlocal flaky
        flaky = Flaky(app, fail_at=3)
        return flaky

    with serve(port, tmp_path / "server", wrap) as server:
        first = store.replay()
        assert first.interrupted is not None and "restarting" in first.interrupted
        assert first.metrics == 400  # batches 1-2 acknowledged; the 3rd applied, answer lost
        assert first.remaining == 4
        run_id = _only_run(server)
        assert len(server.get_metric_history(run_id, "loss")) == 600

        assert flaky is not None
        flaky.heal()
        second = store.replay()
        assert second.interrupted is None and second.remaining == 0
        assert _only_run(server) == run_id
        assert len(server.get_metric_history(run_id, "loss")) == 1000
        assert server.get_run(run_id).info.status is RunStatus.FINISHED


def test_crash_between_send_and_ack_duplicates_nothing(
    store: RestStore, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _log_offline(store, batches=2, per_batch=500)

    class Crash(Exception):
        pass

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash("killed right after the server answered")

    with serve(port, tmp_path / "server") as server:
        monkeypatch.setattr(Spool, "ack_created", crash)
        with pytest.raises(Crash, match="killed"):
            store.replay()  # the run exists on the server; the spool does not know it
        monkeypatch.undo()
        monkeypatch.setattr(Spool, "ack", crash)
        with pytest.raises(Crash, match="killed"):
            store.replay()  # the first batch is applied; its op is still queued
        monkeypatch.undo()
        report = store.replay()
        assert report.remaining == 0
        run_id = _only_run(server)
        assert len(server.get_metric_history(run_id, "loss")) == 1000


def test_refused_operations_are_kept_aside(store: RestStore, port: int, tmp_path: Path) -> None:
    run_id = store.create_run("0", "ana", 1, [], "r").info.run_id
    store.log_batch(run_id, params=[Param("alpha", "1")])
    store.log_batch(run_id, params=[Param("alpha", "2")])  # conflicts once it reaches the server
    store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)])
    orphan = store.create_run("424242", "ana", 1, [], "nowhere").info.run_id
    store.log_batch(orphan, metrics=[Metric("m", 1.0, 1, 0)])
    with serve(port, tmp_path / "server") as server:
        report = store.replay()
        assert report.remaining == 0
        failed = {(op.run_id, op.kind): op.error for op in report.failed}
        assert "write-once" in failed[(run_id, _spool.LOG_BATCH)]
        assert "does not exist" in failed[(orphan, _spool.CREATE_RUN)]
        assert "never created" in failed[(orphan, _spool.LOG_BATCH)]
        server_id = _only_run(server)
        assert server.get_run(server_id).data.params == {"alpha": "1"}
        assert len(server.get_metric_history(server_id, "m")) == 1
        with pytest.raises(NotFoundError, match="refused"):
            store.get_run(orphan)
    status = Spool(store.spool_path).status()
    assert status.pending_ops == 0 and len(status.failed) == 3


def test_writes_wait_behind_a_runs_backlog(store: RestStore, port: int, tmp_path: Path) -> None:
    """A server that came back still receives a run's writes in order, after its backlog."""
    offline_id = store.create_run("0", "ana", 1, [], "r").info.run_id
    store.log_batch(offline_id, [Metric("m", 0.0, 1, 0)])
    with serve(port, tmp_path / "server") as server:
        store._offline = False  # as after a successful read; the backlog is still there
        store.log_batch(offline_id, [Metric("m", 1.0, 1, 1)])
        assert Spool(store.spool_path).status().pending_ops == 3
        store.update_run_info(offline_id, RunStatus.FINISHED, 10)  # ending a run uploads it
        run_id = _only_run(server)
        assert [m.value for m in server.get_metric_history(run_id, "m")] == [0.0, 1.0]
        assert server.get_run(run_id).info.status is RunStatus.FINISHED


def test_nested_offline_runs_point_at_the_server_parent(
    store: RestStore, port: int, tmp_path: Path
) -> None:
    parent = store.create_run("0", "ana", 1, [], "parent").info.run_id
    child = store.create_run("0", "ana", 2, [RunTag("mlflow.parentRunId", parent)], "child")
    with serve(port, tmp_path / "server") as server:
        assert len(store.replay().created_runs) == 2
        runs = server.search_runs(["0"], None, ViewType.ALL, 10, None, None)
        by_name = {r.info.run_name: r for r in runs}
        assert by_name["child"].data.tags["mlflow.parentRunId"] == by_name["parent"].info.run_id
        assert store.get_run(child.info.run_id).info.run_name == "child"


def test_background_replay_uploads_when_the_server_returns(
    url: str, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_SPOOL_REPLAY_SECONDS", "0.1")
    monkeypatch.setenv("CAIRN_CAPTURE_ENVIRONMENT", "true")
    cairn.set_tracking_uri(url)
    with cairn.start_run(run_name="bg") as run:
        for step in range(1000):
            cairn.log_metric("loss", step / 1000, step=step)
    assert run.info.run_id.startswith("offline-")
    with serve(port, tmp_path / "server") as server:
        deadline = time.monotonic() + 20
        while Spool(spool_path(url)).status().runs and time.monotonic() < deadline:
            time.sleep(0.1)
        run_id = _only_run(server)
        assert len(server.get_metric_history(run_id, "loss")) == 1000
        assert server.get_run(run_id).info.status is RunStatus.FINISHED
        # The environment file start_run wrote offline followed the run to the server.
        names = [f.path for f in cairn.list_artifacts("environment", run_id=run.info.run_id)]
        assert names == ["environment/packages.txt"]
        assert Spool(spool_path(url)).artifact_backlog() == {}


def test_server_going_away_mid_run(store: RestStore, port: int, tmp_path: Path) -> None:
    with serve(port, tmp_path / "server"):
        run_id = store.create_run("0", "ana", 1, [], "online").info.run_id
        store.log_batch(run_id, [Metric("m", 0.0, 1, 0)])
    store.log_batch(run_id, [Metric("m", 1.0, 1, 1)], [Param("alpha", "1")])  # spooled
    ended = store.update_run_info(run_id, RunStatus.FINISHED, 50)
    assert (ended.run_id, ended.status, ended.run_name) == (run_id, RunStatus.FINISHED, "online")
    assert [r.run_id for r in Spool(store.spool_path).status().runs] == [run_id]
    with serve(port, tmp_path / "server") as server:  # back, with the same store
        report = store.replay()
        assert (report.metrics, report.params, report.run_updates) == (1, 1, 1)
        assert [m.value for m in server.get_metric_history(run_id, "m")] == [0.0, 1.0]
        assert server.get_run(run_id).info.status is RunStatus.FINISHED
