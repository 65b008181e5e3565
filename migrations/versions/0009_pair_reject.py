"""pairs record who rejected them by hand, and when

A lab may reject a pair the quality gate accepted (a blurred field, a wrong sample); like an
acceptance by hand, the key and the time are kept on the pair.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rejected_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("rejected_manually_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_pairs_rejected_by_id_principals",
            "principals",
            ["rejected_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_pairs_rejected_by_id_principals", type_="foreignkey")
        batch_op.drop_column("rejected_manually_at")
        batch_op.drop_column("rejected_by_id")
