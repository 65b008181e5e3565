"""enhancement jobs count their claims and say why they failed

An enhancement whose execution kills its worker every time (an input too large for the
worker's memory) was put back in the queue for ever. Like training and pretraining jobs, an
enhancement now counts the workers that claimed it; once it has used up
`PAIRSCOPE_JOB_MAX_ATTEMPTS` the reaper fails it with the reason, which the API shows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enhancement_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("reason", sa.String(2000), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enhancement_jobs", schema=None) as batch_op:
        batch_op.drop_column("started_at")
        batch_op.drop_column("reason")
        batch_op.drop_column("attempts")
