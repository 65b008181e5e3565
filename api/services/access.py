"""Who may see and do what: every authorization rule of the registry, and the one place that
turns "not yours" into the same 404 as "not there".

Seeing: an admin sees the whole network. A lab or partner key sees its own institution and
microscopes, the pairings its institution takes part in (either side), and — because a pairing
grants it — the partner microscope and partner institution of those pairings (`visible_*`,
`get_*`: 404 when not visible).

Doing (403 when refused):
- registry writes (institutions, microscopes, pairings, keys): admins — `require_admin`;
- upload a pairing's LQ or HQ images: the institution owning that side's microscope —
  `require_upload_side`;
- delete an image: the institution that uploaded it — `require_image_owner`;
- enhance images and read the results; promote (move an alias), roll back and delete model
  versions: the wide-field (LQ) institution and admins — `require_lq_side` (the lab decides
  what its images are enhanced with; the reference side supplies data, not decisions);
- cancel a training job: the institution whose key started it, and admins —
  `require_job_starter`;
- override the production quality gate: admins — `require_gate_override`;
- start and follow training jobs, snapshot datasets, realign, accept or reject pairs, ask for
  readiness reports, read versions: any key that sees the pairing (seeing it is the grant; no
  further check).
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, aliased

from api.errors import ApiError
from api.tables import (
    Image,
    Institution,
    Microscope,
    Pairing,
    Principal,
    Role,
    Side,
    TrainingJob,
)

T = TypeVar("T")


def require_admin(principal: Principal) -> None:
    if principal.role != Role.admin:
        raise ApiError(403, "forbidden", "this action needs an admin key")


def visible_pairings(principal: Principal) -> Select[tuple[Pairing]]:
    query = select(Pairing)
    if principal.role == Role.admin:
        return query
    lq, hq = aliased(Microscope), aliased(Microscope)
    return (
        query.join(lq, Pairing.lq_microscope_id == lq.id)
        .join(hq, Pairing.hq_microscope_id == hq.id)
        .where(
            or_(
                lq.institution_id == principal.institution_id,
                hq.institution_id == principal.institution_id,
            )
        )
    )


def _partner_microscope_ids(principal: Principal) -> Select[tuple[int]]:
    pairings = visible_pairings(principal).subquery()
    return select(pairings.c.lq_microscope_id).union(select(pairings.c.hq_microscope_id))


def visible_microscopes(principal: Principal) -> Select[tuple[Microscope]]:
    query = select(Microscope)
    if principal.role == Role.admin:
        return query
    return query.where(
        or_(
            Microscope.institution_id == principal.institution_id,
            Microscope.id.in_(_partner_microscope_ids(principal)),
        )
    )


def visible_institutions(principal: Principal) -> Select[tuple[Institution]]:
    query = select(Institution)
    if principal.role == Role.admin:
        return query
    partner_institutions = select(Microscope.institution_id).where(
        Microscope.id.in_(_partner_microscope_ids(principal))
    )
    return query.where(
        or_(
            Institution.id == principal.institution_id,
            Institution.id.in_(partner_institutions),
        )
    )


def _one_or_404(session: Session, query: Select[tuple[T]], what: str, ident: int) -> T:
    found = session.scalars(query).first()
    if found is None:
        raise ApiError(404, "not_found", f"{what} {ident} does not exist")
    return found


def get_institution(session: Session, principal: Principal, ident: int) -> Institution:
    query = visible_institutions(principal).where(Institution.id == ident)
    return _one_or_404(session, query, "institution", ident)


def get_microscope(session: Session, principal: Principal, ident: int) -> Microscope:
    query = visible_microscopes(principal).where(Microscope.id == ident)
    return _one_or_404(session, query, "microscope", ident)


def get_pairing(session: Session, principal: Principal, ident: int) -> Pairing:
    query = visible_pairings(principal).where(Pairing.id == ident)
    return _one_or_404(session, query, "pairing", ident)


def require_lq_side(principal: Principal, pairing: Pairing, action: str) -> None:
    """The wide-field (LQ) institution and admins decide what the lab's images are enhanced with
    and may enhance them; the reference side may not. `action` completes the refusal."""
    if (
        principal.role != Role.admin
        and pairing.lq_microscope.institution_id != principal.institution_id
    ):
        raise ApiError(
            403,
            "forbidden",
            f"only the wide-field (LQ) institution of this pairing and admins may {action}",
        )


def require_upload_side(principal: Principal, pairing: Pairing, side: Side) -> None:
    """Only the institution that owns that side's microscope may upload its images."""
    microscope = pairing.lq_microscope if side == Side.lq else pairing.hq_microscope
    if microscope.institution_id != principal.institution_id:
        owner = "wide-field (LQ)" if side == Side.lq else "reference (HQ)"
        raise ApiError(
            403,
            "forbidden",
            f"only keys of the {owner} institution of this pairing may upload "
            f"{side.value.upper()} images",
        )


def require_image_owner(principal: Principal, image: Image) -> None:
    if principal.institution_id != image.institution_id:
        raise ApiError(
            403, "forbidden", "only the institution that uploaded an image may delete it"
        )


def require_job_starter(session: Session, principal: Principal, job: TrainingJob) -> None:
    """A training job is cancelled by the institution that started it, or by an admin (a job
    whose starting key was deleted can then be cancelled by admins only)."""
    if principal.role == Role.admin:
        return
    starter = session.get(Principal, job.started_by_id) if job.started_by_id else None
    if starter is None or starter.institution_id != principal.institution_id:
        raise ApiError(
            403,
            "forbidden",
            "only the institution that started this training job and admins may cancel it",
        )


def require_gate_override(principal: Principal) -> None:
    if principal.role != Role.admin:
        raise ApiError(403, "forbidden", "only an admin may override the quality gate")


def pairing_side(principal: Principal, pairing: Pairing) -> str | None:
    """'lq', 'hq' or None (admin, or no side): which half of the pairing this key speaks for."""
    if pairing.lq_microscope.institution_id == principal.institution_id:
        return "lq"
    if pairing.hq_microscope.institution_id == principal.institution_id:
        return "hq"
    return None
