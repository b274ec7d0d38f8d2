"""``cairn tokens``: create (shown once), list (never the secret), revoke."""

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
    folder = str(tmp_path / "store")
    monkeypatch.setenv("CAIRN_TRACKING_URI", folder)
    monkeypatch.setenv("COLUMNS", "200")
    auth = AuthStore.open(f"sqlite:///{folder}/cairn.db")
    auth.create_user("alice", "alice-password-1")
    auth.close()
    return folder


def _invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _owner(folder: str, secret: str) -> str | None:
    auth = AuthStore.open(f"sqlite:///{folder}/cairn.db")
    try:
        user = auth.user_for_token(secret)
        return None if user is None else user.username
    finally:
        auth.close()


def test_create_list_revoke(store: str) -> None:
    out = _invoke("tokens", "create", "alice", "--name", "ci")
    assert "Token 1 for 'alice' (shown only now" in out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("cairn_") and _owner(store, secret) == "alice"
    table = _invoke("tokens", "list")
    assert "alice" in table and "ci" in table and secret not in table
    assert "Revoked token 1" in _invoke("tokens", "revoke", "1")
    assert _owner(store, secret) is None
    listed = json.loads(_invoke("tokens", "list", "alice", "--json"))
    assert len(listed) == 1 and listed[0]["name"] == "ci" and "revoked_time" in listed[0]


def test_json_output_carries_the_secret_once(store: str) -> None:
    created = json.loads(_invoke("tokens", "create", "alice", "--json"))
    assert _owner(store, created["token"]) == "alice"
    assert created["username"] == "alice" and created["id"] == 1


def test_bad_input_is_refused_with_a_message(store: str) -> None:
    out = _invoke("tokens", "create", "nobody", code=1)
    assert "User 'nobody' does not exist" in out
    out = _invoke("tokens", "revoke", "42", code=1)
    assert "Token 42 does not exist" in out
    out = _invoke("tokens", "revoke", "0", code=2)
    assert "0 is not in the range x>=1" in out
    out = _invoke("tokens", "list", "nobody", code=1)
    assert "User 'nobody' does not exist" in out
