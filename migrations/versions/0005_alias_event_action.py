"""alias events say whether they promoted or rolled back

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 08:18:24.107422
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alias_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("action", sa.String(length=20), server_default="promote", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("alias_events", schema=None) as batch_op:
        batch_op.drop_column("action")
