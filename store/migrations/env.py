"""Alembic environment: migrations always run on a connection handed over by store.migrate."""

from __future__ import annotations

from alembic import context

from store.models import Base, described_by_models

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI misused
    raise RuntimeError("run migrations with `lapor migrate`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=described_by_models,  # the search index of migration 0007 is per backend
)
with context.begin_transaction():
    context.run_migrations()
