from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest) -> str:
    """The same test against a real SQLite file and a real PostgreSQL database."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_uri"))
    return str(request.getfixturevalue("sqlite_uri"))
