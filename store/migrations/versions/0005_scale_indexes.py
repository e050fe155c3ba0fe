"""scale indexes: the dashboard inbox and Open311 lists, newest first, at a million complaints

Every complaint list is ordered `created_at DESC, id DESC` and limited (inbox pages of 25, Open311's
1,000 in a date window). Without an index in that order PostgreSQL read and sorted the whole table
for each page: 650 ms at 1,000,000 complaints (bench/scale.py); with it, a backward index scan stops
after the page, 0.1 ms, and filters on status/category/overdue/dates ride on the same scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:05:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_created", ["created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_created")
