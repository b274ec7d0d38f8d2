"""Data lineage costs: recording a table version on a run, and reading a pinned version.

    .venv/bin/python bench/data.py             # 1,000,000-row table, 7 repeats
    .venv/bin/python bench/data.py --quick     # 3 repeats
    .venv/bin/python bench/data.py --json out.json

One process, both tools loaded, a fresh temporary folder holding a Delta table of ROWS rows
(eight columns, written in four commits, so the pinned version has several files) and each
tool's default local store. Repeats are interleaved and the median is reported.

- ``log input``: recording the table version as an input of an active run. Cairn:
  ``cairn.log_input(uri, version=N)``, which describes the version from the Delta log (row
  count, schema hash, content digest) without reading data. MLflow (its Delta source needs
  Spark): ``mlflow.log_input(mlflow.data.from_pandas(df, source=uri))`` on the DataFrame the
  job already holds, which hashes and profiles the data. Target: Cairn under 50 ms.
  ``read_table`` inside a run records its version through the same path (describe from the
  log, one ``log-inputs`` call), so this is also what lineage adds to a read.
- ``pinned read``: ``read_table(uri)`` with the version pinned by ``$CAIRN_DATA_PINS`` (as
  ``cairn runs reproduce`` runs a job), inside a run, against delta-rs reading the same
  version directly (``DeltaTable(uri, version=N).to_pandas()``). Target: within 1.2x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script

if TYPE_CHECKING:
    from collections.abc import Callable

ROWS = 1_000_000
COMMITS = 4
SEED = 20240611


def _make_table(uri: str, rows: int) -> int:
    import numpy as np
    import pandas as pd

    from cairn import data

    rng = np.random.default_rng(SEED)
    per_commit = rows // COMMITS
    version = -1
    for _ in range(COMMITS):
        frame = pd.DataFrame(
            {
                "listing_id": rng.integers(0, 10**9, per_commit),
                "rooms": rng.integers(1, 7, per_commit),
                "area": rng.normal(0, 1, per_commit),
                "distance": rng.normal(0, 1, per_commit),
                "rating": rng.normal(0, 1, per_commit),
                "age": rng.normal(0, 1, per_commit),
                "city": rng.choice(["paris", "lyon", "nice", "lille"], per_commit),
                "price": rng.normal(0, 1, per_commit),
            }
        )
        version = data.write_table(frame, uri)
    return version


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(quick: bool = False, rows: int = ROWS) -> dict[str, Any]:
    import mlflow
    import mlflow.data
    from deltalake import DeltaTable

    import cairn
    from cairn import data
    from cairn.data.pins import PINS_ENV, encode_pins

    repeats = 3 if quick else 7
    warnings.filterwarnings("ignore")  # MLflow's schema-inference hints, once per repeat
    work = Path(tempfile.mkdtemp(prefix="cairn-bench-data-"))
    os.chdir(work)
    os.environ["CAIRN_ASYNC_LOGGING"] = "false"
    cairn.set_tracking_uri(str(work / ".cairn"))
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    uri = str(work / "listings")
    version = _make_table(uri, rows)
    frame = data.read_table(uri, version=version)

    samples: dict[str, list[float]] = {
        "cairn_log_input": [],
        "mlflow_log_input": [],
        "pinned_read": [],
        "delta_direct": [],
    }
    # One untimed pass of everything: imports, the stores' schemas, file caches.
    for timed in (False, *([True] * repeats)):
        with cairn.start_run():
            took = _timed(lambda: cairn.log_input(uri, version=version, context="training"))
        if timed:
            samples["cairn_log_input"].append(took)
        with mlflow.start_run():
            took = _timed(
                lambda: mlflow.log_input(
                    mlflow.data.from_pandas(frame, source=uri, name="listings"),
                    context="training",
                )
            )
        if timed:
            samples["mlflow_log_input"].append(took)
        direct = _timed(lambda: DeltaTable(uri, version=version).to_pandas())
        os.environ[PINS_ENV] = encode_pins({uri: version})
        try:
            with cairn.start_run():
                pinned = _timed(lambda: data.read_table(uri))
        finally:
            del os.environ[PINS_ENV]
        if timed:
            samples["pinned_read"].append(pinned)
            samples["delta_direct"].append(direct)

    ms = {key: _median_ms(values) for key, values in samples.items()}
    pinned_ratio = ms["pinned_read"] / ms["delta_direct"]
    return {
        "rows": rows,
        "version": version,
        "repeats": repeats,
        "median_ms": ms,
        "samples_s": samples,
        "figures": [
            {
                "scenario": f"log a {rows:,}-row table version as run input",
                "cairn": ms["cairn_log_input"],
                "baseline": ms["mlflow_log_input"],
                "baseline_name": "mlflow.log_input(from_pandas)",
                "target": "< 50 ms",
                "pass": ms["cairn_log_input"] < 50,
            },
            {
                "scenario": f"read pinned version ({rows:,} rows) in a run",
                "cairn": ms["pinned_read"],
                "baseline": ms["delta_direct"],
                "baseline_name": "deltalake DeltaTable(v).to_pandas()",
                "target": "<= 1.2x direct",
                "pass": pinned_ratio <= 1.2,
            },
        ],
    }


def render(result: dict[str, Any]) -> str:
    header = ("scenario", "Cairn", "baseline", "ratio", "target", "result")
    lines = []
    for row in result["figures"]:
        baseline = row["baseline"]
        ratio = (
            "-"
            if baseline is None
            else f"{baseline / row['cairn']:,.1f}x faster"
            if (row["baseline_name"].startswith("mlflow"))
            else f"{row['cairn'] / baseline:.2f}x of direct"
        )
        lines.append(
            (
                row["scenario"],
                _harness.figure(row["cairn"] / 1000, "s"),
                "-"
                if baseline is None
                else f"{_harness.figure(baseline / 1000, 's')} ({row['baseline_name']})",
                ratio,
                row["target"],
                "PASS" if row["pass"] else "FAIL",
            )
        )
    return _harness.markdown_table(header, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--rows", type=int, default=ROWS, help="table size (default 1,000,000)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, rows=args.rows)
    print(render(result))
    print(f"\nmedian of {result['repeats']} interleaved repeats; version read: {result['version']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if all(row["pass"] for row in result["figures"]) else 1


if __name__ == "__main__":
    sys.exit(main())
