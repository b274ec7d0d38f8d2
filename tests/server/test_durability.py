"""Durability settings of the stores a server writes to.

SQLite runs in WAL mode with ``synchronous=FULL`` unless ``$CAIRN_SQLITE_SYNCHRONOUS`` says
otherwise: every commit is on disk before the server answers. The crash and load tests beside
this file check the behaviour with real processes; these check the settings themselves.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from cairn.cli import cli
from cairn.errors import InvalidParameterError
from cairn.server import ServerSettings, create_app
from cairn.tracking.stores.sql.engine import ENV_SQLITE_SYNCHRONOUS, sqlite_synchronous
from cairn.tracking.stores.sql.store import SqlStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from pathlib import Path

# PRAGMA synchronous answers with a number.
LEVELS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


def _pragmas(store: SqlStore) -> list[tuple[str, int]]:
    """journal_mode and synchronous of two connections open at the same time (pool members)."""
    found = []
    with store.engine.connect() as first, store.engine.connect() as second:
        for conn in (first, second):
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            found.append((str(mode), int(level)))  # type: ignore[arg-type]
    return found


def test_sqlite_commits_are_synced_by_default(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_SQLITE_SYNCHRONOUS, raising=False)
    assert sqlite_synchronous() == "FULL"
    store = SqlStore(sqlite_uri, str(tmp_path / "artifacts"))
    try:
        assert _pragmas(store) == [("wal", LEVELS["FULL"])] * 2
    finally:
        store.close()


def test_server_store_syncs_every_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SQLITE_SYNCHRONOUS, raising=False)
    app = create_app(ServerSettings(backend_store_uri=str(tmp_path / "store")))
    with TestClient(app):
        assert _pragmas(app.state.store) == [("wal", LEVELS["FULL"])] * 2


@pytest.mark.parametrize(("raw", "level"), [("normal", "NORMAL"), (" EXTRA ", "EXTRA")])
def test_sqlite_synchronous_level_is_a_setting(
    raw: str, level: str, sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SQLITE_SYNCHRONOUS, raw)
    store = SqlStore(sqlite_uri, str(tmp_path / "artifacts"))
    try:
        assert _pragmas(store) == [("wal", LEVELS[level])] * 2
    finally:
        store.close()


@pytest.mark.parametrize("raw", ["OFF", "0", "fast"])
def test_unknown_or_unsafe_synchronous_level_is_refused(
    raw: str, sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SQLITE_SYNCHRONOUS, raw)
    message = rf"CAIRN_SQLITE_SYNCHRONOUS='{raw}' is not a synchronous level .* FULL, NORMAL, EXTRA"
    with pytest.raises(InvalidParameterError, match=message):
        SqlStore(sqlite_uri, str(tmp_path / "artifacts"))


def test_server_with_an_unknown_level_fails_before_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SQLITE_SYNCHRONOUS, "OFF")
    store = str(tmp_path / "store")
    result = CliRunner().invoke(cli, ["server", "--port", "0", "--backend-store-uri", store])
    assert result.exit_code == 1, result.output
    assert "CAIRN_SQLITE_SYNCHRONOUS='OFF' is not a synchronous level" in result.output
