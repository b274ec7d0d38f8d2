"""Every multi-row write of the SQL stores is one transaction: a failure half-way stores nothing.

Failures are real database errors: a value the database refuses, or one statement of the write
redirected (through a SQLAlchemy cursor event) to a table that does not exist, so the database
fails it after the statements before it have run in the same transaction. Both on a SQLite
file and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from cairn.entities import Dataset, DatasetInput, ExperimentTag, Metric, Param, RunTag
from cairn.errors import CairnError, InvalidParameterError
from cairn.models.registry.stores.sql import SqlRegistryStore
from cairn.tracking.stores.sql.store import SqlStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sqlalchemy.engine import Engine


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(store_uri, str(tmp_path / "artifacts"))
    yield s
    s.close()


@contextlib.contextmanager
def failing_write(engine: Engine, table: str) -> Iterator[list[str]]:
    """Make the database fail the first write to ``table``: the statement names ``<table>_gone``.

    Yields the statements that ran in the meantime, so a test can show the failure came after
    other writes of the same operation.
    """
    pattern = re.compile(rf'^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"?{table}"?[\s(]', re.I)
    seen: list[str] = []
    fired = False

    def rewrite(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        nonlocal fired
        if not fired and pattern.match(statement):
            fired = True
            statement = statement.replace(table, f"{table}_gone", 1)
        seen.append(statement)
        return statement, parameters

    event.listen(engine, "before_cursor_execute", rewrite, retval=True)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", rewrite)
    assert fired, f"no write to {table} was attempted"


def _writes_before(seen: list[str], table: str) -> int:
    """Writes that ran before the failing one: proof the failure came half-way."""
    index = next(i for i, s in enumerate(seen) if f"{table}_gone" in s)
    return sum(1 for s in seen[:index] if re.match(r"\s*(INSERT|UPDATE|DELETE)", s, re.I))


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _run(store: SqlStore) -> str:
    return store.create_run("0", "alice", 1000, [RunTag("k", "v")], "r").info.run_id


BATCH = {
    "metrics": [Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(200)],
    "params": [Param("alpha", "0.5"), Param("layers", "3")],
    "tags": [RunTag("team", "vision"), RunTag("mlflow.runName", "renamed")],
}


def _assert_batch_absent(store: SqlStore, run_id: str) -> None:
    run = store.get_run(run_id)
    assert run.data.params == {}
    assert run.data.metrics == {}
    assert run.data.tags == {"k": "v", "mlflow.runName": "r"}
    assert run.info.run_name == "r"
    assert list(store.get_metric_history(run_id, "loss")) == []


def test_log_batch_with_a_value_the_database_refuses_stores_nothing(store: SqlStore) -> None:
    run_id = _run(store)
    metrics = list(BATCH["metrics"])
    metrics.append(Metric("loss", 0.0, 2000, 2**63))  # beyond BIGINT: the database refuses it
    with pytest.raises(InvalidParameterError, match="not accepted by the tracking database"):
        store.log_batch(run_id, metrics, BATCH["params"], BATCH["tags"])  # type: ignore[arg-type]
    _assert_batch_absent(store, run_id)


@pytest.mark.parametrize("table", ["params", "tags", "runs", "metrics", "latest_metrics"])
def test_log_batch_failing_half_way_stores_nothing(store: SqlStore, table: str) -> None:
    run_id = _run(store)
    with (
        failing_write(store.engine, table) as seen,
        pytest.raises(CairnError, match=f"{table}_gone"),
    ):
        store.log_batch(run_id, **BATCH, request_id="req-1")  # type: ignore[arg-type]
    if table != "params":
        assert _writes_before(seen, table) >= 1
    _assert_batch_absent(store, run_id)
    assert _count(store.engine, "metrics") == _count(store.engine, "latest_metrics") == 0
    # The request id went with the rest: a retry of the same batch is applied, not skipped.
    store.log_batch(run_id, **BATCH, request_id="req-1")  # type: ignore[arg-type]
    run = store.get_run(run_id)
    assert run.data.params == {"alpha": "0.5", "layers": "3"}
    assert run.data.tags["team"] == "vision"
    assert len(store.get_metric_history(run_id, "loss")) == 200


def test_create_run_and_experiment_failing_half_way_store_nothing(store: SqlStore) -> None:
    with failing_write(store.engine, "tags"), pytest.raises(CairnError, match="tags_gone"):
        store.create_run("0", "alice", 1000, [RunTag("k", "v")], "r", request_id="run-1")
    assert _count(store.engine, "runs") == _count(store.engine, "client_requests") == 0
    tags = [ExperimentTag("team", "vision")]
    with (
        failing_write(store.engine, "experiment_tags"),
        pytest.raises(CairnError, match="experiment_tags_gone"),
    ):
        store.create_experiment("exp", tags=tags)
    assert store.get_experiment_by_name("exp") is None
    assert store.get_experiment(store.create_experiment("exp", tags=tags)).tags == {
        "team": "vision"
    }


def test_log_inputs_failing_half_way_stores_nothing(store: SqlStore) -> None:
    run_id = _run(store)
    datasets = [
        DatasetInput(Dataset(f"d{i}", f"digest{i}", "local", f"/data/{i}"), {"context": "train"})
        for i in range(3)
    ]
    with (
        failing_write(store.engine, "run_input_tags") as seen,
        pytest.raises(CairnError, match="run_input_tags_gone"),
    ):
        store.log_inputs(run_id, datasets)
    assert _writes_before(seen, "run_input_tags") >= 2  # the dataset and its link
    for table in ("datasets", "run_inputs", "run_input_tags"):
        assert _count(store.engine, table) == 0
    store.log_inputs(run_id, datasets)
    assert len(store.get_run(run_id).inputs.dataset_inputs) == 3


def test_registry_writes_failing_half_way_store_nothing(store: SqlStore) -> None:
    registry = SqlRegistryStore(store.engine)
    with (
        failing_write(store.engine, "registered_model_tags"),
        pytest.raises(CairnError, match="registered_model_tags_gone"),
    ):
        registry.create_registered_model("m", {"team": "vision"}, None)
    assert _count(store.engine, "registered_models") == 0

    registry.create_registered_model("m", {}, None)
    version = {"run_id": None, "run_link": None, "description": None, "user_id": "alice"}
    with (
        failing_write(store.engine, "model_version_tags") as seen,
        pytest.raises(CairnError, match="model_version_tags_gone"),
    ):
        registry.create_model_version("m", "s3://b/m", tags={"k": "v"}, model_id=None, **version)
    assert _writes_before(seen, "model_version_tags") == 2  # the counter and the version row
    assert _count(store.engine, "model_versions") == 0
    # The version counter was rolled back with the rest: the next version is still 1.
    created = registry.create_model_version("m", "s3://b/m", tags={}, model_id=None, **version)
    assert created.version == 1

    registry.set_registered_model_alias("m", "champion", 1)
    with (
        failing_write(store.engine, "registered_models"),
        pytest.raises(CairnError, match="registered_models_gone"),
    ):
        registry.delete_model_version("m", 1)  # deletes the version, then touches the model
    assert registry.get_model_version("m", 1).version == 1
    assert registry.get_model_version_by_alias("m", "champion").version == 1
