from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cairn import _config
from cairn.errors import InvalidParameterError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _reset() -> None:
    yield
    _config.set_tracking_uri(None)


def test_default_is_cairn_folder_in_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CAIRN_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    location = _config.resolve_store_location(_config.get_tracking_uri())
    assert location.uri == f"sqlite:///{tmp_path / '.cairn' / 'cairn.db'}"
    assert location.artifact_root == str(tmp_path / ".cairn" / "artifacts")


def test_precedence_explicit_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_TRACKING_URI", "/from/env")
    assert _config.get_tracking_uri() == "/from/env"
    _config.set_tracking_uri("/explicit")
    assert _config.get_tracking_uri() == "/explicit"


@pytest.mark.parametrize(
    ("uri", "kind", "resolved"),
    [
        ("sqlite:////data/x.db", "sql", "sqlite:////data/x.db"),
        ("postgresql://u@h/db", "sql", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "sql", "postgresql+psycopg://u@h/db"),
        ("file:///data/store", "sql", "sqlite:////data/store/cairn.db"),
        ("/data/store", "sql", "sqlite:////data/store/cairn.db"),
        ("http://127.0.0.1:5000/", "rest", "http://127.0.0.1:5000"),
    ],
)
def test_uri_forms(uri: str, kind: str, resolved: str) -> None:
    location = _config.resolve_store_location(uri)
    assert (location.kind, location.uri) == (kind, resolved)


def test_sqlite_artifacts_sit_beside_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_ARTIFACT_ROOT", raising=False)
    assert _config.resolve_store_location("sqlite:////data/x.db").artifact_root == "/data/artifacts"
    monkeypatch.setenv("CAIRN_ARTIFACT_ROOT", "s3://bucket/cairn")
    assert (
        _config.resolve_store_location("sqlite:////data/x.db").artifact_root == "s3://bucket/cairn"
    )


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="Unsupported tracking URI 'ftp://x'"):
        _config.resolve_store_location("ftp://x")


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("0", False), ("no", False), ("1", True), ("", True)]
)
def test_env_flag(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("CAIRN_ASYNC_LOGGING", raw)
    assert _config.async_logging_enabled() is expected
