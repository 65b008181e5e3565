"""Request and response bodies. Physical limits are checked here, with the field named.

Every field carries a description and an example: they are the API reference (/docs, /redoc)."""

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

from api.params import DbInt
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
Country = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
Wavelength = Annotated[float, Field(ge=200, le=1200, description="nm, 200–1200")]
NumericalAperture = Annotated[float, Field(gt=0, le=1.7, description="(0, 1.7]")]
RefractiveIndex = Annotated[float, Field(ge=1.0, le=2.0, description="[1, 2]")]
PixelSize = Annotated[float, Field(gt=0, le=100, description="µm per pixel, > 0")]
Magnification = Annotated[float, Field(gt=0, le=250)]
ZStep = Annotated[float, Field(gt=0, le=100)]

WHEN = "2025-05-14T09:30:00Z"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

T = TypeVar("T")


def doc(description: str, example: Any, default: Any = ..., **kwargs: Any) -> Any:
    """A field's description and one example, for the OpenAPI document."""
    if "default_factory" in kwargs:
        return Field(description=description, examples=[example], **kwargs)
    return Field(default, description=description, examples=[example], **kwargs)


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total to page through it."""

    items: list[T] = doc("The records on this page, in the list's order.", [])
    total: int = doc("How many records match, over all pages.", 1)
    limit: int = doc("The most records a page holds (the `limit` asked for).", 50)
    offset: int = doc("How many matching records come before this page.", 0)


class InstitutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = doc("Unique name of the institution.", "Lab Institute")
    country: Country = doc("Country, by name or ISO code.", "PL")
    contact_email: Email = doc("Where the network operator reaches the institution.", "ops@lab.org")


class InstitutionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = doc("New unique name; left out, it is kept.", "Lab Institute", None)
    country: Country | None = doc("New country; left out, it is kept.", "PL", None)
    contact_email: Email | None = doc("New contact; left out, it is kept.", "ops@lab.org", None)


class InstitutionOut(Orm):
    id: int = doc("The institution's id.", 1)
    name: str = doc("Unique name.", "Lab Institute")
    country: str = doc("Country.", "PL")
    contact_email: str = doc("Contact e-mail.", "ops@lab.org")
    created_at: datetime = doc("When it was registered (UTC).", WHEN)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = (
        doc("Channel name, unique within the microscope; pairings map channels by it.", "DAPI")
    )
    fluorophore: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = doc(
        "The dye or protein imaged.", "Hoechst 33342", ""
    )
    excitation_nm: Wavelength = doc("Excitation wavelength in nm (200–1200).", 350)
    emission_nm: Wavelength = doc("Emission wavelength in nm (200–1200).", 461)


class ChannelOut(Orm):
    name: str = doc("Channel name.", "DAPI")
    fluorophore: str = doc("The dye or protein imaged.", "Hoechst 33342")
    excitation_nm: float = doc("Excitation wavelength in nm.", 350)
    emission_nm: float = doc("Emission wavelength in nm.", 461)


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
    institution_id: DbInt = doc("The institution that owns the microscope.", 1)
    name: Name = doc("Name, unique within the institution.", "WF-1")
    modality: Modality = doc("Imaging modality.", "widefield")
    make_model: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = doc(
        "Manufacturer and model.", "Nikon Ti2", ""
    )
    objective_magnification: Magnification = doc("Objective magnification (0–250].", 63)
    numerical_aperture: NumericalAperture = doc(
        "Objective NA, (0, 1.7], at most the immersion index.", 1.4
    )
    immersion_index: RefractiveIndex = doc(
        "Refractive index of the immersion medium, [1, 2].", 1.515
    )
    pixel_size_um: PixelSize = doc("Pixel size at the sample in µm, (0, 100].", 0.0865)
    z_step_um: ZStep | None = doc("Distance between Z planes in µm, for stacks.", 0.2, None)
    channels: Annotated[list[ChannelIn], Field(min_length=1, max_length=16)] = doc(
        "The channels it records (1–16), in the order images store them.",
        [
            {
                "name": "DAPI",
                "fluorophore": "Hoechst 33342",
                "excitation_nm": 350,
                "emission_nm": 461,
            }
        ],
    )

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
    name: Name | None = doc("New name, unique within the institution.", "WF-1", None)
    make_model: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = (
        doc("Manufacturer and model.", "Nikon Ti2", None)
    )
    objective_magnification: Magnification | None = doc("Objective magnification.", 63, None)
    numerical_aperture: NumericalAperture | None = doc("Objective NA.", 1.4, None)
    immersion_index: RefractiveIndex | None = doc("Immersion refractive index.", 1.515, None)
    pixel_size_um: PixelSize | None = doc("Pixel size at the sample in µm.", 0.0865, None)
    z_step_um: ZStep | None = doc("Distance between Z planes in µm.", 0.2, None)


class MicroscopeOut(Orm):
    id: int = doc("The microscope's id.", 1)
    institution_id: int = doc("The institution that owns it.", 1)
    name: str = doc("Name.", "WF-1")
    modality: Modality = doc("Imaging modality.", "widefield")
    make_model: str = doc("Manufacturer and model.", "Nikon Ti2")
    objective_magnification: float = doc("Objective magnification.", 63)
    numerical_aperture: float = doc("Objective NA.", 1.4)
    immersion_index: float = doc("Immersion refractive index.", 1.515)
    pixel_size_um: float = doc("Pixel size at the sample in µm.", 0.0865)
    z_step_um: float | None = doc("Distance between Z planes in µm, if set.", None)
    channels: list[ChannelOut] = doc(
        "Its channels, in the order images store them.",
        [
            {
                "name": "DAPI",
                "fluorophore": "Hoechst 33342",
                "excitation_nm": 350,
                "emission_nm": 461,
            }
        ],
    )
    created_at: datetime = doc("When it was registered (UTC).", WHEN)


class ChannelPair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lq_channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = doc(
        "A channel of the wide-field (LQ) microscope.", "DAPI"
    )
    hq_channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = doc(
        "The reference (HQ) channel it corresponds to.", "DAPI"
    )


class PairingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = doc("Unique name of the pairing.", "lab-to-partner")
    lq_microscope_id: DbInt = doc("The low-end, wide-field microscope.", 1)
    hq_microscope_id: DbInt = doc("The high-end reference microscope (another one).", 2)
    channel_map: list[ChannelPair] | None = doc(
        "LQ→HQ channel correspondence; omitted means channels of equal name.",
        [{"lq_channel": "DAPI", "hq_channel": "DAPI"}],
        None,
    )


class PairingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = doc("New unique name.", "lab-to-partner", None)
    status: PairingStatus | None = doc(
        "`archived` stops new images and training.", "archived", None
    )


class PairingOut(Orm):
    id: int = doc("The pairing's id.", 1)
    name: str = doc("Unique name.", "lab-to-partner")
    lq_microscope_id: int = doc("The wide-field (LQ) microscope.", 1)
    hq_microscope_id: int = doc("The reference (HQ) microscope.", 2)
    status: PairingStatus = doc("`active`, or `archived` (no new images or training).", "active")
    channel_map: list[ChannelPair] = doc(
        "Which LQ channel corresponds to which HQ channel.",
        [{"lq_channel": "DAPI", "hq_channel": "DAPI"}],
    )
    created_by_id: int | None = doc("The key that created it.", 1)
    created_at: datetime = doc("When it was created (UTC).", WHEN)
    lq_share_for_pretraining: bool = doc(
        "Whether the wide-field (LQ) institution lends the pairs to the network's base.", False
    )
    hq_share_for_pretraining: bool = doc(
        "Whether the reference (HQ) institution lends the pairs to the network's base.", False
    )
    share_for_pretraining: bool = doc(
        "Both sides consent: pretraining reads the latest snapshot's pairs.", False
    )


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    side: Side | None = doc(
        "The side consenting: left out, the key's own (an admin must name one).", "lq", None
    )


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: DbInt = doc("The institution the key acts for.", 1)
    role: Role = doc("`admin` (the network), `lab` or `partner` (its institution).", "lab")
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = doc(
        "A note to tell keys apart.", "acquisition PC", ""
    )


class KeyOut(Orm):
    id: int = doc("The key's id (not the key).", 1)
    institution_id: int = doc("The institution it acts for.", 1)
    role: Role = doc("Its role.", "lab")
    label: str = doc("Its note.", "acquisition PC")
    key_prefix: str = doc("The key's first characters, to recognise it.", "psk_3f9a")
    created_at: datetime = doc("When it was issued (UTC).", WHEN)
    last_used_at: datetime | None = doc("When it last authenticated a request.", WHEN)
    revoked_at: datetime | None = doc("When it was revoked; null while it works.", None)


class KeyCreated(KeyOut):
    key: str = doc("The API key. Shown once: store it now.", "psk_3f9a0c…")


class ReadinessOut(Orm):
    id: int = doc("The report's id.", 1)
    pairing_id: int = doc("The pairing it describes.", 1)
    state: TaskState = doc("Where the worker is with it.", "succeeded")
    report: dict[str, Any] | None = doc(
        "Findings on optics, sampling and channel match, once finished.",
        {"ready": True, "issues": []},
    )
    error: str | None = doc("Why it failed, if it did.", None)
    worker_host: str | None = doc("The worker that computed it.", "worker-1")
    created_at: datetime = doc("When it was requested (UTC).", WHEN)
    started_at: datetime | None = doc("When a worker started it.", WHEN)
    finished_at: datetime | None = doc("When it finished.", WHEN)


class ImageOut(Orm):
    id: int = doc("The image's id.", 1)
    pairing_id: int = doc("Its pairing.", 1)
    side: Side = doc("`lq` (wide-field) or `hq` (reference).", "lq")
    field_id: str = doc("The field of view; an LQ and an HQ image of one field pair.", "field_001")
    institution_id: int = doc("The institution that uploaded it.", 1)
    filename: str = doc("The file name as uploaded.", "field_001.tif")
    sha256: str = doc("SHA-256 of the file's bytes.", SHA256)
    size_bytes: int = doc("File size in bytes.", 786_432)
    file_format: str = doc("TIFF flavour found.", "ome-tiff")
    axes: str = doc("Axis order of the array, (Z)CYX.", "CYX")
    shape: list[int] = doc("Array shape in that order.", [3, 512, 512])
    dtype: str = doc("Pixel type.", "uint16")
    pixel_size_um: float = doc("Pixel size in µm.", 0.0865)
    pixel_size_source: str = doc("Where the pixel size came from.", "microscope")
    z_step_um: float | None = doc("Distance between Z planes in µm, for stacks.", None)
    warnings: list[str] = doc("Things worth knowing that did not stop the upload.", [])
    created_at: datetime = doc("When it was uploaded (UTC).", WHEN)


class PairRejection(BaseModel):
    """A rejection by hand: the reason is what the lab sees beside the pair."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ] = doc("Why the pair must not be trained on (kept as its reason).", "out of focus")


class PairOut(Orm):
    id: int = doc("The pair's id.", 1)
    pairing_id: int = doc("Its pairing.", 1)
    field_id: str = doc("The field both images show.", "field_001")
    lq_image_id: int = doc("The wide-field image.", 1)
    hq_image_id: int = doc("The reference image.", 2)
    status: PairStatus = doc("Alignment status.", "accepted")
    reason: str | None = doc("Why it was rejected, if it was.", None)
    score: float | None = doc("Normalised cross-correlation after alignment.", 0.91)
    transform: dict[str, Any] | None = doc(
        "The transform that maps LQ onto the HQ grid.", {"scale": 1.0, "shift": [0.4, -1.2]}
    )
    lq_aligned_sha256: str | None = doc("SHA-256 of the aligned LQ TIFF.", SHA256)
    hq_aligned_sha256: str | None = doc("SHA-256 of the aligned HQ TIFF.", SHA256)
    has_preview: bool = doc("Whether a preview PNG is there to download.", True, False)
    attempts: int = doc("How many times alignment ran.", 1)
    accepted_by_id: int | None = doc("The key that accepted it by hand, if one did.", None)
    accepted_manually_at: datetime | None = doc("When it was accepted by hand.", None)
    rejected_by_id: int | None = doc("The key that rejected it by hand, if one did.", None)
    rejected_manually_at: datetime | None = doc("When it was rejected by hand.", None)
    updated_at: datetime = doc("When its status last changed (UTC).", WHEN)

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
    train: Annotated[float, Field(gt=0, le=1)] = doc("Share of fields to train on.", 0.7, 0.7)
    validation: Annotated[float, Field(ge=0, lt=1)] = doc(
        "Share of fields to validate on during training.", 0.15, 0.15
    )
    test: Annotated[float, Field(ge=0, lt=1)] = doc(
        "Share of fields held out for the evaluation report.", 0.15, 0.15
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must sum to 1, not {total:g}")
        return self


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fractions: SplitFractions = doc(
        "How fields split; they must sum to 1.",
        {"train": 0.7, "validation": 0.15, "test": 0.15},
        default_factory=SplitFractions,
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = doc(
        "Seed of the split's hash: the same seed gives the same split.", 0, 0
    )


class DatasetMemberOut(Orm):
    field_id: str = doc("The field.", "field_001")
    split: Split = doc("Which part it belongs to.", "train")
    pair_id: int = doc("Its pair.", 1)
    lq_image_id: int = doc("The wide-field image.", 1)
    hq_image_id: int = doc("The reference image.", 2)
    lq_aligned_sha256: str = doc("SHA-256 of the aligned LQ TIFF frozen here.", SHA256)
    hq_aligned_sha256: str = doc("SHA-256 of the aligned HQ TIFF frozen here.", SHA256)


class DatasetOut(Orm):
    id: int = doc("The dataset's id.", 1)
    pairing_id: int = doc("Its pairing.", 1)
    digest: str = doc("SHA-256 over members, fractions and seed.", SHA256)
    seed: int = doc("Seed of the split.", 0)
    fractions: dict[str, float] = doc(
        "The fractions asked for.", {"train": 0.7, "validation": 0.15, "test": 0.15}
    )
    created_by_id: int | None = doc("The key that made it.", 1)
    created_at: datetime = doc("When it was made (UTC).", WHEN)
    counts: dict[str, int] = doc(
        "Fields per split.", {"train": 7, "validation": 2, "test": 1}, default_factory=dict
    )
    members: list[DatasetMemberOut] = doc("Each field and its split.", [])

    @model_validator(mode="after")
    def _count(self) -> DatasetOut:
        self.counts = {s.value: sum(m.split == s for m in self.members) for s in Split}
        return self


class TrainingJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset_id: DbInt = doc("The dataset snapshot to train on.", 1)
    preset: str = doc("paper, cpu-small or tiny", "cpu-small", "cpu-small")
    overrides: dict[str, Any] = doc(
        "models Config fields to change", {"steps": 200}, default_factory=dict
    )
    seed: Annotated[int, Field(ge=0, lt=2**31)] | None = doc(
        "Random seed; left out, one is drawn and recorded.", 0, None
    )
    minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] | None = doc(
        "time budget; training ends normally when it runs out", 30, None
    )
    init: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = doc(
        "Starting weights: `base` (the network's current base, or the base shipped with "
        "Pairscope while the network has none), a base number (`3` or `base:3`), `version:N` "
        "(one of this pairing's versions) or `scratch`. Left out: the network's current base "
        "for a pairing with no versions yet when one fits, else scratch.",
        "base",
        None,
    )


class TrainingJobOut(Orm):
    id: int = doc("The job's id.", 1)
    pairing_id: int = doc("Its pairing.", 1)
    dataset_id: int = doc("The dataset it trains on.", 1)
    preset: str = doc("The preset it started from.", "cpu-small")
    overrides: dict[str, Any] = doc("The Config fields changed.", {"steps": 200})
    config: dict[str, Any] = doc("The whole resolved Config.", {"steps": 200, "batch_size": 4})
    seed: int = doc("Random seed.", 0)
    minutes: float | None = doc("Time budget in minutes, if any.", 30)
    state: JobState = doc("Where the job is.", "running")
    reason: str | None = doc("Why it failed or was cancelled.", None)
    cancel_requested: bool = doc("Whether a cancel is pending.", False)
    started_by_id: int | None = doc("The key that started it.", 1)
    worker_host: str | None = doc("The worker running it.", "worker-1")
    device: str | None = doc("The device it trains on.", "CPU")
    attempts: int = doc("How many workers have claimed it.", 1)
    progress: dict[str, Any] = doc("The latest step and figures.", {"step": 120, "loss": 0.031})
    history: list[dict[str, Any]] = doc(
        "Loss and validation figures by step.", [{"step": 100, "loss": 0.034, "val_psnr": 27.1}]
    )
    checkpoint_step: int | None = doc("The step of the last checkpoint.", 100)
    resumed_from_step: int | None = doc("The step it resumed from, if it did.", None)
    stale: bool = doc("Running, but its worker stopped sending heartbeats.", False, False)
    version: int | None = doc("The model version it made, once succeeded.", None, None)
    created_at: datetime = doc("When it was queued (UTC).", WHEN)
    started_at: datetime | None = doc("When a worker started it.", WHEN)
    heartbeat_at: datetime | None = doc("Its worker's last heartbeat.", WHEN)
    finished_at: datetime | None = doc("When it ended.", None)


class BioimageioOut(BaseModel):
    """The version's bioimage.io package (GET …/bioimageio.zip), or why there is none."""

    available: bool = doc("Whether the package can be downloaded.", True)
    sha256: str | None = doc("SHA-256 of the package.", SHA256, None)
    error: str | None = doc("Why there is no package, if there is none.", None, None)


class VersionOut(Orm):
    id: int = doc("The version's row id.", 1)
    pairing_id: int = doc("Its pairing.", 1)
    number: int = doc("Its number within the pairing, from 1.", 1)
    job_id: int = doc("The training job that made it.", 1)
    dataset_id: int = doc("The dataset it was trained on.", 1)
    dataset_digest: str = doc("That dataset's digest.", SHA256)
    config: dict[str, Any] = doc("The training Config.", {"steps": 200, "batch_size": 4})
    seed: int = doc("Random seed.", 0)
    software: dict[str, Any] = doc("Versions of the software used.", {"tensorflow": "2.17.0"})
    training: dict[str, Any] = doc("How training went.", {"steps": 200, "elapsed_s": 412.5})
    device: str | None = doc("The device it trained on.", "CPU")
    weights_sha256: str = doc("SHA-256 of the weights.", SHA256)
    model_sha256: str = doc("SHA-256 of the model .zip.", SHA256)
    report_sha256: str = doc("SHA-256 of report.json.", SHA256)
    report_png_sha256: str = doc("SHA-256 of report.png.", SHA256)
    metrics: dict[str, Any] = doc(
        "Test-field figures per method.", {"production": {"psnr": 28.4, "ssim": 0.82}}
    )
    lq_pixel_size_um: float | None = doc(
        "The LQ microscope's pixel size (µm) the version learned from.", 0.0865, None
    )
    hq_pixel_size_um: float | None = doc(
        "The aligned (HQ) grid (µm) it runs on; outputs are on it.", 0.159, None
    )
    bioimageio: BioimageioOut | None = doc(
        "Its bioimage.io package, or why there is none.",
        {"available": True, "sha256": "9f2c…", "error": None},
        None,
    )
    aliases: list[str] = doc("Aliases pointing at it.", ["production"], default_factory=list)
    created_at: datetime = doc("When it was made (UTC).", WHEN)


class CurvePointOut(BaseModel):
    """One version on the pairing's learning curve."""

    version: int = doc("The version's number.", 2)
    train_fields: int = doc("Training fields in its snapshot.", 8)
    minutes: float | None = doc("How long it trained (minutes).", 15.0, None)
    init: str = doc("Where its training started (its config's `init`).", "scratch")
    psnr: float | None = doc("Its median PSNR (dB) on its snapshot's test fields.", 31.2, None)
    ssim: float | None = doc("Its median SSIM on those fields.", 0.84, None)
    input_psnr: float | None = doc("The wide-field input's own PSNR there.", 18.3, None)
    richardson_lucy_psnr: float | None = doc(
        "Richardson–Lucy's PSNR there (the quality gate's reference).", 17.0, None
    )


class ExpectedPointOut(BaseModel):
    train_fields: int = doc("A number of training fields.", 16)
    psnr: float = doc("The PSNR (dB) the fitted curve expects there.", 32.0)


class LearningCurveOut(BaseModel):
    """Fields imaged → quality reached, from this pairing's own versions, and the fitted
    expectation `PSNR = a − b/√n` once versions cover three field counts."""

    fields_available: int = doc("Accepted, aligned pairs the pairing holds now.", 12)
    points: list[CurvePointOut] = doc("One point per version, in version order.", [])
    expected: list[ExpectedPointOut] = doc(
        "The fitted curve, from 1 field to twice the most seen; empty without a fit.", []
    )
    fit: str | None = doc(
        "The fitted formula, or why there is none.", "PSNR = 33.1 − 6.2/√n dB", None
    )


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: DbInt = doc("The version number to point at.", 2)
    override_reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]
        | None
    ) = doc(
        "Admins only: why production takes a version that fails the quality gate.",
        "reviewed by hand",
        None,
    )


class AliasOut(BaseModel):
    name: str = doc("`production` or `staging`.", "production")
    version: int = doc("The version number it points at.", 2)
    updated_at: datetime = doc("When it last moved (UTC).", WHEN)


class AliasEventOut(Orm):
    id: int = doc("The event's id.", 1)
    alias: str = doc("The alias moved.", "production")
    action: str = doc("`move` or `rollback`.", "move")
    from_version: int | None = doc("The version it pointed at before.", 1)
    to_version: int = doc("The version it points at since.", 2)
    principal_id: int | None = doc("The key that moved it.", 1)
    override_reason: str | None = doc("The reason given to override the gate.", None)
    created_at: datetime = doc("When (UTC).", WHEN)


class EnhanceByIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_ids: Annotated[list[DbInt], Field(min_length=1, max_length=500)] = doc(
        "LQ images of this pairing to enhance (1–500).", [1, 3]
    )
    version: DbInt | None = doc("The version to use; default: the production alias.", None, None)
    out_dtype: str = doc("`float32` or `uint16` output.", "float32", "float32")
    ensemble: bool = doc("Average over flips and rotations (slower, smoother).", False, False)
    format: str = doc(
        "`ome-tiff`, or `ome-zarr` (an NGFF 0.4 store with a pyramid, downloaded as one zip).",
        "ome-tiff",
        "ome-tiff",
    )


class PixelSizeOut(BaseModel):
    """What was done about an input's pixel size (models/pixel_grid.py)."""

    input_um: float = doc("The input's pixel size (µm), as read or assumed.", 0.0865)
    model_lq_um: float = doc("The LQ pixel size (µm) the version learned from.", 0.0865)
    model_um: float = doc("The grid (µm) the version runs on.", 0.159)
    action: str = doc("as-is, resampled, or assumed (the input had none).", "resampled")
    resampled: bool = doc("Whether the input was resampled onto the model's grid.", True)
    output_um: float = doc("The output's pixel size (µm), as its metadata says.", 0.159)
    warning: str | None = doc("A warning for the user, if any.", None, None)


class TrustConsistencyOut(BaseModel):
    """The output degraded by the pairing's blur against its own input (models/consistency.py)."""

    rsp: list[float | None] = doc("Resolution-scaled Pearson per channel (1: consistent).", [0.97])
    rse: list[float | None] = doc("Resolution-scaled error per channel (input's range).", [0.03])
    rsp_corrected: list[float | None] = doc("RSP corrected for the input's noise.", [0.99], [])
    flagged: bool = doc("Whether some channel contradicts its input.", False)
    reasons: list[str] = doc("Why, one line per finding.", [])
    planes: int = doc("Z planes checked (the numbers are the worst plane's).", 1, 1)


class TrustOodOut(BaseModel):
    """The input against the training fields' statistics (models/ood.py)."""

    score: float | None = doc("The input's score (robust z, RMS over feature groups).", 1.4)
    threshold: float | None = doc("The version's warning threshold (from validation).", 2.8)
    warning: bool = doc("Whether the input looks unlike the training fields.", False)
    reasons: list[str] = doc("Which features are furthest out, when it warns.", [])
    groups: dict[str, float | None] = doc("Score per feature group.", {"noise": 0.8}, {})


class TrustOut(BaseModel):
    """Whether the output's pixels can be trusted, and why not (models/trust.py)."""

    consistency: TrustConsistencyOut | None = doc("Consistency with the input.", None)
    ood: TrustOodOut | None = doc("Out-of-distribution check of the input.", None)
    uncertainty: dict[str, Any] | None = doc(
        "Calibrated uncertainty summary (null until the version carries a calibration).", None
    )
    review: bool = doc("Whether a person should look before using the pixels.", False)
    review_reasons: list[str] = doc("Why, one line per check that asks for review.", [])
    maps: list[str] = doc(
        "Channel names of the trust maps' OME-TIFF.", ["consistency-error:DAPI"], []
    )


class EnhancementItemOut(Orm):
    id: int = doc("The item's id.", 1)
    image_id: int | None = doc("The stored image enhanced, if it was one.", 1)
    filename: str = doc("The input's file name.", "field_001.tif")
    input_sha256: str = doc("SHA-256 of the input.", SHA256)
    input_shape: list[int] = doc("The input array's shape.", [3, 512, 512])
    input_axes: str = doc("The input's axes.", "CYX")
    pixel_size: PixelSizeOut | None = doc(
        "What was done about the input's pixel size.",
        {
            "input_um": 0.0865,
            "model_lq_um": 0.0865,
            "model_um": 0.159,
            "action": "resampled",
            "resampled": True,
            "output_um": 0.159,
            "warning": None,
        },
        None,
    )
    state: JobState = doc("Where the item is.", "succeeded")
    reason: str | None = doc("Why it failed, if it did.", None)
    output_sha256: str | None = doc("SHA-256 of the output OME-TIFF.", SHA256)
    output_size: int | None = doc("Output size in bytes.", 3_145_728)
    trust: TrustOut | None = doc(
        "The output's trust checks (null for versions published before them).", None, None
    )
    trust_sha256: str | None = doc("SHA-256 of the trust maps' OME-TIFF.", None, None)
    finished_at: datetime | None = doc("When it finished.", WHEN)


class EnhancementJobOut(Orm):
    id: int = doc("The job's id.", 1)
    pairing_id: int = doc("Its pairing.", 1)
    version: int = doc("The model version number used.", 2, 0)
    out_dtype: str = doc("Output pixel type.", "float32")
    ensemble: bool = doc("Whether outputs average flips and rotations.", False)
    format: str = doc(
        "`ome-tiff` or `ome-zarr` (zipped store).", "ome-tiff", validation_alias="output_format"
    )
    state: JobState = doc("Where the job is.", "queued")
    reason: str | None = doc(
        "Why the job failed or was queued again (its workers stopped responding).", None
    )
    worker_host: str | None = doc("The worker running it.", None)
    attempts: int = doc("How many workers have claimed it.", 1)
    created_at: datetime = doc("When it was queued (UTC).", WHEN)
    finished_at: datetime | None = doc("When it ended.", None)
    items: list[EnhancementItemOut] = doc("One per input image.", [])


class SyntheticRecipeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: Annotated[int, Field(ge=0, le=10_000)] = doc("Synthetic fields to simulate.", 24, 0)
    shape: tuple[int, int] = doc("Each field's size in pixels (Y, X), 32–1024.", (96, 96), (96, 96))
    seed: Annotated[int, Field(ge=0, lt=2**31)] = doc("The simulation's seed.", 0, 0)
    pixel_size_um: tuple[float, float] = doc(
        "The range pixel sizes are drawn from (µm).", (0.065, 0.2), (0.065, 0.2)
    )
    wf_na: tuple[float, float] = doc("The range of wide-field NAs.", (0.8, 1.4), (0.8, 1.4))
    wf_photons: tuple[float, float] = doc(
        "The range of photons at a bright structure.", (20.0, 200.0), (20.0, 200.0)
    )


class PretrainingJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: str = doc("paper, cpu-small or tiny", "cpu-small", "cpu-small")
    overrides: dict[str, Any] = doc(
        "models Config fields to change", {"steps": 200}, default_factory=dict
    )
    seed: Annotated[int, Field(ge=0, lt=2**31)] | None = doc(
        "Random seed; left out, one is drawn and recorded.", 0, None
    )
    minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] | None = doc(
        "time budget; training ends normally when it runs out", 60, None
    )
    synthetic: SyntheticRecipeIn = doc(
        "The synthetic pairs to simulate besides the consenting pairings' pairs.",
        {"fields": 24},
        default_factory=SyntheticRecipeIn,
    )


class PretrainingJobOut(Orm):
    id: int = doc("The job's id.", 1)
    preset: str = doc("The preset it started from.", "cpu-small")
    overrides: dict[str, Any] = doc("The Config fields changed.", {"steps": 200})
    config: dict[str, Any] = doc("The whole resolved Config.", {"steps": 200, "n_channels": 1})
    recipe: dict[str, Any] = doc("The synthetic recipe.", {"fields": 24})
    seed: int = doc("Random seed.", 0)
    minutes: float | None = doc("Time budget in minutes, if any.", 60)
    state: JobState = doc("Where the job is.", "running")
    reason: str | None = doc("Why it failed.", None)
    worker_host: str | None = doc("The worker running it.", "worker-1")
    device: str | None = doc("The device it trains on.", "CPU")
    progress: dict[str, Any] = doc("Step, total, percent.", {"step": 100, "total": 1000})
    base: int | None = doc("The base number it made, once succeeded.", None, None)
    created_at: datetime = doc("When it was queued (UTC).", WHEN)
    started_at: datetime | None = doc("When a worker started it.", WHEN)
    finished_at: datetime | None = doc("When it ended.", None)


class BaseVersionOut(Orm):
    number: int = doc("The base's number, network-wide.", 1)
    job_id: int = doc("The pretraining job that made it.", 1)
    recipe: dict[str, Any] = doc("The synthetic recipe it simulated.", {"fields": 24})
    sources: list[dict[str, Any]] | None = doc(
        "The snapshots it read (pairing id, dataset id, digest, fields); admins only.",
        [{"pairing_id": 1, "dataset_id": 2, "digest": SHA256, "fields": 8}],
        None,
    )
    config: dict[str, Any] = doc("The Config it trained with.", {"n_channels": 1})
    seed: int = doc("Random seed.", 0)
    n_channels: int = doc("1: applied to each channel independently.", 1)
    pixel_size_min_um: float = doc("The finest grid it learned on (µm).", 0.065)
    pixel_size_max_um: float = doc("The coarsest grid it learned on (µm).", 0.2)
    weights_sha256: str = doc("SHA-256 of its generator's weights.", SHA256)
    model_sha256: str = doc("SHA-256 of its model.zip.", SHA256)
    tainted_by_withdrawal: bool = doc(
        "A pairing it read withdrew consent: no new model starts from it.", False
    )
    taint_reason: str | None = doc("Which pairing withdrew, and when.", None)
    created_at: datetime = doc("When it was recorded (UTC).", WHEN)
