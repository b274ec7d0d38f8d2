from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from cairn.entities import (
    ExperimentTag,
    LifecycleStage,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from cairn.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    SchemaVersionError,
)
from cairn.tracking.stores.sql.engine import HEAD_REVISION, downgrade_schema
from cairn.tracking.stores.sql.store import SqlStore


@pytest.fixture
def store(store_uri: str, tmp_path) -> SqlStore:
    s = SqlStore(store_uri, str(tmp_path / "artifacts"))
    yield s
    s.close()


def _run(store: SqlStore, experiment_id: str = "0", name: str = "r") -> str:
    return store.create_run(experiment_id, "alice", 1000, [RunTag("k", "v")], name).info.run_id


def test_new_store_has_default_experiment_and_head_schema(store: SqlStore) -> None:
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.artifact_location.endswith("/artifacts/0")
    assert store.current_revision() == HEAD_REVISION


def test_sqlite_store_uses_wal(sqlite_uri: str, tmp_path) -> None:
    store = SqlStore(sqlite_uri, str(tmp_path / "a"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_experiment_lifecycle(store: SqlStore) -> None:
    exp_id = store.create_experiment("exp", tags=[ExperimentTag("team", "vision")])
    exp = store.get_experiment(exp_id)
    assert (exp.name, exp.tags) == ("exp", {"team": "vision"})
    assert store.get_experiment_by_name("exp") == exp
    with pytest.raises(AlreadyExistsError, match="Experiment 'exp' already exists"):
        store.create_experiment("exp")
    store.rename_experiment(exp_id, "exp2")
    assert store.get_experiment(exp_id).name == "exp2"
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage is LifecycleStage.DELETED
    assert exp_id not in [e.experiment_id for e in store.search_experiments(ViewType.ACTIVE_ONLY)]
    assert exp_id in [e.experiment_id for e in store.search_experiments(ViewType.DELETED_ONLY)]
    with pytest.raises(AlreadyExistsError, match="it is deleted: restore it"):
        store.create_experiment("exp2")
    with pytest.raises(InvalidStateError, match="is deleted; restore it"):
        store.create_run(exp_id, "u", 1, [], "r")
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage is LifecycleStage.ACTIVE
    store.set_experiment_tag(exp_id, ExperimentTag("team", "nlp"))
    assert store.get_experiment(exp_id).tags == {"team": "nlp"}


def test_unknown_experiment_and_default_protection(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="Experiment '999' does not exist"):
        store.get_experiment("999")
    with pytest.raises(NotFoundError, match="Experiment 'abc' does not exist"):
        store.get_experiment("abc")
    with pytest.raises(InvalidParameterError, match="default experiment '0' cannot be deleted"):
        store.delete_experiment("0")
    assert store.get_experiment_by_name("nope") is None


def test_search_experiments_pages(store: SqlStore) -> None:
    for i in range(5):
        store.create_experiment(f"e{i}")
    first = store.search_experiments(ViewType.ACTIVE_ONLY, max_results=4)
    assert len(first) == 4 and first.token
    second = store.search_experiments(ViewType.ACTIVE_ONLY, max_results=4, page_token=first.token)
    assert [e.name for e in [*first, *second]] == ["Default", "e0", "e1", "e2", "e3", "e4"]
    assert second.token is None
    with pytest.raises(InvalidParameterError, match="Invalid page token"):
        store.search_experiments(ViewType.ACTIVE_ONLY, page_token="garbage!")


def test_run_roundtrip_with_batch(store: SqlStore) -> None:
    run_id = _run(store, name="first")
    store.log_batch(
        run_id,
        metrics=[Metric("loss", 0.5, 10, 0), Metric("loss", 0.25, 20, 1), Metric("acc", 0.9, 5, 0)],
        params=[Param("alpha", "0.5"), Param("layers", "3")],
        tags=[RunTag("team", "vision")],
    )
    run = store.get_run(run_id)
    assert run.info.run_name == "first"
    assert run.info.status is RunStatus.RUNNING
    assert run.data.metrics == {"loss": 0.25, "acc": 0.9}
    assert run.data.params == {"alpha": "0.5", "layers": "3"}
    assert run.data.tags["team"] == "vision"
    assert run.data.tags["mlflow.runName"] == "first"
    history = store.get_metric_history(run_id, "loss")
    assert [(m.value, m.step, m.timestamp) for m in history] == [(0.5, 0, 10), (0.25, 1, 20)]


def test_latest_metric_is_highest_step_then_timestamp(store: SqlStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, metrics=[Metric("m", 3.0, 100, 5)])
    store.log_batch(run_id, metrics=[Metric("m", 1.0, 200, 2)])  # older step, later time
    assert store.get_run(run_id).data.metrics["m"] == 3.0
    store.log_batch(run_id, metrics=[Metric("m", 7.0, 300, 5)])  # same step, later time
    assert store.get_run(run_id).data.metrics["m"] == 7.0
    assert len(store.get_metric_history(run_id, "m")) == 3


def test_nan_and_infinity_metrics(store: SqlStore) -> None:
    run_id = _run(store)
    store.log_batch(
        run_id,
        metrics=[
            Metric("nan", math.nan, 1, 0),
            Metric("inf", math.inf, 1, 0),
            Metric("ninf", -math.inf, 1, 0),
        ],
    )
    metrics = store.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf and metrics["ninf"] == -math.inf


def test_params_are_write_once(store: SqlStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, params=[Param("alpha", "0.5")])
    store.log_batch(run_id, params=[Param("alpha", "0.5")])  # same value again is fine
    with pytest.raises(InvalidParameterError, match=r"Param 'alpha' .* already '0.5'.*'0.9'"):
        store.log_batch(run_id, params=[Param("alpha", "0.9")], metrics=[Metric("m", 1.0, 1, 0)])
    run = store.get_run(run_id)
    assert run.data.params == {"alpha": "0.5"}
    assert run.data.metrics == {}  # the whole batch was refused
    with pytest.raises(InvalidParameterError, match="given twice with different values"):
        store.log_batch(run_id, params=[Param("b", "1"), Param("b", "2")])


def test_logging_to_finished_or_deleted_run_is_refused(store: SqlStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)])
    store.update_run_info(run_id, RunStatus.FINISHED, 2000)
    with pytest.raises(InvalidStateError, match=f"Run '{run_id}' is FINISHED"):
        store.log_batch(run_id, metrics=[Metric("m", 2.0, 2, 1)])
    store.log_batch(run_id, tags=[RunTag("reviewed", "yes")])  # annotations stay possible
    store.delete_run(run_id)
    with pytest.raises(InvalidStateError, match="is deleted"):
        store.log_batch(run_id, tags=[RunTag("x", "y")])
    assert store.get_metric_history(run_id, "m")[0].value == 1.0
    store.restore_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage is LifecycleStage.ACTIVE


def test_unknown_run(store: SqlStore) -> None:
    for call in (
        lambda: store.get_run("nope"),
        lambda: store.log_batch("nope", metrics=[Metric("m", 1.0, 1, 0)]),
        lambda: store.get_metric_history("nope", "m"),
        lambda: store.delete_run("nope"),
        lambda: store.update_run_info("nope", RunStatus.FINISHED, 1),
    ):
        with pytest.raises(NotFoundError, match="Run 'nope' does not exist"):
            call()


def test_update_run_status_and_name(store: SqlStore) -> None:
    run_id = _run(store)
    info = store.update_run_info(run_id, RunStatus.FAILED, 5000, run_name="renamed")
    assert (info.status, info.end_time, info.run_name) == (RunStatus.FAILED, 5000, "renamed")
    assert store.get_run(run_id).data.tags["mlflow.runName"] == "renamed"
    info = store.update_run_info(run_id, RunStatus.RUNNING, None)
    assert info.end_time is None


def test_tags_overwrite_and_delete(store: SqlStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, tags=[RunTag("t", "1")])
    store.log_batch(run_id, tags=[RunTag("t", "2"), RunTag("t", "3")])
    assert store.get_run(run_id).data.tags["t"] == "3"
    store.delete_tag(run_id, "t")
    assert "t" not in store.get_run(run_id).data.tags
    with pytest.raises(NotFoundError, match="has no tag 't'"):
        store.delete_tag(run_id, "t")


def test_metric_history_pagination(store: SqlStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, metrics=[Metric("m", float(i), i, i) for i in range(25)])
    page = store.get_metric_history(run_id, "m", max_results=10)
    values = [m.value for m in page]
    while page.token:
        page = store.get_metric_history(run_id, "m", max_results=10, page_token=page.token)
        values += [m.value for m in page]
    assert values == [float(i) for i in range(25)]


def test_search_runs_through_store(store: SqlStore) -> None:
    exp = store.create_experiment("search")
    ids = []
    for i in range(6):
        run_id = _run(store, exp, name=f"r{i}")
        store.log_batch(
            run_id,
            metrics=[Metric("mae", i / 10, 1, 0)],
            params=[Param("alpha", "0.5" if i % 2 else "0.1")],
            tags=[RunTag("team", "vision-a" if i < 3 else "nlp")],
        )
        ids.append(run_id)
    found = store.search_runs(
        [exp],
        "metrics.mae < 0.45 and params.alpha = '0.5' and tags.team LIKE 'vision%'",
        ViewType.ACTIVE_ONLY,
        100,
        ["metrics.mae DESC"],
        None,
    )
    assert [r.info.run_name for r in found] == ["r1"]
    ordered = store.search_runs([exp], None, ViewType.ACTIVE_ONLY, 4, ["metrics.mae ASC"], None)
    assert [r.info.run_name for r in ordered] == ["r0", "r1", "r2", "r3"] and ordered.token
    rest = store.search_runs(
        [exp], None, ViewType.ACTIVE_ONLY, 4, ["metrics.mae ASC"], ordered.token
    )
    assert [r.info.run_name for r in rest] == ["r4", "r5"] and rest.token is None
    assert rest[0].data.metrics == {"mae": 0.4}
    with pytest.raises(InvalidParameterError, match="max_results must be between 1 and 50000"):
        store.search_runs([exp], None, ViewType.ACTIVE_ONLY, 0, None, None)
    with pytest.raises(InvalidParameterError, match="Invalid experiment id 'x'"):
        store.search_runs(["x"], None, ViewType.ACTIVE_ONLY, 10, None, None)


def test_reopening_store_keeps_data(store_uri: str, tmp_path) -> None:
    first = SqlStore(store_uri, str(tmp_path / "a"))
    exp = first.create_experiment("kept")
    first.close()
    second = SqlStore(store_uri, str(tmp_path / "a"))
    assert second.get_experiment(exp).name == "kept"
    second.close()


def test_old_schema_is_upgraded(store_uri: str, tmp_path) -> None:
    store = SqlStore(store_uri, str(tmp_path / "a"))
    downgrade_schema(store.engine, "base")
    assert store.current_revision() is None
    store.close()
    reopened = SqlStore(store_uri, str(tmp_path / "a"))
    assert reopened.current_revision() == HEAD_REVISION
    assert reopened.get_experiment("0").name == "Default"
    reopened.close()


def test_newer_schema_is_refused_with_clear_message(store_uri: str, tmp_path) -> None:
    store = SqlStore(store_uri, str(tmp_path / "a"))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(SchemaVersionError, match="revision '9999', newer than this Cairn"):
        SqlStore(store_uri, str(tmp_path / "a"))


def test_foreign_database_is_refused(sqlite_uri: str, tmp_path) -> None:
    engine = sa.create_engine(sqlite_uri)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (x INTEGER)"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="not created by Cairn"):
        SqlStore(sqlite_uri, str(tmp_path / "a"))


def test_migrations_match_schema_module(store_uri: str, tmp_path) -> None:
    """The Alembic migrations build exactly the tables in schema.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cairn.tracking.stores.sql.schema import metadata

    store = SqlStore(store_uri, str(tmp_path / "a"))
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_create_run_with_request_id_is_idempotent(store: SqlStore) -> None:
    first = store.create_run("0", "u", 1, [], "r", request_id="req-1")
    again = store.create_run("0", "u", 2, [], "other", request_id="req-1")
    assert again.info.run_id == first.info.run_id
    assert len(store.search_runs(["0"], None, ViewType.ALL, 100, None, None)) == 1


def test_log_batch_with_request_id_is_applied_once(store: SqlStore) -> None:
    run_id = _run(store)
    batch = [Metric("m", float(i), i, i) for i in range(5)]
    store.log_batch(run_id, metrics=batch, request_id="batch-1")
    store.log_batch(run_id, metrics=batch, request_id="batch-1")
    assert len(store.get_metric_history(run_id, "m")) == 5
    store.log_batch(run_id, metrics=batch, request_id="batch-2")
    assert len(store.get_metric_history(run_id, "m")) == 10


def test_failed_request_is_not_recorded(store: SqlStore) -> None:
    run_id = _run(store)
    store.update_run_info(run_id, RunStatus.FINISHED, 5)
    with pytest.raises(InvalidStateError, match="is FINISHED"):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)], request_id="r-x")
    store.update_run_info(run_id, RunStatus.RUNNING, None)
    store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)], request_id="r-x")
    assert len(store.get_metric_history(run_id, "m")) == 1


def test_log_inputs_records_datasets_once(store: SqlStore) -> None:
    from cairn.entities import Dataset, DatasetInput

    run_id = _run(store)
    train = Dataset("listings", "abc123", "delta", "/data/listings", '{"x": 1}', None)
    item = DatasetInput(train, {"mlflow.data.context": "training"})
    store.log_inputs(run_id, [item])
    store.log_inputs(run_id, [item])
    other = _run(store)
    store.log_inputs(other, [DatasetInput(train)])
    (got,) = store.get_run(run_id).inputs.dataset_inputs
    assert got == item
    assert store.get_run(other).inputs.dataset_inputs[0].dataset == train
    with pytest.raises(NotFoundError, match="Run 'nope' does not exist"):
        store.log_inputs("nope", [item])


def test_unstorable_value_is_invalid_input_not_internal_error(store: SqlStore) -> None:
    # PostgreSQL text cannot hold NUL; SQLite can. Either way nothing answers "internal error".
    try:
        found = store.get_experiment_by_name("a\x00b")
    except InvalidParameterError as exc:
        assert "not accepted by the tracking database" in exc.message
        assert "SELECT" not in exc.message
    else:
        assert found is None
