"""Read-only queries behind the web UI, on the tracking store's database.

The stock REST shapes are built for clients that want whole runs; a table of 100,000 runs or a
chart of a 100,000-step metric wants less: one page of runs as columns (only the keys shown),
the total, the keys an experiment has, and metric histories cut to a few thousand points in SQL.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cairn.entities import ViewType
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql.engine import translated_errors

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "ColumnKeys",
    "ExperimentActivity",
    "KeySummary",
    "MetricSeries",
    "RunTable",
    "ViewQueries",
]

MAX_PAGE = 5_000
MAX_POINTS = 20_000
MAX_KEYS = 2_000
# column_keys skips along the key indexes for more runs than this, if they are at least
# SKIP_SHARE of the store's; otherwise it reads the runs' keys run by run.
KEYS_BY_RUN = 2_000
SKIP_SHARE = 0.5
RUN_COLUMNS = (
    "run_uuid",
    "name",
    "status",
    "user_id",
    "start_time",
    "end_time",
    "experiment_id",
    "lifecycle_stage",
)
_KEYED = {"params": t.params, "metrics": t.latest_metrics, "tags": t.tags}


@dataclass(frozen=True, slots=True)
class ExperimentActivity:
    """How many runs an experiment has (in the lifecycle stages asked for) and when the
    latest of them started or ended."""

    run_count: int
    last_activity: int | None


@dataclass(frozen=True, slots=True)
class RunTable:
    """One page of runs: attribute rows, and per entity (params, metrics, tags) a column of
    values per key, aligned with the rows (None where a run lacks the key).

    Metric values are floats; NaN (stored as NULL) is ``math.nan``.
    """

    offset: int
    runs: list[dict[str, Any]]
    columns: dict[str, dict[str, list[Any]]]
    has_more: bool


@dataclass(frozen=True, slots=True)
class ColumnKeys:
    params: list[str]
    metrics: list[str]
    tags: list[str]
    complete: bool


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """A metric's history for charts: raw points, or one point per bucket of steps with the
    bucket's mean, min and max (``None`` where every value was NaN)."""

    key: str
    total: int
    downsampled: bool
    steps: list[int]
    timestamps: list[int]
    values: list[float | None]
    mins: list[float | None]
    maxs: list[float | None]


@dataclass(frozen=True, slots=True)
class KeySummary:
    """One metric of a run: its latest value and the range of its whole history."""

    key: str
    latest: float
    latest_step: int
    min: float | None
    max: float | None
    count: int


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _stages(view_type: ViewType) -> list[str]:
    return [stage.value for stage in view_type.stages()]


def _experiment_keys(experiment_ids: Sequence[str]) -> list[int]:
    keys = []
    for experiment_id in experiment_ids:
        try:
            keys.append(int(experiment_id))
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"Invalid experiment id {experiment_id!r}: expected an integer"
            ) from None
    return keys


def _mostly_in_scope(conn: Connection, runs: sa.Select[Any]) -> bool:
    """Whether ``runs`` are over ``KEYS_BY_RUN`` and at least ``SKIP_SHARE`` of all runs."""
    total = conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar_one()
    need = max(KEYS_BY_RUN + 1, math.ceil(total * SKIP_SHARE))
    counted = sa.select(sa.func.count()).select_from(runs.limit(need).subquery())
    return bool(conn.execute(counted).scalar_one() >= need)


def _skip_scan(table: sa.Table, scope: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """The distinct keys of ``table`` among runs matching ``scope``, one index probe per key.

    A recursive query asks, from each key found, for the next greater key whose row belongs to
    a run in scope, on the table's index that leads with ``key`` (the same on SQLite and
    PostgreSQL, neither of which skips along an index by itself). A key of the runs in scope
    costs about one probe; a key only other runs have is walked to its end, hence
    ``_mostly_in_scope`` first.
    """
    r = t.runs

    def next_key(after: sa.ColumnElement[Any] | None) -> sa.ScalarSelect[Any]:
        query = sa.select(table.c.key).where(
            sa.exists().where(r.c.run_uuid == table.c.run_uuid, *scope)
        )
        if after is not None:
            query = query.where(table.c.key > after)
        return query.order_by(table.c.key).limit(1).scalar_subquery()

    found = sa.select(next_key(None).label("key")).cte(f"{table.name}_keys", recursive=True)
    found = found.union_all(sa.select(next_key(found.c.key)).where(found.c.key.is_not(None)))
    return sa.select(found.c.key).where(found.c.key.is_not(None))


class ViewQueries:
    """The UI's queries over one tracking database (the engine of a ``SqlStore``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self._url), self._engine.connect() as conn:
            yield conn

    # -- experiments ----------------------------------------------------------------------------

    def experiment_activity(
        self, view_type: ViewType = ViewType.ACTIVE_ONLY
    ) -> dict[str, ExperimentActivity]:
        """Run counts and latest activity of every experiment with runs (one GROUP BY)."""
        r = t.runs
        query = (
            sa.select(
                r.c.experiment_id,
                sa.func.count(),
                sa.func.max(r.c.start_time),
                sa.func.max(r.c.end_time),
            )
            .where(r.c.lifecycle_stage.in_(_stages(view_type)))
            .group_by(r.c.experiment_id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        out = {}
        for experiment_id, count, started, ended in rows:
            times = [x for x in (started, ended) if x is not None]
            out[str(experiment_id)] = ExperimentActivity(int(count), max(times) if times else None)
        return out

    # -- the runs table ---------------------------------------------------------------------

    def run_table(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        view_type: ViewType,
        order_by: Sequence[str],
        offset: int,
        limit: int,
        keys: dict[str, list[str] | None],
    ) -> RunTable:
        """A page of the runs ``search_runs`` would return, in the same order, as columns.

        Args:
            keys: per entity (``params``, ``metrics``, ``tags``), the keys to return; None for
                every key the page's runs have, [] for none.
        """
        from cairn.tracking.search import parse_filter, parse_order_by
        from cairn.tracking.stores.sql.search import select_run_ids

        if not 0 < limit <= MAX_PAGE:
            raise InvalidParameterError(
                f"max_results must be between 1 and {MAX_PAGE}, got {limit}"
            )
        if offset < 0:
            raise InvalidParameterError(f"offset must be >= 0, got {offset}")
        unknown = sorted(set(keys) - set(_KEYED))
        if unknown:
            raise InvalidParameterError(
                f"Unknown column kinds {unknown}: use params, metrics, tags"
            )
        ids = _experiment_keys(experiment_ids)
        parsed = parse_filter(filter_string)
        query = select_run_ids(ids, parsed, view_type, parse_order_by(order_by), offset, limit + 1)
        with self._read() as conn:
            run_ids = list(conn.execute(query).scalars())
            has_more = len(run_ids) > limit
            runs, columns = self._load_page(conn, run_ids[:limit], keys)
        return RunTable(offset, runs, columns, has_more)

    def count_runs(
        self, experiment_ids: Sequence[str], filter_string: str | None, view_type: ViewType
    ) -> int:
        """How many runs ``search_runs`` would find. Apart from the pages: with a filter it
        evaluates every run, where a page stops at its last row."""
        from cairn.tracking.search import parse_filter
        from cairn.tracking.stores.sql.search import select_run_ids

        ids = _experiment_keys(experiment_ids)
        matching = select_run_ids(ids, parse_filter(filter_string), view_type, [], 0, 1)
        counted = sa.select(sa.func.count()).select_from(matching.limit(None).subquery())
        with self._read() as conn:
            return int(conn.execute(counted).scalar_one())

    def _load_page(
        self, conn: Connection, run_ids: list[str], keys: dict[str, list[str] | None]
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[Any]]]]:
        position = {run_id: i for i, run_id in enumerate(run_ids)}
        columns: dict[str, dict[str, list[Any]]] = {kind: {} for kind in _KEYED}
        if not run_ids:
            return [], columns
        r = t.runs
        rows = conn.execute(
            sa.select(*(r.c[name] for name in RUN_COLUMNS)).where(r.c.run_uuid.in_(run_ids))
        ).all()
        runs: list[dict[str, Any]] = [{} for _ in run_ids]
        for row in rows:
            runs[position[row.run_uuid]] = dict(row._mapping)
        for kind, table in _KEYED.items():
            wanted = keys.get(kind)
            if wanted is not None and not wanted:
                continue
            query = sa.select(table.c.run_uuid, table.c.key, table.c.value).where(
                table.c.run_uuid.in_(run_ids)
            )
            if wanted is not None:
                query = query.where(table.c.key.in_(wanted[:MAX_KEYS]))
            target = columns[kind]
            for run_uuid, key, value in conn.execute(query):
                column = target.get(key)
                if column is None:
                    column = target[key] = [None] * len(run_ids)
                column[position[run_uuid]] = (
                    math.nan if kind == "metrics" and value is None else value
                )
        return runs, columns

    def column_keys(
        self, experiment_ids: Sequence[str], view_type: ViewType, sample: int | None
    ) -> ColumnKeys:
        """The param, metric and tag keys of an experiment's runs, sorted.

        With ``sample``, only the latest ``sample`` runs are read. Without, when the runs are
        many and most of the store's (one large experiment), the keys are found by skipping
        along each key table's index on key (see ``_skip_scan``); otherwise every run's keys
        are read, which is quick for few runs and never walks other experiments' keys.
        """
        r = t.runs
        scope = (
            r.c.experiment_id.in_(_experiment_keys(experiment_ids)),
            r.c.lifecycle_stage.in_(_stages(view_type)),
        )
        runs = sa.select(r.c.run_uuid).where(*scope)
        if sample is not None:
            runs = runs.order_by(r.c.start_time.desc()).limit(sample)
        found: dict[str, list[str]] = {}
        with self._read() as conn:
            by_run = sample is not None or not _mostly_in_scope(conn, runs)
            for kind, table in _KEYED.items():
                if by_run:
                    query = (
                        sa.select(table.c.key)
                        .where(table.c.run_uuid.in_(runs.scalar_subquery()))
                        .distinct()
                    )
                else:
                    query = _skip_scan(table, scope)
                found[kind] = sorted(conn.execute(query).scalars())
        return ColumnKeys(found["params"], found["metrics"], found["tags"], sample is None)

    # -- metric histories -------------------------------------------------------------------

    def _require_run(self, conn: Connection, run_id: str) -> None:
        stage = conn.execute(
            sa.select(t.runs.c.lifecycle_stage).where(t.runs.c.run_uuid == run_id)
        ).scalar()
        if stage is None:  # deleted runs stay readable, as with metrics/get-history
            raise NotFoundError(f"Run '{run_id}' does not exist")

    def downsampled_history(
        self,
        run_id: str,
        key: str,
        max_points: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> MetricSeries:
        """The history of ``key``, cut to at most ``max_points`` points by bucketing steps.

        Each bucket spans the same number of steps; it keeps its first step and time, and the
        mean, min and max of its values, so spikes survive however long the history is.
        """
        if not 2 <= max_points <= MAX_POINTS:
            raise InvalidParameterError(
                f"max_points must be between 2 and {MAX_POINTS}, got {max_points}"
            )
        m = t.metrics
        where = [m.c.run_uuid == run_id, m.c.key == key]
        if start_step is not None:
            where.append(m.c.step >= start_step)
        if end_step is not None:
            where.append(m.c.step <= end_step)
        with self._read() as conn:
            self._require_run(conn, run_id)
            low, high, total = conn.execute(
                sa.select(sa.func.min(m.c.step), sa.func.max(m.c.step), sa.func.count()).where(
                    *where
                )
            ).one()
            if total <= max_points:
                rows = conn.execute(
                    sa.select(m.c.step, m.c.timestamp, m.c.value)
                    .where(*where)
                    .order_by(m.c.step, m.c.timestamp, m.c.id)
                ).all()
                values = [_finite(row.value) for row in rows]
                return MetricSeries(
                    key,
                    total,
                    False,
                    [row.step for row in rows],
                    [row.timestamp for row in rows],
                    values,
                    values,
                    values,
                )
            width = -(-(high - low + 1) // max_points)  # ceil: at most max_points buckets
            bucket = (m.c.step - sa.literal(low, sa.BigInteger)) // sa.literal(width, sa.BigInteger)
            buckets = conn.execute(
                sa.select(
                    sa.func.min(m.c.step),
                    sa.func.min(m.c.timestamp),
                    sa.func.avg(m.c.value),
                    sa.func.min(m.c.value),
                    sa.func.max(m.c.value),
                )
                .where(*where)
                .group_by(bucket)
                .order_by(bucket)
            ).all()
        return MetricSeries(
            key,
            total,
            True,
            [int(row[0]) for row in buckets],
            [int(row[1]) for row in buckets],
            [_finite(row[2]) for row in buckets],
            [_finite(row[3]) for row in buckets],
            [_finite(row[4]) for row in buckets],
        )

    def metric_summaries(self, run_id: str) -> list[KeySummary]:
        """Every metric of a run with its latest value and its history's min, max and size."""
        m, lm = t.metrics, t.latest_metrics
        history = (
            sa.select(
                m.c.key,
                sa.func.min(m.c.value).label("low"),
                sa.func.max(m.c.value).label("high"),
                sa.func.count().label("n"),
            )
            .where(m.c.run_uuid == run_id)
            .group_by(m.c.key)
            .subquery()
        )
        query = (
            sa.select(lm.c.key, lm.c.value, lm.c.step, history.c.low, history.c.high, history.c.n)
            .join(history, history.c.key == lm.c.key)
            .where(lm.c.run_uuid == run_id)
            .order_by(lm.c.key)
        )
        with self._read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(query).all()
        return [
            KeySummary(
                row.key,
                math.nan if row.value is None else float(row.value),
                int(row.step),
                None if row.low is None else float(row.low),
                None if row.high is None else float(row.high),
                int(row.n),
            )
            for row in rows
        ]
