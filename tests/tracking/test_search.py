"""The search language parser: filters and order-by clauses to AST, errors with positions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cairn.entities import RunStatus
from cairn.errors import InvalidParameterError, SearchSyntaxError
from cairn.tracking.search import (
    ATTRIBUTES,
    And,
    Comparison,
    Entity,
    Identifier,
    Op,
    Or,
    OrderBy,
    parse_filter,
    parse_order_by,
)

if TYPE_CHECKING:
    from cairn.tracking.search import Expr, Scalar


def metric(key: str) -> Identifier:
    return Identifier(Entity.METRIC, key)


def param(key: str) -> Identifier:
    return Identifier(Entity.PARAM, key)


def tag(key: str) -> Identifier:
    return Identifier(Entity.TAG, key)


def attr(key: str) -> Identifier:
    return Identifier(Entity.ATTRIBUTE, key)


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_nothing_to_filter_on(text: str | None) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.mae < 0.3", Comparison(metric("mae"), Op.LT, 0.3)),
        ("metrics.mae<0.3", Comparison(metric("mae"), Op.LT, 0.3)),
        ("metric.mae <= 1", Comparison(metric("mae"), Op.LE, 1.0)),
        ("metrics.mae > -1.5e-3", Comparison(metric("mae"), Op.GT, -0.0015)),
        ("metrics.mae >= .5", Comparison(metric("mae"), Op.GE, 0.5)),
        ("metrics.mae = 1E3", Comparison(metric("mae"), Op.EQ, 1000.0)),
        ("metrics.mae != +2", Comparison(metric("mae"), Op.NE, 2.0)),
        ("metrics.val-loss < 1", Comparison(metric("val-loss"), Op.LT, 1.0)),
        ("metrics.loss/train < 1", Comparison(metric("loss/train"), Op.LT, 1.0)),
        ("metrics.`a b` < 1", Comparison(metric("a b"), Op.LT, 1.0)),
        ('metrics."a b" < 1', Comparison(metric("a b"), Op.LT, 1.0)),
        ("metrics.`a``b` < 1", Comparison(metric("a`b"), Op.LT, 1.0)),
        ("metrics.mae IN (1, 2.5, -3)", Comparison(metric("mae"), Op.IN, (1.0, 2.5, -3.0))),
        ("metrics.mae not in (1)", Comparison(metric("mae"), Op.NOT_IN, (1.0,))),
        ("metrics.mae IS NULL", Comparison(metric("mae"), Op.IS_NULL, None)),
        ("metrics.mae is not null", Comparison(metric("mae"), Op.IS_NOT_NULL, None)),
        ("params.alpha = '0.5'", Comparison(param("alpha"), Op.EQ, "0.5")),
        ('params.alpha = "0.5"', Comparison(param("alpha"), Op.EQ, "0.5")),
        ("param.alpha != ''", Comparison(param("alpha"), Op.NE, "")),
        ("parameters.alpha > 'a'", Comparison(param("alpha"), Op.GT, "a")),
        ("params.note = 'it''s'", Comparison(param("note"), Op.EQ, "it's")),
        ('params.note = "say ""hi"""', Comparison(param("note"), Op.EQ, 'say "hi"')),
        ("params.path = 'C:\\tmp'", Comparison(param("path"), Op.EQ, "C:\\tmp")),
        ("params.and = 'x'", Comparison(param("and"), Op.EQ, "x")),
        ("params.a IN ('x', \"y\")", Comparison(param("a"), Op.IN, ("x", "y"))),
        ("params.a NOT LIKE 'x%'", Comparison(param("a"), Op.NOT_LIKE, "x%")),
        ("params.a not ilike 'x%'", Comparison(param("a"), Op.NOT_ILIKE, "x%")),
        ("tags.team LIKE 'vision%'", Comparison(tag("team"), Op.LIKE, "vision%")),
        ("tag.team ilike '%ViSiOn'", Comparison(tag("team"), Op.ILIKE, "%ViSiOn")),
        ("tags.team LIKE 'a\\%b'", Comparison(tag("team"), Op.LIKE, "a\\%b")),
        ("tags.mlflow.source.name = 'x'", Comparison(tag("mlflow.source.name"), Op.EQ, "x")),
        ("TAGS.Team = 'x'", Comparison(tag("Team"), Op.EQ, "x")),
        ("tags.team IS NULL", Comparison(tag("team"), Op.IS_NULL, None)),
        ("attributes.status = 'FINISHED'", Comparison(attr("status"), Op.EQ, "FINISHED")),
        ("attribute.status != 'RUNNING'", Comparison(attr("status"), Op.NE, "RUNNING")),
        ("attr.run_name LIKE 'x%'", Comparison(attr("run_name"), Op.LIKE, "x%")),
        ("run.name ILIKE 'x%'", Comparison(attr("run_name"), Op.ILIKE, "x%")),
        ("attributes.name = 'x'", Comparison(attr("run_name"), Op.EQ, "x")),
        ("attributes.run_uuid = 'abc'", Comparison(attr("run_id"), Op.EQ, "abc")),
        ("attributes.run_id IN ('a', 'b')", Comparison(attr("run_id"), Op.IN, ("a", "b"))),
        ("attributes.created > 100", Comparison(attr("start_time"), Op.GT, 100)),
        ("attributes.Created > 100", Comparison(attr("start_time"), Op.GT, 100)),
        ("attributes.start_time <= 1.7e12", Comparison(attr("start_time"), Op.LE, 1.7e12)),
        ("attributes.end_time IS NULL", Comparison(attr("end_time"), Op.IS_NULL, None)),
        ("attributes.end_time IN (1, 2)", Comparison(attr("end_time"), Op.IN, (1, 2))),
        ("attributes.user_id = 'ann'", Comparison(attr("user_id"), Op.EQ, "ann")),
        (
            "attributes.artifact_uri LIKE 's3://%'",
            Comparison(attr("artifact_uri"), Op.LIKE, "s3://%"),
        ),
        (
            "attributes.lifecycle_stage = 'deleted'",
            Comparison(attr("lifecycle_stage"), Op.EQ, "deleted"),
        ),
        ("attributes.experiment_id = '7'", Comparison(attr("experiment_id"), Op.EQ, "7")),
        ("attributes.experiment_id LIKE '1%'", Comparison(attr("experiment_id"), Op.LIKE, "1%")),
        (
            "metrics.mae < 0.3 and params.alpha = '0.5' and tags.team LIKE 'vision%' "
            "and attributes.status = 'FINISHED'",
            And(
                (
                    Comparison(metric("mae"), Op.LT, 0.3),
                    Comparison(param("alpha"), Op.EQ, "0.5"),
                    Comparison(tag("team"), Op.LIKE, "vision%"),
                    Comparison(attr("status"), Op.EQ, "FINISHED"),
                )
            ),
        ),
        (
            "metrics.a < 1 OR metrics.b < 2 AND metrics.c < 3",
            Or(
                (
                    Comparison(metric("a"), Op.LT, 1.0),
                    And((Comparison(metric("b"), Op.LT, 2.0), Comparison(metric("c"), Op.LT, 3.0))),
                )
            ),
        ),
        (
            "(metrics.a < 1 or metrics.b < 2) and metrics.c < 3",
            And(
                (
                    Or((Comparison(metric("a"), Op.LT, 1.0), Comparison(metric("b"), Op.LT, 2.0))),
                    Comparison(metric("c"), Op.LT, 3.0),
                )
            ),
        ),
        (
            "((metrics.a < 1)) and (metrics.b < 2 and (metrics.c < 3))",
            And(
                (
                    Comparison(metric("a"), Op.LT, 1.0),
                    Comparison(metric("b"), Op.LT, 2.0),
                    Comparison(metric("c"), Op.LT, 3.0),
                )
            ),
        ),
        (
            "metrics.a<1 or(metrics.b>2)OR metrics.c>=3",
            Or(
                (
                    Comparison(metric("a"), Op.LT, 1.0),
                    Comparison(metric("b"), Op.GT, 2.0),
                    Comparison(metric("c"), Op.GE, 3.0),
                )
            ),
        ),
    ],
)
def test_valid_filter(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


def test_numbers_keep_their_type() -> None:
    metric_value = parse_filter("metrics.a = 1")
    time_value = parse_filter("attributes.start_time = 1")
    assert isinstance(metric_value, Comparison) and type(metric_value.value) is float
    assert isinstance(time_value, Comparison) and type(time_value.value) is int


@pytest.mark.parametrize(
    ("text", "match", "position"),
    [
        ("mae < 0.3", r"'mae' needs an entity prefix: metrics\.mae, params\.mae", 0),
        ("metrics.a < 1 and loss > 2", r"'loss' needs an entity prefix", 18),
        ("foo.mae < 1", r"unknown entity 'foo' in 'foo\.mae'; expected metrics\., params\.", 0),
        ("metrics. < 1", r"expected a name after 'metrics\.'", 0),
        (
            "metrics.mae 0.3",
            r"expected a comparison operator \(=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS\) "
            r"after 'metrics\.mae'",
            12,
        ),
        ("metrics.mae", r"expected a comparison operator .* after 'metrics\.mae'", 11),
        ("metrics.mae == 1", r"unknown operator '=='; expected =, !=, <, <=, >, >=", 12),
        ("metrics.mae <> 1", r"unknown operator '<>'", 12),
        ("metrics.mae => 1", r"unknown operator '=>'", 12),
        ("metrics.mae < ", r"expected a value \(a number or a quoted string\) after '<'", 14),
        ("metrics.mae < )", r"expected a value .* got '\)'", 14),
        ("params.a = foo", r"expected a value .*, got 'foo'; quote strings: 'foo'", 11),
        ("params.a = params.b", r"expected a value .*, got 'params\.b'", 11),
        ("params.a = 'abc", r"unterminated string \(missing closing '\)", 11),
        ('params.a = "abc', r'unterminated string \(missing closing "\)', 11),
        ("params.`abc = 'x'", r"unterminated quoted name", 7),
        ('metrics."abc < 1', r"unterminated quoted name", 8),
        ("metrics.mae < 'a'", r"metrics values are numbers, got 'a'", 14),
        ("metrics.mae < '0.3'", r"metrics values are numbers, unquote it: 0\.3", 14),
        ("metrics.mae IN (1, 'x')", r"metrics values are numbers", 19),
        ("params.alpha = 0.5", r"params values are strings, quote it: '0\.5'", 15),
        ("tags.t IN ('a', 1)", r"tags values are strings, quote it: '1'", 16),
        ("params.a LIKE 5", r"params values are strings, quote it: '5'", 14),
        ("metrics.mae LIKE 'x%'", r"LIKE does not apply to metrics; use =, !=, <", 12),
        ("metrics.mae NOT ILIKE 'x%'", r"NOT ILIKE does not apply to metrics", 12),
        ("metrics.mae NOT = 1", r"expected LIKE, ILIKE or IN after NOT, got '='", 16),
        ("metrics.mae IS 1", r"expected NULL or NOT NULL after IS, got '1'", 15),
        ("metrics.mae IS NOT 1", r"expected NULL after IS NOT, got '1'", 19),
        ("metrics.mae IN 1", r"expected '\(' after IN, got '1'", 15),
        ("metrics.mae IN ()", r"expected a value .* after 'IN', got '\)'", 16),
        ("metrics.mae IN (1 2)", r"expected ',' or '\)' in the IN list, got '2'", 18),
        ("metrics.mae IN (1,", r"expected a value", 18),
        ("metrics.a < 1 foo", r"unexpected 'foo'; expected AND, OR or the end of the filter", 14),
        ("metrics.a < 1 metrics.b < 2", r"unexpected 'metrics\.b'", 14),
        ("metrics.a < 1 and", r"expected an identifier such as metrics\.mae.*got the end", 17),
        ("metrics.a < 1 and or metrics.b < 1", r"expected an identifier .* got 'or'", 18),
        ("and metrics.a < 1", r"expected an identifier .* got 'and'", 0),
        ("(metrics.a < 1", r"expected '\)' to close the '\(' at position 0, got the end", 14),
        ("((metrics.a < 1)", r"expected '\)' to close the '\(' at position 0", 16),
        ("metrics.a < 1)", r"unexpected '\)' without a matching '\('", 13),
        ("()", r"expected an identifier .* got '\)'", 1),
        ("NOT metrics.a < 1", r"expected an identifier .* got 'NOT'", 0),
        ("1 < metrics.a", r"expected an identifier .* got '1'", 0),
        ("`a` = 'x'", r"expected an identifier .* got '`a`'", 0),
        (
            "attributes.foo = 'x'",
            r"unknown attribute 'foo'; expected one of artifact_uri, end_time",
            0,
        ),
        (
            "attributes.status = 'finished'",
            r"unknown status 'finished'; expected one of FAILED, FINISHED",
            20,
        ),
        ("attributes.status IN ('FINISHED', 'DONE')", r"unknown status 'DONE'", 34),
        (
            "attributes.lifecycle_stage = 'gone'",
            r"unknown lifecycle_stage 'gone'; expected one of active, deleted",
            29,
        ),
        ("attributes.status < 'A'", r"< does not apply to attributes\.status; use =, !=, LIKE", 18),
        ("attributes.status IS NULL", r"IS NULL does not apply to attributes\.status", 18),
        (
            "attributes.start_time IS NULL",
            r"IS NULL does not apply to attributes\.start_time; "
            r"use =, !=, <, <=, >, >=, IN or NOT IN",
            22,
        ),
        (
            "attributes.end_time LIKE '1%'",
            r"LIKE does not apply to attributes\.end_time; use .*, IS NULL or IS NOT NULL",
            20,
        ),
        (
            "attributes.start_time > '100'",
            r"attributes\.start_time values are numbers, unquote it: 100",
            24,
        ),
        (
            "attributes.start_time > 100.5",
            r"attributes\.start_time values are integers \(milliseconds\)",
            24,
        ),
        ("attributes.start_time > 1e30", r"number 1e30 is out of range", 24),
        (
            "attributes.end_time = 99999999999999999999",
            r"number 99999999999999999999 is out of range",
            22,
        ),
        ("attributes.run_id = 5", r"attributes\.run_id values are strings, quote it: '5'", 20),
        (
            "attributes.experiment_id = 1",
            r"attributes\.experiment_id values are strings, quote it: '1'",
            27,
        ),
        (
            "attributes.experiment_id = 'abc'",
            r"experiment ids are integers such as '1', got 'abc'",
            27,
        ),
        ("params.a LIKE 'x\\'", r"LIKE pattern ends with an unescaped backslash", 14),
        (
            "params.a = 'x' and params.b LIKE '\\\\\\'",
            r"LIKE pattern ends with an unescaped backslash",
            33,
        ),
    ],
)
def test_invalid_filter(text: str, match: str, position: int) -> None:
    with pytest.raises(SearchSyntaxError, match=match) as info:
        parse_filter(text)
    assert info.value.position == position
    assert info.value.text == text
    assert isinstance(info.value, InvalidParameterError)


def test_error_message_points_at_the_offending_token() -> None:
    with pytest.raises(SearchSyntaxError, match="expected a value") as info:
        parse_filter("metrics.a < 1 and params.b = nope")
    assert info.value.message.endswith(
        "\n  metrics.a < 1 and params.b = nope\n                               ^"
    )


def test_unknown_attribute_lists_every_valid_one() -> None:
    with pytest.raises(SearchSyntaxError, match="unknown attribute") as info:
        parse_filter("attributes.colour = 'red'")
    assert all(name in info.value.message for name in ATTRIBUTES)


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        (None, []),
        ([], []),
        (["metrics.mae"], [OrderBy(metric("mae"))]),
        (["metrics.mae ASC"], [OrderBy(metric("mae"), ascending=True)]),
        (["metrics.mae DESC"], [OrderBy(metric("mae"), ascending=False)]),
        (["metrics.mae desc"], [OrderBy(metric("mae"), ascending=False)]),
        (["params.`my key` desc"], [OrderBy(param("my key"), ascending=False)]),
        (['tags."a b"'], [OrderBy(tag("a b"))]),
        (["  attributes.created  DESC "], [OrderBy(attr("start_time"), ascending=False)]),
        (["run.name", "attr.run_uuid"], [OrderBy(attr("run_name")), OrderBy(attr("run_id"))]),
        (
            ["metrics.mae DESC", "params.alpha", "attributes.start_time ASC"],
            [
                OrderBy(metric("mae"), ascending=False),
                OrderBy(param("alpha")),
                OrderBy(attr("start_time")),
            ],
        ),
    ],
)
def test_valid_order_by(clauses: list[str] | None, expected: list[OrderBy]) -> None:
    assert parse_order_by(clauses) == expected


@pytest.mark.parametrize(
    ("clause", "match", "position"),
    [
        ("", r"expected a column to order by, such as metrics\.mae", 0),
        ("mae", r"'mae' needs an entity prefix", 0),
        ("metrics.mae DOWN", r"unexpected 'DOWN'; expected ASC, DESC or the end", 12),
        ("metrics.mae ASC DESC", r"unexpected 'DESC'; expected ASC, DESC or the end", 16),
        ("metrics.mae, params.a", r"unexpected ','", 11),
        ("attributes.colour", r"unknown attribute 'colour'", 0),
        ("metrics.`mae", r"unterminated quoted name", 8),
        ("DESC", r"expected a column to order by|expected an identifier", 0),
        ("bogus.x ASC", r"unknown entity 'bogus'", 0),
    ],
)
def test_invalid_order_by(clause: str, match: str, position: int) -> None:
    with pytest.raises(SearchSyntaxError, match=match) as info:
        parse_order_by(["metrics.ok", clause])
    assert info.value.position == position
    assert info.value.text == clause


def test_order_by_must_be_a_list() -> None:
    with pytest.raises(SearchSyntaxError, match="order_by must be a list of clauses"):
        parse_order_by("metrics.mae DESC")


# -- properties ---------------------------------------------------------------------------

_BARE_KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-./]{0,12}", fullmatch=True)
_ANY_KEY = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1)
_STRING = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_NUMBER = st.floats(allow_nan=False, allow_infinity=False, width=64)
_TIME = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_STRING_ATTRIBUTES = ["run_id", "run_name", "user_id", "artifact_uri"]

_PREFIXES = {
    "metrics": Entity.METRIC,
    "metric": Entity.METRIC,
    "METRICS": Entity.METRIC,
    "params": Entity.PARAM,
    "param": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tags": Entity.TAG,
    "tag": Entity.TAG,
}


def _quote(text: str, quote: str) -> str:
    return quote + text.replace(quote, quote * 2) + quote


def _render_key(key: str, draw: st.DrawFn) -> str:
    bare_ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-./]*", key) is not None
    if bare_ok and draw(st.booleans()):
        return key
    return _quote(key, draw(st.sampled_from(["`", '"'])))


def _render_value(value: Scalar, draw: st.DrawFn) -> str:
    if isinstance(value, str):
        return _quote(value, draw(st.sampled_from(["'", '"'])))
    return repr(value)


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[str, Comparison]:
    """A comparison and one of its spellings (random case, quoting and spacing)."""
    kind = draw(st.sampled_from(["metric", "param", "tag", "string_attr", "time_attr", "status"]))
    ops = [Op.EQ, Op.NE, Op.IN, Op.NOT_IN]
    values: st.SearchStrategy[Scalar]
    if kind in ("metric", "param", "tag"):
        entity = {"metric": Entity.METRIC, "param": Entity.PARAM, "tag": Entity.TAG}[kind]
        key = draw(st.one_of(_BARE_KEY, _ANY_KEY))
        prefix = draw(st.sampled_from([p for p, e in _PREFIXES.items() if e is entity]))
        written = f"{prefix}.{_render_key(key, draw)}"
        ops += [Op.LT, Op.LE, Op.GT, Op.GE, Op.IS_NULL, Op.IS_NOT_NULL]
        if entity is Entity.METRIC:
            values = _NUMBER
        else:
            ops += [Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE]
            values = _STRING.filter(lambda s: not s.endswith("\\"))
        ident = Identifier(entity, key)
    else:
        if kind == "string_attr":
            key = draw(st.sampled_from(_STRING_ATTRIBUTES))
        elif kind == "status":
            key = "status"
        else:
            key = draw(st.sampled_from(["start_time", "end_time"]))
        written = f"{draw(st.sampled_from(['attributes', 'attribute', 'attr', 'run']))}.{key}"
        ident = Identifier(Entity.ATTRIBUTE, key)
        if kind == "time_attr":
            ops += [Op.LT, Op.LE, Op.GT, Op.GE]
            values = _TIME
        else:
            ops += [Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE]
            values = st.sampled_from([s.value for s in RunStatus]) if kind == "status" else _STRING
            values = values.filter(lambda s: not str(s).endswith("\\"))
    op = draw(st.sampled_from(ops))
    space = " " * draw(st.integers(0, 2)) if op.value[0] in "=!<>" else " "
    op_text = draw(st.sampled_from([op.value, op.value.lower(), op.value.title()]))
    value: Scalar | tuple[Scalar, ...] | None
    if op in (Op.IS_NULL, Op.IS_NOT_NULL):
        value, value_text = None, ""
    elif op in (Op.IN, Op.NOT_IN):
        value = tuple(draw(st.lists(values, min_size=1, max_size=3)))
        value_text = "(" + ", ".join(_render_value(v, draw) for v in value) + ")"
    else:
        value = draw(values)
        value_text = _render_value(value, draw)
    return f"{written}{space}{op_text}{space}{value_text}", Comparison(ident, op, value)


def _join(word: str, parts: list[tuple[str, Expr]], node: type[And] | type[Or]) -> tuple[str, Expr]:
    text = f" {word} ".join(f"({part_text})" for part_text, _ in parts)
    operands: list[Expr] = []
    for _, part in parts:
        operands.extend(part.operands if isinstance(part, node) else (part,))
    return text, node(tuple(operands))


filters = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda ps: _join("AND", ps, And)),
        st.lists(children, min_size=2, max_size=3).map(lambda ps: _join("or", ps, Or)),
    ),
    max_leaves=8,
)


@given(filters)
def test_well_formed_filters_parse_to_their_ast(case: tuple[str, Expr]) -> None:
    text, expected = case
    assert parse_filter(text) == expected


_TOKENS = [
    "metrics.a", "params.`b c`", "tags.t", "attributes.status", "attr.start_time", "foo",
    "=", "!=", "<", "<=", ">", ">=", "==", "LIKE", "ILIKE", "NOT", "IN", "IS", "NULL", "AND",
    "OR", "(", ")", ",", "1", "-2.5e3", "'x'", '"y"', "'", '"', "`", "'FINISHED'", "ASC", "\\",
]  # fmt: skip


@given(st.one_of(st.text(), st.lists(st.sampled_from(_TOKENS)).map(" ".join)))
@example("metrics.a < 1 and (params.b = 'x' or tags.c IS NULL")
@example("metrics.")
@example('metrics."')
def test_any_text_parses_or_raises_search_syntax_error(text: str) -> None:
    try:
        parse_filter(text)
    except SearchSyntaxError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
    try:
        parse_order_by([text])
    except SearchSyntaxError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
