"""``kill -9`` of a real ``cairn server`` while clients log batches loses no acknowledged write.

Client threads each log batches of metrics with unique ``(key, step)`` pairs and a param to
their own run, and record the batches the server answered with 200. The server's process group
is killed with SIGKILL mid-stream; a new server is started on the same store. Then the SQLite
file passes ``PRAGMA integrity_check``, every acknowledged batch is present in full, and every
batch that is present is complete (a batch is one transaction: all of it or none of it).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

API = "/api/2.0/mlflow"
CLIENTS = 4
BATCH = 50  # metrics per batch: one key, BATCH consecutive steps
ROUNDS = 3  # kill, restart, check: three times on the same store
ACKED_BEFORE_KILL = 30  # batches acknowledged (all clients) before the kill, per round
ROUND_TIMEOUT_S = 60.0


@dataclass
class Writer:
    """One client thread's record: what it sent and what the server acknowledged."""

    run_id: str
    key: str
    sent: int = 0
    acked: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # non-200 answers: never expected
    transport_errors: int = 0


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _new_run(client: httpx.Client) -> str:
    body = {"experiment_id": "0", "start_time": int(time.time() * 1000)}
    return str(_ok(client.post(f"{API}/runs/create", json=body))["run"]["info"]["run_id"])


def _batch_body(writer: Writer, index: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    metrics = [
        {"key": writer.key, "value": index + s / BATCH, "timestamp": now, "step": index * BATCH + s}
        for s in range(BATCH)
    ]
    params = [{"key": f"batch-{index}", "value": str(index)}]
    return {"run_id": writer.run_id, "metrics": metrics, "params": params}


def _log_until_refused(url: str, writer: Writer, first: int, stop: threading.Event) -> None:
    """Log batches ``first, first+1, ...`` until the server goes away or ``stop`` is set."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        index = first
        while not stop.is_set():
            body = _batch_body(writer, index)
            writer.sent += 1
            try:
                response = client.post(f"{API}/runs/log-batch", json=body)
            except httpx.TransportError:
                writer.transport_errors += 1
                return  # the server is gone: this batch may or may not have been stored
            if response.status_code == 200:
                writer.acked.append(index)
            else:
                writer.refused.append(f"{response.status_code}: {response.text[:300]}")
                return
            index += 1


def _history(client: httpx.Client, run_id: str, key: str) -> list[dict[str, Any]]:
    params = {"run_id": run_id, "metric_key": key}
    return list(_ok(client.get(f"{API}/metrics/get-history", params=params)).get("metrics", []))


def _crash_rounds(
    start_server: Callable[..., Any], store_uri: str, db_file: Path | None, *args: str
) -> dict[str, int]:
    server = start_server(store_uri, *args)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        writers = [Writer(_new_run(client), f"loss-{i}") for i in range(CLIENTS)]
    acked_total = sent_total = 0
    next_index = [0] * CLIENTS
    for _ in range(ROUNDS):
        stop = threading.Event()
        before = [len(w.acked) for w in writers]
        threads = [
            threading.Thread(target=_log_until_refused, args=(server.url, w, next_index[i], stop))
            for i, w in enumerate(writers)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while sum(len(w.acked) for w in writers) - sum(before) < ACKED_BEFORE_KILL:
            assert time.monotonic() < deadline, "clients did not get batches acknowledged"
            assert all(t.is_alive() for t in threads), [w.refused for w in writers]
            time.sleep(0.005)
        server.kill()  # SIGKILL while the clients are mid-stream
        for thread in threads:
            thread.join(timeout=ROUND_TIMEOUT_S)
        stop.set()
        assert not any(t.is_alive() for t in threads)
        for i, writer in enumerate(writers):
            assert writer.refused == []
            # Unacknowledged batches may or may not be stored; the next round uses new steps.
            next_index[i] = next_index[i] + (len(writer.acked) - before[i]) + 1
        if db_file is not None:
            with sqlite3.connect(db_file) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        server = start_server(store_uri, *args)  # restart on the same store
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            for writer in writers:
                steps = {m["step"] for m in _history(client, writer.run_id, writer.key)}
                params = _ok(client.get(f"{API}/runs/get", params={"run_id": writer.run_id}))
                stored_params = {p["key"] for p in params["run"]["data"].get("params", [])}
                for index in writer.acked:
                    wanted = set(range(index * BATCH, (index + 1) * BATCH))
                    assert wanted <= steps, f"batch {index} of {writer.key} was acknowledged"
                    assert f"batch-{index}" in stored_params
                # All or nothing: every batch found is complete, its param included.
                for index in {step // BATCH for step in steps}:
                    assert set(range(index * BATCH, (index + 1) * BATCH)) <= steps
                    assert f"batch-{index}" in stored_params
    for writer in writers:
        acked_total += len(writer.acked)
        sent_total += writer.sent
    server.kill()
    if db_file is not None:
        with sqlite3.connect(db_file) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return {"sent": sent_total, "acked": acked_total, "rounds": ROUNDS}


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_kill_9_server_on_sqlite_loses_no_acknowledged_batch(
    cairn_server: Callable[..., Any], tmp_path: Path, workers: str
) -> None:
    db_file = tmp_path / "crash.db"
    figures = _crash_rounds(cairn_server, f"sqlite:///{db_file}", db_file, "--workers", workers)
    print(f"crash test (sqlite, {workers} worker(s)): {figures}, lost 0")
    assert figures["acked"] >= ROUNDS * ACKED_BEFORE_KILL


@pytest.mark.slow
def test_kill_9_server_on_postgresql_loses_no_acknowledged_batch(
    cairn_server: Callable[..., Any], postgres_uri: str
) -> None:
    figures = _crash_rounds(cairn_server, postgres_uri, None)
    print(f"crash test (postgresql): {figures}, lost 0")
    assert figures["acked"] >= ROUNDS * ACKED_BEFORE_KILL


# A training process logging offline: every value whose log_metric call returned is printed.
OFFLINE_CLIENT = """
import sys
import cairn

cairn.set_tracking_uri(sys.argv[1])
run = cairn.start_run(log_system_info=False)
print(run.info.run_id, flush=True)
for step in range(1_000_000):
    cairn.log_metric("loss", step / 10, step=step)
    print(step, flush=True)
"""


@pytest.mark.slow
def test_kill_9_offline_client_mid_stream_loses_nothing_after_sync(
    cairn_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from cairn.cli import cli

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"  # nothing listens yet: the client logs to its spool
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))}
    settings = {
        "CAIRN_SPOOL_DIR": str(tmp_path / "spool"),
        "CAIRN_HTTP_RETRY_SECONDS": "0.2",
        "CAIRN_SPOOL_REPLAY_SECONDS": "3600",
        "CAIRN_ASYNC_LOGGING": "false",  # a call returns once its value is in the spool
    }
    child = subprocess.Popen(
        [sys.executable, "-c", OFFLINE_CLIENT, url],
        env={**env, **settings, "CAIRN_TRACKING_URI": url},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        offline_id = child.stdout.readline().strip()
        assert offline_id.startswith("offline-"), offline_id
        last = -1
        while last < 300:  # kill it mid-stream, a few hundred acknowledged values in
            line = child.stdout.readline()
            assert line, f"the client exited {child.poll()} before logging 300 values"
            last = int(line)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        last = max([last, *(int(line) for line in child.stdout.read().split())])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)

    server = cairn_server(f"sqlite:///{tmp_path / 'server.db'}", "--port", str(port))
    assert server.url == url
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["--tracking-uri", url, "sync"])
    assert result.exit_code == 0, result.output
    with httpx.Client(base_url=url, timeout=30.0) as client:
        [run] = _ok(client.post(f"{API}/runs/search", json={"experiment_ids": ["0"]}))["runs"]
        steps = [m["step"] for m in _history(client, run["info"]["run_id"], "loss")]
    assert len(steps) == len(set(steps))  # each value uploaded once
    # Every value whose call returned is there; the one in flight at the kill may be too.
    assert set(range(last + 1)) <= set(steps) <= set(range(last + 2))
    print(f"offline client crash: {last + 1} values acknowledged, {len(steps)} uploaded, lost 0")
