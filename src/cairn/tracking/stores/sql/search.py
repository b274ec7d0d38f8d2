"""Compile a parsed run search (filter, order-by, page) into one SQL SELECT of run ids."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from cairn.errors import InvalidParameterError
from cairn.tracking.search import And, Comparison, Entity, Op, Or
from cairn.tracking.stores.sql.schema import ValuePrefix, latest_metrics, params, runs, tags

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.sql.compiler import SQLCompiler

    from cairn.entities import ViewType
    from cairn.tracking.search import Expr, Identifier, OrderBy, Scalar

__all__ = ["WALK_ROWS", "select_run_ids"]

# A sort on one key walks its index up to this many rows (offset + limit). Deeper pages take the
# general plan: there, reading and sorting every matching run costs less than a random lookup
# per row walked (measured on 100,000 runs, SQLite and PostgreSQL).
WALK_ROWS = 10_000

_ESCAPE = "\\"
_KEYED_TABLES: dict[Entity, sa.Table] = {
    Entity.METRIC: latest_metrics,
    Entity.PARAM: params,
    Entity.TAG: tags,
}
_ATTRIBUTE_COLUMNS: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.run_uuid,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "artifact_uri": runs.c.artifact_uri,
    "lifecycle_stage": runs.c.lifecycle_stage,
    "experiment_id": runs.c.experiment_id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}


class _Bytewise(FunctionElement[str]):
    """A string expression that compares and sorts by code point on every database."""

    name = "cairn_bytewise"
    type = sa.String()
    inherit_cache = True


@compiles(_Bytewise)
def _bytewise_default(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column, **kw)


@compiles(_Bytewise, "postgresql")
def _bytewise_postgresql(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    # The database's default collation is usually locale-aware ('B' < 'a' differs).
    (column,) = element.clauses
    return compiler.process(sa.collate(column, "C"), **kw)


class _CaseSensitiveLike(FunctionElement[bool]):
    """``column LIKE pattern`` that is case-sensitive on every database; backslash escapes."""

    name = "cairn_like"
    type = sa.Boolean()
    inherit_cache = True


@compiles(_CaseSensitiveLike)
def _like_default(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, like_pattern, _glob_pattern = element.clauses
    return f"({compiler.process(column.like(like_pattern, escape=_ESCAPE), **kw)})"


@compiles(_CaseSensitiveLike, "sqlite")
def _like_sqlite(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's LIKE ignores ASCII case; GLOB does not.
    column, _like_pattern, glob_pattern = element.clauses
    return f"({compiler.process(column.op('GLOB', is_comparison=True)(glob_pattern), **kw)})"


class _Unindexed(FunctionElement[Any]):
    """A column SQLite may not reach through an index (unary ``+``), so the join is driven by
    the walk of another table's index; other databases plan with statistics and see the column.
    """

    name = "cairn_unindexed"
    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(_Unindexed)
def _unindexed_default(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column, **kw)


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"+{compiler.process(column, **kw)}"


def _like_to_glob(pattern: str) -> str:
    """The GLOB pattern matching exactly what LIKE ``pattern`` (backslash escape) matches."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "\\")
        elif ch == "%":
            out.append("*")
            continue
        elif ch == "_":
            out.append("?")
            continue
        out.append(f"[{ch}]" if ch in "*?[" else ch)
    return "".join(out)


def _like(column: sa.ColumnElement[Any], pattern: str) -> sa.ColumnElement[bool]:
    return _CaseSensitiveLike(column, pattern, _like_to_glob(pattern))


def _value_predicate(
    column: sa.ColumnElement[Any], op: Op, value: Scalar | tuple[Scalar, ...] | None
) -> sa.ColumnElement[bool]:
    """``column <op> value`` for every operator except IS [NOT] NULL."""
    if op in (Op.IN, Op.NOT_IN):
        assert isinstance(value, tuple)
        return column.in_(value) if op is Op.IN else column.not_in(value)
    assert value is not None and not isinstance(value, tuple)
    if op in (Op.LIKE, Op.NOT_LIKE, Op.ILIKE, Op.NOT_ILIKE):
        assert isinstance(value, str)
        if op is Op.LIKE:
            return _like(column, value)
        if op is Op.NOT_LIKE:
            return sa.not_(_like(column, value))
        # lower(x) LIKE lower(p) on SQLite (ASCII case folding only), ILIKE on PostgreSQL.
        if op is Op.ILIKE:
            return column.ilike(value, escape=_ESCAPE)
        return column.not_ilike(value, escape=_ESCAPE)
    if isinstance(value, str) and op in (Op.LT, Op.LE, Op.GT, Op.GE):
        column = _Bytewise(column)
    if op is Op.EQ:
        return column == value
    if op is Op.NE:
        return column != value
    if op is Op.LT:
        return column < value
    if op is Op.LE:
        return column <= value
    if op is Op.GT:
        return column > value
    if op is Op.GE:
        return column >= value
    raise AssertionError(f"unhandled operator {op}")


def _keyed_predicate(comparison: Comparison) -> sa.ColumnElement[bool]:
    """A correlated EXISTS on the (run_uuid, key) primary key of latest_metrics/params/tags."""
    table = _KEYED_TABLES[comparison.ident.entity]
    conditions = [table.c.run_uuid == runs.c.run_uuid, table.c.key == comparison.ident.key]
    if comparison.op not in (Op.IS_NULL, Op.IS_NOT_NULL):
        conditions.append(_value_predicate(table.c.value, comparison.op, comparison.value))
    exists = sa.exists().where(*conditions).correlate(runs)
    return ~exists if comparison.op is Op.IS_NULL else exists


def _attribute_predicate(comparison: Comparison) -> sa.ColumnElement[bool]:
    column: sa.ColumnElement[Any] = _ATTRIBUTE_COLUMNS[comparison.ident.key]
    op, value = comparison.op, comparison.value
    if op is Op.IS_NULL:
        return column.is_(None)
    if op is Op.IS_NOT_NULL:
        return column.is_not(None)
    if comparison.ident.key == "experiment_id":
        # The parser has checked that =, != and IN values are integer strings.
        if op in (Op.LIKE, Op.NOT_LIKE, Op.ILIKE, Op.NOT_ILIKE):
            column = sa.cast(column, sa.String)
        elif isinstance(value, tuple):
            value = tuple(int(v) for v in value)
        elif value is not None:
            value = int(value)
    return _value_predicate(column, op, value)


def _predicate(expr: Expr) -> sa.ColumnElement[bool]:
    if isinstance(expr, And):
        return sa.and_(*(_predicate(operand) for operand in expr.operands))
    if isinstance(expr, Or):
        return sa.or_(*(_predicate(operand) for operand in expr.operands))
    if expr.ident.entity is Entity.ATTRIBUTE:
        return _attribute_predicate(expr)
    return _keyed_predicate(expr)


def _required_bound(filter_expr: Expr | None, ident: Identifier) -> Comparison | None:
    """A top-level comparison in the filter that every matching run's ``ident`` satisfies."""
    if filter_expr is None:
        return None
    candidates = filter_expr.operands if isinstance(filter_expr, And) else (filter_expr,)
    for candidate in candidates:
        if (
            isinstance(candidate, Comparison)
            and candidate.ident == ident
            and candidate.op in (Op.EQ, Op.LT, Op.LE, Op.GT, Op.GE)
        ):
            return candidate
    return None


def select_run_ids(
    experiment_ids: Sequence[int],
    filter_expr: Expr | None,
    view_type: ViewType,
    order_by: Sequence[OrderBy],
    offset: int,
    limit: int,
) -> sa.Select[str]:
    """The ids of one page of matching runs, in order, as a SELECT of ``runs.run_uuid``.

    Args:
        experiment_ids: the experiments to search in.
        filter_expr: from ``parse_filter``; None matches every run.
        view_type: which lifecycle stages to include.
        order_by: from ``parse_order_by``; missing values sort last in either direction,
            ties break on ``start_time DESC, run_uuid``.
        offset: how many matching runs to skip.
        limit: the most ids to return.
    """
    if offset < 0 or limit < 0:
        raise InvalidParameterError(f"offset and limit must be >= 0, got {offset} and {limit}")
    if (
        len(order_by) == 1
        and offset + limit <= WALK_ROWS
        and (
            order_by[0].ident.entity in (Entity.PARAM, Entity.TAG)
            or (
                order_by[0].ident.entity is Entity.METRIC
                and _required_bound(filter_expr, order_by[0].ident) is None
            )
        )
    ):
        return _by_one_key(experiment_ids, filter_expr, view_type, order_by[0], offset, limit)
    source: sa.FromClause = runs
    sort_keys: list[sa.ColumnElement[Any]] = []
    for index, clause in enumerate(order_by):
        ident = clause.ident
        column: sa.ColumnElement[Any]
        if ident.entity is Entity.ATTRIBUTE:
            column = _ATTRIBUTE_COLUMNS[ident.key]
            nullable = _ATTRIBUTE_COLUMNS[ident.key].nullable
        else:
            table = _KEYED_TABLES[ident.entity].alias(f"order_{index}")
            on = [table.c.run_uuid == runs.c.run_uuid, table.c.key == ident.key]
            bound = _required_bound(filter_expr, ident) if index == 0 else None
            if bound is None:
                source = source.outerjoin(table, sa.and_(*on))
                nullable = True
            else:
                # The filter already demands a value for this key: an inner join on the
                # (key, value) index walks only matching rows, and no NULLs can sort.
                on.append(_value_predicate(table.c.value, bound.op, bound.value))
                source = source.join(table, sa.and_(*on))
                nullable = False
            column = table.c.value
        if nullable:
            # Portable NULLS LAST: false sorts before true on SQLite and PostgreSQL.
            sort_keys.append(column.is_(None))
        if isinstance(column.type, sa.String):
            column = _Bytewise(column)
        sort_keys.append(column.asc() if clause.ascending else column.desc())
    sort_keys += [runs.c.start_time.desc(), runs.c.run_uuid.asc()]

    stages = [stage.value for stage in view_type.stages()]
    query = (
        sa.select(runs.c.run_uuid)
        .select_from(source)
        .where(runs.c.experiment_id.in_(experiment_ids), runs.c.lifecycle_stage.in_(stages))
    )
    if filter_expr is not None:
        query = query.where(_predicate(filter_expr))
    return query.order_by(*sort_keys).offset(offset).limit(limit)


def _by_one_key(
    experiment_ids: Sequence[int],
    filter_expr: Expr | None,
    view_type: ViewType,
    clause: OrderBy,
    offset: int,
    limit: int,
) -> sa.Select[str]:
    """Sort on one metric, param or tag as two arms, each cut at ``offset + limit`` rows: the
    runs with a value, walked in value order on the key's (key, value) index, then the runs
    without one (key missing, or NaN), newest first, read only if the first arm falls short.

    Same rows in the same order as the outer-join plan, which reads and sorts every matching
    run: for a first page, about a hundred index entries instead of every run. The params and
    tags indexes hold a prefix of the value: the walk follows the prefix and sorts only the runs
    that share one by the whole value (SQLite's and PostgreSQL's partial sort).

    SQLite, without statistics, would rather read a filtered experiment's runs through the
    experiment index and sort them all; the first arm hides that index from it, so the walk
    stops after ``offset + limit`` matches (as a walk does, it reads further the rarer the
    matching runs are among those having the key).
    """
    table = _KEYED_TABLES[clause.ident.entity]
    stages = [stage.value for stage in view_type.stages()]
    where: list[sa.ColumnElement[bool]] = [
        runs.c.experiment_id.in_(experiment_ids),
        runs.c.lifecycle_stage.in_(stages),
    ]
    walked = [_Unindexed(runs.c.experiment_id).in_(experiment_ids), *where[1:]]
    if filter_expr is not None:
        where.append(_predicate(filter_expr))
        walked.append(where[-1])
    value = table.c.value
    has_value: list[sa.ColumnElement[bool]] = [
        table.c.run_uuid == runs.c.run_uuid,
        table.c.key == clause.ident.key,
        value.is_not(None),
    ]
    head = offset + limit
    newest = (runs.c.start_time.desc(), runs.c.run_uuid.asc())

    def ordered(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return column.asc() if clause.ascending else column.desc()

    def by_value(column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
        if clause.ident.entity is Entity.METRIC:
            return [ordered(column)]
        return [ordered(ValuePrefix(column)), ordered(_Bytewise(column))]

    with_value = (
        sa.select(
            runs.c.run_uuid, sa.literal(0).label("missing"), value.label("v"), runs.c.start_time
        )
        .select_from(runs.join(table, sa.and_(*has_value)))
        .where(*walked)
        .order_by(*by_value(value), *newest)
        .limit(head)
    )
    # How many of the first ``head`` runs have a value: in the index's order (a plan reading
    # the table in its own order could scan far for a rare key), tie-breaks left out: no sort.
    filled = (
        sa.select(sa.func.count())
        .select_from(with_value.order_by(None).order_by(by_value(value)[0]).subquery())
        .scalar_subquery()
    )
    without = (
        sa.select(
            runs.c.run_uuid,
            sa.literal(1).label("missing"),
            sa.cast(sa.null(), value.type).label("v"),
            runs.c.start_time,
        )
        # Checked once, before any run is read: most pages never reach the runs without one.
        .where(filled < head, *where, ~sa.exists().where(*has_value).correlate(runs))
        .order_by(*newest)
        .limit(head)
    )
    both = sa.union_all(sa.select(with_value.subquery()), sa.select(without.subquery())).subquery()
    return (
        sa.select(both.c.run_uuid)
        .order_by(both.c.missing, *by_value(both.c.v), both.c.start_time.desc(), both.c.run_uuid)
        .offset(offset)
        .limit(limit)
    )
