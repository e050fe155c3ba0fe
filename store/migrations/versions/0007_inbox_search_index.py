"""inbox search and category lists by index: a trigram index of the searched text, (category, created_at, id)

The inbox's search box finds complaints whose description, place and tracking code, joined by spaces
and lower-cased, contain every word typed (dashboard.queries.search_text). Without an index, a search
whose words match nothing, or are rare together ("pemuda setiabudi"), read the whole table: 3-5 s at
1,000,000 complaints. Substring matching needs trigrams:

* PostgreSQL: a GIN index with pg_trgm's `gin_trgm_ops` on exactly the expression the query filters
  by (`lower(description || ' ' || coalesce(location_text, '') || ' ' || tracking_code)`; a query
  whose expression differs by as much as a cast cannot use it). `CREATE EXTENSION IF NOT EXISTS
  pg_trgm` needs a role allowed to create it (pg_trgm is a trusted extension since PostgreSQL 13: the
  database owner may) or an administrator who created it once (docs/DEPLOY.md). The build holds a
  SHARE lock on complaints (reads go on, writes wait): about 35 s per million complaints; an
  operator may build the same index beforehand with CREATE INDEX CONCURRENTLY, hence IF NOT EXISTS.
  ANALYZE afterwards gives the planner the expression's statistics, so it can tell a common word
  (read the list newest first and stop at a page) from a rare one (use the index).
* SQLite: a contentless FTS5 table with the trigram tokenizer (SQLite >= 3.34), `complaints_search`,
  one row per complaint (rowid = complaints.id) holding the same joined text (not lower-cased: the
  tokenizer folds case itself, Unicode-wide, so it finds a superset of what SQLite's ASCII-only
  lower() and LIKE find; the query checks the exact rule on those candidates). Triggers after
  INSERT, DELETE and UPDATE OF the searched columns keep it in step with complaints, so every writer
  (the intake's plain-SQL batches in store/bulk.py included) keeps it right without knowing it
  exists. A contentless table stores no copy of the text; removing a row needs the text it was
  indexed with, which the triggers have (OLD.*). Where the SQLite library has no FTS5 or no trigram
  tokenizer, the upgrade logs so and the search stays the scan it was (dashboard.queries checks for
  the table).

  A later migration that rebuilds complaints on SQLite (Alembic's batch mode copies the table and
  drops the old one) drops these triggers with it: it must create them again (`create_triggers`).
  tests/test_migration_0007.py checks them at head.

The category index: Open311's `?service_code=banjir&status=open` list was a bitmap AND of
ix_complaints_category and ix_complaints_created plus a sort of the window's matches (35 ms in
EXPLAIN ANALYZE at 1M complaints); along `(category, created_at, id)` it is a backward index scan
that stops at the 1,000th row (8 ms), and the inbox's `?category=` pages walk it too.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy.engine import Connection

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

SQLITE_TRIGRAM = (3, 34, 0)

# The searched text: dashboard.queries.search_text. On PostgreSQL lower-cased in the index itself.
POSTGRESQL_INDEX = """
CREATE INDEX IF NOT EXISTS ix_complaints_search ON complaints USING gin
    ((lower(description || ' ' || coalesce(location_text, '') || ' ' || tracking_code)) gin_trgm_ops)
"""
SQLITE_TABLE = """
CREATE VIRTUAL TABLE complaints_search USING fts5(
    body, content='', columnsize=0, tokenize='trigram'
)
"""
SQLITE_BACKFILL = """
INSERT INTO complaints_search (rowid, body)
SELECT id, description || ' ' || coalesce(location_text, '') || ' ' || tracking_code FROM complaints
"""
_ADD = """
    INSERT INTO complaints_search (rowid, body) VALUES (
        new.id, new.description || ' ' || coalesce(new.location_text, '') || ' ' || new.tracking_code
    );
"""
_REMOVE = """
    INSERT INTO complaints_search (complaints_search, rowid, body) VALUES (
        'delete', old.id,
        old.description || ' ' || coalesce(old.location_text, '') || ' ' || old.tracking_code
    );
"""
SQLITE_TRIGGERS = {
    "complaints_search_insert": f"AFTER INSERT ON complaints BEGIN {_ADD} END",
    "complaints_search_delete": f"AFTER DELETE ON complaints BEGIN {_REMOVE} END",
    "complaints_search_update": "AFTER UPDATE OF id, description, location_text, tracking_code"
    f" ON complaints BEGIN {_REMOVE} {_ADD} END",
}


def create_triggers(conn: Connection) -> None:
    """Keep `complaints_search` in step with complaints (SQLite)."""
    for name, body in SQLITE_TRIGGERS.items():
        conn.exec_driver_sql(f"CREATE TRIGGER {name} {body}")


def _sqlite_trigram(conn: Connection) -> str | None:
    """Why the SQLite library cannot hold the index, or None when it can."""
    import sqlite3

    if sqlite3.sqlite_version_info < SQLITE_TRIGRAM:
        return f"SQLite {sqlite3.sqlite_version} has no trigram tokenizer (3.34 or later has)"
    options = {row[0] for row in conn.exec_driver_sql("PRAGMA compile_options")}
    if "ENABLE_FTS5" not in options:
        return f"SQLite {sqlite3.sqlite_version} was built without FTS5"
    return None


def upgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(
            "ix_complaints_category_created", ["category", "created_at", "id"], unique=False
        )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(POSTGRESQL_INDEX)
        op.execute("ANALYZE complaints")  # the expression's statistics: how common a word is
    elif conn.dialect.name == "sqlite":
        missing = _sqlite_trigram(conn)
        if missing is not None:
            log.warning("inbox search stays a scan of the complaints table: %s", missing)
            return
        conn.exec_driver_sql(SQLITE_TABLE)
        conn.exec_driver_sql(SQLITE_BACKFILL)
        create_triggers(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_complaints_search")  # pg_trgm stays: others may use it
    elif conn.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS complaints_search")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_category_created")
