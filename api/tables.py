"""SQLAlchemy ORM classes of the registry. The schema itself changes only through migrations/."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps always come back timezone-aware in UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Modality(enum.StrEnum):
    widefield = "widefield"
    confocal = "confocal"
    sim = "sim"
    sted = "sted"
    other = "other"


class Role(enum.StrEnum):
    admin = "admin"
    lab = "lab"
    partner = "partner"


class PairingStatus(enum.StrEnum):
    active = "active"
    archived = "archived"


class TaskState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, validate_strings=True, length=20)


class Institution(Base):
    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    microscopes: Mapped[list[Microscope]] = relationship(back_populates="institution")


class Microscope(Base):
    __tablename__ = "microscopes"
    __table_args__ = (UniqueConstraint("institution_id", "name", name="uq_microscope_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    modality: Mapped[Modality] = mapped_column(_enum(Modality, "modality"))
    make_model: Mapped[str] = mapped_column(String(200), default="")
    objective_magnification: Mapped[float] = mapped_column(Float)
    numerical_aperture: Mapped[float] = mapped_column(Float)
    immersion_index: Mapped[float] = mapped_column(Float)
    pixel_size_um: Mapped[float] = mapped_column(Float)
    z_step_um: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    institution: Mapped[Institution] = relationship(back_populates="microscopes")
    channels: Mapped[list[Channel]] = relationship(
        back_populates="microscope",
        order_by="Channel.position",
        cascade="all, delete-orphan",
    )


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("microscope_id", "name", name="uq_channel_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    microscope_id: Mapped[int] = mapped_column(
        ForeignKey("microscopes.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    fluorophore: Mapped[str] = mapped_column(String(100), default="")
    excitation_nm: Mapped[float] = mapped_column(Float)
    emission_nm: Mapped[float] = mapped_column(Float)

    microscope: Mapped[Microscope] = relationship(back_populates="channels")


class Pairing(Base):
    """A low-end (LQ) microscope virtually paired with a high-end (HQ) reference microscope."""

    __tablename__ = "pairings"
    __table_args__ = (UniqueConstraint("lq_microscope_id", "hq_microscope_id", name="uq_pairing"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lq_microscope_id: Mapped[int] = mapped_column(ForeignKey("microscopes.id"), index=True)
    hq_microscope_id: Mapped[int] = mapped_column(ForeignKey("microscopes.id"), index=True)
    status: Mapped[PairingStatus] = mapped_column(
        _enum(PairingStatus, "pairing_status"), default=PairingStatus.active
    )
    channel_map: Mapped[list[Any]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # each institution's own consent to lend the pairing's pairs to pretraining a shared base
    lq_share_for_pretraining: Mapped[bool] = mapped_column(default=False, server_default=false())
    hq_share_for_pretraining: Mapped[bool] = mapped_column(default=False, server_default=false())

    lq_microscope: Mapped[Microscope] = relationship(foreign_keys=[lq_microscope_id])
    hq_microscope: Mapped[Microscope] = relationship(foreign_keys=[hq_microscope_id])

    @property
    def share_for_pretraining(self) -> bool:
        """Pretraining reads the pairing's pairs only while both institutions consent."""
        return self.lq_share_for_pretraining and self.hq_share_for_pretraining


class Principal(Base):
    """An API key, bound to an institution and a role. Only the key's hash is kept."""

    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    label: Mapped[str] = mapped_column(String(200), default="")
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    institution: Mapped[Institution] = relationship()


class ReadinessReport(Base):
    """A pairing's readiness check, computed by a worker: optics, sampling, channel match."""

    __tablename__ = "readiness_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(
        ForeignKey("pairings.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[TaskState] = mapped_column(_enum(TaskState, "task_state"))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    worker_host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Side(enum.StrEnum):
    lq = "lq"
    hq = "hq"


class PairStatus(enum.StrEnum):
    pending = "pending"
    aligning = "aligning"
    accepted = "accepted"
    rejected = "rejected"


class Split(enum.StrEnum):
    train = "train"
    validation = "validation"
    test = "test"


class Image(Base):
    """One uploaded TIFF: a field seen by one side of a pairing. The bytes live in the store."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("pairing_id", "side", "field_id", name="uq_image_field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    side: Mapped[Side] = mapped_column(_enum(Side, "side"))
    field_id: Mapped[str] = mapped_column(String(100))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    filename: Mapped[str] = mapped_column(String(300))
    object_key: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer().with_variant(BigInteger(), "postgresql"))
    file_format: Mapped[str] = mapped_column(String(30))
    axes: Mapped[str] = mapped_column(String(10))
    shape: Mapped[list[Any]] = mapped_column(JSON)
    dtype: Mapped[str] = mapped_column(String(20))
    pixel_size_um: Mapped[float] = mapped_column(Float)
    pixel_size_source: Mapped[str] = mapped_column(String(30))
    z_step_um: Mapped[float | None] = mapped_column(Float, nullable=True)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Pair(Base):
    """The LQ and HQ images of one field, their alignment and the quality gate's verdict."""

    __tablename__ = "pairs"
    __table_args__ = (UniqueConstraint("pairing_id", "field_id", name="uq_pair_field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    field_id: Mapped[str] = mapped_column(String(100))
    lq_image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    hq_image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    status: Mapped[PairStatus] = mapped_column(_enum(PairStatus, "pair_status"))
    reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    transform: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    lq_aligned_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    lq_aligned_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hq_aligned_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    hq_aligned_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    preview_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    accepted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    accepted_manually_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rejected_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    rejected_manually_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    lq_image: Mapped[Image] = relationship(foreign_keys=[lq_image_id])
    hq_image: Mapped[Image] = relationship(foreign_keys=[hq_image_id])


class Dataset(Base):
    """An immutable snapshot of a pairing's accepted pairs, split by field."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    fractions: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[DatasetMember]] = relationship(
        back_populates="dataset", order_by="DatasetMember.field_id", cascade="all, delete-orphan"
    )


class DatasetMember(Base):
    __tablename__ = "dataset_members"
    __table_args__ = (UniqueConstraint("dataset_id", "field_id", name="uq_member_field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    field_id: Mapped[str] = mapped_column(String(100))
    split: Mapped[Split] = mapped_column(_enum(Split, "split"))
    lq_image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    hq_image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    lq_aligned_key: Mapped[str] = mapped_column(String(500))
    lq_aligned_sha256: Mapped[str] = mapped_column(String(64))
    hq_aligned_key: Mapped[str] = mapped_column(String(500))
    hq_aligned_sha256: Mapped[str] = mapped_column(String(64))

    dataset: Mapped[Dataset] = relationship(back_populates="members")


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class TrainingJob(Base):
    """One training run of a pairing's generator on a dataset snapshot."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    preset: Mapped[str] = mapped_column(String(30))
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"), index=True)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    worker_host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    checkpoint_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkpoint_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resumed_from_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ModelVersion(Base):
    """A trained generator, numbered per pairing, immutable, with its lineage and scores."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("pairing_id", "number", name="uq_version_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id"), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    dataset_digest: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    software: Mapped[dict[str, Any]] = mapped_column(JSON)
    training: Mapped[dict[str, Any]] = mapped_column(JSON)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    model_key: Mapped[str] = mapped_column(String(500))
    model_sha256: Mapped[str] = mapped_column(String(64))
    report_key: Mapped[str] = mapped_column(String(500))
    report_sha256: Mapped[str] = mapped_column(String(64))
    report_png_key: Mapped[str] = mapped_column(String(500))
    report_png_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the bioimage.io package built at publish time, or why it could not be
    bioimageio_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    bioimageio_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bioimageio_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # the LQ microscope's pixel it learned from, and the aligned (HQ) grid it runs on
    lq_pixel_size_um: Mapped[float | None] = mapped_column(Float, nullable=True)
    hq_pixel_size_um: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alias(Base):
    """A named pointer (production, staging) from a pairing to one of its versions."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("pairing_id", "name", name="uq_alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    name: Mapped[str] = mapped_column(String(30))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AliasEvent(Base):
    """The audit log of alias moves: who moved which alias from which version to which."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    alias: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(20), default="promote", server_default="promote")
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int] = mapped_column(Integer)
    principal_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    override_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EnhancementJob(Base):
    """A request to enhance one or more wide-field images with one version."""

    __tablename__ = "enhancement_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    out_dtype: Mapped[str] = mapped_column(String(10))
    ensemble: Mapped[bool] = mapped_column(default=False)
    # ome-tiff, or ome-zarr: a zipped NGFF store (api/services/enhancement_requests.py)
    output_format: Mapped[str] = mapped_column(
        String(10), default="ome-tiff", server_default="ome-tiff"
    )
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"))
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    worker_host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    items: Mapped[list[EnhancementItem]] = relationship(
        back_populates="job", order_by="EnhancementItem.id", cascade="all, delete-orphan"
    )


class EnhancementItem(Base):
    """One input image of an enhancement job and its output."""

    __tablename__ = "enhancement_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("enhancement_jobs.id", ondelete="CASCADE"), index=True
    )
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"), nullable=True)
    filename: Mapped[str] = mapped_column(String(300))
    input_key: Mapped[str] = mapped_column(String(500))
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_shape: Mapped[list[Any]] = mapped_column(JSON)
    input_axes: Mapped[str] = mapped_column(String(10))
    pixel_size_um: Mapped[float] = mapped_column(Float)
    # models/pixel_grid.py's PixelSizePlan: the input's pixel, the model's grid, what was done
    pixel_size: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"))
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    output_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    output_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_size: Mapped[int | None] = mapped_column(
        Integer().with_variant(BigInteger(), "postgresql"), nullable=True
    )
    preview_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # models/trust.py's summary (consistency, OOD, uncertainty, review) and the maps' OME-TIFF
    trust: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    trust_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    trust_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    job: Mapped[EnhancementJob] = relationship(back_populates="items")


class PretrainingJob(Base):
    """One pretraining run of the network's channel-agnostic base model (admin only)."""

    __tablename__ = "pretraining_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    preset: Mapped[str] = mapped_column(String(30))
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # models/base_models.py's PretrainingRecipe: the synthetic fields to simulate
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"), index=True)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
    worker_host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BaseVersion(Base):
    """A channel-agnostic (single-channel, applied per channel) base generator that pairings
    fine-tune from, numbered network-wide, with its lineage: the synthetic recipe and every
    snapshot it read (`sources`: pairing id, dataset id, digest). A withdrawal of consent by a
    pairing it read marks it tainted; the next base leaves that pairing out."""

    __tablename__ = "base_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("pretraining_jobs.id"), unique=True)
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
    sources: Mapped[list[Any]] = mapped_column(JSON)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    n_channels: Mapped[int] = mapped_column(Integer)
    # the range of (aligned-grid) pixel sizes it learned on
    pixel_size_min_um: Mapped[float] = mapped_column(Float)
    pixel_size_max_um: Mapped[float] = mapped_column(Float)
    software: Mapped[dict[str, Any]] = mapped_column(JSON)
    training: Mapped[dict[str, Any]] = mapped_column(JSON)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    model_key: Mapped[str] = mapped_column(String(500))
    model_sha256: Mapped[str] = mapped_column(String(64))
    tainted_by_withdrawal: Mapped[bool] = mapped_column(default=False, server_default=false())
    taint_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    tainted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def pairing_ids(self) -> list[int]:
        return sorted({int(s["pairing_id"]) for s in self.sources})
