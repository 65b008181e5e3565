"""pairings record each side's consent to pretraining; base models and their pretraining jobs

A pairing's images are read by pretraining only while both institutions consent, so each side's
consent is a column of its own and either side withdrawing clears the pairing's. A base model
records its lineage (the synthetic recipe and every snapshot it read, by pairing and digest) so
that a withdrawal can mark the bases that used the pairing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        for side in ("lq", "hq"):
            batch_op.add_column(
                sa.Column(
                    f"{side}_share_for_pretraining",
                    sa.Boolean(),
                    nullable=False,
                    server_default=sa.false(),
                )
            )
    op.create_table(
        "pretraining_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("preset", sa.String(30), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(*_JOB_STATES, name="job_state", native_enum=False, length=20),
            nullable=False,
            index=True,
        ),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column(
            "started_by_id",
            sa.Integer(),
            sa.ForeignKey("principals.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("worker_host", sa.String(200), nullable=True),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress", sa.JSON(), nullable=False),
        _when("created_at", nullable=False),
        _when("started_at"),
        _when("heartbeat_at"),
        _when("finished_at"),
        _when("dispatched_at"),
    )
    op.create_table(
        "base_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.Integer(), nullable=False, unique=True),
        sa.Column(
            "job_id",
            sa.Integer(),
            sa.ForeignKey("pretraining_jobs.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("n_channels", sa.Integer(), nullable=False),
        sa.Column("pixel_size_min_um", sa.Float(), nullable=False),
        sa.Column("pixel_size_max_um", sa.Float(), nullable=False),
        sa.Column("software", sa.JSON(), nullable=False),
        sa.Column("training", sa.JSON(), nullable=False),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("model_key", sa.String(500), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("tainted_by_withdrawal", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("taint_reason", sa.String(1000), nullable=True),
        _when("tainted_at"),
        _when("created_at", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("base_versions")
    op.drop_table("pretraining_jobs")
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.drop_column("hq_share_for_pretraining")
        batch_op.drop_column("lq_share_for_pretraining")
