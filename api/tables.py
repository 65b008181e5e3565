"""SQLAlchemy ORM classes of the registry. The schema itself changes only through migrations/."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
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

    lq_microscope: Mapped[Microscope] = relationship(foreign_keys=[lq_microscope_id])
    hq_microscope: Mapped[Microscope] = relationship(foreign_keys=[hq_microscope_id])


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
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
