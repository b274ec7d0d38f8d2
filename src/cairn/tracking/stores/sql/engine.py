"""Engines, schema revisions and error translation for the SQL stores.

Opening a store brings its database to the latest Alembic revision (or refuses a database
written by a newer Cairn); SQLAlchemy's errors become Cairn's in ``translated_errors``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from cairn.errors import (
    CairnError,
    InvalidParameterError,
    SchemaVersionError,
    StoreError,
    UnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "ENV_SQLITE_SYNCHRONOUS",
    "HEAD_REVISION",
    "KNOWN_REVISIONS",
    "EngineStore",
    "create_engine",
    "current_revision",
    "downgrade_schema",
    "ensure_schema",
    "sqlite_synchronous",
    "translated_errors",
    "upgrade_schema",
]

HEAD_REVISION = "0006"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006")
_MIGRATIONS = Path(__file__).with_name("migrations")
ENV_SQLITE_SYNCHRONOUS = "CAIRN_SQLITE_SYNCHRONOUS"
# FULL: every commit is fsynced to the WAL before it returns, so a write Cairn acknowledged
# survives a power loss too; NORMAL only survives a process crash (see SECURITY.md).
_SQLITE_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")


def sqlite_synchronous() -> str:
    """The ``PRAGMA synchronous`` level for SQLite stores: ``$CAIRN_SQLITE_SYNCHRONOUS`` or FULL."""
    raw = os.environ.get(ENV_SQLITE_SYNCHRONOUS, "").strip().upper()
    if not raw:
        return _SQLITE_SYNCHRONOUS[0]
    if raw not in _SQLITE_SYNCHRONOUS:
        raise InvalidParameterError(
            f"{ENV_SQLITE_SYNCHRONOUS}={os.environ[ENV_SQLITE_SYNCHRONOUS]!r} is not a "
            f"synchronous level Cairn accepts; use one of {', '.join(_SQLITE_SYNCHRONOUS)}"
        )
    return raw


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, synced commits, foreign keys, a busy timeout."""
    if url.startswith("sqlite"):
        synchronous = sqlite_synchronous()
        db_path = url.split(":///", 1)[1] if ":///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; FULL fsyncs the WAL at each commit, so
            # an acknowledged write survives power loss as well as a process crash.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, direction)(config, revision)


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` on ``engine``."""
    _migrate(engine, "upgrade", revision)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Run the Alembic migrations down to ``revision`` (tests and rollbacks)."""
    _migrate(engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return None if revision is None else str(revision)


def ensure_schema(engine: Engine, display_url: str) -> None:
    """Bring the database to ``HEAD_REVISION``, or refuse it with a message saying why."""
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        if tables & {"runs", "experiments"}:
            raise SchemaVersionError(
                f"{display_url} holds tracking tables but no schema revision; it was "
                "not created by Cairn. Point Cairn at an empty database or a Cairn store."
            )
    elif revision not in KNOWN_REVISIONS:
        raise SchemaVersionError(
            f"{display_url} is at schema revision {revision!r}, newer than this Cairn "
            f"knows (latest {HEAD_REVISION!r}). Upgrade Cairn: pip install -U cairn-ml"
        )
    try:
        upgrade_schema(engine)
    except sa_exc.SQLAlchemyError:
        # Another process may have created the schema at the same moment.
        if current_revision(engine) != HEAD_REVISION:
            raise


@contextlib.contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Turn SQLAlchemy's errors into Cairn's: unavailable, invalid input, or store errors."""
    try:
        yield
    except CairnError:
        raise
    except sa_exc.OperationalError as exc:
        raise UnavailableError(f"Tracking database {url} is unavailable: {exc.orig}") from exc
    except sa_exc.DataError as exc:
        # A value the database cannot hold (a NUL byte in PostgreSQL text, say): caller's input.
        raise InvalidParameterError(
            f"Value not accepted by the tracking database: {exc.orig}"
        ) from exc
    except OverflowError as exc:
        # sqlite3 refuses an integer beyond 64 bits before the database sees it.
        raise InvalidParameterError(f"Value not accepted by the tracking database: {exc}") from exc
    except sa_exc.DBAPIError as exc:
        raise StoreError(f"Tracking database error: {exc.orig}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"Tracking database error: {exc}") from exc


class EngineStore:
    """A store over one engine whose database is at the head revision: its transactions and
    reads translate errors; ``open`` gives it an engine of its own, which ``close`` disposes.

    Args:
        engine: an engine shared with other stores (the tracking store's, say).
        display_url: the database URL without password, for messages.
    """

    def __init__(self, engine: Engine, display_url: str | None = None) -> None:
        self._engine = engine
        self._display_url = display_url or engine.url.render_as_string(hide_password=True)
        self._owns_engine = False

    @classmethod
    def open(cls, db_url: str) -> Self:
        """A store with its own engine on ``db_url``, bringing the schema to the head revision."""
        display = sa.make_url(db_url).render_as_string(hide_password=True)
        with translated_errors(display):
            engine = create_engine(db_url)
            ensure_schema(engine, display)
        store = cls(engine, display)
        store._owns_engine = True
        return store

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        with translated_errors(self._display_url), self._engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self._display_url), self._engine.connect() as conn:
            yield conn
