"""The web UI's queries on SQLite and PostgreSQL: downsampled histories, summaries, pages."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from cairn.entities import Metric, Param, ViewType
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.tracking.client import TrackingClient
from cairn.tracking.stores.sql.store import SqlStore
from cairn.tracking.stores.sql.views import ViewQueries

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    sql_store = SqlStore(store_uri, str(tmp_path / "artifacts"))
    yield sql_store
    sql_store.close()


def _run_with_history(store: SqlStore, values: list[float], steps: list[int] | None = None) -> str:
    client = TrackingClient("unused", store=store)
    run_id = client.create_run("0", 1_000, {}, "history").info.run_id
    steps = steps if steps is not None else list(range(len(values)))
    client.log_batch(
        run_id,
        metrics=[Metric("loss", v, 10_000 + s, s) for s, v in zip(steps, values, strict=True)],
    )
    return run_id


def test_short_histories_come_back_whole(store: SqlStore) -> None:
    run_id = _run_with_history(store, [3.0, 2.0, math.nan, 1.0])
    series = ViewQueries(store.engine).downsampled_history(run_id, "loss", 10)
    assert not series.downsampled
    assert series.total == 4
    assert series.steps == [0, 1, 2, 3]
    assert series.timestamps == [10_000, 10_001, 10_002, 10_003]
    assert series.values == [3.0, 2.0, None, 1.0]


def test_long_histories_keep_every_buckets_min_and_max(store: SqlStore) -> None:
    values = [math.sin(i / 50) for i in range(5_000)]
    values[1234] = 40.0  # a spike that averaging alone would hide
    values[4321] = -40.0
    run_id = _run_with_history(store, values)
    series = ViewQueries(store.engine).downsampled_history(run_id, "loss", 100)
    assert series.downsampled
    assert series.total == 5_000
    assert len(series.steps) == 100
    assert series.steps[:3] == [0, 50, 100]
    assert max(v for v in series.maxs if v is not None) == 40.0
    assert min(v for v in series.mins if v is not None) == -40.0
    bucket = series.steps.index(1200)  # steps 1200..1249 hold the spike
    assert series.maxs[bucket] == 40.0
    assert series.mins[bucket] == pytest.approx(min(values[1200:1250]))
    assert series.values[bucket] == pytest.approx(sum(values[1200:1250]) / 50)


def test_a_step_range_zooms_in_at_full_resolution(store: SqlStore) -> None:
    run_id = _run_with_history(store, [float(i) for i in range(1_000)])
    views = ViewQueries(store.engine)
    series = views.downsampled_history(run_id, "loss", 100, start_step=500, end_step=549)
    assert not series.downsampled
    assert series.steps == list(range(500, 550))


def test_sparse_steps_make_no_empty_buckets(store: SqlStore) -> None:
    steps = [0, 1, 2, 1_000_000, 1_000_001]
    run_id = _run_with_history(store, [1.0, 2.0, 3.0, 4.0, 5.0], steps)
    series = ViewQueries(store.engine).downsampled_history(run_id, "loss", 2)
    assert series.steps == [0, 1_000_000]
    assert series.mins == [1.0, 4.0]
    assert series.maxs == [3.0, 5.0]


def test_history_of_an_unknown_run_or_bad_size_is_refused(store: SqlStore) -> None:
    views = ViewQueries(store.engine)
    with pytest.raises(NotFoundError, match="Run 'nope' does not exist"):
        views.downsampled_history("nope", "loss", 100)
    with pytest.raises(InvalidParameterError, match="max_points must be between 2 and 20000"):
        views.downsampled_history("nope", "loss", 1)


def test_metric_summaries_give_latest_min_max_and_count(store: SqlStore) -> None:
    run_id = _run_with_history(store, [5.0, -1.0, 7.0, 2.0])
    client = TrackingClient("unused", store=store)
    client.log_batch(run_id, metrics=[Metric("acc", math.nan, 1, 0)])
    summaries = {s.key: s for s in ViewQueries(store.engine).metric_summaries(run_id)}
    loss = summaries["loss"]
    assert (loss.latest, loss.latest_step, loss.min, loss.max, loss.count) == (2.0, 3, -1.0, 7.0, 4)
    assert math.isnan(summaries["acc"].latest)
    assert summaries["acc"].min is None


def test_run_table_pages_sort_and_count_on_both_databases(store: SqlStore) -> None:
    client = TrackingClient("unused", store=store)
    experiment_id = client.create_experiment("views")
    for i in range(7):
        run_id = client.create_run(experiment_id, 100 + i, {}, f"r{i}").info.run_id
        client.log_batch(
            run_id, metrics=[Metric("m", float(i % 3), 1, 0)], params=[Param("p", str(i))]
        )
    views = ViewQueries(store.engine)
    page = views.run_table(
        [experiment_id],
        "metrics.m >= 1",
        ViewType.ACTIVE_ONLY,
        ["params.p DESC"],
        1,
        2,
        {"params": ["p"], "metrics": None, "tags": []},
    )
    # m is 1 or 2 for i in 1, 2, 4, 5
    assert views.count_runs([experiment_id], "metrics.m >= 1", ViewType.ACTIVE_ONLY) == 4
    assert [run["name"] for run in page.runs] == ["r4", "r2"]
    assert page.columns["params"] == {"p": ["4", "2"]}
    assert page.columns["metrics"] == {"m": [1.0, 2.0]}
    assert page.has_more
    keys = views.column_keys([experiment_id], ViewType.ACTIVE_ONLY, None)
    assert (keys.params, keys.metrics) == (["p"], ["m"])
    activity = views.experiment_activity()[experiment_id]
    assert (activity.run_count, activity.last_activity) == (7, 106)
