"""What ``synchronous=FULL`` costs Cairn against ``NORMAL``: SQLite commit modes, side by side.

    .venv/bin/python bench/sqlite_sync.py                 # 3 rounds
    .venv/bin/python bench/sqlite_sync.py --rounds 5 --json sync.json

Cairn only (no MLflow), the workloads of ``bench/tracking.py`` (``log_metric`` async and
synchronous, ``log_batch``, through ``bench/_harness.py``) and of ``bench/server.py``
(``runs/log-batch`` of 1,000 metrics, sequential ``runs/log-metric`` with latency percentiles,
8 concurrent client processes, every acknowledged value counted back), each sample in fresh
processes on a fresh store with ``CAIRN_SQLITE_SYNCHRONOUS`` set. The two modes alternate
which goes first in each round, so drift in machine load hits both; the summary gives each
figure's median and its range over the samples.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script

import server as server_bench  # bench/server.py, beside this script

if TYPE_CHECKING:
    from collections.abc import Sequence

MODES = ("NORMAL", "FULL")
HARNESS = Path(_harness.__file__).resolve()
CONCURRENT_SECONDS = 5.0
LOG_METRIC_CALLS = 1_000
LOG_BATCH_REQUESTS = 10


def _env(mode: str, pycache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["CAIRN_SQLITE_SYNCHRONOUS"] = mode
    env.update(extra or {})
    return env


def _harness_task(
    mode: str, pycache: Path, task: str, params: dict[str, Any], extra: dict[str, str] | None
) -> float:
    """One ``bench/_harness.py`` Cairn task in a fresh directory; its figure."""
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as cwd:
        result = Path(cwd) / "result.json"
        command = [sys.executable, str(HARNESS), "cairn", task, json.dumps(params), str(result)]
        proc = subprocess.run(
            command, cwd=cwd, env=_env(mode, pycache, extra), capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"{task} ({mode}) exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        return float(json.loads(result.read_text())["value"])


class _Bench(server_bench.ServerBench):
    """``bench/server.py``'s helpers, with Cairn's server started in one commit mode."""

    mode = "FULL"

    def env(self, tool: str) -> dict[str, str]:
        return _env(self.mode, self.pycache)


def _server_figures(mode: str, pycache: Path) -> dict[str, float]:
    bench = _Bench(False, None, False, pycache, {"cairn": None, "mlflow": None})
    bench.mode = mode
    steps = server_bench.BATCH_SIZE // server_bench.BATCH_KEYS
    figures: dict[str, float] = {}
    with server_bench.running(bench, "cairn") as server, server_bench._client(server) as client:
        run_id = server_bench._create_run(client)
        bodies = [
            json.dumps({"run_id": run_id, "metrics": server_bench._batch(i * steps, steps)})
            for i in range(LOG_BATCH_REQUESTS)
        ]
        start = time.perf_counter()
        for body in bodies:
            headers = {"content-type": "application/json"}
            server_bench._ok(client.post("/runs/log-batch", content=body, headers=headers))
        seconds = time.perf_counter() - start
        figures["server log-batch, metrics/s"] = (
            LOG_BATCH_REQUESTS * server_bench.BATCH_SIZE / seconds
        )

        run_id = server_bench._create_run(client)
        server_bench._log_metric_latencies(client, server_bench._create_run(client), 20)
        start = time.perf_counter()
        latencies = server_bench._log_metric_latencies(client, run_id, LOG_METRIC_CALLS)
        figures["server log-metric, req/s"] = LOG_METRIC_CALLS / (time.perf_counter() - start)
        percentiles = server_bench._percentiles(latencies)
        figures["server log-metric p50, ms"] = percentiles["p50_ms"]
        figures["server log-metric p99, ms"] = percentiles["p99_ms"]

        figures["8 concurrent clients, req/s"] = _concurrent(server.url, client)
    return figures


def _concurrent(url: str, client: Any) -> float:
    acked, errors, elapsed, stored, _ = server_bench.run_concurrent_clients(
        url, client, CONCURRENT_SECONDS
    )
    if errors or stored != acked:
        raise SystemExit(
            f"concurrent clients: {errors} errors, {acked} acknowledged, {stored} stored"
        )
    return acked / elapsed


def _round(mode: str, pycache: Path) -> dict[str, float]:
    sync = {"CAIRN_ASYNC_LOGGING": "false"}
    figures = {
        "log_metric synchronous, calls/s": _harness_task(
            mode, pycache, "log_metric", {"calls": 2000}, sync
        ),
        "log_metric async, calls/s": _harness_task(
            mode, pycache, "log_metric", {"calls": 2000}, None
        ),
        "log_batch 10,000, metrics/s": _harness_task(
            mode, pycache, "log_batch", {"metrics": 10_000, "keys": 10}, None
        ),
    }
    return figures | _server_figures(mode, pycache)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _range(values: Sequence[float]) -> tuple[float, float]:
    return min(values), max(values)


def _summary(samples: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| figure | " + " | ".join(MODES) + " |", "|---|" + "---:|" * len(MODES)]
    for name in samples[MODES[0]]:
        cells = []
        for mode in MODES:
            values = samples[mode][name]
            median, low, high = (_figure(v) for v in (statistics.median(values), *_range(values)))
            cells.append(f"{median} [{low}..{high}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="samples per mode (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write every sample as JSON")
    args = parser.parse_args(argv)
    env = _harness.environment()
    print(f"Cairn {env['cairn']} | {env['cpus']} CPUs | load {env['load_average_at_start'][0]:.2f}")
    samples: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-sync-pycache-") as pycache:
        for index in range(args.rounds):
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                for name, value in _round(mode, Path(pycache)).items():
                    samples[mode].setdefault(name, []).append(value)
                print(f"round {index + 1} {mode} done", file=sys.stderr, flush=True)
    print(f"median [min..max] of {args.rounds} rounds per mode\n")
    print(_summary(samples))
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
