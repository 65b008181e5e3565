"""registry: institutions, microscopes, channels, pairings, keys, readiness

Revision ID: 0001
Revises:
Create Date: 2026-11-25 07:18:22.998799
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=100), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "microscopes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "modality",
            sa.Enum(
                "widefield",
                "confocal",
                "sim",
                "sted",
                "other",
                name="modality",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("make_model", sa.String(length=200), nullable=False),
        sa.Column("objective_magnification", sa.Float(), nullable=False),
        sa.Column("numerical_aperture", sa.Float(), nullable=False),
        sa.Column("immersion_index", sa.Float(), nullable=False),
        sa.Column("pixel_size_um", sa.Float(), nullable=False),
        sa.Column("z_step_um", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("institution_id", "name", name="uq_microscope_name"),
    )
    with op.batch_alter_table("microscopes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_microscopes_institution_id"), ["institution_id"], unique=False
        )

    op.create_table(
        "principals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "lab", "partner", name="role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_principals_institution_id"), ["institution_id"], unique=False
        )

    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("microscope_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("fluorophore", sa.String(length=100), nullable=False),
        sa.Column("excitation_nm", sa.Float(), nullable=False),
        sa.Column("emission_nm", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["microscope_id"], ["microscopes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("microscope_id", "name", name="uq_channel_name"),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channels_microscope_id"), ["microscope_id"], unique=False
        )

    op.create_table(
        "pairings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lq_microscope_id", sa.Integer(), nullable=False),
        sa.Column("hq_microscope_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "archived", name="pairing_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("channel_map", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["principals.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["hq_microscope_id"],
            ["microscopes.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lq_microscope_id"],
            ["microscopes.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lq_microscope_id", "hq_microscope_id", name="uq_pairing"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pairings_hq_microscope_id"), ["hq_microscope_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pairings_lq_microscope_id"), ["lq_microscope_id"], unique=False
        )

    op.create_table(
        "readiness_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pairing_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                name="task_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("worker_host", sa.String(length=200), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["pairing_id"], ["pairings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["principals.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("readiness_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_readiness_reports_pairing_id"), ["pairing_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("readiness_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_readiness_reports_pairing_id"))

    op.drop_table("readiness_reports")
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairings_lq_microscope_id"))
        batch_op.drop_index(batch_op.f("ix_pairings_hq_microscope_id"))

    op.drop_table("pairings")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channels_microscope_id"))

    op.drop_table("channels")
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principals_institution_id"))

    op.drop_table("principals")
    with op.batch_alter_table("microscopes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_microscopes_institution_id"))

    op.drop_table("microscopes")
    op.drop_table("institutions")
