"""SqlRegistryStore on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from cairn.entities import ModelVersionStage
from cairn.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from cairn.models.registry.stores.sql import SqlRegistryStore
from cairn.tracking.stores.sql.engine import HEAD_REVISION, downgrade_schema
from cairn.tracking.stores.sql.store import SqlStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REGISTRY_TABLES = (
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
)


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlRegistryStore]:
    s = SqlRegistryStore.open(store_uri)
    yield s
    s.close()


def _version(store: SqlRegistryStore, name: str, source: str = "s3://b/m", **kwargs: object):
    fields: dict[str, object] = {
        "run_id": None,
        "tags": {},
        "run_link": None,
        "description": None,
        "user_id": "alice",
        "model_id": None,
    }
    fields.update(kwargs)
    return store.create_model_version(name, source, **fields)  # type: ignore[arg-type]


def _count(store: SqlRegistryStore, table: str) -> int:
    with store._engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_registered_model_lifecycle(store: SqlRegistryStore) -> None:
    created = store.create_registered_model("churn", {"team": "growth"}, "predicts churn")
    assert (created.name, created.description, created.tags) == (
        "churn",
        "predicts churn",
        {"team": "growth"},
    )
    assert created.latest_versions == () and created.aliases == {}
    assert created.creation_timestamp == created.last_updated_timestamp > 0
    with pytest.raises(AlreadyExistsError, match="Registered model 'churn' already exists"):
        store.create_registered_model("churn", {}, None)

    updated = store.update_registered_model("churn", "v2 of the story")
    assert updated.description == "v2 of the story"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp
    store.set_registered_model_tag("churn", "team", "retention")
    store.set_registered_model_tag("churn", "owner", "bob")
    assert store.get_registered_model("churn").tags == {"team": "retention", "owner": "bob"}
    store.delete_registered_model_tag("churn", "owner")
    assert store.get_registered_model("churn").tags == {"team": "retention"}
    with pytest.raises(NotFoundError, match="Registered model 'churn' has no tag 'owner'"):
        store.delete_registered_model_tag("churn", "owner")

    for call in (
        lambda: store.get_registered_model("nope"),
        lambda: store.update_registered_model("nope", "x"),
        lambda: store.delete_registered_model("nope"),
        lambda: store.set_registered_model_tag("nope", "k", "v"),
        lambda: store.rename_registered_model("nope", "other"),
    ):
        with pytest.raises(NotFoundError, match="Registered model 'nope' does not exist"):
            call()


def test_versions_are_numbered_and_never_reused(store: SqlRegistryStore) -> None:
    store.create_registered_model("m", {}, None)
    first = _version(store, "m", "/models/a", run_id="r1", tags={"k": "v"}, description="one")
    assert (first.name, first.version, first.source, first.run_id) == ("m", 1, "/models/a", "r1")
    assert (first.status.value, first.current_stage, first.user_id) == (
        "READY",
        ModelVersionStage.NONE,
        "alice",
    )
    assert (first.tags, first.description) == ({"k": "v"}, "one")
    assert [_version(store, "m").version for _ in range(2)] == [2, 3]
    store.delete_model_version("m", 3)
    assert _version(store, "m").version == 4  # 3 stays retired
    with pytest.raises(NotFoundError, match="Version 3 of registered model 'm' does not exist"):
        store.get_model_version("m", 3)
    with pytest.raises(NotFoundError, match="Registered model 'x' does not exist"):
        _version(store, "x")
    with pytest.raises(NotFoundError, match="Registered model 'x' does not exist"):
        store.get_model_version("x", 1)

    updated = store.update_model_version("m", 1, "better words")
    assert updated.description == "better words"
    assert updated.last_updated_timestamp >= first.last_updated_timestamp
    store.set_model_version_tag("m", 1, "k", "w")
    store.set_model_version_tag("m", 1, "k2", "x" * 20_000)
    assert store.get_model_version("m", 1).tags == {"k": "w", "k2": "x" * 20_000}
    store.delete_model_version_tag("m", 1, "k2")
    with pytest.raises(NotFoundError, match="has no tag 'k2'"):
        store.delete_model_version_tag("m", 1, "k2")
    assert store.get_model_version_download_uri("m", 1) == "/models/a"
    model = store.get_registered_model("m")
    assert [v.version for v in model.latest_versions] == [4]


def test_aliases(store: SqlRegistryStore) -> None:
    store.create_registered_model("m", {}, None)
    for _ in range(3):
        _version(store, "m")
    store.set_registered_model_alias("m", "champion", 1)
    store.set_registered_model_alias("m", "challenger", 2)
    assert store.get_model_version_by_alias("m", "champion").version == 1
    assert store.get_model_version("m", 1).aliases == ("champion",)
    store.set_registered_model_alias("m", "champion", 3)  # moves
    assert store.get_model_version_by_alias("m", "champion").version == 3
    assert store.get_model_version("m", 1).aliases == ()
    assert store.get_registered_model("m").aliases == {"challenger": 2, "champion": 3}
    with pytest.raises(NotFoundError, match="Version 9 of registered model 'm' does not exist"):
        store.set_registered_model_alias("m", "ghost", 9)

    store.delete_model_version("m", 2)  # takes its alias with it
    with pytest.raises(NotFoundError, match="Registered model 'm' has no alias 'challenger'"):
        store.get_model_version_by_alias("m", "challenger")
    store.delete_registered_model_alias("m", "champion")
    assert store.get_registered_model("m").aliases == {}
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        store.delete_registered_model_alias("m", "champion")
    with pytest.raises(NotFoundError, match="Registered model 'x' does not exist"):
        store.get_model_version_by_alias("x", "champion")


def test_rename_carries_versions_tags_and_aliases(store: SqlRegistryStore) -> None:
    store.create_registered_model("old", {"t": "1"}, None)
    _version(store, "old", tags={"vt": "2"})
    store.set_registered_model_alias("old", "prod", 1)
    store.create_registered_model("taken", {}, None)
    with pytest.raises(AlreadyExistsError, match="Registered model 'taken' already exists"):
        store.rename_registered_model("old", "taken")

    renamed = store.rename_registered_model("old", "new")
    assert (renamed.name, renamed.tags, renamed.aliases) == ("new", {"t": "1"}, {"prod": 1})
    version = store.get_model_version_by_alias("new", "prod")
    assert (version.name, version.tags) == ("new", {"vt": "2"})
    assert _version(store, "new").version == 2
    with pytest.raises(NotFoundError, match="Registered model 'old' does not exist"):
        store.get_registered_model("old")
    assert [v.name for v in store.search_model_versions("name = 'new'", 10, None, None)] == [
        "new",
        "new",
    ]


def test_delete_model_removes_everything_it_owns(store: SqlRegistryStore) -> None:
    for name in ("gone", "kept"):
        store.create_registered_model(name, {"t": "v"}, None)
        _version(store, name, tags={"vt": "v"})
        store.set_registered_model_alias(name, "a", 1)
    store.delete_registered_model("gone")
    assert {t: _count(store, t) for t in REGISTRY_TABLES} == dict.fromkeys(REGISTRY_TABLES, 1)
    store.create_registered_model("gone", {}, None)
    assert _version(store, "gone").version == 1  # a new model starts again


def test_stages_and_latest_versions(store: SqlRegistryStore) -> None:
    store.create_registered_model("m", {}, None)
    for _ in range(4):
        _version(store, "m")
    store.transition_model_version_stage("m", 1, ModelVersionStage.PRODUCTION, False)
    store.transition_model_version_stage("m", 2, ModelVersionStage.STAGING, False)
    moved = store.transition_model_version_stage("m", 3, ModelVersionStage.PRODUCTION, True)
    assert moved.current_stage is ModelVersionStage.PRODUCTION
    assert store.get_model_version("m", 1).current_stage is ModelVersionStage.ARCHIVED
    latest = store.get_latest_versions("m", None)
    assert [(v.version, v.current_stage.value) for v in latest] == [
        (4, "None"),
        (3, "Production"),
        (2, "Staging"),
        (1, "Archived"),
    ]
    production = store.get_latest_versions("m", [ModelVersionStage.PRODUCTION])
    assert [v.version for v in production] == [3]
    assert [v.version for v in store.get_registered_model("m").latest_versions] == [4, 3, 2, 1]
    with pytest.raises(InvalidParameterError, match="only to the Staging and Production"):
        store.transition_model_version_stage("m", 4, ModelVersionStage.ARCHIVED, True)
    with pytest.raises(NotFoundError, match="Registered model 'x' does not exist"):
        store.get_latest_versions("x", None)
    store.create_registered_model("empty", {}, None)
    assert store.get_latest_versions("empty", None) == []


def test_search_registered_models(store: SqlRegistryStore) -> None:
    for name, team in (("churn-a", "growth"), ("Churn-b", "growth"), ("fraud", "risk")):
        store.create_registered_model(name, {"team": team}, None)

    def names(filter_string: str | None, order_by: list[str] | None = None) -> list[str]:
        return [m.name for m in store.search_registered_models(filter_string, 100, order_by, None)]

    assert names(None) == ["Churn-b", "churn-a", "fraud"]  # by code point, on both databases
    assert names("name = 'fraud'") == ["fraud"]
    assert names("name LIKE 'churn%'") == ["churn-a"]  # LIKE is case-sensitive
    assert names("name ILIKE 'churn%'") == ["Churn-b", "churn-a"]
    assert names("tags.team = 'growth' AND name != 'churn-a'") == ["Churn-b"]
    assert names("tags.team = 'risk' OR name = 'churn-a'") == ["churn-a", "fraud"]
    assert names("tags.missing IS NULL AND tags.team LIKE 'r%'") == ["fraud"]
    # Negations match models without the tag too (MLflow clients exclude prompts that way).
    store.create_registered_model("untagged", {}, None)
    assert names("tags.team != 'growth'") == ["fraud", "untagged"]
    assert names("tags.`mlflow.prompt.is_prompt` != 'true' AND name LIKE '%d%'") == [
        "fraud",
        "untagged",
    ]
    assert names("tags.team NOT IN ('growth', 'risk')") == ["untagged"]
    assert names("tags.team NOT LIKE 'g%' AND tags.team IS NOT NULL") == ["fraud"]
    store.delete_registered_model("untagged")
    assert names(None, ["name DESC"]) == ["fraud", "churn-a", "Churn-b"]
    assert names(None, ["creation_timestamp DESC", "name"])[-1] in {"churn-a", "Churn-b"}

    first = store.search_registered_models(None, 2, None, None)
    assert [m.name for m in first] == ["Churn-b", "churn-a"] and first.token
    rest = store.search_registered_models(None, 2, None, first.token)
    assert [m.name for m in rest] == ["fraud"] and rest.token is None

    with pytest.raises(InvalidParameterError, match="unknown field 'run_id' for registered"):
        store.search_registered_models("run_id = 'x'", 10, None, None)
    with pytest.raises(InvalidParameterError, match=r"cannot order registered models by 'tags\.x'"):
        store.search_registered_models(None, 10, ["tags.x"], None)
    with pytest.raises(InvalidParameterError, match="max_results must be between 1 and 1000"):
        store.search_registered_models(None, 1001, None, None)
    with pytest.raises(InvalidParameterError, match="Invalid page token"):
        store.search_registered_models(None, 10, None, "garbage")


def test_search_model_versions(store: SqlRegistryStore) -> None:
    store.create_registered_model("a", {}, None)
    store.create_registered_model("b", {}, None)
    _version(store, "a", "s3://bucket/a1", run_id="run1", tags={"stage": "dev"})
    _version(store, "a", "s3://bucket/a2", run_id="run2")
    _version(store, "b", "/local/b1", run_id="run1", tags={"stage": "prod"})

    def found(filter_string: str | None, order_by: list[str] | None = None) -> list[str]:
        page = store.search_model_versions(filter_string, 100, order_by, None)
        return [f"{v.name}/{v.version}" for v in page]

    # Default: most recently updated first.
    assert found(None) == ["b/1", "a/2", "a/1"]
    assert found("name = 'a'", ["version_number ASC"]) == ["a/1", "a/2"]
    assert found("run_id = 'run1'", ["name"]) == ["a/1", "b/1"]
    assert found("run_id IN ('run2', 'nope')") == ["a/2"]
    assert found("source_path LIKE 's3://%'", ["version_number DESC"]) == ["a/2", "a/1"]
    assert found("version_number >= 2") == ["a/2"]
    assert found("tags.stage = 'prod' OR tags.stage = 'dev'", ["name"]) == ["a/1", "b/1"]
    assert found("name = 'a' AND tags.stage IS NULL") == ["a/2"]
    page = store.search_model_versions(None, 2, ["name", "version_number"], None)
    assert [v.version for v in page] == [1, 2] and page.token
    rest = store.search_model_versions(None, 2, ["name", "version_number"], page.token)
    assert [f"{v.name}/{v.version}" for v in rest] == ["b/1"] and rest.token is None

    with pytest.raises(InvalidParameterError, match=r"unknown field 'metrics\.x'"):
        store.search_model_versions("metrics.x > 1", 10, None, None)
    with pytest.raises(InvalidParameterError, match="version_number values are integers"):
        store.search_model_versions("version_number = 'one'", 10, None, None)


def _register_concurrently(stores: list[SqlRegistryStore], per_thread: int) -> list[int]:
    barrier = threading.Barrier(len(stores))
    versions: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(store: SqlRegistryStore) -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                number = _version(store, "hot").version
                with lock:
                    versions.append(number)
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return versions


def test_concurrent_registrations_never_share_a_number(store_uri: str) -> None:
    # Two stores with their own engines stand for two processes; four threads on each.
    first, second = SqlRegistryStore.open(store_uri), SqlRegistryStore.open(store_uri)
    try:
        first.create_registered_model("hot", {}, None)
        versions = _register_concurrently([first, second] * 4, per_thread=10)
        assert sorted(versions) == list(range(1, 81))
        listed = first.search_model_versions("name = 'hot'", 1000, None, None)
        assert sorted(v.version for v in listed) == list(range(1, 81))
    finally:
        first.close()
        second.close()


def test_logged_model_source_resolves_to_its_artifacts(store_uri: str, tmp_path: Path) -> None:
    tracking = SqlStore(store_uri, str(tmp_path / "artifacts"))
    registry = SqlRegistryStore(tracking.engine)
    try:
        logged = tracking.logged_models.create("0", "model")
        registry.create_registered_model("m", {}, None)
        version = _version(registry, "m", f"models:/{logged.model_id}", model_id=logged.model_id)
        assert (version.source, version.model_id) == (f"models:/{logged.model_id}", logged.model_id)
        uri = registry.get_model_version_download_uri("m", 1)
        assert uri == logged.artifact_location
        _version(registry, "m", "models:/m-unknown")
        assert registry.get_model_version_download_uri("m", 2) == "models:/m-unknown"
    finally:
        tracking.close()


def test_registry_tables_come_with_migration_0004(store_uri: str) -> None:
    store = SqlRegistryStore.open(store_uri)
    store.create_registered_model("kept", {}, None)
    downgrade_schema(store._engine, "0003")
    with store._engine.connect() as conn:
        assert not set(REGISTRY_TABLES) & set(sa.inspect(conn).get_table_names())
    store.close()
    reopened = SqlRegistryStore.open(store_uri)
    with reopened._engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == HEAD_REVISION
    reopened.create_registered_model("kept", {}, None)  # the tables are back, empty
    reopened.close()


def test_a_page_larger_than_one_in_list(store: SqlRegistryStore) -> None:
    """20,000 versions in one page: more keys than one IN list may hold."""
    from cairn.tracking.stores.sql import schema

    store.create_registered_model("big", {}, None)
    with store._engine.connect() as conn:
        model_id = conn.execute(sa.select(schema.registered_models.c.registered_model_id)).scalar()
    count = 20_000
    with store._engine.begin() as conn:
        conn.execute(
            schema.model_versions.insert(),
            [
                {
                    "registered_model_id": model_id,
                    "version": n,
                    "creation_timestamp": n,
                    "last_updated_timestamp": n,
                    "source": f"s3://b/{n}",
                    "status": "READY",
                }
                for n in range(1, count + 1)
            ],
        )
        conn.execute(
            schema.model_version_tags.insert(),
            [{"registered_model_id": model_id, "version": count, "key": "k", "value": "v"}],
        )
    page = store.search_model_versions("name = 'big'", count, None, None)
    assert [v.version for v in page[:2]] == [count, count - 1] and len(page) == count
    assert page[0].tags == {"k": "v"} and page.token is None
