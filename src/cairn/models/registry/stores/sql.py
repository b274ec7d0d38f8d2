"""The SQL registry store: registered models and versions in the tracking database.

It shares the tracking store's engine (one pool per database) and schema (migration 0004).
Version numbers come from ``registered_models.next_version``, bumped by one
``UPDATE ... RETURNING`` at the start of the transaction that inserts the version: the row lock
(PostgreSQL) or the write lock (SQLite) makes concurrent registrations take turns, so no number
is handed out twice, nor reused after a delete.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cairn.entities import (
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    PagedList,
    RegisteredModel,
)
from cairn.errors import AlreadyExistsError, InvalidParameterError, NotFoundError, StoreError
from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql._paging import decode_token, encode_token
from cairn.tracking.stores.sql.engine import EngineStore

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Connection, Engine

__all__ = ["MAX_MODEL_RESULTS", "MAX_VERSION_RESULTS", "SqlRegistryStore"]

MAX_MODEL_RESULTS = 1000  # MLflow's limits for one page
MAX_VERSION_RESULTS = 200_000
_LOGGED_MODEL_PREFIX = "models:/"
_IN_SLICE = 2000  # keys per IN list: two bound parameters each

_rm = t.registered_models
_mv = t.model_versions
_rm_tags = t.registered_model_tags
_mv_tags = t.model_version_tags
_aliases = t.registered_model_aliases

Key = tuple[int, int]  # (registered_model_id, version)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _is_integrity_error(exc: StoreError) -> bool:
    return isinstance(exc.__cause__, sa_exc.IntegrityError)


def _check_max_results(max_results: int, limit: int) -> None:
    if not 0 < max_results <= limit:
        raise InvalidParameterError(f"max_results must be between 1 and {limit}, got {max_results}")


class SqlRegistryStore(EngineStore):
    """Registered models, versions, tags and aliases in one SQL database.

    Args:
        engine: the tracking store's engine; its database is already at the head revision.
        display_url: the database URL without password, for messages.
    """

    def __init__(self, engine: Engine, display_url: str | None = None) -> None:
        super().__init__(engine, display_url)
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(_rm_tags)
        self._upsert_model_tag = stmt.on_conflict_do_update(
            index_elements=["registered_model_id", "key"], set_={"value": stmt.excluded.value}
        )
        stmt = insert(_mv_tags)
        self._upsert_version_tag = stmt.on_conflict_do_update(
            index_elements=["registered_model_id", "version", "key"],
            set_={"value": stmt.excluded.value},
        )
        stmt = insert(_aliases)
        self._upsert_alias = stmt.on_conflict_do_update(
            index_elements=["registered_model_id", "alias"], set_={"version": stmt.excluded.version}
        )

    # -- lookups ------------------------------------------------------------------------------

    def _model_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(
            sa.select(_rm.c.registered_model_id).where(_rm.c.name == name)
        ).scalar()
        if found is None:
            raise NotFoundError(f"Registered model '{name}' does not exist")
        return int(found)

    def _version_key(self, conn: Connection, name: str, version: int) -> Key:
        model_id = self._model_id(conn, name)
        found = conn.execute(
            sa.select(_mv.c.version).where(
                _mv.c.registered_model_id == model_id, _mv.c.version == version
            )
        ).scalar()
        if found is None:
            raise NotFoundError(f"Version {version} of registered model '{name}' does not exist")
        return model_id, version

    def _touch(self, conn: Connection, model_id: int, now: int) -> None:
        conn.execute(
            _rm.update()
            .where(_rm.c.registered_model_id == model_id)
            .values(last_updated_timestamp=now)
        )

    # -- loading entities ---------------------------------------------------------------------

    def _load_versions(self, conn: Connection, keys: Sequence[Key]) -> dict[Key, ModelVersion]:
        # In slices: databases cap bound parameters, and PostgreSQL's planner runs out of
        # stack on a tuple IN list of some 20,000 keys.
        out: dict[Key, ModelVersion] = {}
        for start in range(0, len(keys), _IN_SLICE):
            out.update(self._load_version_slice(conn, keys[start : start + _IN_SLICE]))
        return out

    def _load_version_slice(self, conn: Connection, keys: Sequence[Key]) -> dict[Key, ModelVersion]:
        rows = conn.execute(
            sa.select(_mv, _rm.c.name)
            .join(_rm, _rm.c.registered_model_id == _mv.c.registered_model_id)
            .where(sa.tuple_(_mv.c.registered_model_id, _mv.c.version).in_(keys))
        ).all()
        tags: dict[Key, dict[str, str]] = {key: {} for key in keys}
        for model_id, version, key, value in conn.execute(
            sa.select(
                _mv_tags.c.registered_model_id, _mv_tags.c.version, _mv_tags.c.key, _mv_tags.c.value
            ).where(sa.tuple_(_mv_tags.c.registered_model_id, _mv_tags.c.version).in_(keys))
        ):
            tags[(model_id, version)][key] = value
        aliases: dict[Key, list[str]] = {key: [] for key in keys}
        for model_id, version, alias in conn.execute(
            sa.select(_aliases.c.registered_model_id, _aliases.c.version, _aliases.c.alias)
            .where(sa.tuple_(_aliases.c.registered_model_id, _aliases.c.version).in_(keys))
            .order_by(_aliases.c.alias)
        ):
            aliases[(model_id, version)].append(alias)
        out = {}
        for row in rows:
            key = (row.registered_model_id, row.version)
            out[key] = ModelVersion(
                name=row.name,
                version=row.version,
                creation_timestamp=row.creation_timestamp,
                last_updated_timestamp=row.last_updated_timestamp,
                source=row.source,
                run_id=row.run_id,
                run_link=row.run_link,
                description=row.description,
                user_id=row.user_id,
                status=ModelVersionStatus(row.status),
                status_message=row.status_message,
                current_stage=ModelVersionStage(row.current_stage),
                tags=tags[key],
                aliases=tuple(aliases[key]),
                model_id=row.model_id,
            )
        return out

    def _latest_keys(
        self,
        conn: Connection,
        model_ids: Sequence[int],
        stages: Sequence[ModelVersionStage] | None = None,
    ) -> list[Key]:
        """The newest version of each stage, per model."""
        query = (
            sa.select(_mv.c.registered_model_id, sa.func.max(_mv.c.version))
            .where(_mv.c.registered_model_id.in_(model_ids))
            .group_by(_mv.c.registered_model_id, _mv.c.current_stage)
        )
        if stages:
            query = query.where(_mv.c.current_stage.in_([s.value for s in stages]))
        return [(int(model_id), int(version)) for model_id, version in conn.execute(query)]

    def _load_models(
        self, conn: Connection, model_ids: Sequence[int]
    ) -> dict[int, RegisteredModel]:
        if not model_ids:
            return {}
        rows = conn.execute(sa.select(_rm).where(_rm.c.registered_model_id.in_(model_ids))).all()
        tags: dict[int, dict[str, str]] = {i: {} for i in model_ids}
        for model_id, key, value in conn.execute(
            sa.select(_rm_tags.c.registered_model_id, _rm_tags.c.key, _rm_tags.c.value).where(
                _rm_tags.c.registered_model_id.in_(model_ids)
            )
        ):
            tags[model_id][key] = value
        aliases: dict[int, dict[str, int]] = {i: {} for i in model_ids}
        for model_id, alias, version in conn.execute(
            sa.select(_aliases.c.registered_model_id, _aliases.c.alias, _aliases.c.version)
            .where(_aliases.c.registered_model_id.in_(model_ids))
            .order_by(_aliases.c.alias)
        ):
            aliases[model_id][alias] = version
        latest: dict[int, list[ModelVersion]] = {i: [] for i in model_ids}
        versions = self._load_versions(conn, self._latest_keys(conn, model_ids))
        for (model_id, _), version in sorted(versions.items(), key=lambda kv: -kv[0][1]):
            latest[model_id].append(version)
        return {
            row.registered_model_id: RegisteredModel(
                name=row.name,
                creation_timestamp=row.creation_timestamp,
                last_updated_timestamp=row.last_updated_timestamp,
                description=row.description,
                latest_versions=tuple(latest[row.registered_model_id]),
                tags=tags[row.registered_model_id],
                aliases=aliases[row.registered_model_id],
            )
            for row in rows
        }

    def _model(self, conn: Connection, model_id: int) -> RegisteredModel:
        return self._load_models(conn, [model_id])[model_id]

    def _version(self, conn: Connection, key: Key) -> ModelVersion:
        return self._load_versions(conn, [key])[key]

    # -- registered models --------------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Mapping[str, str], description: str | None
    ) -> RegisteredModel:
        now = _now_ms()
        try:
            with self._tx() as conn:
                result = conn.execute(
                    _rm.insert().values(
                        name=name,
                        creation_timestamp=now,
                        last_updated_timestamp=now,
                        description=description,
                        next_version=1,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                model_id = int(key[0])
                if tags:
                    conn.execute(
                        _rm_tags.insert(),
                        [
                            {"registered_model_id": model_id, "key": k, "value": v}
                            for k, v in tags.items()
                        ],
                    )
                return self._model(conn, model_id)
        except StoreError as exc:
            if _is_integrity_error(exc):
                raise AlreadyExistsError(f"Registered model '{name}' already exists") from None
            raise

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            return self._model(conn, self._model_id(conn, name))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        try:
            with self._tx() as conn:
                model_id = self._model_id(conn, name)
                conn.execute(
                    _rm.update()
                    .where(_rm.c.registered_model_id == model_id)
                    .values(name=new_name, last_updated_timestamp=_now_ms())
                )
                return self._model(conn, model_id)
        except StoreError as exc:
            if _is_integrity_error(exc):
                raise AlreadyExistsError(f"Registered model '{new_name}' already exists") from None
            raise

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        with self._tx() as conn:
            model_id = self._model_id(conn, name)
            conn.execute(
                _rm.update()
                .where(_rm.c.registered_model_id == model_id)
                .values(description=description, last_updated_timestamp=_now_ms())
            )
            return self._model(conn, model_id)

    def delete_registered_model(self, name: str) -> None:
        """Delete the model with its versions, tags and aliases (foreign keys cascade)."""
        with self._tx() as conn:
            result = conn.execute(_rm.delete().where(_rm.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError(f"Registered model '{name}' does not exist")

    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[RegisteredModel]:
        from cairn.models.registry.stores.sql_search import select_model_keys

        _check_max_results(max_results, MAX_MODEL_RESULTS)
        offset = decode_token(page_token)
        query = select_model_keys(filter_string, order_by, offset, max_results + 1)
        with self._read() as conn:
            ids = [int(i) for i in conn.execute(query).scalars()]
            token = None
            if len(ids) > max_results:
                ids, token = ids[:max_results], encode_token(offset + max_results)
            models = self._load_models(conn, ids)
        return PagedList([models[i] for i in ids if i in models], token)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        with self._tx() as conn:
            model_id = self._model_id(conn, name)
            conn.execute(
                self._upsert_model_tag,
                {"registered_model_id": model_id, "key": key, "value": value},
            )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with self._tx() as conn:
            model_id = self._model_id(conn, name)
            result = conn.execute(
                _rm_tags.delete().where(
                    _rm_tags.c.registered_model_id == model_id, _rm_tags.c.key == key
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Registered model '{name}' has no tag '{key}'")

    # -- model versions -----------------------------------------------------------------------

    def _logged_model_location(self, source: str, model_id: str | None) -> str | None:
        """Where a logged model's files are, for sources such as ``models:/m-abc``."""
        if model_id is None and source.startswith(_LOGGED_MODEL_PREFIX):
            candidate = source[len(_LOGGED_MODEL_PREFIX) :].strip("/")
            model_id = candidate if candidate and "/" not in candidate else None
        if model_id is None:
            return None
        lm = t.logged_models
        with self._read() as conn:
            found = conn.execute(
                sa.select(lm.c.artifact_location).where(lm.c.model_id == model_id)
            ).scalar()
        return None if found is None else str(found)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        tags: Mapping[str, str],
        run_link: str | None,
        description: str | None,
        user_id: str | None,
        model_id: str | None,
    ) -> ModelVersion:
        storage_location = self._logged_model_location(source, model_id)
        now = _now_ms()
        with self._tx() as conn:
            # The first statement writes, so SQLite takes its write lock here (waiting its turn)
            # rather than failing to upgrade a read lock later.
            row = conn.execute(
                _rm.update()
                .where(_rm.c.name == name)
                .values(next_version=_rm.c.next_version + 1, last_updated_timestamp=now)
                .returning(_rm.c.registered_model_id, _rm.c.next_version)
            ).first()
            if row is None:
                raise NotFoundError(f"Registered model '{name}' does not exist")
            key = (int(row.registered_model_id), int(row.next_version) - 1)
            conn.execute(
                _mv.insert().values(
                    registered_model_id=key[0],
                    version=key[1],
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    description=description,
                    user_id=user_id,
                    source=source,
                    storage_location=storage_location,
                    run_id=run_id,
                    run_link=run_link,
                    model_id=model_id,
                    status=ModelVersionStatus.READY.value,
                    current_stage=ModelVersionStage.NONE.value,
                )
            )
            if tags:
                conn.execute(
                    _mv_tags.insert(),
                    [
                        {"registered_model_id": key[0], "version": key[1], "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
            return self._version(conn, key)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as conn:
            return self._version(conn, self._version_key(conn, name, version))

    def _update_version(self, name: str, version: int, **values: Any) -> ModelVersion:
        now = _now_ms()
        with self._tx() as conn:
            key = self._version_key(conn, name, version)
            conn.execute(
                _mv.update()
                .where(_mv.c.registered_model_id == key[0], _mv.c.version == key[1])
                .values(last_updated_timestamp=now, **values)
            )
            self._touch(conn, key[0], now)
            return self._version(conn, key)

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        return self._update_version(name, version, description=description)

    def transition_model_version_stage(
        self, name: str, version: int, stage: ModelVersionStage, archive_existing_versions: bool
    ) -> ModelVersion:
        """Move a version to a legacy stage; optionally archive the others in that stage."""
        if archive_existing_versions and stage not in (
            ModelVersionStage.STAGING,
            ModelVersionStage.PRODUCTION,
        ):
            raise InvalidParameterError(
                f"archive_existing_versions applies only to the Staging and Production stages, "
                f"not {stage.value!r}"
            )
        now = _now_ms()
        with self._tx() as conn:
            key = self._version_key(conn, name, version)
            if archive_existing_versions:
                conn.execute(
                    _mv.update()
                    .where(
                        _mv.c.registered_model_id == key[0],
                        _mv.c.version != key[1],
                        _mv.c.current_stage == stage.value,
                    )
                    .values(
                        current_stage=ModelVersionStage.ARCHIVED.value,
                        last_updated_timestamp=now,
                    )
                )
            conn.execute(
                _mv.update()
                .where(_mv.c.registered_model_id == key[0], _mv.c.version == key[1])
                .values(current_stage=stage.value, last_updated_timestamp=now)
            )
            self._touch(conn, key[0], now)
            return self._version(conn, key)

    def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version with its tags and the aliases naming it; its number is not reused."""
        with self._tx() as conn:
            key = self._version_key(conn, name, version)
            conn.execute(
                _mv.delete().where(_mv.c.registered_model_id == key[0], _mv.c.version == key[1])
            )
            self._touch(conn, key[0], _now_ms())

    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[ModelVersion]:
        from cairn.models.registry.stores.sql_search import select_version_keys

        _check_max_results(max_results, MAX_VERSION_RESULTS)
        offset = decode_token(page_token)
        query = select_version_keys(filter_string, order_by, offset, max_results + 1)
        with self._read() as conn:
            keys: list[Key] = [(int(m), int(v)) for m, v in conn.execute(query)]
            token = None
            if len(keys) > max_results:
                keys, token = keys[:max_results], encode_token(offset + max_results)
            versions = self._load_versions(conn, keys)
        return PagedList([versions[k] for k in keys if k in versions], token)

    def get_latest_versions(
        self, name: str, stages: Sequence[ModelVersionStage] | None
    ) -> list[ModelVersion]:
        """The newest version in each stage asked for (every stage by default), newest first."""
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            keys = self._latest_keys(conn, [model_id], stages)
            versions = self._load_versions(conn, keys)
        return sorted(versions.values(), key=lambda v: v.version, reverse=True)

    def get_model_version_download_uri(self, name: str, version: int) -> str:
        with self._read() as conn:
            key = self._version_key(conn, name, version)
            row = conn.execute(
                sa.select(_mv.c.source, _mv.c.storage_location).where(
                    _mv.c.registered_model_id == key[0], _mv.c.version == key[1]
                )
            ).one()
        return str(row.storage_location or row.source)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self._tx() as conn:
            model_id, number = self._version_key(conn, name, version)
            conn.execute(
                self._upsert_version_tag,
                {"registered_model_id": model_id, "version": number, "key": key, "value": value},
            )

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        with self._tx() as conn:
            model_id, number = self._version_key(conn, name, version)
            result = conn.execute(
                _mv_tags.delete().where(
                    _mv_tags.c.registered_model_id == model_id,
                    _mv_tags.c.version == number,
                    _mv_tags.c.key == key,
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(
                    f"Version {version} of registered model '{name}' has no tag '{key}'"
                )

    # -- aliases ------------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``, moving it if it named another version."""
        with self._tx() as conn:
            model_id, number = self._version_key(conn, name, version)
            conn.execute(
                self._upsert_alias,
                {"registered_model_id": model_id, "alias": alias, "version": number},
            )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        with self._tx() as conn:
            model_id = self._model_id(conn, name)
            result = conn.execute(
                _aliases.delete().where(
                    _aliases.c.registered_model_id == model_id, _aliases.c.alias == alias
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Registered model '{name}' has no alias '{alias}'")

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            version = conn.execute(
                sa.select(_aliases.c.version).where(
                    _aliases.c.registered_model_id == model_id, _aliases.c.alias == alias
                )
            ).scalar()
            if version is None:
                raise NotFoundError(f"Registered model '{name}' has no alias '{alias}'")
            return self._version(conn, (model_id, int(version)))
