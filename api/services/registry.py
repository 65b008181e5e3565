"""The registry's own rules: institutions, microscopes, pairings (conflicts, pairing rules,
channel maps), API keys, and the readiness reports a pairing asks for."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api import auth
from api.celery_config import READINESS_REPORT
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.schemas import (
    InstitutionCreate,
    InstitutionUpdate,
    KeyCreate,
    MicroscopeCreate,
    MicroscopeUpdate,
    PairingCreate,
    PairingUpdate,
)
from api.tables import (
    Channel,
    Institution,
    Microscope,
    Pairing,
    Principal,
    ReadinessReport,
    TaskState,
    utcnow,
)


def _conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def create_institution(session: Session, body: InstitutionCreate) -> Institution:
    if session.scalar(select(Institution).where(Institution.name == body.name)):
        raise _conflict(f"an institution named {body.name!r} already exists")
    institution = Institution(**body.model_dump())
    session.add(institution)
    session.commit()
    return institution


def update_institution(
    session: Session, institution: Institution, body: InstitutionUpdate
) -> Institution:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    name = changes.get("name")
    if name and name != institution.name:
        if session.scalar(select(Institution).where(Institution.name == name)):
            raise _conflict(f"an institution named {name!r} already exists")
    for key, value in changes.items():
        setattr(institution, key, value)
    session.commit()
    return institution


def delete_institution(session: Session, institution: Institution) -> None:
    if session.scalar(select(Microscope.id).where(Microscope.institution_id == institution.id)):
        raise _conflict("this institution still has microscopes; delete them first")
    if session.scalar(select(Principal.id).where(Principal.institution_id == institution.id)):
        raise _conflict("this institution still has API keys on record; it cannot be deleted")
    session.delete(institution)
    session.commit()


def create_microscope(session: Session, body: MicroscopeCreate) -> Microscope:
    if session.get(Institution, body.institution_id) is None:
        raise field_error("institution_id", f"institution {body.institution_id} does not exist")
    taken = select(Microscope).where(
        Microscope.institution_id == body.institution_id, Microscope.name == body.name
    )
    if session.scalar(taken):
        raise _conflict(f"this institution already has a microscope named {body.name!r}")
    fields = body.model_dump(exclude={"channels"})
    microscope = Microscope(**fields)
    microscope.channels = [
        Channel(position=i, **channel.model_dump()) for i, channel in enumerate(body.channels)
    ]
    session.add(microscope)
    session.commit()
    return microscope


def update_microscope(
    session: Session, microscope: Microscope, body: MicroscopeUpdate
) -> Microscope:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    na = changes.get("numerical_aperture", microscope.numerical_aperture)
    n = changes.get("immersion_index", microscope.immersion_index)
    if na > n:
        raise field_error(
            "numerical_aperture", f"{na} cannot exceed immersion_index {n} (NA = n·sin θ)"
        )
    name = changes.get("name")
    if name and name != microscope.name:
        taken = select(Microscope).where(
            Microscope.institution_id == microscope.institution_id, Microscope.name == name
        )
        if session.scalar(taken):
            raise _conflict(f"this institution already has a microscope named {name!r}")
    for key, value in changes.items():
        setattr(microscope, key, value)
    session.commit()
    return microscope


def delete_microscope(session: Session, microscope: Microscope) -> None:
    used = select(Pairing.id).where(
        or_(Pairing.lq_microscope_id == microscope.id, Pairing.hq_microscope_id == microscope.id)
    )
    if session.scalar(used):
        raise _conflict("this microscope takes part in a pairing; archive or delete that first")
    session.delete(microscope)
    session.commit()


def resolve_channel_map(
    lq: Microscope, hq: Microscope, requested: list[dict[str, str]] | None
) -> list[dict[str, str]]:
    """Check an explicit LQ→HQ channel map, or build one from channels of equal name."""
    lq_names = [c.name for c in lq.channels]
    hq_names = [c.name for c in hq.channels]
    if requested is None:
        pairs = [{"lq_channel": n, "hq_channel": n} for n in lq_names if n in hq_names]
        if not pairs:
            raise field_error(
                "channel_map",
                f"no channel names in common (LQ: {', '.join(lq_names)}; HQ: "
                f"{', '.join(hq_names)}); give the correspondence explicitly",
            )
        return pairs
    if not requested:
        raise field_error("channel_map", "must map at least one channel")
    seen_lq: set[str] = set()
    seen_hq: set[str] = set()
    for pair in requested:
        lq_name, hq_name = pair["lq_channel"], pair["hq_channel"]
        if lq_name not in lq_names:
            raise field_error("channel_map", f"LQ microscope has no channel {lq_name!r}")
        if hq_name not in hq_names:
            raise field_error("channel_map", f"HQ microscope has no channel {hq_name!r}")
        if lq_name in seen_lq or hq_name in seen_hq:
            raise field_error("channel_map", "each channel may appear only once")
        seen_lq.add(lq_name)
        seen_hq.add(hq_name)
    return requested


def create_pairing(session: Session, principal: Principal, body: PairingCreate) -> Pairing:
    if body.lq_microscope_id == body.hq_microscope_id:
        raise field_error("hq_microscope_id", "a microscope cannot be paired with itself")
    lq = session.get(Microscope, body.lq_microscope_id)
    if lq is None:
        raise field_error("lq_microscope_id", f"microscope {body.lq_microscope_id} does not exist")
    hq = session.get(Microscope, body.hq_microscope_id)
    if hq is None:
        raise field_error("hq_microscope_id", f"microscope {body.hq_microscope_id} does not exist")
    if lq.institution_id == hq.institution_id and lq.modality == hq.modality:
        raise field_error(
            "hq_microscope_id",
            f"both microscopes are {lq.modality.value} systems of the same institution; a "
            "pairing links a low-end system to a different, high-end reference",
        )
    if session.scalar(select(Pairing).where(Pairing.name == body.name)):
        raise _conflict(f"a pairing named {body.name!r} already exists")
    existing = session.scalar(
        select(Pairing).where(Pairing.lq_microscope_id == lq.id, Pairing.hq_microscope_id == hq.id)
    )
    if existing is not None:
        raise _conflict(f"these microscopes are already paired (pairing {existing.id})")
    requested = [p.model_dump() for p in body.channel_map] if body.channel_map is not None else None
    pairing = Pairing(
        name=body.name,
        lq_microscope=lq,
        hq_microscope=hq,
        channel_map=resolve_channel_map(lq, hq, requested),
        created_by_id=principal.id,
    )
    session.add(pairing)
    session.commit()
    return pairing


def update_pairing(session: Session, pairing: Pairing, body: PairingUpdate) -> Pairing:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    name = changes.get("name")
    if name and name != pairing.name:
        if session.scalar(select(Pairing).where(Pairing.name == name)):
            raise _conflict(f"a pairing named {name!r} already exists")
    for key, value in changes.items():
        setattr(pairing, key, value)
    session.commit()
    return pairing


def request_readiness(
    session: Session, *, dispatcher: Dispatcher, principal: Principal, pairing: Pairing
) -> ReadinessReport:
    """Queue a readiness report (optics, sampling, channel match) for a worker to compute."""
    report = ReadinessReport(
        pairing_id=pairing.id,
        state=TaskState.queued,
        requested_by_id=principal.id,
        dispatched_at=utcnow(),
    )
    session.add(report)
    session.commit()
    dispatcher.send_recorded(session, READINESS_REPORT, report)
    return report


def get_readiness(session: Session, pairing: Pairing, report_id: int) -> ReadinessReport:
    report = session.scalar(
        select(ReadinessReport).where(
            ReadinessReport.id == report_id, ReadinessReport.pairing_id == pairing.id
        )
    )
    if report is None:
        raise ApiError(404, "not_found", f"readiness report {report_id} does not exist")
    return report


def issue_key(session: Session, body: KeyCreate) -> tuple[Principal, str]:
    """A new key for an existing institution: its record and the plaintext, shown once."""
    institution = session.get(Institution, body.institution_id)
    if institution is None:
        raise field_error("institution_id", f"institution {body.institution_id} does not exist")
    principal, key = auth.issue_key(session, institution, body.role, body.label)
    session.commit()
    return principal, key


def revoke_key(session: Session, key_id: int) -> None:
    target = session.get(Principal, key_id)
    if target is None:
        raise ApiError(404, "not_found", f"key {key_id} does not exist")
    auth.revoke(session, target)
    session.commit()
