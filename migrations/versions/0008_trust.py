"""enhancement items carry their trust checks and the maps' file

Every enhancement is checked against its own input (consistency with the pairing's blur) and
the model's training fields (out of distribution), later its calibrated uncertainty: the
summary is kept as JSON on the item, the maps as a second OME-TIFF whose key and hash the item
records. Items enhanced before this have none (NULL): their versions had no reference.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enhancement_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trust", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("trust_key", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("trust_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enhancement_items", schema=None) as batch_op:
        for column in ("trust_sha256", "trust_key", "trust"):
            batch_op.drop_column(column)
