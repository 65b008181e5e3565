"""readiness reports record when a worker started them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 07:58:06.596672
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("readiness_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("readiness_reports", schema=None) as batch_op:
        batch_op.drop_column("started_at")
