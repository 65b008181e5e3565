"""versions carry a bioimage.io package and the pixel sizes they learned; items their grid

Every version is published with a bioimage.io package (or the reason it could not be built),
and records the LQ microscope's pixel and the aligned (HQ) grid it was trained on, so an
enhancement input of another pixel size is resampled onto that grid or refused. Each
enhancement item records what was done about its pixel size.

Versions published before this learned on their pairing's microscopes as they are now, so the
sizes are filled in from those.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_MICROSCOPE_PIXEL = (
    "(SELECT m.pixel_size_um FROM pairings p JOIN microscopes m ON m.id = p.{side}_microscope_id "
    "WHERE p.id = model_versions.pairing_id)"
)


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bioimageio_key", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("bioimageio_sha256", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("bioimageio_error", sa.String(2000), nullable=True))
        batch_op.add_column(sa.Column("lq_pixel_size_um", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("hq_pixel_size_um", sa.Float(), nullable=True))
    op.execute(
        "UPDATE model_versions SET "
        f"lq_pixel_size_um = {_MICROSCOPE_PIXEL.format(side='lq')}, "
        f"hq_pixel_size_um = {_MICROSCOPE_PIXEL.format(side='hq')}, "
        "bioimageio_error = 'published before versions had bioimage.io packages'"
    )
    with op.batch_alter_table("enhancement_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pixel_size", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enhancement_items", schema=None) as batch_op:
        batch_op.drop_column("pixel_size")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        for column in (
            "hq_pixel_size_um",
            "lq_pixel_size_um",
            "bioimageio_error",
            "bioimageio_sha256",
            "bioimageio_key",
        ):
            batch_op.drop_column(column)
