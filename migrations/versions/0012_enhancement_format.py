"""enhancement jobs record their output format (ome-tiff or ome-zarr)

A client may ask for an enhancement's outputs as a zipped OME-Zarr store instead of an OME-TIFF;
the worker reads which from the job. Jobs made before the choice existed wrote OME-TIFFs, which
the server default records.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enhancement_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "output_format", sa.String(length=10), nullable=False, server_default="ome-tiff"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("enhancement_jobs", schema=None) as batch_op:
        batch_op.drop_column("output_format")
