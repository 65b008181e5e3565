"""Who may see what: the one place that turns "not yours" into the same 404 as "not there".

An admin sees the whole network. A lab or partner key sees its own institution and microscopes,
the pairings its institution takes part in (either side), and — because a pairing grants it —
the partner microscope and partner institution of those pairings.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, aliased

from api.errors import ApiError
from api.tables import Institution, Microscope, Pairing, Principal, Role

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


def pairing_side(principal: Principal, pairing: Pairing) -> str | None:
    """'lq', 'hq' or None (admin, or no side): which half of the pairing this key speaks for."""
    if pairing.lq_microscope.institution_id == principal.institution_id:
        return "lq"
    if pairing.hq_microscope.institution_id == principal.institution_id:
        return "hq"
    return None
