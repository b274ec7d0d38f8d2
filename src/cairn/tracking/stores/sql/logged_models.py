"""MLflow 3 logged models in the tracking database: create, finalize, tag, search, link to runs.

As with ``SqlStore``, callers validate names and values; this module enforces state (the
model exists and is not deleted, the run is active) and turns SQLAlchemy errors into Cairn's.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cairn.entities import (
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    PagedList,
    RunModels,
)
from cairn.errors import (
    CairnError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    SearchSyntaxError,
    StoreError,
    UnavailableError,
)
from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql._paging import decode_token, encode_token

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql.elements import ColumnElement

__all__ = ["DatasetRef", "LoggedModelStore", "ModelOrderBy", "parse_status"]

MAX_SEARCH_RESULTS = 50_000
DEFAULT_SEARCH_RESULTS = 100
_IN_SLICE = 5000
INPUT = "input"
OUTPUT = "output"

_lm = t.logged_models
_tags = t.logged_model_tags
_params = t.logged_model_params
_metrics = t.logged_model_metrics
_links = t.run_logged_models

_ATTRIBUTES: dict[str, sa.Column[Any]] = {
    "model_id": _lm.c.model_id,
    "name": _lm.c.name,
    "model_type": _lm.c.model_type,
    "status": _lm.c.status,
    "source_run_id": _lm.c.source_run_id,
    "creation_timestamp": _lm.c.creation_timestamp_ms,
    "creation_time": _lm.c.creation_timestamp_ms,
    "creation_timestamp_ms": _lm.c.creation_timestamp_ms,
    "last_updated_timestamp": _lm.c.last_updated_timestamp_ms,
    "last_updated_timestamp_ms": _lm.c.last_updated_timestamp_ms,
}
_NUMERIC_ATTRIBUTES = frozenset(
    name for name, column in _ATTRIBUTES.items() if isinstance(column.type, sa.BigInteger)
)
_STATUS_NAMES = {
    "PENDING": LoggedModelStatus.PENDING,
    "READY": LoggedModelStatus.READY,
    "FAILED": LoggedModelStatus.UPLOAD_FAILED,
    "UPLOAD_FAILED": LoggedModelStatus.UPLOAD_FAILED,
    **{status.value: status for status in LoggedModelStatus},
}
_ENTITIES = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}

# One comparison of the filter language: ``<identifier> <operator> <value>``, then AND or the end.
_CLAUSE = re.compile(
    r"""\s*
    (?P<ident>(?:[A-Za-z_]+\.)?(?:`[^`]+`|"[^"]+"|[\w./:-]+))\s*
    (?P<op>!=|<=|>=|=|<|>|(?:NOT\s+)?I?LIKE\b|(?:NOT\s+)?IN\b)\s*
    (?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|\((?:[^()'"]|'(?:[^']|'')*'|"(?:[^"]|"")*")*\)
        |[-+]?[\w.]+)
    \s*(?:(?P<and>AND)\b|$)""",
    re.IGNORECASE | re.VERBOSE,
)
_LIST_ITEM = re.compile(r"""\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|[-+]?[\w.]+)\s*(?:,|$)""")
_INT64 = 2**63
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset that metric filters and orderings are restricted to (digest optional)."""

    name: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOrderBy:
    """One ordering of a logged-model search: an attribute or ``metrics.<key>``."""

    field: str
    ascending: bool = True
    dataset: DatasetRef | None = None


@dataclass(frozen=True, slots=True)
class _Clause:
    entity: str
    key: str
    op: str
    value: str | float | tuple[str | float, ...]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _experiment_key(experiment_id: str) -> int | None:
    """The integer key of an experiment id, or None if no experiment can have that id."""
    try:
        key = int(experiment_id)
    except (TypeError, ValueError):
        return None
    return key if 0 <= key < _INT64 else None


def _db_value(value: float) -> float | None:
    return None if math.isnan(value) else value


def _metric_value(value: float | None) -> float:
    return math.nan if value is None else value


def parse_status(value: str | int) -> LoggedModelStatus:
    """A status from its wire name (``LOGGED_MODEL_READY``), short name or proto number."""
    if isinstance(value, int) and not isinstance(value, bool):
        by_number = {1: "PENDING", 2: "READY", 3: "UPLOAD_FAILED"}
        value = by_number.get(value, str(value))
    status = _STATUS_NAMES.get(str(value).upper())
    if status is None:
        choices = ", ".join(s.value for s in LoggedModelStatus)
        raise InvalidParameterError(f"Unknown logged model status {value!r}; use one of {choices}")
    return status


class LoggedModelStore:
    """Logged models, their tags, params and metrics, and their links to runs."""

    def __init__(self, engine: Engine) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        self._engine = engine
        self._display_url = engine.url.render_as_string(hide_password=True)
        insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(_tags)
        self._upsert_tag = stmt.on_conflict_do_update(
            index_elements=["model_id", "key"], set_={"value": stmt.excluded.value}
        )
        stmt = insert(_links)
        self._upsert_link = stmt.on_conflict_do_update(
            index_elements=["run_uuid", "model_id", "direction"],
            set_={"step": stmt.excluded.step},
        )

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except CairnError:
            raise
        except sa_exc.OperationalError as exc:
            raise UnavailableError(
                f"Tracking database {self._display_url} is unavailable: {exc.orig}"
            ) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(f"Tracking database error: {exc}") from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._translated(), self._engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._translated(), self._engine.connect() as conn:
            yield conn

    # -- models -------------------------------------------------------------------------------

    def create(
        self,
        experiment_id: str,
        name: str | None = None,
        *,
        source_run_id: str | None = None,
        model_type: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """A new PENDING model whose artifacts go to ``<experiment>/models/<id>/artifacts``."""
        from cairn.tracking._names import random_run_name

        key = _experiment_key(experiment_id)
        if key is None:
            raise NotFoundError(f"Experiment '{experiment_id}' does not exist")
        exps = t.experiments
        with self._tx() as conn:
            found = conn.execute(
                sa.select(exps.c.lifecycle_stage, exps.c.artifact_location).where(
                    exps.c.experiment_id == key
                )
            ).first()
            if found is None:
                raise NotFoundError(f"Experiment '{experiment_id}' does not exist")
            if found.lifecycle_stage == LifecycleStage.DELETED.value:
                raise InvalidStateError(
                    f"Experiment '{experiment_id}' is deleted; restore it before logging "
                    "models to it"
                )
            if source_run_id:
                self._run_experiment(conn, source_run_id)
            model_id = f"m-{uuid.uuid4().hex}"
            now = _now_ms()
            model = LoggedModel(
                model_id=model_id,
                experiment_id=str(key),
                name=name or random_run_name(),
                artifact_location="/".join(
                    [found.artifact_location.rstrip("/"), "models", model_id, "artifacts"]
                ),
                creation_timestamp=now,
                last_updated_timestamp=now,
                model_type=model_type or None,
                source_run_id=source_run_id or None,
                tags=dict(tags or {}),
                params=dict(params or {}),
            )
            conn.execute(
                _lm.insert().values(
                    model_id=model_id,
                    experiment_id=key,
                    name=model.name,
                    artifact_location=model.artifact_location,
                    creation_timestamp_ms=now,
                    last_updated_timestamp_ms=now,
                    status=model.status.value,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    model_type=model.model_type,
                    source_run_id=model.source_run_id,
                )
            )
            for table, values in ((_tags, model.tags), (_params, model.params)):
                if values:
                    conn.execute(
                        table.insert(),
                        [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()],
                    )
        return model

    def get(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        query = sa.select(_lm).where(_lm.c.model_id == model_id)
        if not allow_deleted:
            query = query.where(_lm.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        with self._read() as conn:
            rows = conn.execute(query).all()
            if not rows:
                raise NotFoundError(f"Logged model '{model_id}' does not exist")
            return self._load(conn, rows)[0]

    def _load(self, conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        ids = [row.model_id for row in rows]
        if not ids:
            return []
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        for table, target in ((_tags, tags), (_params, params)):
            for model_id, key, value in conn.execute(
                sa.select(table.c.model_id, table.c.key, table.c.value).where(
                    table.c.model_id.in_(ids)
                )
            ):
                target[model_id][key] = value
        metrics: dict[str, list[LoggedModelMetric]] = {i: [] for i in ids}
        m = _metrics
        for row in conn.execute(
            sa.select(m).where(m.c.model_id.in_(ids)).order_by(m.c.key, m.c.step, m.c.id)
        ):
            metrics[row.model_id].append(
                LoggedModelMetric(
                    row.key,
                    _metric_value(row.value),
                    row.timestamp,
                    row.step,
                    row.run_uuid,
                    row.dataset_name,
                    row.dataset_digest,
                )
            )
        return [
            LoggedModel(
                model_id=row.model_id,
                experiment_id=str(row.experiment_id),
                name=row.name,
                artifact_location=row.artifact_location,
                creation_timestamp=row.creation_timestamp_ms,
                last_updated_timestamp=row.last_updated_timestamp_ms,
                status=LoggedModelStatus(row.status),
                lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                model_type=row.model_type,
                source_run_id=row.source_run_id,
                status_message=row.status_message,
                tags=tags[row.model_id],
                params=params[row.model_id],
                metrics=tuple(metrics[row.model_id]),
            )
            for row in rows
        ]

    def _touch(self, conn: Connection, model_id: str, **values: Any) -> None:
        """Update an active model's row (and its last-updated time), or raise NotFoundError."""
        result = conn.execute(
            _lm.update()
            .where(
                _lm.c.model_id == model_id,
                _lm.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
            )
            .values(last_updated_timestamp_ms=_now_ms(), **values)
        )
        if result.rowcount == 0:
            raise NotFoundError(f"Logged model '{model_id}' does not exist")

    def finalize(
        self, model_id: str, status: LoggedModelStatus, status_message: str | None = None
    ) -> LoggedModel:
        with self._tx() as conn:
            self._touch(conn, model_id, status=status.value, status_message=status_message)
        return self.get(model_id)

    def delete(self, model_id: str) -> None:
        """Mark the model deleted; its record stays readable with ``allow_deleted``."""
        with self._tx() as conn:
            result = conn.execute(
                _lm.update()
                .where(_lm.c.model_id == model_id)
                .values(
                    lifecycle_stage=LifecycleStage.DELETED.value,
                    last_updated_timestamp_ms=_now_ms(),
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Logged model '{model_id}' does not exist")

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        with self._tx() as conn:
            self._touch(conn, model_id)
            if tags:
                conn.execute(
                    self._upsert_tag,
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
                )

    def delete_tag(self, model_id: str, key: str) -> None:
        with self._tx() as conn:
            self._touch(conn, model_id)
            result = conn.execute(
                _tags.delete().where(_tags.c.model_id == model_id, _tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Logged model '{model_id}' has no tag '{key}'")

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Add params; like a run's, a param is write-once (the same value again is fine)."""
        with self._tx() as conn:
            self._touch(conn, model_id)
            existing = dict(
                conn.execute(
                    sa.select(_params.c.key, _params.c.value).where(
                        _params.c.model_id == model_id, _params.c.key.in_(list(params))
                    )
                ).all()
            )
            for key, value in existing.items():
                if params[key] != value:
                    raise InvalidParameterError(
                        f"Param '{key}' of logged model '{model_id}' is already {value!r} and "
                        f"cannot be changed to {params[key]!r}: params are write-once"
                    )
            rows = [
                {"model_id": model_id, "key": k, "value": v}
                for k, v in params.items()
                if k not in existing
            ]
            if rows:
                conn.execute(_params.insert(), rows)

    # -- metrics ------------------------------------------------------------------------------

    def require(self, model_ids: Iterable[str]) -> None:
        """Raise NotFoundError unless every model exists and is not deleted."""
        wanted = set(model_ids)
        if not wanted:
            return
        with self._read() as conn:
            found = set(
                conn.execute(
                    sa.select(_lm.c.model_id).where(
                        _lm.c.model_id.in_(wanted),
                        _lm.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
                    )
                ).scalars()
            )
        missing = sorted(wanted - found)
        if missing:
            raise NotFoundError(f"Logged model '{missing[0]}' does not exist")

    def log_metrics(self, metrics: Sequence[tuple[str, LoggedModelMetric]]) -> None:
        """Record ``(model_id, metric)`` pairs; every model must exist."""
        if not metrics:
            return
        self.require(model_id for model_id, _ in metrics)
        with self._tx() as conn:
            self.write_metrics(conn, metrics)

    def write_metrics(
        self, conn: Connection, metrics: Sequence[tuple[str, LoggedModelMetric]]
    ) -> None:
        """Insert ``(model_id, metric)`` pairs in the caller's transaction (models checked)."""
        if not metrics:
            return
        conn.execute(
            _metrics.insert(),
            [
                {
                    "model_id": model_id,
                    "key": metric.key,
                    "value": _db_value(metric.value),
                    "timestamp": metric.timestamp,
                    "step": metric.step,
                    "run_uuid": metric.run_id,
                    "dataset_name": metric.dataset_name,
                    "dataset_digest": metric.dataset_digest,
                }
                for model_id, metric in metrics
            ],
        )

    def unlogged_run_metrics(self, run_id: str, metrics: Sequence[Metric]) -> list[Metric]:
        """The metrics not already in the run's history with the same step, time and value.

        MLflow clients re-send a run's metrics tagged with a model after ``log_model``; these
        must link the values to the model without doubling the run's history.
        """
        if not metrics:
            return []
        m = t.metrics
        with self._read() as conn:
            seen = {
                (key, timestamp, step, value)
                for key, timestamp, step, value in conn.execute(
                    sa.select(m.c.key, m.c.timestamp, m.c.step, m.c.value).where(
                        m.c.run_uuid == run_id,
                        m.c.key.in_({metric.key for metric in metrics}),
                        m.c.step.in_({metric.step for metric in metrics}),
                    )
                )
            }
        return [
            metric
            for metric in metrics
            if (metric.key, metric.timestamp, metric.step, _db_value(metric.value)) not in seen
        ]

    # -- runs ---------------------------------------------------------------------------------

    def _run_experiment(self, conn: Connection, run_id: str, active: bool = False) -> int:
        runs = t.runs
        row = conn.execute(
            sa.select(runs.c.experiment_id, runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id)
        ).first()
        if row is None:
            raise NotFoundError(f"Run '{run_id}' does not exist")
        if active and row.lifecycle_stage == LifecycleStage.DELETED.value:
            raise InvalidStateError(
                f"Run '{run_id}' is deleted; restore it (`cairn runs restore {run_id}`) to "
                "change it"
            )
        return int(row.experiment_id)

    def _link(self, run_id: str, direction: str, links: Sequence[LoggedModelOutput]) -> None:
        """Link models to an active run (checked even when there is nothing to link)."""
        self.require(link.model_id for link in links)
        with self._tx() as conn:
            self._run_experiment(conn, run_id, active=True)
            self.write_links(conn, run_id, direction, links)

    def write_links(
        self, conn: Connection, run_id: str, direction: str, links: Sequence[LoggedModelOutput]
    ) -> None:
        """Upsert run-model links in the caller's transaction (run and models checked)."""
        if not links:
            return
        latest = {link.model_id: link.step for link in links}
        conn.execute(
            self._upsert_link,
            [
                {"run_uuid": run_id, "model_id": k, "direction": direction, "step": step}
                for k, step in latest.items()
            ],
        )

    def log_outputs(self, run_id: str, outputs: Sequence[LoggedModelOutput]) -> None:
        """Record models the run produced (a model logged again keeps its latest step)."""
        self._link(run_id, OUTPUT, outputs)

    def log_inputs(self, run_id: str, model_ids: Sequence[str]) -> None:
        """Record models the run read."""
        self._link(run_id, INPUT, [LoggedModelOutput(model_id) for model_id in model_ids])

    def run_models(self, run_ids: Sequence[str]) -> dict[str, RunModels]:
        """The model inputs and outputs of each run that has any."""
        if not run_ids:
            return {}
        inputs: dict[str, list[str]] = {}
        outputs: dict[str, list[LoggedModelOutput]] = {}
        query = sa.select(
            _links.c.run_uuid, _links.c.model_id, _links.c.direction, _links.c.step
        ).order_by(_links.c.run_uuid, _links.c.model_id)
        with self._read() as conn:
            # In slices: a search page may hold more runs than SQLite takes bound parameters.
            for start in range(0, len(run_ids), _IN_SLICE):
                chunk = list(run_ids[start : start + _IN_SLICE])
                for run_uuid, model_id, direction, step in conn.execute(
                    query.where(_links.c.run_uuid.in_(chunk))
                ):
                    if direction == INPUT:
                        inputs.setdefault(run_uuid, []).append(model_id)
                    else:
                        outputs.setdefault(run_uuid, []).append(LoggedModelOutput(model_id, step))
        return {
            run_id: RunModels(tuple(inputs.get(run_id, ())), tuple(outputs.get(run_id, ())))
            for run_id in {*inputs, *outputs}
        }

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        datasets: Sequence[DatasetRef] = (),
        max_results: int | None = None,
        order_by: Sequence[ModelOrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Active models of the experiments matching the filter, newest first by default.

        The filter is comparisons joined by AND: attributes (``name``, ``model_type``,
        ``status``, ``source_run_id``, ``creation_timestamp`` ...), ``params.<key>``,
        ``tags.<key>`` and ``metrics.<key>`` (the latest value, restricted to ``datasets``).
        """
        limit = DEFAULT_SEARCH_RESULTS if max_results is None else max_results
        if not 0 < limit <= MAX_SEARCH_RESULTS:
            raise InvalidParameterError(
                f"max_results must be between 1 and {MAX_SEARCH_RESULTS}, got {limit}"
            )
        keys = []
        for experiment_id in experiment_ids:
            key = _experiment_key(experiment_id)
            if key is None:
                raise InvalidParameterError(
                    f"Invalid experiment id {experiment_id!r}: expected a non-negative integer"
                )
            keys.append(key)
        offset = decode_token(page_token)
        query = sa.select(_lm).where(
            _lm.c.experiment_id.in_(keys),
            _lm.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
        )
        for clause in _parse_filter(filter_string):
            query = query.where(_clause_sql(clause, datasets))
        for order in order_by:
            column = _order_column(order)
            query = query.order_by(
                column.asc().nulls_last() if order.ascending else column.desc().nulls_last()
            )
        query = query.order_by(_lm.c.creation_timestamp_ms.desc(), _lm.c.model_id)
        query = query.offset(offset).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(query).all()
            models = self._load(conn, rows[:limit])
        token = encode_token(offset + limit) if len(rows) > limit else None
        return PagedList(models, token)


# -- the filter language ----------------------------------------------------------------------


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        quote = text[0]
        return text[1:-1].replace(quote * 2, quote) if quote != "`" else text[1:-1]
    return text


def _scalar(text: str, filter_string: str, position: int) -> str | float:
    if text[0] in "'\"":
        return _unquote(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    raise SearchSyntaxError(
        f"expected a quoted string or a number, got {text!r}", filter_string, position
    )


def _parse_filter(text: str | None) -> list[_Clause]:
    """The AND-ed comparisons of a logged-model filter."""
    if text is None or not text.strip():
        return []
    clauses = []
    position = 0
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None:
            raise SearchSyntaxError(
                "expected a comparison such as name = 'model' or metrics.accuracy > 0.9",
                text,
                len(text) - len(text[position:].lstrip()),
            )
        clauses.append(_clause(match, text))
        position = match.end()
        if match.group("and") and not text[position:].strip():
            raise SearchSyntaxError("expected a comparison after AND", text, len(text))
    return clauses


def _clause(match: re.Match[str], text: str) -> _Clause:
    ident = match.group("ident")
    prefix, dot, rest = ident.partition(".")
    entity = _ENTITIES.get(prefix.lower()) if dot else None
    if entity is None:
        entity, rest = "attribute", ident
    key = _unquote(rest)
    op = " ".join(match.group("op").upper().split())
    raw = match.group("value")
    position = match.start("value")
    value: str | float | tuple[str | float, ...]
    if op in ("IN", "NOT IN"):
        if not raw.startswith("("):
            raise SearchSyntaxError(f"{op} takes a list: ('a', 'b')", text, position)
        items = _LIST_ITEM.findall(raw[1:-1])
        if not items:
            raise SearchSyntaxError(f"{op} takes a non-empty list", text, position)
        value = tuple(_scalar(item, text, position) for item in items)
    else:
        value = _scalar(raw, text, position)
    if entity == "attribute":
        if key not in _ATTRIBUTES:
            choices = ", ".join(sorted(_ATTRIBUTES))
            raise SearchSyntaxError(
                f"unknown logged model attribute {key!r}; use one of {choices}",
                text,
                match.start("ident"),
            )
        if key == "status":
            value = _status_values(value, text, position)
    numeric = entity == "metric" or (entity == "attribute" and key in _NUMERIC_ATTRIBUTES)
    values = value if isinstance(value, tuple) else (value,)
    if numeric:
        if op not in ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"):
            raise SearchSyntaxError(f"{op} does not apply to numbers", text, match.start("op"))
        if any(isinstance(v, str) for v in values):
            raise SearchSyntaxError(f"{ident} values are numbers", text, position)
    elif any(not isinstance(v, str) for v in values):
        raise SearchSyntaxError(f"{ident} values are strings; quote them", text, position)
    return _Clause(entity, key, op, value)


def _status_values(
    value: str | float | tuple[str | float, ...], text: str, position: int
) -> str | tuple[str | float, ...]:
    def one(item: str | float) -> str:
        status = _STATUS_NAMES.get(str(item).upper())
        if status is None:
            raise SearchSyntaxError(
                f"unknown status {item!r}; use PENDING, READY or FAILED", text, position
            )
        return status.value

    return tuple(one(v) for v in value) if isinstance(value, tuple) else one(value)


def _compare(
    column: Any, op: str, value: str | float | tuple[str | float, ...]
) -> ColumnElement[bool]:
    if isinstance(value, tuple):
        return column.in_(value) if op == "IN" else column.not_in(value)  # type: ignore[no-any-return]
    operations: dict[str, Any] = {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
        "LIKE": lambda: column.like(value),
        "ILIKE": lambda: column.ilike(value),
        "NOT LIKE": lambda: column.not_like(value),
        "NOT ILIKE": lambda: column.not_ilike(value),
    }
    return operations[op]()  # type: ignore[no-any-return]


def _dataset_condition(datasets: Sequence[DatasetRef]) -> ColumnElement[bool] | None:
    if not datasets:
        return None
    return sa.or_(
        *[
            sa.and_(
                _metrics.c.dataset_name == d.name,
                *([_metrics.c.dataset_digest == d.digest] if d.digest else []),
            )
            for d in datasets
        ]
    )


def _latest_metric(key: str, datasets: Sequence[DatasetRef]) -> Any:
    """The model's latest value of a metric (highest step, then time), as a scalar subquery."""
    query = sa.select(_metrics.c.value).where(
        _metrics.c.model_id == _lm.c.model_id, _metrics.c.key == key
    )
    condition = _dataset_condition(datasets)
    if condition is not None:
        query = query.where(condition)
    return (
        query.order_by(_metrics.c.step.desc(), _metrics.c.timestamp.desc(), _metrics.c.id.desc())
        .limit(1)
        .correlate(_lm)
        .scalar_subquery()
    )


def _clause_sql(clause: _Clause, datasets: Sequence[DatasetRef]) -> ColumnElement[bool]:
    if clause.entity == "attribute":
        return _compare(_ATTRIBUTES[clause.key], clause.op, clause.value)
    if clause.entity == "metric":
        return _compare(_latest_metric(clause.key, datasets), clause.op, clause.value)
    table = _params if clause.entity == "param" else _tags
    return sa.exists().where(
        table.c.model_id == _lm.c.model_id,
        table.c.key == clause.key,
        _compare(table.c.value, clause.op, clause.value),
    )


def _order_column(order: ModelOrderBy) -> Any:
    prefix, dot, key = order.field.partition(".")
    if dot and _ENTITIES.get(prefix.lower()) == "metric":
        return _latest_metric(_unquote(key), [order.dataset] if order.dataset else [])
    name = _unquote(key) if dot and _ENTITIES.get(prefix.lower()) == "attribute" else order.field
    column = _ATTRIBUTES.get(name)
    if column is None:
        choices = ", ".join(sorted(_ATTRIBUTES))
        raise InvalidParameterError(
            f"Cannot order logged models by {order.field!r}; use metrics.<key> or one of {choices}"
        )
    return column
