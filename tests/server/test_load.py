"""Load: 8 writer processes x 5,000 metrics against one real ``cairn server`` on 127.0.0.1.

Each writer is its own process with its own keep-alive connection and run. It sends 1,000
values with single ``runs/log-metric`` requests and 4,000 in ``runs/log-batch`` requests of 500,
interleaved, all at once with the others. Every request must be answered 200, and afterwards
``metrics/get-history`` must return exactly the 40,000 values sent, no more, no fewer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

API = "/api/2.0/mlflow"
WRITERS = 8
SINGLES = 1_000  # per writer, one runs/log-metric request each
BATCHES = 8  # per writer, runs/log-batch requests of BATCH_SIZE values
BATCH_SIZE = 500
PER_WRITER = SINGLES + BATCHES * BATCH_SIZE
TIMEOUT_S = 120.0

# One writer: waits for "go" on stdin, logs, prints one JSON line of counts.
WRITER = textwrap.dedent(
    """
    import json, sys, time
    import httpx

    url, run_id = sys.argv[1], sys.argv[2]
    singles, batches, size = (int(v) for v in sys.argv[3:6])
    counts = {"requests": 0, "acked": 0, "errors": 0, "metrics_acked": 0, "first_error": ""}

    def post(client, path, body, metrics):
        counts["requests"] += 1
        try:
            response = client.post(path, json=body)
        except httpx.HTTPError as exc:
            counts["errors"] += 1
            counts["first_error"] = counts["first_error"] or repr(exc)
            return
        if response.status_code == 200:
            counts["acked"] += 1
            counts["metrics_acked"] += metrics
        else:
            counts["errors"] += 1
            counts["first_error"] = counts["first_error"] or (
                f"{response.status_code} {response.text[:300]}"
            )

    with httpx.Client(base_url=url + "/api/2.0/mlflow", timeout=60.0) as client:
        client.get("/experiments/get", params={"experiment_id": "0"})  # connect first
        sys.stdin.readline()
        start = time.perf_counter()
        every = singles // batches
        sent_batches = 0
        for step in range(singles):
            body = {"run_id": run_id, "key": "single", "value": step / 7, "timestamp": step,
                    "step": step}
            post(client, "/runs/log-metric", body, 1)
            if (step + 1) % every == 0 and sent_batches < batches:
                first = sent_batches * size
                metrics = [{"key": "batch", "value": s / 3, "timestamp": s, "step": s}
                           for s in range(first, first + size)]
                post(client, "/runs/log-batch", {"run_id": run_id, "metrics": metrics}, size)
                sent_batches += 1
        counts["seconds"] = time.perf_counter() - start
    print(json.dumps(counts), flush=True)
    """
)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _history_steps(client: httpx.Client, run_id: str, key: str) -> list[int]:
    """Every stored step of ``key``, all pages."""
    steps: list[int] = []
    token = None
    while True:
        params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 1000}
        if token:
            params["page_token"] = token
        body = _ok(client.get(f"{API}/metrics/get-history", params=params))
        steps += [int(m["step"]) for m in body.get("metrics", [])]
        token = body.get("next_page_token")
        if not token:
            return steps


@pytest.mark.slow
def test_eight_writers_store_exactly_forty_thousand_metrics(
    cairn_server: Callable[..., Any], tmp_path: Path
) -> None:
    server = cairn_server(f"sqlite:///{tmp_path / 'load.db'}")
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        run_ids = [
            _ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"][
                "run_id"
            ]
            for _ in range(WRITERS)
        ]
    args = [str(SINGLES), str(BATCHES), str(BATCH_SIZE)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, server.url, run_id, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id in run_ids
    ]
    try:
        time.sleep(1.0)  # let every writer import httpx and connect before the start
        start = time.perf_counter()
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        results = []
        for writer in writers:
            out, err = writer.communicate(timeout=TIMEOUT_S)
            assert writer.returncode == 0, err
            results.append(json.loads(out))
        elapsed = time.perf_counter() - start
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=15)

    requests = sum(r["requests"] for r in results)
    errors = sum(r["errors"] for r in results)
    assert errors == 0, [r["first_error"] for r in results if r["first_error"]]
    assert sum(r["metrics_acked"] for r in results) == WRITERS * PER_WRITER

    stored = 0
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        for run_id in run_ids:
            singles = _history_steps(client, run_id, "single")
            batched = _history_steps(client, run_id, "batch")
            assert sorted(singles) == list(range(SINGLES))
            assert sorted(batched) == list(range(BATCHES * BATCH_SIZE))
            stored += len(singles) + len(batched)
    assert stored == WRITERS * PER_WRITER == 40_000
    assert not [line for line in server.output if "Traceback" in line or "ERROR" in line]
    print(
        f"load test: {WRITERS} writers, {requests} requests, {stored} metrics stored, "
        f"{errors} errors, {elapsed:.1f} s"
    )
