"""Indexes on params and tags by (key, value prefix): sorting runs by a param or tag walks them,
and listing an experiment's keys skips along them instead of reading every run's keys.

The second column is the value's first 200 characters (by code point on PostgreSQL), not the
value: a PostgreSQL btree entry must stay under ~2.7 kB and values reach 8,000 characters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("params", "tags")


def _value_prefix() -> sa.TextClause:
    if op.get_bind().dialect.name == "postgresql":
        return sa.text('substr(value COLLATE "C", 1, 200)')
    return sa.text("substr(value, 1, 200)")


def upgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_key_value", table, [sa.column("key"), _value_prefix()])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_key_value", table)
