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
    model_validator,
)

from api.tables import (
    JobState,
    Modality,
    PairingStatus,
    PairStatus,
    Role,
    Side,
    Split,
    TaskState,
)

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
    started_at: datetime | None
    finished_at: datetime | None


class ImageOut(Orm):
    id: int
    pairing_id: int
    side: Side
    field_id: str
    institution_id: int
    filename: str
    sha256: str
    size_bytes: int
    file_format: str
    axes: str
    shape: list[int]
    dtype: str
    pixel_size_um: float
    pixel_size_source: str
    z_step_um: float | None
    warnings: list[str]
    created_at: datetime


class PairOut(Orm):
    id: int
    pairing_id: int
    field_id: str
    lq_image_id: int
    hq_image_id: int
    status: PairStatus
    reason: str | None
    score: float | None
    transform: dict[str, Any] | None
    lq_aligned_sha256: str | None
    hq_aligned_sha256: str | None
    has_preview: bool = False
    attempts: int
    accepted_by_id: int | None
    accepted_manually_at: datetime | None
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _preview_flag(cls, data: Any) -> Any:
        if hasattr(data, "preview_key"):
            return {
                **{k: getattr(data, k) for k in cls.model_fields if hasattr(data, k)},
                "has_preview": data.preview_key is not None,
            }
        return data


class SplitFractions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train: Annotated[float, Field(gt=0, le=1)] = 0.7
    validation: Annotated[float, Field(ge=0, lt=1)] = 0.15
    test: Annotated[float, Field(ge=0, lt=1)] = 0.15

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must sum to 1, not {total:g}")
        return self


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fractions: SplitFractions = Field(default_factory=SplitFractions)
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class DatasetMemberOut(Orm):
    field_id: str
    split: Split
    pair_id: int
    lq_image_id: int
    hq_image_id: int
    lq_aligned_sha256: str
    hq_aligned_sha256: str


class DatasetOut(Orm):
    id: int
    pairing_id: int
    digest: str
    seed: int
    fractions: dict[str, float]
    created_by_id: int | None
    created_at: datetime
    counts: dict[str, int] = Field(default_factory=dict)
    members: list[DatasetMemberOut]

    @model_validator(mode="after")
    def _count(self) -> DatasetOut:
        self.counts = {s.value: sum(m.split == s for m in self.members) for s in Split}
        return self


class TrainingJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset_id: int
    preset: str = Field("cpu-small", description="paper, cpu-small or tiny")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="models Config fields to change"
    )
    seed: Annotated[int, Field(ge=0, lt=2**31)] | None = None
    minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] | None = Field(
        None, description="time budget; training ends normally when it runs out"
    )


class TrainingJobOut(Orm):
    id: int
    pairing_id: int
    dataset_id: int
    preset: str
    overrides: dict[str, Any]
    config: dict[str, Any]
    seed: int
    minutes: float | None
    state: JobState
    reason: str | None
    cancel_requested: bool
    started_by_id: int | None
    worker_host: str | None
    device: str | None
    attempts: int
    progress: dict[str, Any]
    history: list[dict[str, Any]]
    checkpoint_step: int | None
    resumed_from_step: int | None
    stale: bool = False
    version: int | None = None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


class VersionOut(Orm):
    id: int
    pairing_id: int
    number: int
    job_id: int
    dataset_id: int
    dataset_digest: str
    config: dict[str, Any]
    seed: int
    software: dict[str, Any]
    training: dict[str, Any]
    device: str | None
    weights_sha256: str
    model_sha256: str
    report_sha256: str
    report_png_sha256: str
    metrics: dict[str, Any]
    aliases: list[str] = Field(default_factory=list)
    created_at: datetime


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    override_reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]
        | None
    ) = None


class AliasOut(BaseModel):
    name: str
    version: int
    updated_at: datetime


class AliasEventOut(Orm):
    id: int
    alias: str
    action: str
    from_version: int | None
    to_version: int
    principal_id: int | None
    override_reason: str | None
    created_at: datetime


class EnhanceByIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_ids: Annotated[list[int], Field(min_length=1, max_length=500)]
    version: int | None = None
    out_dtype: str = "float32"
    ensemble: bool = False


class EnhancementItemOut(Orm):
    id: int
    image_id: int | None
    filename: str
    input_sha256: str
    input_shape: list[int]
    input_axes: str
    state: JobState
    reason: str | None
    output_sha256: str | None
    output_size: int | None
    finished_at: datetime | None


class EnhancementJobOut(Orm):
    id: int
    pairing_id: int
    version: int = 0
    out_dtype: str
    ensemble: bool
    state: JobState
    worker_host: str | None
    created_at: datetime
    finished_at: datetime | None
    items: list[EnhancementItemOut]
