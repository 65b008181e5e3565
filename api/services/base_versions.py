"""The network's base models: which pairs pretraining may read (consenting pairings' latest
snapshots), starting a pretraining job (admins), and which weights a pairing's training job
starts from (`init`), checked against the base's channel layout and pixel sizes here, so an
incompatible base is a 422 before anything is queued. No TensorFlow."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.celery_config import PRETRAIN
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.schemas import PretrainingJobCreate
from api.services.job_config import job_config, queued_job_fields
from api.tables import (
    BaseVersion,
    Dataset,
    ModelVersion,
    Pairing,
    PretrainingJob,
    Principal,
    Split,
)
from models.base_models import (
    IncompatibleBase,
    SyntheticRecipe,
    check_compatible,
    generator_overrides,
)
from models.shipped_base import SHIPPED_INIT, ShippedBase, shipped_base

# a pairing's test fields judge its own versions, so a base never learns them
PRETRAINING_SPLITS = (Split.train, Split.validation)


@dataclass(frozen=True)
class SourceField:
    field_id: str
    lq_key: str
    lq_sha256: str
    hq_key: str
    hq_sha256: str


@dataclass(frozen=True)
class PretrainingSource:
    """One consenting pairing's latest snapshot: what pretraining reads of it."""

    pairing_id: int
    dataset_id: int
    digest: str
    grid_pixel_um: float
    fields: list[SourceField] = field(default_factory=list)

    def lineage(self) -> dict[str, Any]:
        return {
            "pairing_id": self.pairing_id,
            "dataset_id": self.dataset_id,
            "digest": self.digest,
            "fields": len(self.fields),
        }


def consenting_sources(session: Session) -> list[PretrainingSource]:
    """The latest snapshot of every pairing whose two institutions consent, its training and
    validation members only. The one place pretraining learns which pairs it may read."""
    pairings = session.scalars(
        select(Pairing)
        .where(
            Pairing.lq_share_for_pretraining.is_(True), Pairing.hq_share_for_pretraining.is_(True)
        )
        .order_by(Pairing.id)
    ).all()
    sources = []
    for pairing in pairings:
        latest = session.scalar(
            select(Dataset)
            .where(Dataset.pairing_id == pairing.id)
            .order_by(Dataset.id.desc())
            .limit(1)
        )
        if latest is None:
            continue
        members = [m for m in latest.members if m.split in PRETRAINING_SPLITS]
        if not members:
            continue
        sources.append(
            PretrainingSource(
                pairing_id=pairing.id,
                dataset_id=latest.id,
                digest=latest.digest,
                grid_pixel_um=pairing.hq_microscope.pixel_size_um,
                fields=[
                    SourceField(
                        m.field_id,
                        m.lq_aligned_key,
                        m.lq_aligned_sha256,
                        m.hq_aligned_key,
                        m.hq_aligned_sha256,
                    )
                    for m in members
                ],
            )
        )
    return sources


def start_pretraining(
    session: Session,
    *,
    dispatcher: Dispatcher,
    principal: Principal,
    request: PretrainingJobCreate,
) -> PretrainingJob:
    """Check there is something to learn from, record the job, queue it on `train`."""
    try:
        recipe = SyntheticRecipe.from_dict(request.synthetic.model_dump())
    except ValueError as exc:
        raise field_error("synthetic", str(exc)) from exc
    if recipe.fields == 0 and not consenting_sources(session):
        raise field_error(
            "synthetic",
            "nothing to pretrain on: no pairing has both sides' consent and a snapshot with "
            "training fields, and the recipe simulates no synthetic fields",
        )
    extra: dict[str, Any] = {"n_channels": 1}
    extra["seed"] = request.seed if request.seed is not None else random.randrange(2**31)
    if request.minutes is not None:
        extra["minutes"] = request.minutes
    config = job_config(request.preset, request.overrides, extra)
    job = PretrainingJob(
        recipe=recipe.to_dict(),
        **queued_job_fields(config, principal, request.preset, request.overrides),
    )
    session.add(job)
    session.commit()
    dispatcher.send_recorded(session, PRETRAIN, job)
    return job


def get_pretraining_job(session: Session, job_id: int) -> PretrainingJob:
    job = session.get(PretrainingJob, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"pretraining job {job_id} does not exist")
    return job


def get_base(session: Session, number: int) -> BaseVersion:
    base = session.scalar(select(BaseVersion).where(BaseVersion.number == number))
    if base is None:
        raise ApiError(404, "not_found", f"base {number} does not exist")
    return base


def current_base(session: Session) -> BaseVersion | None:
    """The newest base no withdrawal has tainted."""
    return session.scalar(
        select(BaseVersion)
        .where(BaseVersion.tainted_by_withdrawal.is_(False))
        .order_by(BaseVersion.number.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class InitChoice:
    """What a training job starts from: Config's `init` and `init_sha256`, and the generator
    architecture it must keep."""

    init: str = "scratch"
    sha256: str | None = None
    architecture: dict[str, Any] = field(default_factory=dict)

    def overrides(self) -> dict[str, Any]:
        return {**self.architecture, "init": self.init, "init_sha256": self.sha256}


def _shipped_choice(
    pairing: Pairing, shipped: ShippedBase, requested: dict[str, Any]
) -> InitChoice:
    """The base shipped in the package: the network's base until it pretrains one of its own.
    It saw no pairing's pairs (synthetic pairs and public W2S fields), so no withdrawal can
    taint it."""
    check_compatible(
        base_channels=shipped.n_channels,
        base_pixel_range=shipped.pixel_size_range_um,
        n_channels=len(pairing.channel_map),
        grid_pixel_um=pairing.hq_microscope.pixel_size_um,
    )
    architecture = generator_overrides(shipped.config, requested)
    return InitChoice(SHIPPED_INIT, shipped.weights_sha256, architecture)


def _current_choice(
    session: Session, pairing: Pairing, requested: dict[str, Any], use_shipped: bool
) -> InitChoice | None:
    """`init=base`: the network's newest untainted base, else the shipped one (when the
    service uses it and the package carries it); None when there is neither."""
    base = current_base(session)
    if base is not None:
        return _base_choice(pairing, base, requested)
    shipped = shipped_base() if use_shipped else None
    return None if shipped is None else _shipped_choice(pairing, shipped, requested)


def _base_choice(pairing: Pairing, base: BaseVersion, requested: dict[str, Any]) -> InitChoice:
    if base.tainted_by_withdrawal:
        raise IncompatibleBase(
            f"base {base.number} read pairs whose consent was withdrawn ({base.taint_reason}); "
            "no new model starts from it"
        )
    check_compatible(
        base_channels=base.n_channels,
        base_pixel_range=(base.pixel_size_min_um, base.pixel_size_max_um),
        n_channels=len(pairing.channel_map),
        grid_pixel_um=pairing.hq_microscope.pixel_size_um,
    )
    architecture = generator_overrides(base.config, requested)
    return InitChoice(f"base:{base.number}", base.weights_sha256, architecture)


def _parse(requested: str) -> tuple[str, int | None]:
    text = requested.strip().lower()
    if text in ("scratch", "base"):
        return text, None
    kind, _, number = text.rpartition(":")
    if kind in ("", "base", "version") and number.isdigit() and int(number) < 2**31:
        return kind or "base", int(number)
    raise field_error(
        "init", "use 'base', a base number ('3' or 'base:3'), 'version:N' or 'scratch'"
    )


def resolve_init(
    session: Session,
    pairing: Pairing,
    requested: str | None,
    overrides: dict[str, Any],
    *,
    use_shipped: bool = True,
) -> InitChoice:
    """The weights a training job of `pairing` starts from; 422 saying why when they cannot.
    `use_shipped`: the service's ``shipped_base`` setting, whether `init=base` may start from
    the base shipped with Pairscope while the network has none of its own."""
    if requested is None:
        has_versions = session.scalar(
            select(func.count(ModelVersion.id)).where(ModelVersion.pairing_id == pairing.id)
        )
        if has_versions:
            return InitChoice()
        try:
            # a new pairing's first job starts from the current base — the network's own, else
            # the shipped one (setting shipped_base): with few fields it beats scratch (W2S, 4
            # fields, 3 min: 31.95 against 31.30 dB, docs/benchmarks.md "Transfer")
            return _current_choice(session, pairing, overrides, use_shipped) or InitChoice()
        except IncompatibleBase:
            return InitChoice()  # the default never refuses: it trains from scratch instead
    kind, number = _parse(requested)
    if kind == "scratch":
        return InitChoice()
    try:
        if kind == "version":
            version = session.scalar(
                select(ModelVersion).where(
                    ModelVersion.pairing_id == pairing.id, ModelVersion.number == number
                )
            )
            if version is None:
                raise field_error("init", f"this pairing has no version {number}")
            architecture = generator_overrides(version.config, overrides)
            return InitChoice(f"version:{number}", version.weights_sha256, architecture)
        if number is None:
            choice = _current_choice(session, pairing, overrides, use_shipped)
            if choice is None:
                raise field_error("init", "the network has no base model yet (or all are tainted)")
            return choice
        else:
            base = session.scalar(select(BaseVersion).where(BaseVersion.number == number))
            if base is None:
                raise field_error("init", f"base {number} does not exist")
        return _base_choice(pairing, base, overrides)
    except IncompatibleBase as exc:
        raise field_error("init", str(exc)) from exc
