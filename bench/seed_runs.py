"""Fill a tracking store with many runs quickly, for the UI benchmark and by hand.

    .venv/bin/python bench/seed_runs.py STORE [--runs 100000] [--curves 100] [--wide 2000]

STORE is what ``cairn server --backend-store-uri`` takes (a folder, ``sqlite:///...`` or
``postgresql://...``). The store is opened through ``SqlStore`` (so the schema is created or
migrated as usual) and one experiment is created through its API; the runs are then written with
bulk INSERTs through the store's own SQLAlchemy tables, in chunks of one transaction each:
100,000 runs take tens of seconds, not the hours of 100,000 API calls.

Every run gets params, tags and latest metrics (each with its one history row). ``--curves``
runs get ``--curve-steps``-step histories of three metrics; one more run, ``long-run``, gets a
``--long-steps``-step ``loss``; the first ``--wide`` runs also log 250 extra params and 250
extra metrics, so the experiment has over 500 columns. The values are deterministic for a
``--seed``. Prints one JSON line: the experiment id, run ids to open, rows and seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

MODELS = ("ridge", "lasso", "elasticnet", "random_forest", "xgboost")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
USERS = ("ada", "grace", "alan", "edsger")
TEAMS = ("pricing", "search", "ranking")
CURVE_METRICS = ("loss", "val_loss", "accuracy")
WIDE_KEYS = 250
CHUNK_RUNS = 2000
BASE_TIME_MS = 1_700_000_000_000


@dataclass
class Rows:
    """Rows for the tables keyed by run, gathered for one chunk of runs."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    latest: list[dict[str, Any]] = field(default_factory=list)

    def count(self) -> int:
        return sum(map(len, (self.runs, self.params, self.tags, self.metrics, self.latest)))


@dataclass(frozen=True)
class Plan:
    runs: int
    curves: int
    curve_steps: int
    long_steps: int
    wide: int
    seed: int


def _curve(final: float, steps: int, rng: random.Random) -> list[float]:
    """A noisy decaying curve that ends near ``final``."""
    scale = max(steps / 5, 1)
    return [
        final + (1.0 - final) * math.exp(-step / scale) + rng.gauss(0, 0.01)
        for step in range(steps)
    ]


def _add_metric(rows: Rows, run_id: str, key: str, values: list[float], start: int) -> None:
    for step, value in enumerate(values):
        rows.metrics.append(
            {
                "run_uuid": run_id,
                "key": key,
                "value": value,
                "timestamp": start + step * 50,
                "step": step,
            }
        )
    rows.latest.append(
        {
            "run_uuid": run_id,
            "key": key,
            "value": values[-1],
            "timestamp": start + (len(values) - 1) * 50,
            "step": len(values) - 1,
        }
    )


def _run(
    rows: Rows,
    plan: Plan,
    index: int,
    name: str,
    steps: int,
    artifact_root: str,
    experiment_id: int,
    rng: random.Random,
) -> str:
    run_id = uuid.uuid4().hex
    start = BASE_TIME_MS + index * 1000
    status = "FAILED" if index % 97 == 0 else "RUNNING" if index % 251 == 0 else "FINISHED"
    user = USERS[index % len(USERS)]
    rows.runs.append(
        {
            "run_uuid": run_id,
            "experiment_id": experiment_id,
            "name": name,
            "user_id": user,
            "status": status,
            "start_time": start,
            "end_time": None if status == "RUNNING" else start + rng.randint(1_000, 3_600_000),
            "lifecycle_stage": "active",
            "artifact_uri": f"{artifact_root}/{run_id}/artifacts",
        }
    )
    model = MODELS[index % len(MODELS)]
    params = {
        "model": model,
        "alpha": str(rng.choice((0.001, 0.01, 0.1, 1.0, 10.0))),
        "learning_rate": str(rng.choice((0.0003, 0.001, 0.003, 0.01))),
        "max_depth": str(rng.randint(2, 12)),
        "n_estimators": str(rng.choice((50, 100, 200, 400))),
        "batch_size": str(rng.choice((32, 64, 128, 256))),
        "optimizer": OPTIMIZERS[index % len(OPTIMIZERS)],
        "seed": str(index),
    }
    tags = {
        "mlflow.runName": name,
        "mlflow.user": user,
        "mlflow.source.name": "train.py",
        "team": TEAMS[index % len(TEAMS)],
        "stage": "candidate" if index % 10 == 0 else "dev",
    }
    rmse = rng.random()
    finals = {"rmse": rmse, "mae": rmse * 0.8, "r2": 1.0 - rmse}
    if index < plan.wide:
        params.update({f"p{k:03d}": str(rng.randint(0, 9)) for k in range(WIDE_KEYS)})
        finals.update({f"m{k:03d}": rng.random() for k in range(WIDE_KEYS)})
    rows.params += [{"run_uuid": run_id, "key": k, "value": v} for k, v in params.items()]
    rows.tags += [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()]
    for key, value in finals.items():
        _add_metric(rows, run_id, key, [value], start)
    if steps:
        for key in CURVE_METRICS:
            final = rng.uniform(0.05, 0.4) if key != "accuracy" else rng.uniform(0.6, 0.95)
            _add_metric(rows, run_id, key, _curve(final, steps, rng), start)
    return run_id


def row_chunks(
    plan: Plan, artifact_root: str, experiment_id: int
) -> Iterator[tuple[Rows, list[str]]]:
    """The rows of ``plan`` in chunks of runs, with Cairn's column names, and the chunk's run
    ids (bench/ui.py writes the same rows into MLflow's schema)."""
    rng = random.Random(plan.seed)
    rows, ids = Rows(), []
    for index in range(plan.runs):
        steps = plan.curve_steps if index < plan.curves else 0
        ids.append(
            _run(rows, plan, index, f"run-{index:06d}", steps, artifact_root, experiment_id, rng)
        )
        if len(rows.runs) >= CHUNK_RUNS:
            yield rows, ids
            rows, ids = Rows(), []
    if plan.long_steps:
        ids.append(_run(rows, plan, plan.runs, "long-run", 0, artifact_root, experiment_id, rng))
        values = _curve(0.1, plan.long_steps, rng)
        _add_metric(rows, ids[-1], "loss", values, BASE_TIME_MS + plan.runs * 1000)
    yield rows, ids


def seed(store_uri: str, plan: Plan, experiment: str) -> dict[str, Any]:
    """Create ``experiment`` in the store and fill it; returns what the JSON line prints."""
    from cairn._config import resolve_store_location
    from cairn.tracking.stores.sql import schema as t
    from cairn.tracking.stores.sql.store import SqlStore

    location = resolve_store_location(store_uri)
    store = SqlStore(location.uri, location.artifact_root)
    try:
        experiment_id = store.create_experiment(experiment)
        artifact_root = store.get_experiment(experiment_id).artifact_location
        started = time.perf_counter()
        total, first, long_run = 0, "", ""
        with store.engine.connect() as conn:
            for rows, ids in row_chunks(plan, artifact_root, int(experiment_id)):
                first = first or ids[0]
                long_run = ids[-1] if plan.long_steps else ""
                with conn.begin():
                    for table, batch in (
                        (t.runs, rows.runs),
                        (t.params, rows.params),
                        (t.tags, rows.tags),
                        (t.metrics, rows.metrics),
                        (t.latest_metrics, rows.latest),
                    ):
                        if batch:
                            conn.execute(table.insert(), batch)
                total += rows.count()
        seconds = time.perf_counter() - started
    finally:
        store.close()
    return {
        "experiment_id": experiment_id,
        "runs": plan.runs + (1 if plan.long_steps else 0),
        "first_run_id": first,
        "long_run_id": long_run,
        "rows": total,
        "seconds": round(seconds, 2),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a folder, sqlite:///PATH or postgresql://...")
    parser.add_argument("--experiment", default="ui-bench")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--curves", type=int, default=100, help="runs with metric curves")
    parser.add_argument("--curve-steps", type=int, default=1000)
    parser.add_argument("--long-steps", type=int, default=100_000, help="0: no long run")
    parser.add_argument("--wide", type=int, default=2000, help="runs with 500 extra columns")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    plan = Plan(args.runs, args.curves, args.curve_steps, args.long_steps, args.wide, args.seed)
    print(json.dumps(seed(args.store, plan, args.experiment)))


if __name__ == "__main__":
    main(sys.argv[1:])
