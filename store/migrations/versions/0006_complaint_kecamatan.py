"""complaints.kecamatan: the inbox's area filter as an indexed column, filled for existing rows

The kecamatan (district) was recognised from `location_text` in Python at read time: the inbox read
the 5,000 newest rows and kept those naming the kecamatan (about 90 ms per page, and blind past those
rows), and the monthly report recognised every distinct place text of a month. Now intake stores it
(store.models.Complaint.kecamatan) and the filter is `kecamatan = :k` on `(kecamatan, created_at,
id)`, newest first like every list.

The upgrade backfills the existing rows in batches of `BATCH` ids: read (id, location_text), recognise
the kecamatan in Python with the report's recogniser (workflow.report.kecamatan: the same answers as
conversation.places.kecamatan_of, four times faster on ASCII text), then one UPDATE per kecamatan
named in the batch (`WHERE id IN (...)`), so a batch costs at most 17 statements on either backend.
The index is built after the backfill (one sorted build instead of a million index inserts). Rows
without a place, or whose place names no kecamatan, stay NULL.

On PostgreSQL an UPDATE writes a new version of each row, so the backfill leaves the table twice its
size with half of it dead (bench/scale.py at 1,000,000 complaints: 695 MB instead of 354 MB), and
nothing inside this transaction can compact it: CLUSTER or VACUUM FULL must keep the old versions
until the transaction that replaced them commits. VACUUM frees the space without shrinking the file,
and the planner costs a sequential scan by the file's size (the inbox's text search crossed
`jit_above_cost` and took 69 ms instead of 32 ms). So docs/DEPLOY.md says to run `VACUUM FULL
complaints` after this upgrade. The upgrade ends with ANALYZE, so the planner knows the new column.
Timings: bench/RESULTS.md section 3.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 10_000
"""Ids per batch: well under the bound-parameter limits (SQLite 32,766, PostgreSQL 32,767)."""

complaints = sa.table(
    "complaints",
    sa.column("id", sa.BigInteger),
    sa.column("location_text", sa.Text),
    sa.column("kecamatan", sa.String(32)),
)


def backfill(conn: Connection, batch: int = BATCH) -> int:
    """Fill `kecamatan` for every row that has a place text; returns the number of rows named."""
    from workflow.report import kecamatan

    named = 0
    after = 0
    while True:
        rows = conn.execute(
            sa.select(complaints.c.id, complaints.c.location_text)
            .where(complaints.c.id > after)
            .order_by(complaints.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return named
        after = rows[-1][0]
        ids: defaultdict[str, list[int]] = defaultdict(list)
        for complaint_id, text in rows:
            name = kecamatan(text) if text else None
            if name is not None:
                ids[name].append(complaint_id)
        for name, members in ids.items():
            conn.execute(
                sa.update(complaints).where(complaints.c.id.in_(members)).values(kecamatan=name)
            )
            named += len(members)


def upgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kecamatan", sa.String(length=32), nullable=True))
    backfill(op.get_bind())
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(
            "ix_complaints_kecamatan_created", ["kecamatan", "created_at", "id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE complaints")


def downgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_kecamatan_created")
        batch_op.drop_column("kecamatan")
