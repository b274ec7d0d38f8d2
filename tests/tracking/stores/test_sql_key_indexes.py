"""The (key, value prefix) indexes of params and tags (migration 0006) on SQLite and PostgreSQL:
sorting by one param or tag walks them in the same order as the general plan, long values
still fit, and the runs table's key list found by skipping along them is the run-by-run one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from cairn.entities import Metric, Param, RunTag, ViewType
from cairn.tracking._validation import MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH
from cairn.tracking.search import parse_filter, parse_order_by
from cairn.tracking.stores.sql import search, views
from cairn.tracking.stores.sql.search import select_run_ids
from cairn.tracking.stores.sql.store import SqlStore
from cairn.tracking.stores.sql.views import ViewQueries

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    import sqlalchemy as sa

LONG = "x" * 250  # longer than the indexed prefix (200 characters)
# Values whose order needs the whole value (a shared 250-character head), code points past
# ASCII ('Z' < 'a' < 'é' < '😀' bytewise, not in a locale's order) and ties.
VALUES = [
    f"{LONG}b",
    f"{LONG}a",
    "a",
    "Z",
    "é",
    "😀",
    "a",
    "10",
    "9",
    "",
    f"{LONG}",
    "é",
]


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    sql_store = SqlStore(store_uri, str(tmp_path / "artifacts"))
    yield sql_store
    sql_store.close()


@pytest.fixture
def experiment(store: SqlStore) -> str:
    """Runs with ``VALUES`` as param ``p`` and tag ``t`` (some runs lack them, one is deleted),
    beside an experiment whose runs have keys of their own."""
    experiment_id = store.create_experiment("sorted")
    for index, value in enumerate(VALUES):
        run_id = store.create_run(experiment_id, "u", 1_000 + index % 5, [], f"r{index}").info
        metrics = [Metric("m", float(index % 4), 0, 0)]
        params = [Param("p", value), Param("i", str(index))] if index % 6 != 3 else []
        tags = [RunTag("t", value)] if index % 4 != 3 else []
        store.log_batch(run_id.run_id, metrics=metrics, params=params, tags=tags)
    (deleted,) = store.search_runs([experiment_id], "params.i = '2'", ViewType.ALL, 1, None, None)
    store.delete_run(deleted.info.run_id)
    other = store.create_experiment("other")
    for index in range(3):
        run_id = store.create_run(other, "u", 5, [], f"o{index}").info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric("other_metric", 1.0, 0, 0)],
            params=[Param("other_param", "v"), Param("p", "0")],
            tags=[RunTag("other_tag", "v")],
        )
    return experiment_id


def _ids(
    store: SqlStore,
    experiment_id: str,
    order_by: Sequence[str],
    filter_text: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[str]:
    query = select_run_ids(
        [int(experiment_id)],
        parse_filter(filter_text),
        ViewType.ACTIVE_ONLY,
        parse_order_by(order_by),
        offset,
        limit,
    )
    with store.engine.connect() as conn:
        return list(conn.scalars(query))


@pytest.mark.parametrize("column", ["params.p", "tags.t"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("filter_text", [None, "metrics.m >= 1", "params.i != '4'"])
@pytest.mark.parametrize("walk_rows", [10_000, 4])
def test_one_key_sort_matches_the_general_plan_page_by_page(
    store: SqlStore,
    experiment: str,
    column: str,
    direction: str,
    filter_text: str | None,
    walk_rows: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index walk (one clause) against the outer-join plan (a tie-break clause that changes
    nothing forces it), and against Python's code-point order of the whole values; with
    ``WALK_ROWS`` at 4, pages past the fourth run take the general plan and still line up."""
    monkeypatch.setattr(search, "WALK_ROWS", walk_rows)
    tie_break = "attributes.start_time DESC"
    general = _ids(store, experiment, [f"{column} {direction}", tie_break], filter_text)
    for limit in (1, 3, 5):
        pages = [
            _ids(store, experiment, [f"{column} {direction}"], filter_text, offset, limit)
            for offset in range(0, 14, limit)
        ]
        assert [run_id for page in pages for run_id in page] == general

    runs = {
        run.info.run_id: run
        for run in store.search_runs(
            [experiment], filter_text, ViewType.ACTIVE_ONLY, 100, None, None
        )
    }
    entity, key = column.split(".")
    values = [getattr(runs[run_id].data, entity).get(key) for run_id in general]
    present = [value for value in values if value is not None]
    assert present == sorted(present, reverse=direction == "DESC")
    assert values == present + [None] * (len(values) - len(present))  # missing ones last
    assert len(set(present)) >= 3 if filter_text else set(present) >= {"é", "😀", f"{LONG}a"}


@pytest.mark.parametrize(("column", "table"), [("params.p", "params"), ("tags.t", "tags")])
def test_one_key_sort_walks_the_key_index_on_sqlite(
    sqlite_uri: str, tmp_path: Path, column: str, table: str
) -> None:
    store = SqlStore(sqlite_uri, str(tmp_path / "artifacts"))
    try:
        for filter_text in (None, "metrics.m > 0 and params.i != 'x'"):
            query = select_run_ids(
                [0],
                parse_filter(filter_text),
                ViewType.ACTIVE_ONLY,
                parse_order_by([f"{column} DESC"]),
                0,
                50,
            )
            sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
            with store.engine.connect() as conn:
                plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
            # The runs with a value come from the (key, prefix) index, not from sorting them all.
            first = next(line for line in plan if line.startswith(("SEARCH", "SCAN")))
            assert re.match(rf"SEARCH {table} USING INDEX ix_{table}_key_value \(key=\?\)", first)
    finally:
        store.close()


def test_longest_values_are_stored_and_sorted(store: SqlStore) -> None:
    """PostgreSQL refuses btree entries over ~2.7 kB: the index holds a prefix, so a param and a
    tag of the longest accepted size still go in (and sort by their whole value)."""
    experiment_id = store.create_experiment("long")
    ids = []
    for last in "ba":
        run_id = store.create_run(experiment_id, "u", 1, [], last).info.run_id
        store.log_batch(
            run_id,
            params=[Param("p", "é" * (MAX_PARAM_VALUE_LENGTH - 1) + last)],
            tags=[RunTag("t", "😀" * (MAX_TAG_VALUE_LENGTH - 1) + last)],
        )
        ids.append(run_id)
    assert _ids(store, experiment_id, ["params.p"]) == ids[::-1]
    assert _ids(store, experiment_id, ["tags.t DESC"]) == ids


@pytest.mark.parametrize("view_type", [ViewType.ACTIVE_ONLY, ViewType.ALL, ViewType.DELETED_ONLY])
def test_keys_found_by_skipping_are_those_read_run_by_run(
    store: SqlStore, experiment: str, view_type: ViewType, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_deleted = store.create_run(experiment, "u", 1, [], "gone").info.run_id
    store.log_batch(only_deleted, params=[Param("deleted_param", "v")], tags=[RunTag("gone", "1")])
    store.delete_run(only_deleted)
    queries = ViewQueries(store.engine)
    by_run = queries.column_keys([experiment], view_type, None)
    monkeypatch.setattr(views, "KEYS_BY_RUN", 1)
    monkeypatch.setattr(views, "SKIP_SHARE", 0.0)
    skipped = queries.column_keys([experiment], view_type, None)
    assert skipped == by_run
    assert skipped.complete
    if view_type is ViewType.DELETED_ONLY:
        assert skipped.params == ["deleted_param", "i", "p"]
        assert skipped.tags == ["gone", "mlflow.runName", "t"]
    else:
        deleted_too = ["deleted_param"] if view_type is ViewType.ALL else []
        assert skipped.params == [*deleted_too, "i", "p"]
        assert skipped.metrics == ["m"]
    other = store.get_experiment_by_name("other")
    assert other is not None
    both = queries.column_keys([experiment, other.experiment_id], view_type, None)
    sampled = queries.column_keys([experiment, other.experiment_id], view_type, 10_000)
    assert (both.params, both.metrics, both.tags) == (sampled.params, sampled.metrics, sampled.tags)
    if view_type is not ViewType.DELETED_ONLY:
        assert "other_param" in both.params and "other_metric" in both.metrics


def test_keys_of_a_small_share_of_the_runs_are_read_run_by_run(
    store: SqlStore, experiment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skipping along the index would walk every row of the keys only other runs have: the
    three runs of ``other`` (of 17) are read run by run, the 11 of ``sorted`` by skipping."""
    queries = ViewQueries(store.engine)
    other = store.get_experiment_by_name("other")
    assert other is not None
    expected = queries.column_keys([other.experiment_id], ViewType.ACTIVE_ONLY, None)
    calls: list[str] = []
    monkeypatch.setattr(views, "KEYS_BY_RUN", 1)
    skip_scan = views._skip_scan

    def counted(table: sa.Table, scope: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
        calls.append(table.name)
        return skip_scan(table, scope)

    monkeypatch.setattr(views, "_skip_scan", counted)
    assert queries.column_keys([other.experiment_id], ViewType.ACTIVE_ONLY, None) == expected
    assert expected.params == ["other_param", "p"] and not calls
    queries.column_keys([experiment], ViewType.ACTIVE_ONLY, None)
    assert calls == ["params", "latest_metrics", "tags"]


def _key_indexes(store: SqlStore) -> set[str]:
    if store.engine.dialect.name == "sqlite":
        names = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        names = "SELECT indexname FROM pg_indexes"
    with store.engine.connect() as conn:
        found = conn.exec_driver_sql(names).scalars()
        return {name for name in found if name in ("ix_params_key_value", "ix_tags_key_value")}


def test_migration_0006_adds_the_indexes_to_a_store_with_runs(
    store_uri: str, tmp_path: Path
) -> None:
    from cairn.tracking.stores.sql.engine import downgrade_schema

    store = SqlStore(store_uri, str(tmp_path / "artifacts"))
    experiment_id = store.create_experiment("kept")
    for value in ("b", "a", "c"):
        run_id = store.create_run(experiment_id, "u", 1, [], value).info.run_id
        store.log_batch(run_id, params=[Param("p", value)], tags=[RunTag("t", value)])
    assert _key_indexes(store) == {"ix_params_key_value", "ix_tags_key_value"}
    downgrade_schema(store.engine, "0005")
    assert _key_indexes(store) == set()
    store.close()
    reopened = SqlStore(store_uri, str(tmp_path / "artifacts"))
    try:
        assert _key_indexes(reopened) == {"ix_params_key_value", "ix_tags_key_value"}
        runs = reopened.search_runs([experiment_id], None, ViewType.ALL, 10, None, None)
        names = {run.info.run_id: run.info.run_name for run in runs}
        ordered = _ids(reopened, experiment_id, ["params.p DESC"])
        assert [names[run_id] for run_id in ordered] == ["c", "b", "a"]
    finally:
        reopened.close()
