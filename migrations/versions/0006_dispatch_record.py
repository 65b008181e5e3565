"""rows waiting for a worker record when their task was last sent; enhancements heartbeat

The database is the source of truth for accepted work: a reconciler in every worker re-sends a
queued row whose message may have been lost (`dispatched_at` empty or old), and a running
enhancement whose worker went silent (`heartbeat_at` old).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

WAITING_ROWS = ("training_jobs", "enhancement_jobs", "pairs", "readiness_reports")


def upgrade() -> None:
    for table in WAITING_ROWS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True)
            )
    with op.batch_alter_table("enhancement_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enhancement_jobs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
    for table in reversed(WAITING_ROWS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("dispatched_at")
