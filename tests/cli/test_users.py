"""``cairn users``: create (asked or given password), list, delete, on the store a server uses."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from cairn.cli import cli
from cairn.server.auth.stores.sql import AuthStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store folder; also the tracking URI, so commands find it without an option."""
    folder = str(tmp_path / "store")
    monkeypatch.setenv("CAIRN_TRACKING_URI", folder)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("CAIRN_NEW_USER_PASSWORD", raising=False)
    return folder


def _invoke(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _check(folder: str, username: str, password: str) -> bool:
    auth = AuthStore.open(f"sqlite:///{folder}/cairn.db")
    try:
        return auth.check_password(username, password) is not None
    finally:
        auth.close()


def test_create_with_the_password_asked_twice(store: str) -> None:
    out = _invoke("users", "create", "alice", stdin="alice-password-1\nalice-password-1\n")
    assert "Created user 'alice'" in out
    assert "alice-password-1" not in out  # typed hidden, never echoed
    assert _check(store, "alice", "alice-password-1")


def test_create_admin_with_password_option_and_list(store: str) -> None:
    out = _invoke("users", "create", "root", "--admin", "--password", "root-password-1")
    assert "Created admin 'root'" in out
    _invoke("users", "create", "bob", "--password", "bob-password-1")
    table = _invoke("users", "list")
    assert "root" in table and "bob" in table and "yes" in table
    listed = json.loads(_invoke("users", "list", "--json"))
    assert [(u["username"], u["is_admin"]) for u in listed] == [("bob", False), ("root", True)]


def test_backend_store_uri_option(tmp_path: Path, store: str) -> None:
    other = str(tmp_path / "other")
    _invoke(
        "users", "create", "carol", "--password", "carol-password-1", "--backend-store-uri", other
    )
    assert "carol" in _invoke("users", "list", "--backend-store-uri", other)
    assert "carol" not in _invoke("users", "list")


def test_bad_input_is_refused_with_a_message(store: str) -> None:
    out = _invoke("users", "create", "dave", "--password", "short", code=1)
    assert "Password too short: use at least 8 characters" in out
    out = _invoke("users", "create", "a:b", "--password", "long-enough-1", code=1)
    assert "Invalid username 'a:b'" in out
    _invoke("users", "create", "erin", "--password", "erin-password-1")
    out = _invoke("users", "create", "erin", "--password", "erin-password-1", code=1)
    assert "User 'erin' already exists" in out
    out = _invoke("users", "delete", "nobody", code=1)
    assert "User 'nobody' does not exist" in out
    out = _invoke("users", "list", "--backend-store-uri", "http://127.0.0.1:1", code=1)
    assert "must be a folder, sqlite:/// or postgresql://" in out


def test_delete_keeps_the_last_admin(store: str) -> None:
    _invoke("users", "create", "root", "--admin", "--password", "root-password-1")
    _invoke("users", "create", "frank", "--password", "frank-password-1")
    assert "Deleted user 'frank'" in _invoke("users", "delete", "frank")
    assert not _check(store, "frank", "frank-password-1")
    out = _invoke("users", "delete", "root", code=1)
    assert "Cannot delete the last admin" in out
