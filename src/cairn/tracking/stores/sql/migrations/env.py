"""Alembic environment: Cairn passes an open connection; migrations never read alembic.ini."""

from __future__ import annotations

from alembic import context

from cairn.tracking.stores.sql.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
