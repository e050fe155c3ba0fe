"""sealed contacts: outbox recipients and reporters' profile names encrypted at rest

`outbox.to_address` now holds the recipient's keyed lookup hash (64 hex characters, so the column
keeps its width) and `outbox.to_address_enc` the address encrypted; `reporters.display_name_enc`
holds the profile name encrypted. Existing rows are left as they are (still readable: a NULL
`*_enc` means the old column is in clear): the migration runs without the privacy key, and
`lapor keys rotate` seals them (docs/DEPLOY.md, "Upgrades").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("to_address_enc", sa.Text(), nullable=True))
    with op.batch_alter_table("reporters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    # Sealed rows keep only a hash in `to_address`: run a downgrade on a database whose contacts
    # were written by this version and those messages can no longer be sent.
    with op.batch_alter_table("reporters", schema=None) as batch_op:
        batch_op.drop_column("display_name_enc")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("to_address_enc")
