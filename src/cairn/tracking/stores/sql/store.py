"""The SQL tracking store: SQLite (WAL) by default, PostgreSQL for teams, on SQLAlchemy Core.

SQLAlchemy is imported only in this package; ``engine.translated_errors`` turns its errors
into Cairn's at this boundary.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cairn.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    LifecycleStage,
    LoggedModelOutput,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    RunTag,
    ViewType,
)
from cairn.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    StoreError,
)
from cairn.tracking.stores.sql import run_inputs
from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql._paging import decode_token, encode_token
from cairn.tracking.stores.sql.engine import (
    HEAD_REVISION,
    create_engine,
    current_revision,
    ensure_schema,
    translated_errors,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from sqlalchemy.engine import Connection, Engine

    from cairn.entities import LoggedModelMetric
    from cairn.tracking.stores.sql.logged_models import LoggedModelStore

__all__ = ["DEFAULT_EXPERIMENT_ID", "HEAD_REVISION", "SqlStore"]

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
MAX_SEARCH_RESULTS = 50_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


_MAX_ID = 2**31 - 1  # experiment ids are INTEGER columns in every database we support


def _parse_experiment_id(experiment_id: str) -> int:
    try:
        key = int(experiment_id)
    except (TypeError, ValueError):
        raise NotFoundError(f"Experiment '{experiment_id}' does not exist") from None
    if not 0 <= key <= _MAX_ID:
        raise NotFoundError(f"Experiment '{experiment_id}' does not exist")
    return key


def _metric_value(value: float | None) -> float:
    return math.nan if value is None else value


def _run_info(row: Any) -> RunInfo:
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        user_id=row.user_id,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
    )


class SqlStore:
    """Experiments, runs, params, metrics and tags in one SQL database."""

    def __init__(self, db_url: str, artifact_root: str) -> None:
        self._url = db_url
        self._display_url = sa.make_url(db_url).render_as_string(hide_password=True)
        self._artifact_root = artifact_root
        with translated_errors(self._display_url):
            self._engine = create_engine(db_url)
            self._dialect = self._engine.dialect.name
            self._build_statements()
            ensure_schema(self._engine, self._display_url)
            self._ensure_default_experiment()

    @property
    def default_artifact_root(self) -> str:
        return self._artifact_root

    @property
    def engine(self) -> Engine:
        return self._engine

    @functools.cached_property
    def logged_models(self) -> LoggedModelStore:
        """MLflow 3 logged models, kept in this store's database."""
        from cairn.tracking.stores.sql.logged_models import LoggedModelStore

        return LoggedModelStore(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    # -- schema -------------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        return current_revision(self._engine)

    def _ensure_default_experiment(self) -> None:
        with self._engine.begin() as conn:
            found = conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)
            ).first()
            if found is not None:
                return
            now = _now_ms()
            try:
                with conn.begin_nested():
                    conn.execute(
                        t.experiments.insert().values(
                            experiment_id=0,
                            name=DEFAULT_EXPERIMENT_NAME,
                            artifact_location=_join(self._artifact_root, DEFAULT_EXPERIMENT_ID),
                            lifecycle_stage=LifecycleStage.ACTIVE.value,
                            creation_time=now,
                            last_update_time=now,
                        )
                    )
            except sa_exc.IntegrityError:
                pass  # created concurrently

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        with translated_errors(self._display_url), self._engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self._display_url), self._engine.connect() as conn:
            yield conn

    def _build_statements(self) -> None:
        # Built once: constructing an upsert costs far more than executing its cached SQL.
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(t.tags)
        self._upsert_tag = stmt.on_conflict_do_update(
            index_elements=["run_uuid", "key"], set_={"value": stmt.excluded.value}
        )
        stmt = insert(t.run_input_tags)
        self._upsert_input_tag = stmt.on_conflict_do_update(
            index_elements=["run_uuid", "dataset_uuid", "key"], set_={"value": stmt.excluded.value}
        )
        stmt = insert(t.experiment_tags)
        self._upsert_experiment_tag = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "key"], set_={"value": stmt.excluded.value}
        )
        lm = t.latest_metrics
        stmt = insert(lm)
        ex = stmt.excluded
        self._upsert_latest_metric = stmt.on_conflict_do_update(
            index_elements=["run_uuid", "key"],
            set_={"value": ex.value, "timestamp": ex.timestamp, "step": ex.step},
            where=(ex.step > lm.c.step)
            | ((ex.step == lm.c.step) & (ex.timestamp >= lm.c.timestamp)),
        )
        self._run_state_query = sa.select(t.runs.c.status, t.runs.c.lifecycle_stage).where(
            t.runs.c.run_uuid == sa.bindparam("run_id")
        )
        self._existing_params_query = sa.select(t.params.c.key, t.params.c.value).where(
            t.params.c.run_uuid == sa.bindparam("run_id"),
            t.params.c.key.in_(sa.bindparam("keys", expanding=True)),
        )
        runs = t.runs
        self._set_status = (
            runs.update()
            .where(
                runs.c.run_uuid == sa.bindparam("rid"),
                runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
            )
            .values(status=sa.bindparam("new_status"), end_time=sa.bindparam("new_end"))
            .returning(*runs.c)
        )
        self._experiment_for_run = sa.select(
            t.experiments.c.lifecycle_stage, t.experiments.c.artifact_location
        ).where(t.experiments.c.experiment_id == sa.bindparam("eid"))
        self._insert_metric = t.metrics.insert()
        self._insert_param = t.params.insert()
        self._insert_tag = t.tags.insert()
        self._insert_run = t.runs.insert()

    # -- experiments --------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        now = _now_ms()
        try:
            with self._tx() as conn:
                result = conn.execute(
                    t.experiments.insert().values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=LifecycleStage.ACTIVE.value,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                experiment_id = int(key[0])
                if not artifact_location:
                    conn.execute(
                        t.experiments.update()
                        .where(t.experiments.c.experiment_id == experiment_id)
                        .values(artifact_location=_join(self._artifact_root, str(experiment_id)))
                    )
                if tags:
                    conn.execute(
                        t.experiment_tags.insert(),
                        [
                            {"experiment_id": experiment_id, "key": tag.key, "value": tag.value}
                            for tag in {tag.key: tag for tag in tags}.values()
                        ],
                    )
        except StoreError as exc:
            existing = self.get_experiment_by_name(name)
            if existing is None or not isinstance(exc.__cause__, sa_exc.IntegrityError):
                raise
            hint = (
                " (it is deleted: restore it with "
                f"`cairn experiments restore {existing.experiment_id}`)"
                if existing.lifecycle_stage is LifecycleStage.DELETED
                else ""
            )
            raise AlreadyExistsError(f"Experiment '{name}' already exists{hint}") from None
        return str(experiment_id)

    def _experiments_from_rows(self, conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
        ids = [row.experiment_id for row in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for tag in conn.execute(
                sa.select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))
            ):
                tags[tag.experiment_id][tag.key] = tag.value
        return [
            Experiment(
                experiment_id=str(row.experiment_id),
                name=row.name,
                artifact_location=row.artifact_location,
                lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                tags=tags[row.experiment_id],
                creation_time=row.creation_time,
                last_update_time=row.last_update_time,
            )
            for row in rows
        ]

    def get_experiment(self, experiment_id: str) -> Experiment:
        key = _parse_experiment_id(experiment_id)
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.experiments).where(t.experiments.c.experiment_id == key)
            ).all()
            if not rows:
                raise NotFoundError(f"Experiment '{experiment_id}' does not exist")
            return self._experiments_from_rows(conn, rows)[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.experiments).where(t.experiments.c.name == name)).all()
            return self._experiments_from_rows(conn, rows)[0] if rows else None

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> PagedList[Experiment]:
        offset = decode_token(page_token)
        stages = [stage.value for stage in view_type.stages()]
        query = (
            sa.select(t.experiments)
            .where(t.experiments.c.lifecycle_stage.in_(stages))
            .order_by(t.experiments.c.experiment_id)
            .offset(offset)
            .limit(max_results + 1)
        )
        if name_like:
            query = query.where(sa.func.lower(t.experiments.c.name).like(name_like.lower()))
        with self._read() as conn:
            rows = conn.execute(query).all()
            experiments = self._experiments_from_rows(conn, rows[:max_results])
        token = encode_token(offset + max_results) if len(rows) > max_results else None
        return PagedList(experiments, token)

    def _update_experiment(self, experiment_id: str, **values: Any) -> None:
        key = _parse_experiment_id(experiment_id)
        with self._tx() as conn:
            result = conn.execute(
                t.experiments.update()
                .where(t.experiments.c.experiment_id == key)
                .values(last_update_time=_now_ms(), **values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Experiment '{experiment_id}' does not exist")

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        try:
            self._update_experiment(experiment_id, name=new_name)
        except StoreError as exc:
            if isinstance(exc.__cause__, sa_exc.IntegrityError):
                raise AlreadyExistsError(f"Experiment '{new_name}' already exists") from None
            raise

    def delete_experiment(self, experiment_id: str) -> None:
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterError("The default experiment '0' cannot be deleted")
        self._update_experiment(experiment_id, lifecycle_stage=LifecycleStage.DELETED.value)

    def restore_experiment(self, experiment_id: str) -> None:
        self._update_experiment(experiment_id, lifecycle_stage=LifecycleStage.ACTIVE.value)

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        key = _parse_experiment_id(experiment_id)
        self.get_experiment(experiment_id)
        with self._tx() as conn:
            conn.execute(
                self._upsert_experiment_tag,
                {"experiment_id": key, "key": tag.key, "value": tag.value},
            )

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag],
        run_name: str,
        request_id: str | None = None,
    ) -> Run:
        if request_id is not None:
            earlier = self._requested_run(request_id)
            if earlier is not None:
                return self.get_run(earlier)
        key = _parse_experiment_id(experiment_id)
        run_id = uuid.uuid4().hex
        tag_map = {tag.key: tag.value for tag in tags}
        tag_map[RUN_NAME_TAG] = run_name
        try:
            with self._tx() as conn:
                found = conn.execute(self._experiment_for_run, {"eid": key}).first()
                if found is None:
                    raise NotFoundError(f"Experiment '{experiment_id}' does not exist")
                if found.lifecycle_stage == LifecycleStage.DELETED.value:
                    raise InvalidStateError(
                        f"Experiment '{experiment_id}' is deleted; "
                        "restore it before creating runs in it"
                    )
                info = RunInfo(
                    run_id=run_id,
                    experiment_id=str(key),
                    run_name=run_name,
                    user_id=user_id,
                    status=RunStatus.RUNNING,
                    start_time=start_time,
                    end_time=None,
                    artifact_uri=_join(found.artifact_location, run_id, "artifacts"),
                )
                self._insert_run_rows(conn, info, key, tag_map, request_id)
        except StoreError as exc:
            earlier = self._requested_run(request_id) if request_id else None
            if earlier is None or not isinstance(exc.__cause__, sa_exc.IntegrityError):
                raise
            return self.get_run(earlier)  # the same request won a race
        return Run(info, RunData(tags=tag_map))

    def _requested_run(self, request_id: str) -> str | None:
        cr = t.client_requests
        with self._read() as conn:
            found = conn.execute(
                sa.select(cr.c.run_uuid).where(cr.c.request_id == request_id)
            ).scalar()
        return None if found is None else str(found)

    def _insert_run_rows(
        self,
        conn: Connection,
        info: RunInfo,
        experiment_key: int,
        tag_map: dict[str, str],
        request_id: str | None,
    ) -> None:
        run_id = info.run_id
        if request_id is not None:
            conn.execute(
                t.client_requests.insert().values(
                    request_id=request_id, run_uuid=run_id, created_time=_now_ms()
                )
            )
        conn.execute(
            t.runs.insert().values(
                run_uuid=run_id,
                experiment_id=experiment_key,
                name=info.run_name,
                user_id=info.user_id,
                status=info.status.value,
                start_time=info.start_time,
                lifecycle_stage=LifecycleStage.ACTIVE.value,
                artifact_uri=info.artifact_uri,
            )
        )
        conn.execute(
            self._insert_tag,
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in tag_map.items()],
        )

    def _load_runs(self, conn: Connection, run_ids: Sequence[str]) -> dict[str, Run]:
        if not run_ids:
            return {}
        rows = conn.execute(sa.select(t.runs).where(t.runs.c.run_uuid.in_(run_ids))).all()
        params: dict[str, dict[str, str]] = {row.run_uuid: {} for row in rows}
        tags: dict[str, dict[str, str]] = {row.run_uuid: {} for row in rows}
        metrics: dict[str, dict[str, float]] = {row.run_uuid: {} for row in rows}
        for table, target in ((t.params, params), (t.tags, tags)):
            for run_uuid, key, value in conn.execute(
                sa.select(table.c.run_uuid, table.c.key, table.c.value).where(
                    table.c.run_uuid.in_(run_ids)
                )
            ):
                target[run_uuid][key] = value
        latest: dict[str, dict[str, Metric]] = {row.run_uuid: {} for row in rows}
        lm = t.latest_metrics
        for run_uuid, key, value, timestamp, step in conn.execute(
            sa.select(lm.c.run_uuid, lm.c.key, lm.c.value, lm.c.timestamp, lm.c.step).where(
                lm.c.run_uuid.in_(run_ids)
            )
        ):
            metric = Metric(key, _metric_value(value), timestamp, step)
            metrics[run_uuid][key] = metric.value
            latest[run_uuid][key] = metric
        inputs = run_inputs.load(conn, run_ids)
        return {
            row.run_uuid: Run(
                _run_info(row),
                RunData(
                    metrics=metrics[row.run_uuid],
                    params=params[row.run_uuid],
                    tags=tags[row.run_uuid],
                    latest_metrics=latest[row.run_uuid],
                ),
                RunInputs(tuple(inputs.get(row.run_uuid, ()))),
            )
            for row in rows
        }

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            run = self._load_runs(conn, [run_id]).get(run_id)
        if run is None:
            raise NotFoundError(f"Run '{run_id}' does not exist")
        return run

    def _run_state(self, conn: Connection, run_id: str) -> tuple[RunStatus, LifecycleStage]:
        row = conn.execute(self._run_state_query, {"run_id": run_id}).first()
        if row is None:
            raise NotFoundError(f"Run '{run_id}' does not exist")
        return RunStatus(row.status), LifecycleStage(row.lifecycle_stage)

    def _check_not_deleted(self, conn: Connection, run_id: str) -> RunStatus:
        status, stage = self._run_state(conn, run_id)
        if stage is LifecycleStage.DELETED:
            raise InvalidStateError(
                f"Run '{run_id}' is deleted; "
                f"restore it (`cairn runs restore {run_id}`) to change it"
            )
        return status

    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None,
        end_time: int | None,
        run_name: str | None = None,
    ) -> RunInfo:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
            values["end_time"] = end_time if status.is_terminated else None
        if run_name:
            values["name"] = run_name
        runs = t.runs
        with self._tx() as conn:
            # One UPDATE ... RETURNING on the happy path; the state query only explains a miss.
            if not run_name and status is not None:
                row = conn.execute(
                    self._set_status,
                    {"rid": run_id, "new_status": values["status"], "new_end": values["end_time"]},
                ).first()
            else:
                row = conn.execute(
                    runs.update()
                    .where(
                        runs.c.run_uuid == run_id,
                        runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
                    )
                    .values(**values)
                    .returning(*runs.c)
                    if values
                    else sa.select(runs).where(
                        runs.c.run_uuid == run_id,
                        runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
                    )
                ).first()
            if row is None:
                self._check_not_deleted(conn, run_id)
                raise NotFoundError(f"Run '{run_id}' does not exist")  # pragma: no cover
            if run_name:
                self._upsert_tags(conn, run_id, [RunTag(RUN_NAME_TAG, run_name)])
        return _run_info(row)

    def _set_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        with self._tx() as conn:
            self._run_state(conn, run_id)
            conn.execute(
                t.runs.update()
                .where(t.runs.c.run_uuid == run_id)
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=_now_ms() if stage is LifecycleStage.DELETED else None,
                )
            )

    def delete_run(self, run_id: str) -> None:
        self._set_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_lifecycle(run_id, LifecycleStage.ACTIVE)

    # -- logging ------------------------------------------------------------------------------

    def _upsert_tags(self, conn: Connection, run_id: str, tags: Iterable[RunTag]) -> None:
        latest = {tag.key: tag.value for tag in tags}
        conn.execute(
            self._upsert_tag,
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in latest.items()],
        )
        if RUN_NAME_TAG in latest:
            conn.execute(
                t.runs.update().where(t.runs.c.run_uuid == run_id).values(name=latest[RUN_NAME_TAG])
            )

    def _insert_params(self, conn: Connection, run_id: str, params: Sequence[Param]) -> None:
        wanted: dict[str, str] = {}
        for param in params:
            if wanted.setdefault(param.key, param.value) != param.value:
                raise InvalidParameterError(
                    f"Param '{param.key}' was given twice with different values "
                    f"({wanted[param.key]!r} and {param.value!r}) for run '{run_id}'"
                )
        existing = dict(
            conn.execute(
                self._existing_params_query, {"run_id": run_id, "keys": list(wanted)}
            ).all()
        )
        for key, value in existing.items():
            if wanted[key] != value:
                raise InvalidParameterError(
                    f"Param '{key}' of run '{run_id}' is already {value!r} and cannot be changed "
                    f"to {wanted[key]!r}: params are write-once (log a new run, or a metric)"
                )
        rows = [
            {"run_uuid": run_id, "key": k, "value": v}
            for k, v in wanted.items()
            if k not in existing
        ]
        if rows:
            conn.execute(self._insert_param, rows)

    def _insert_metrics(self, conn: Connection, run_id: str, metrics: Sequence[Metric]) -> None:
        rows = []
        latest: dict[str, dict[str, Any]] = {}
        for metric in metrics:
            row = {
                "run_uuid": run_id,
                "key": metric.key,
                "value": None if math.isnan(metric.value) else metric.value,
                "timestamp": metric.timestamp,
                "step": metric.step,
            }
            rows.append(row)
            best = latest.get(metric.key)
            if best is None or (metric.step, metric.timestamp) >= (best["step"], best["timestamp"]):
                latest[metric.key] = row
        conn.execute(self._insert_metric, rows)
        conn.execute(self._upsert_latest_metric, list(latest.values()))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        request_id: str | None = None,
        model_metrics: Sequence[tuple[str, LoggedModelMetric]] = (),
    ) -> None:
        """Write a batch in one transaction: all of it or, on any error, none of it.

        ``model_metrics`` (``(model_id, metric)`` pairs of existing logged models) are recorded
        in the same transaction; a ``request_id`` seen before makes the call a no-op.
        """
        if not (metrics or params or tags or model_metrics):
            return
        try:
            self._log_batch(run_id, metrics, params, tags, request_id, model_metrics)
        except StoreError as exc:
            if request_id is None or not isinstance(exc.__cause__, sa_exc.IntegrityError):
                raise
            if self._request_seen(request_id):
                return  # applied before: a retry or a replayed offline batch
            raise

    def _request_seen(self, request_id: str) -> bool:
        cr = t.client_requests
        with self._read() as conn:
            found = conn.execute(sa.select(cr.c.request_id).where(cr.c.request_id == request_id))
            return found.first() is not None

    def _log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
        request_id: str | None,
        model_metrics: Sequence[tuple[str, LoggedModelMetric]] = (),
    ) -> None:
        with self._tx() as conn:
            if request_id is not None:
                # Recorded first, in the same transaction: a second copy fails right here.
                conn.execute(
                    t.client_requests.insert().values(
                        request_id=request_id, run_uuid=run_id, created_time=_now_ms()
                    )
                )
            status = self._check_not_deleted(conn, run_id)
            if (metrics or params) and status.is_terminated:
                raise InvalidStateError(
                    f"Run '{run_id}' is {status.value}; metrics and params go to an active run. "
                    f"Resume it with cairn.start_run(run_id='{run_id}')"
                )
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                self._upsert_tags(conn, run_id, tags)
            if metrics:
                self._insert_metrics(conn, run_id, metrics)
            if model_metrics:
                self.logged_models.write_metrics(conn, model_metrics)

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput], models: Sequence[str] = ()
    ) -> None:
        """Record datasets (and logged models) a run read, in one transaction.

        The same dataset or model twice is recorded once; the run is checked even when there
        is nothing to record. Every model must exist.
        """
        from cairn.tracking.stores.sql.logged_models import INPUT

        if models:
            self.logged_models.require(models)
        with self._tx() as conn:
            self._check_not_deleted(conn, run_id)
            if models:
                links = [LoggedModelOutput(model_id) for model_id in models]
                self.logged_models.write_links(conn, run_id, INPUT, links)
            if datasets:
                run_inputs.record(conn, run_id, datasets, self._upsert_input_tag)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._tx() as conn:
            self._check_not_deleted(conn, run_id)
            result = conn.execute(
                t.tags.delete().where(t.tags.c.run_uuid == run_id, t.tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Run '{run_id}' has no tag '{key}'")

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        offset = decode_token(page_token)
        m = t.metrics
        query = (
            sa.select(m.c.value, m.c.timestamp, m.c.step)
            .where(m.c.run_uuid == run_id, m.c.key == key)
            .order_by(m.c.step, m.c.timestamp, m.c.id)
            .offset(offset)
        )
        if max_results is not None:
            query = query.limit(max_results + 1)
        with self._read() as conn:
            self._run_state(conn, run_id)
            rows = conn.execute(query).all()
        token = None
        if max_results is not None and len(rows) > max_results:
            rows, token = rows[:max_results], encode_token(offset + max_results)
        return PagedList(
            [Metric(key, _metric_value(value), timestamp, step) for value, timestamp, step in rows],
            token,
        )

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Run]:
        from cairn.tracking.search import parse_filter, parse_order_by
        from cairn.tracking.stores.sql.search import select_run_ids

        if not 0 < max_results <= MAX_SEARCH_RESULTS:
            raise InvalidParameterError(
                f"max_results must be between 1 and {MAX_SEARCH_RESULTS}, got {max_results}"
            )
        ids = []
        for experiment_id in experiment_ids:
            try:
                key = int(experiment_id)
            except (TypeError, ValueError):
                key = -1
            if not 0 <= key <= _MAX_ID:
                raise InvalidParameterError(
                    f"Invalid experiment id {experiment_id!r}: expected an integer"
                ) from None
            ids.append(key)
        offset = decode_token(page_token)
        query = select_run_ids(
            ids,
            parse_filter(filter_string),
            view_type,
            parse_order_by(order_by),
            offset,
            max_results + 1,
        )
        with self._read() as conn:
            run_ids = list(conn.execute(query).scalars())
            token = None
            if len(run_ids) > max_results:
                run_ids, token = run_ids[:max_results], encode_token(offset + max_results)
            loaded = self._load_runs(conn, run_ids)
        return PagedList([loaded[run_id] for run_id in run_ids if run_id in loaded], token)
