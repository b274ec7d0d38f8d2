"""select_run_ids against real databases: every operator, ordering, paging and view types."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.entities import RunStatus, ViewType
from cairn.errors import InvalidParameterError
from cairn.tracking.search import (
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
from cairn.tracking.stores.sql import schema
from cairn.tracking.stores.sql.search import select_run_ids

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from cairn.tracking.search import Expr, Scalar

NAN = math.nan


@dataclass(frozen=True)
class FakeRun:
    run_id: str
    name: str
    status: str
    user_id: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str = "active"
    experiment_id: int = 1
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def artifact_uri(self) -> str:
        return f"file:///tmp/artifacts/{self.run_id}/artifacts"


RUNS = [
    FakeRun(
        "r01", "alpha-1", "FINISHED", "alice", 1000, 1100,
        metrics={"mae": 0.1, "acc": 0.9},
        params={"alpha": "0.5", "model": "cnn"},
        tags={"team": "vision", "Priority": "High"},
    ),
    FakeRun(
        "r02", "alpha-2", "FINISHED", "alice", 2000, 2100,
        metrics={"mae": 0.2, "acc": 0.8},
        params={"alpha": "0.1", "model": "CNN"},
        tags={"team": "Vision"},
    ),
    FakeRun(
        "r03", "beta-1", "FAILED", "bob", 3000, 3050,
        metrics={"mae": 0.3},
        params={"alpha": "1.0", "model": "rnn"},
        tags={"team": "nlp"},
    ),
    FakeRun(
        "r04", "beta-2", "RUNNING", "bob", 4000, None,
        metrics={"mae": NAN, "acc": 0.5},
        params={"alpha": "0.5"},
        tags={"team": "vision-x"},
    ),
    FakeRun(
        "r05", "gamma", "FINISHED", "carol", 5000, 5200,
        params={"model": "mlp"},
        tags={"team": "audio", "glob": "a*b?[c]"},
    ),
    FakeRun(
        "r06", "Gamma", "KILLED", "carol", 6000, 6001,
        metrics={"mae": 0.6, "acc": 0.4},
        params={"alpha": "2"},
        tags={"glob": "aXb?[c]"},
    ),
    FakeRun(
        "r07", "delta_1", "FINISHED", "dave", 7000, 7100,
        metrics={"mae": -1.5},
        params={"alpha": "10"},
        tags={"team": "vis%on"},
    ),
    FakeRun(
        "r08", "delta%1", "SCHEDULED", "dave", 8000, None,
        metrics={"acc": 1.0},
        params={"my key": "v"},
        tags={"mlflow.note": "x_y"},
    ),
    FakeRun(
        "r09", "deleted-run", "FINISHED", "alice", 9000, 9100, lifecycle_stage="deleted",
        metrics={"mae": 0.05},
        tags={"team": "vision"},
    ),
    FakeRun("r10", "same-time-a", "FINISHED", "erin", 10000, 10100, metrics={"mae": 0.2}),
    FakeRun("r11", "same-time-b", "FINISHED", "erin", 10000, None),
    FakeRun(
        "r12", "other-experiment", "FINISHED", "alice", 500, 600, experiment_id=2,
        metrics={"mae": 0.1},
        tags={"team": "vision"},
    ),
]  # fmt: skip
BY_ID = {run.run_id: run for run in RUNS}
ACTIVE_IN_ONE = ["r10", "r11", "r08", "r07", "r06", "r05", "r04", "r03", "r02", "r01"]


def _insert_runs(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.experiments),
            [
                {"experiment_id": 1, "name": "one", "artifact_location": "file:///tmp/1"},
                {"experiment_id": 2, "name": "two", "artifact_location": "file:///tmp/2"},
            ],
        )
        conn.execute(
            sa.insert(schema.runs),
            [
                {
                    "run_uuid": run.run_id,
                    "experiment_id": run.experiment_id,
                    "name": run.name,
                    "user_id": run.user_id,
                    "status": run.status,
                    "start_time": run.start_time,
                    "end_time": run.end_time,
                    "lifecycle_stage": run.lifecycle_stage,
                    "artifact_uri": run.artifact_uri,
                }
                for run in RUNS
            ],
        )
        conn.execute(
            sa.insert(schema.latest_metrics),
            [
                {
                    "run_uuid": run.run_id,
                    "key": key,
                    "value": None if math.isnan(value) else value,
                    "timestamp": run.start_time,
                    "step": 0,
                }
                for run in RUNS
                for key, value in run.metrics.items()
            ],
        )
        for table, attribute in ((schema.params, "params"), (schema.tags, "tags")):
            conn.execute(
                sa.insert(table),
                [
                    {"run_uuid": run.run_id, "key": key, "value": value}
                    for run in RUNS
                    for key, value in getattr(run, attribute).items()
                ],
            )


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    path = tmp_path_factory.mktemp("search") / "cairn.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    _insert_runs(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def postgres_engine(postgres_server: str) -> Iterator[sa.Engine]:
    url = sa.make_url(postgres_server).set(drivername="postgresql+psycopg")
    dbname = f"cairn_search_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    engine = sa.create_engine(url.set(database=dbname))
    try:
        schema.metadata.create_all(engine)
        _insert_runs(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    """The same runs in SQLite and in PostgreSQL: every query must answer the same on both."""
    result: sa.Engine = request.getfixturevalue(f"{request.param}_engine")
    return result


def run_ids(
    engine: sa.Engine,
    filter_text: str | None = None,
    order_by: Sequence[str] = (),
    *,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    experiment_ids: Sequence[int] = (1,),
    offset: int = 0,
    limit: int = 1000,
) -> list[str]:
    """Parse, compile and execute one search; the matching run ids in result order."""
    query = select_run_ids(
        experiment_ids,
        parse_filter(filter_text),
        view_type,
        parse_order_by(order_by),
        offset,
        limit,
    )
    with engine.connect() as conn:
        return list(conn.scalars(query))


def test_no_filter_returns_the_active_runs_newest_first(engine: sa.Engine) -> None:
    assert run_ids(engine) == ACTIVE_IN_ONE


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        # metrics: numbers; a NaN value (stored as NULL) never compares
        ("metrics.mae < 0.25", {"r01", "r02", "r07", "r10"}),
        ("metrics.mae <= 0.2", {"r01", "r02", "r07", "r10"}),
        ("metrics.mae > 0.2", {"r03", "r06"}),
        ("metrics.mae >= 0.3", {"r03", "r06"}),
        ("metrics.mae = 0.2", {"r02", "r10"}),
        ("metrics.mae != 0.2", {"r01", "r03", "r06", "r07"}),
        ("metrics.mae > -2e0", {"r01", "r02", "r03", "r06", "r07", "r10"}),
        ("metric.acc IN (0.9, 1)", {"r01", "r08"}),
        ("metrics.acc NOT IN (0.9, 1)", {"r02", "r04", "r06"}),
        ("metrics.mae IS NULL", {"r05", "r08", "r11"}),
        ("metrics.mae IS NOT NULL", {"r01", "r02", "r03", "r04", "r06", "r07", "r10"}),
        ("metrics.missing < 100", set()),
        # params: strings; != means "has the key with another value"
        ("params.alpha = '0.5'", {"r01", "r04"}),
        ("params.alpha != '0.5'", {"r02", "r03", "r06", "r07"}),
        ("params.alpha > '1'", {"r03", "r06", "r07"}),
        ("params.alpha < '1'", {"r01", "r02", "r04"}),
        ("params.alpha IN ('0.1', '2')", {"r02", "r06"}),
        ("params.alpha NOT IN ('0.1', '2')", {"r01", "r03", "r04", "r07"}),
        ("params.model IS NULL", {"r04", "r06", "r07", "r08", "r10", "r11"}),
        ("params.model = 'cnn'", {"r01"}),
        ("params.`my key` = 'v'", {"r08"}),
        ('params."my key" IS NOT NULL', {"r08"}),
        # tags: LIKE is case-sensitive, ILIKE is not, on every database
        ("tags.team LIKE 'vision%'", {"r01", "r04"}),
        ("tags.team ILIKE 'vision%'", {"r01", "r02", "r04"}),
        ("tags.team NOT LIKE 'vision%'", {"r02", "r03", "r05", "r07"}),
        ("tags.team NOT ILIKE 'vision%'", {"r03", "r05", "r07"}),
        ("tags.team LIKE 'VISION'", set()),
        ("tags.team ILIKE 'VISION'", {"r01", "r02"}),
        ("tags.team LIKE 'vis_on'", {"r01", "r07"}),
        ("tags.team LIKE 'vis\\%on'", {"r07"}),
        ("tags.team LIKE '%'", {"r01", "r02", "r03", "r04", "r05", "r07"}),
        ("tags.glob LIKE 'a*b?[c]'", {"r05"}),
        ("tags.glob LIKE 'a*b%'", {"r05"}),
        ("tags.glob LIKE '_*b?[c_'", {"r05"}),
        ("tags.glob ILIKE 'A*B?[C]'", {"r05"}),
        ("tags.glob = 'a*b?[c]'", {"r05"}),
        ("tags.mlflow.note = 'x_y'", {"r08"}),
        ("tags.`mlflow.note` LIKE 'x\\_y'", {"r08"}),
        ("tags.Priority = 'High'", {"r01"}),
        ("tags.priority = 'High'", set()),
        # attributes
        ("attributes.status = 'FINISHED'", {"r01", "r02", "r05", "r07", "r10", "r11"}),
        ("attributes.status != 'FINISHED'", {"r03", "r04", "r06", "r08"}),
        ("attributes.status IN ('FAILED', 'KILLED')", {"r03", "r06"}),
        ("attributes.status NOT IN ('FINISHED', 'RUNNING')", {"r03", "r06", "r08"}),
        ("attributes.run_name LIKE 'gamma'", {"r05"}),
        ("attributes.run_name ILIKE 'gamma'", {"r05", "r06"}),
        ("attributes.run_name LIKE 'delta_1'", {"r07", "r08"}),
        ("run.name LIKE 'delta\\%%'", {"r08"}),
        ("attributes.run_name NOT LIKE '%-%'", {"r05", "r06", "r07", "r08"}),
        ("attributes.user_id = 'alice'", {"r01", "r02"}),
        ("attributes.run_id IN ('r01', 'r03')", {"r01", "r03"}),
        ("attributes.run_uuid = 'r01'", {"r01"}),
        ("attributes.start_time >= 7000", {"r07", "r08", "r10", "r11"}),
        ("attributes.created < 2.5e3", {"r01", "r02"}),
        ("attributes.end_time IS NULL", {"r04", "r08", "r11"}),
        ("attributes.end_time > 5000", {"r05", "r06", "r07", "r10"}),
        ("attributes.end_time IN (1100, 3050)", {"r01", "r03"}),
        ("attributes.experiment_id = '1'", set(ACTIVE_IN_ONE)),
        ("attributes.experiment_id != '1'", set()),
        ("attributes.experiment_id IN ('2', '3')", set()),
        ("attributes.experiment_id LIKE '1%'", set(ACTIVE_IN_ONE)),
        ("attributes.lifecycle_stage = 'active'", set(ACTIVE_IN_ONE)),
        ("attributes.artifact_uri LIKE '%/r01/%'", {"r01"}),
        # AND binds tighter than OR; parentheses override
        ("metrics.mae < 0.25 and params.alpha = '0.5'", {"r01"}),
        ("params.alpha = '0.5' OR tags.team = 'nlp'", {"r01", "r03", "r04"}),
        ("params.alpha = '0.5' or tags.team = 'nlp' and metrics.mae > 1", {"r01", "r04"}),
        ("(params.alpha = '0.5' or tags.team = 'nlp') and metrics.mae > 0.2", {"r03"}),
        ("metrics.mae IS NULL OR metrics.mae > 0.5", {"r05", "r06", "r08", "r11"}),
        (
            "((tags.team ILIKE 'v%' and params.model IS NOT NULL) or attributes.user_id = 'carol')"
            " and attributes.status = 'FINISHED'",
            {"r01", "r02", "r05"},
        ),
    ],
)
def test_filter(engine: sa.Engine, filter_text: str, expected: set[str]) -> None:
    assert set(run_ids(engine, filter_text)) == expected


def test_like_patterns_of_the_same_shape_do_not_share_a_cached_statement(
    engine: sa.Engine,
) -> None:
    # The LIKE construct carries the pattern twice (LIKE and GLOB forms); both must rebind.
    assert run_ids(engine, "tags.team LIKE 'nlp'") == ["r03"]
    assert run_ids(engine, "tags.team LIKE 'audio'") == ["r05"]
    assert run_ids(engine, "tags.team NOT LIKE '%i%'") == ["r03"]
    assert run_ids(engine, "tags.team NOT LIKE '%-%'") == ["r07", "r05", "r03", "r02", "r01"]


@pytest.mark.parametrize(
    ("view_type", "filter_text", "expected"),
    [
        (ViewType.ACTIVE_ONLY, None, ACTIVE_IN_ONE),
        (ViewType.DELETED_ONLY, None, ["r09"]),
        (ViewType.ALL, None, ["r10", "r11", "r09", *ACTIVE_IN_ONE[2:]]),
        (ViewType.ALL, "attributes.user_id = 'alice'", ["r09", "r02", "r01"]),
        (ViewType.DELETED_ONLY, "attributes.lifecycle_stage = 'active'", []),
    ],
)
def test_view_type(
    engine: sa.Engine, view_type: ViewType, filter_text: str | None, expected: list[str]
) -> None:
    assert run_ids(engine, filter_text, view_type=view_type) == expected


@pytest.mark.parametrize(
    ("experiment_ids", "expected"),
    [((1, 2), {*ACTIVE_IN_ONE, "r12"}), ((2,), {"r12"}), ((3,), set()), ((), set())],
)
def test_experiment_ids(
    engine: sa.Engine, experiment_ids: tuple[int, ...], expected: set[str]
) -> None:
    assert set(run_ids(engine, experiment_ids=experiment_ids)) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # NaN (r04) and missing values sort last in both directions, newest first among them
        (["metrics.mae"], "r07 r01 r10 r02 r03 r06 r11 r08 r05 r04"),
        (["metrics.mae DESC"], "r06 r03 r10 r02 r01 r07 r11 r08 r05 r04"),
        # strings sort by code point: uppercase before lowercase, '%' before letters
        (["params.alpha ASC"], "r02 r04 r01 r03 r07 r06 r10 r11 r08 r05"),
        (["tags.team desc"], "r04 r01 r07 r03 r05 r02 r10 r11 r08 r06"),
        (["attributes.run_name"], "r06 r01 r02 r03 r04 r08 r07 r05 r10 r11"),
        (["attributes.end_time DESC"], "r10 r07 r06 r05 r03 r02 r01 r11 r08 r04"),
        (["attributes.end_time"], "r01 r02 r03 r05 r06 r07 r10 r11 r08 r04"),
        (["attributes.created"], "r01 r02 r03 r04 r05 r06 r07 r08 r10 r11"),
        (
            ["attributes.status", "attributes.run_id DESC"],
            "r03 r11 r10 r07 r05 r02 r01 r06 r04 r08",
        ),
        # one join per clause, even on the same table
        (["params.alpha", "metrics.mae DESC"], "r02 r01 r04 r03 r07 r06 r10 r11 r08 r05"),
        (["metrics.acc DESC", "metrics.mae"], "r08 r01 r02 r04 r06 r07 r10 r03 r11 r05"),
        (["metrics.nothing DESC"], " ".join(ACTIVE_IN_ONE)),
        ([], " ".join(ACTIVE_IN_ONE)),
    ],
)
def test_order_by(engine: sa.Engine, order_by: list[str], expected: str) -> None:
    assert run_ids(engine, order_by=order_by) == expected.split()


def test_order_by_combines_with_a_filter(engine: sa.Engine) -> None:
    ids = run_ids(engine, "tags.team ILIKE 'vision%'", ["metrics.acc"])
    assert ids == ["r04", "r02", "r01"]


@pytest.mark.parametrize(
    "filter_text",
    [
        "metrics.mae < 0.25",
        "metrics.mae >= 0.1 and params.alpha != 'x'",
        "metrics.mae = 0.2",
        "tags.team != 'x' and metrics.mae > 0",
    ],
)
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sorting_on_a_filtered_metric_matches_the_general_plan(
    engine: sa.Engine, filter_text: str, direction: str
) -> None:
    """Sorting by a metric the filter bounds takes an inner-join plan; same rows, same order."""
    fast = run_ids(engine, filter_text, [f"metrics.mae {direction}"])
    # "or false-ish" keeps the bound out of the top level, forcing the outer-join plan.
    general = run_ids(
        engine,
        f"({filter_text}) or metrics.mae IS NULL and metrics.mae IS NOT NULL",
        [f"metrics.mae {direction}"],
    )
    assert fast == general
    assert fast, "the filter should match some runs"


@pytest.mark.parametrize("filter_text", [None, "params.alpha != 'x'", "tags.team ILIKE 'vision%'"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sorting_by_one_metric_matches_the_general_plan_page_by_page(
    engine: sa.Engine, filter_text: str | None, direction: str
) -> None:
    """One metric clause takes the two-arm plan (values first, then missing and NaN); a second
    clause that changes nothing (the tie-break) forces the general outer-join plan."""
    general = run_ids(
        engine, filter_text, [f"metrics.mae {direction}", "attributes.start_time DESC"]
    )
    for limit in (1, 2, 4):
        pages = [
            run_ids(engine, filter_text, [f"metrics.mae {direction}"], offset=o, limit=limit)
            for o in range(0, 12, limit)
        ]
        assert [run_id for page in pages for run_id in page] == general


@pytest.mark.parametrize("order_by", [[], ["metrics.mae DESC"], ["params.alpha", "tags.team"]])
def test_pages_cover_every_run_once_in_order(engine: sa.Engine, order_by: list[str]) -> None:
    full = run_ids(engine, order_by=order_by)
    pages = [run_ids(engine, order_by=order_by, offset=o, limit=3) for o in range(0, 12, 3)]
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [run_id for page in pages for run_id in page] == full


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [(0, 0, []), (0, 2, ACTIVE_IN_ONE[:2]), (9, 5, ACTIVE_IN_ONE[9:]), (10, 5, []), (50, 1, [])],
)
def test_offset_and_limit(engine: sa.Engine, offset: int, limit: int, expected: list[str]) -> None:
    assert run_ids(engine, offset=offset, limit=limit) == expected


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1)])
def test_negative_offset_or_limit_is_rejected(offset: int, limit: int) -> None:
    with pytest.raises(InvalidParameterError, match="offset and limit must be >= 0"):
        select_run_ids([1], None, ViewType.ALL, [], offset, limit)


def test_key_predicates_are_primary_key_lookups(sqlite_engine: sa.Engine) -> None:
    query = select_run_ids(
        [1],
        parse_filter("metrics.mae < 1 and params.alpha = '0.5' and tags.team LIKE 'v%'"),
        ViewType.ACTIVE_ONLY,
        [],
        0,
        10,
    )
    sql = str(query.compile(sqlite_engine, compile_kwargs={"literal_binds": True}))
    with sqlite_engine.connect() as conn:
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    for table in ("latest_metrics", "params", "tags"):
        assert re.search(rf"SEARCH {table} USING .*\(run_uuid=\? AND key=\?\)", plan), plan


# -- property: the SQL answers what a plain Python evaluation over RUNS answers ----------------

_METRIC_VALUES = [-1.5, 0.0, 0.1, 0.2, 0.25, 0.5, 0.9, 1.0]
_STRINGS = ["0.5", "0.1", "1", "10", "2", "cnn", "CNN", "vision", "Vision", "nlp", "x_y", "v"]
_PATTERNS = ["%", "v%", "V%", "%n", "_", "vis_on", "%i%", "0._", "%.%", "a*b?[c]", "x\\_y", "c%"]
_KEYS = {
    Entity.METRIC: ["mae", "acc", "nothing"],
    Entity.PARAM: ["alpha", "model", "my key", "nothing"],
    Entity.TAG: ["team", "Priority", "glob", "mlflow.note"],
}
_ATTRIBUTE_VALUES: dict[str, list[Scalar]] = {
    "status": [s.value for s in RunStatus],
    "user_id": ["alice", "bob", "carol", "nobody"],
    "run_name": ["gamma", "Gamma", "delta_1", "alpha-1"],
    "run_id": ["r01", "r05", "r12"],
    "start_time": [1000, 4000, 5000, 10000],
    "end_time": [1100, 5200, 9999],
}
_NUMBER_OPS = [Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE]
_LIKE_OPS = [Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE]


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    entity = draw(st.sampled_from(list(Entity)))
    if entity is Entity.ATTRIBUTE:
        key = draw(st.sampled_from(sorted(_ATTRIBUTE_VALUES)))
        numeric = key in ("start_time", "end_time")
        ops = [Op.EQ, Op.NE, Op.IN, Op.NOT_IN]
        ops += _NUMBER_OPS[2:] if numeric else _LIKE_OPS
        ops += [Op.IS_NULL, Op.IS_NOT_NULL] if key == "end_time" else []
        values = st.sampled_from(_ATTRIBUTE_VALUES[key])
    else:
        key = draw(st.sampled_from(_KEYS[entity]))
        ops = [*_NUMBER_OPS, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.IS_NOT_NULL]
        if entity is Entity.METRIC:
            values = st.sampled_from(_METRIC_VALUES)
        else:
            ops += _LIKE_OPS
            values = st.sampled_from(_STRINGS)
    op = draw(st.sampled_from(ops))
    value: Scalar | tuple[Scalar, ...] | None
    if op in (Op.IS_NULL, Op.IS_NOT_NULL):
        value = None
    elif op in (Op.IN, Op.NOT_IN):
        value = tuple(draw(st.lists(values, min_size=1, max_size=3)))
    elif op in _LIKE_OPS:
        value = draw(st.sampled_from(_PATTERNS + [str(v) for v in _ATTRIBUTE_VALUES.get(key, [])]))
    else:
        value = draw(values)
    return Comparison(Identifier(entity, key), op, value)


filters = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda ops: And(tuple(ops))),
        st.lists(children, min_size=2, max_size=3).map(lambda ops: Or(tuple(ops))),
    ),
    max_leaves=6,
)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars)))
        else:
            parts.append({"%": ".*", "_": "."}.get(ch) or re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _compare(actual: Scalar, op: Op, value: Scalar | tuple[Scalar, ...] | None) -> bool:
    if op in (Op.IN, Op.NOT_IN):
        assert isinstance(value, tuple)
        return (actual in value) == (op is Op.IN)
    if op in _LIKE_OPS:
        assert isinstance(actual, str) and isinstance(value, str)
        if op in (Op.ILIKE, Op.NOT_ILIKE):
            actual, value = actual.lower(), value.lower()
        matched = _like_regex(value).fullmatch(actual) is not None
        return matched == (op in (Op.LIKE, Op.ILIKE))
    checks = {
        Op.EQ: lambda a, b: a == b,
        Op.NE: lambda a, b: a != b,
        Op.LT: lambda a, b: a < b,
        Op.LE: lambda a, b: a <= b,
        Op.GT: lambda a, b: a > b,
        Op.GE: lambda a, b: a >= b,
    }
    return bool(checks[op](actual, value))


def _matches(run: FakeRun, expr: Expr) -> bool:
    if isinstance(expr, And):
        return all(_matches(run, operand) for operand in expr.operands)
    if isinstance(expr, Or):
        return any(_matches(run, operand) for operand in expr.operands)
    entity, key = expr.ident.entity, expr.ident.key
    actual: Scalar | None
    if entity is Entity.ATTRIBUTE:
        actual = {"run_id": run.run_id, "run_name": run.name}.get(key) or getattr(run, key)
        if actual is None:
            return expr.op is Op.IS_NULL
        present = True
    else:
        values: dict[str, Scalar] = getattr(run, f"{entity.value}s")
        present = key in values
        actual = values.get(key)
    if expr.op in (Op.IS_NULL, Op.IS_NOT_NULL):
        return present == (expr.op is Op.IS_NOT_NULL)
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return False
    return _compare(actual, expr.op, expr.value)


@settings(max_examples=150, deadline=None)
@given(expr=filters)
def test_filter_agrees_with_python_evaluation(engine: sa.Engine, expr: Expr) -> None:
    query = select_run_ids([1, 2], expr, ViewType.ALL, [], 0, 100)
    with engine.connect() as conn:
        got = set(conn.scalars(query))
    assert got == {run.run_id for run in RUNS if _matches(run, expr)}


@settings(max_examples=60, deadline=None)
@given(
    clauses=st.lists(
        st.builds(
            OrderBy,
            st.sampled_from(
                [Identifier(entity, key) for entity in _KEYS for key in _KEYS[entity]]
                + [Identifier(Entity.ATTRIBUTE, key) for key in _ATTRIBUTE_VALUES]
            ),
            st.booleans(),
        ),
        max_size=3,
    )
)
def test_order_agrees_with_python_sort(engine: sa.Engine, clauses: list[OrderBy]) -> None:
    query = select_run_ids([1, 2], None, ViewType.ALL, clauses, 0, 100)
    with engine.connect() as conn:
        got = list(conn.scalars(query))

    expected = sorted(RUNS, key=lambda run: run.run_id)
    expected.sort(key=lambda run: run.start_time, reverse=True)
    for clause in reversed(clauses):
        entity, key = clause.ident.entity, clause.ident.key

        def sort_value(run: FakeRun, entity: Entity = entity, key: str = key) -> Scalar | None:
            if entity is Entity.ATTRIBUTE:
                value = {"run_id": run.run_id, "run_name": run.name}.get(key)
                return value or getattr(run, key)
            value = getattr(run, f"{entity.value}s").get(key)
            return None if isinstance(value, float) and math.isnan(value) else value

        present = [run for run in RUNS if sort_value(run) is not None]
        present_sorted = sorted(
            (run for run in expected if run in present),
            key=sort_value,
            reverse=not clause.ascending,
        )
        expected = present_sorted + [run for run in expected if run not in present]
    assert got == [run.run_id for run in expected]
