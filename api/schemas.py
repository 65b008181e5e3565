"""Request and response bodies. Physical limits are checked here, with the field named."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from api.tables import Modality, PairingStatus, Role, TaskState

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Wavelength = Annotated[float, Field(ge=200, le=1200, description="nm, 200–1200")]
NumericalAperture = Annotated[float, Field(gt=0, le=1.7, description="(0, 1.7]")]
RefractiveIndex = Annotated[float, Field(ge=1.0, le=2.0, description="[1, 2]")]
PixelSize = Annotated[float, Field(gt=0, le=100, description="µm per pixel, > 0")]
Magnification = Annotated[float, Field(gt=0, le=250)]

T = TypeVar("T")


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class InstitutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    country: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
    contact_email: Email


class InstitutionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    country: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
        | None
    ) = None
    contact_email: Email | None = None


class InstitutionOut(Orm):
    id: int
    name: str
    country: str
    contact_email: str
    created_at: datetime


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    fluorophore: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    excitation_nm: Wavelength
    emission_nm: Wavelength


class ChannelOut(Orm):
    name: str
    fluorophore: str
    excitation_nm: float
    emission_nm: float


class _Optics(BaseModel):
    @field_validator("immersion_index", check_fields=False)
    @classmethod
    def _na_within_immersion(cls, n: float | None, info: ValidationInfo) -> float | None:
        na = info.data.get("numerical_aperture")
        if na is not None and n is not None and na > n:
            raise ValueError(
                f"numerical_aperture {na} cannot exceed immersion_index {n} (NA = n·sin θ)"
            )
        return n


class MicroscopeCreate(_Optics):
    model_config = ConfigDict(extra="forbid")
    institution_id: int
    name: Name
    modality: Modality
    make_model: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    objective_magnification: Magnification
    numerical_aperture: NumericalAperture
    immersion_index: RefractiveIndex
    pixel_size_um: PixelSize
    z_step_um: Annotated[float, Field(gt=0, le=100)] | None = None
    channels: Annotated[list[ChannelIn], Field(min_length=1, max_length=16)]

    @field_validator("channels")
    @classmethod
    def _unique_channel_names(cls, channels: list[ChannelIn]) -> list[ChannelIn]:
        names = [c.name for c in channels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"channel names must be unique; repeated: {', '.join(duplicates)}")
        return channels


class MicroscopeUpdate(_Optics):
    """Optics may be corrected; channels are fixed once registered (images depend on them)."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    make_model: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = (
        None
    )
    objective_magnification: Magnification | None = None
    numerical_aperture: NumericalAperture | None = None
    immersion_index: RefractiveIndex | None = None
    pixel_size_um: PixelSize | None = None
    z_step_um: Annotated[float, Field(gt=0, le=100)] | None = None


class MicroscopeOut(Orm):
    id: int
    institution_id: int
    name: str
    modality: Modality
    make_model: str
    objective_magnification: float
    numerical_aperture: float
    immersion_index: float
    pixel_size_um: float
    z_step_um: float | None
    channels: list[ChannelOut]
    created_at: datetime


class ChannelPair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lq_channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    hq_channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class PairingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    lq_microscope_id: int
    hq_microscope_id: int
    channel_map: list[ChannelPair] | None = Field(
        None, description="LQ→HQ channel correspondence; omitted means channels of equal name."
    )


class PairingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    status: PairingStatus | None = None


class PairingOut(Orm):
    id: int
    name: str
    lq_microscope_id: int
    hq_microscope_id: int
    status: PairingStatus
    channel_map: list[ChannelPair]
    created_by_id: int | None
    created_at: datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: int
    role: Role
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class KeyOut(Orm):
    id: int
    institution_id: int
    role: Role
    label: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The API key. Shown once: store it now.")


class ReadinessOut(Orm):
    id: int
    pairing_id: int
    state: TaskState
    report: dict[str, Any] | None
    error: str | None
    worker_host: str | None
    created_at: datetime
    finished_at: datetime | None
