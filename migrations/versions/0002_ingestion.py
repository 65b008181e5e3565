"""ingestion: images, pairs, datasets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:27:12.162154
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pairing_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("fractions", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["principals.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["pairing_id"],
            ["pairings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_datasets_pairing_id"), ["pairing_id"], unique=False)

    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pairing_id", sa.Integer(), nullable=False),
        sa.Column(
            "side", sa.Enum("lq", "hq", name="side", native_enum=False, length=20), nullable=False
        ),
        sa.Column("field_id", sa.String(length=100), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("object_key", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "size_bytes", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False
        ),
        sa.Column("file_format", sa.String(length=30), nullable=False),
        sa.Column("axes", sa.String(length=10), nullable=False),
        sa.Column("shape", sa.JSON(), nullable=False),
        sa.Column("dtype", sa.String(length=20), nullable=False),
        sa.Column("pixel_size_um", sa.Float(), nullable=False),
        sa.Column("pixel_size_source", sa.String(length=30), nullable=False),
        sa.Column("z_step_um", sa.Float(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pairing_id"],
            ["pairings.id"],
        ),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["principals.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pairing_id", "side", "field_id", name="uq_image_field"),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_images_institution_id"), ["institution_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_images_pairing_id"), ["pairing_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_sha256"), ["sha256"], unique=False)

    op.create_table(
        "pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pairing_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.String(length=100), nullable=False),
        sa.Column("lq_image_id", sa.Integer(), nullable=False),
        sa.Column("hq_image_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "aligning",
                "accepted",
                "rejected",
                name="pair_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("transform", sa.JSON(), nullable=True),
        sa.Column("lq_aligned_key", sa.String(length=500), nullable=True),
        sa.Column("lq_aligned_sha256", sa.String(length=64), nullable=True),
        sa.Column("hq_aligned_key", sa.String(length=500), nullable=True),
        sa.Column("hq_aligned_sha256", sa.String(length=64), nullable=True),
        sa.Column("preview_key", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("accepted_by_id", sa.Integer(), nullable=True),
        sa.Column("accepted_manually_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["accepted_by_id"], ["principals.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["hq_image_id"],
            ["images.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lq_image_id"],
            ["images.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pairing_id"],
            ["pairings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pairing_id", "field_id", name="uq_pair_field"),
    )
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pairs_pairing_id"), ["pairing_id"], unique=False)

    op.create_table(
        "dataset_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.String(length=100), nullable=False),
        sa.Column(
            "split",
            sa.Enum("train", "validation", "test", name="split", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("lq_image_id", sa.Integer(), nullable=False),
        sa.Column("hq_image_id", sa.Integer(), nullable=False),
        sa.Column("lq_aligned_key", sa.String(length=500), nullable=False),
        sa.Column("lq_aligned_sha256", sa.String(length=64), nullable=False),
        sa.Column("hq_aligned_key", sa.String(length=500), nullable=False),
        sa.Column("hq_aligned_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["hq_image_id"],
            ["images.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lq_image_id"],
            ["images.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pairs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "field_id", name="uq_member_field"),
    )
    with op.batch_alter_table("dataset_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_members_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dataset_members_hq_image_id"), ["hq_image_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dataset_members_lq_image_id"), ["lq_image_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dataset_members_pair_id"), ["pair_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_members_pair_id"))
        batch_op.drop_index(batch_op.f("ix_dataset_members_lq_image_id"))
        batch_op.drop_index(batch_op.f("ix_dataset_members_hq_image_id"))
        batch_op.drop_index(batch_op.f("ix_dataset_members_dataset_id"))

    op.drop_table("dataset_members")
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairs_pairing_id"))

    op.drop_table("pairs")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_sha256"))
        batch_op.drop_index(batch_op.f("ix_images_pairing_id"))
        batch_op.drop_index(batch_op.f("ix_images_institution_id"))

    op.drop_table("images")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datasets_pairing_id"))

    op.drop_table("datasets")
