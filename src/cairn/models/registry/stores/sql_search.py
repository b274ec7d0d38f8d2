"""Compile a parsed registry search into SQL: one SELECT of the page's keys, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cairn.models.registry.search import (
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    parse_registry_filter,
    parse_registry_order_by,
)
from cairn.tracking.search import And, Comparison, Entity, Op, Or, OrderBy
from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql.search import _Bytewise, _value_predicate

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cairn.tracking.search import Expr

    TagPredicate = Callable[[Comparison], sa.ColumnElement[bool]]

__all__ = ["select_model_keys", "select_version_keys"]

_rm = t.registered_models
_mv = t.model_versions

_MODEL_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "name": _rm.c.name,
    "creation_timestamp": _rm.c.creation_timestamp,
    "last_updated_timestamp": _rm.c.last_updated_timestamp,
}
_VERSION_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "name": _rm.c.name,
    "run_id": _mv.c.run_id,
    "source_path": _mv.c.source,
    "version_number": _mv.c.version,
    "creation_timestamp": _mv.c.creation_timestamp,
    "last_updated_timestamp": _mv.c.last_updated_timestamp,
}
# A negated tag comparison is the absence of a tag matching the positive one.
_NEGATED = {Op.NE: Op.EQ, Op.NOT_LIKE: Op.LIKE, Op.NOT_ILIKE: Op.ILIKE, Op.NOT_IN: Op.IN}


def _model_tag_exists(comparison: Comparison) -> sa.ColumnElement[bool]:
    tags = t.registered_model_tags
    conditions = [
        tags.c.registered_model_id == _rm.c.registered_model_id,
        tags.c.key == comparison.ident.key,
    ]
    return _keyed(tags.c.value, conditions, comparison, _rm)


def _version_tag_exists(comparison: Comparison) -> sa.ColumnElement[bool]:
    tags = t.model_version_tags
    conditions = [
        tags.c.registered_model_id == _mv.c.registered_model_id,
        tags.c.version == _mv.c.version,
        tags.c.key == comparison.ident.key,
    ]
    return _keyed(tags.c.value, conditions, comparison, _mv)


def _keyed(
    value: sa.ColumnElement[Any],
    conditions: list[sa.ColumnElement[bool]],
    comparison: Comparison,
    outer: sa.Table,
) -> sa.ColumnElement[bool]:
    """A correlated EXISTS on the tag table; IS NULL means the tag is missing.

    Negations match what lacks the tag too, as MLflow's registry does: its clients append
    ``tags.`mlflow.prompt.is_prompt` != 'true'`` to every search to leave prompts out.
    """
    op = _NEGATED.get(comparison.op, comparison.op)
    if op not in (Op.IS_NULL, Op.IS_NOT_NULL):
        conditions.append(_value_predicate(value, op, comparison.value))
    exists = sa.exists().where(*conditions).correlate(outer)
    negated = comparison.op is Op.IS_NULL or comparison.op in _NEGATED
    return ~exists if negated else exists


def _predicate(
    expr: Expr,
    columns: dict[str, sa.ColumnElement[Any]],
    tag_exists: TagPredicate,
) -> sa.ColumnElement[bool]:
    if isinstance(expr, And):
        return sa.and_(*(_predicate(e, columns, tag_exists) for e in expr.operands))
    if isinstance(expr, Or):
        return sa.or_(*(_predicate(e, columns, tag_exists) for e in expr.operands))
    if expr.ident.entity is Entity.TAG:
        return tag_exists(expr)
    return _value_predicate(columns[expr.ident.key], expr.op, expr.value)


def _sort_keys(
    order_by: Sequence[OrderBy], columns: dict[str, sa.ColumnElement[Any]]
) -> list[sa.ColumnElement[Any]]:
    keys: list[sa.ColumnElement[Any]] = []
    for clause in order_by:
        column = columns[clause.ident.key]
        if isinstance(column.type, sa.String):
            column = _Bytewise(column)  # the same order on SQLite and PostgreSQL
        keys.append(column.asc() if clause.ascending else column.desc())
    return keys


def select_model_keys(
    filter_string: str | None, order_by: Sequence[str] | None, offset: int, limit: int
) -> sa.Select[Any]:
    """``registered_model_id`` of one page of matching models (default order: by name)."""
    expr = parse_registry_filter(filter_string, REGISTERED_MODELS)
    clauses = parse_registry_order_by(order_by, REGISTERED_MODELS)
    query = sa.select(_rm.c.registered_model_id)
    if expr is not None:
        query = query.where(_predicate(expr, _MODEL_COLUMNS, _model_tag_exists))
    keys = _sort_keys(clauses, _MODEL_COLUMNS)
    keys += [_Bytewise(_rm.c.name).asc(), _rm.c.registered_model_id.asc()]
    return query.order_by(*keys).offset(offset).limit(limit)


def select_version_keys(
    filter_string: str | None, order_by: Sequence[str] | None, offset: int, limit: int
) -> sa.Select[Any]:
    """``(registered_model_id, version)`` of one page of matching versions.

    Default order, as MLflow's: most recently updated first, then name, then newest version.
    """
    expr = parse_registry_filter(filter_string, MODEL_VERSIONS)
    clauses = parse_registry_order_by(order_by, MODEL_VERSIONS) or parse_registry_order_by(
        ["last_updated_timestamp DESC"], MODEL_VERSIONS
    )
    query = sa.select(_mv.c.registered_model_id, _mv.c.version).select_from(
        _mv.join(_rm, _rm.c.registered_model_id == _mv.c.registered_model_id)
    )
    if expr is not None:
        query = query.where(_predicate(expr, _VERSION_COLUMNS, _version_tag_exists))
    keys = _sort_keys(clauses, _VERSION_COLUMNS)
    keys += [_Bytewise(_rm.c.name).asc(), _mv.c.version.desc()]
    return query.order_by(*keys).offset(offset).limit(limit)
