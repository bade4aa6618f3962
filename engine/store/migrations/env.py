"""Alembic environment: runs migrations on the connection the engine hands over."""

from __future__ import annotations

from alembic import context

from signoff.engine.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=lambda name, type_, _parent: not (type_ == "table" and name == "apscheduler_jobs"),
)
with context.begin_transaction():
    context.run_migrations()
