"""The PostgreSQL fixtures give each test a real server and a database of its own."""

from __future__ import annotations

import psycopg
import pytest

_seen_databases: set[str] = set()


def test_postgres_uri_is_a_real_server(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri) as conn:
        conn.execute("CREATE TABLE runs (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO runs (name) VALUES (%s)", ("first",))
        conn.commit()
    with psycopg.connect(postgres_uri) as conn:
        rows = conn.execute("SELECT id, name FROM runs").fetchall()
        version = conn.execute("SHOW server_version_num").fetchone()
    assert rows == [(1, "first")]
    assert version is not None and int(version[0]) >= 130000


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_gets_a_distinct_empty_database(postgres_uri: str, attempt: int) -> None:
    with psycopg.connect(postgres_uri) as conn:
        row = conn.execute("SELECT current_database(), to_regclass('marker')").fetchone()
        assert row is not None
        dbname, marker = row
        assert marker is None, f"attempt {attempt}: database {dbname} is not fresh"
        conn.execute("CREATE TABLE marker (attempt int)")
    assert postgres_uri.endswith(f"/{dbname}")
    assert dbname not in _seen_databases
    _seen_databases.add(dbname)
