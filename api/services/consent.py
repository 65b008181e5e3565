"""Each institution's consent to lend a pairing's pairs to the network's base model.

Both sides must consent before pretraining reads a pairing (each side's flag is its own), and
either side may withdraw at any time: the pairing's consent is then gone, every base that read
it is marked tainted (no new model starts from one), and the next base leaves it out."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError, field_error
from api.tables import BaseVersion, Pairing, Principal, Role, Side, utcnow


def consenting_side(principal: Principal, pairing: Pairing, side: Side | None) -> Side:
    """The side a key speaks for: its institution's microscope's (the one named, when its
    institution owns both); an admin names the side it records."""
    if principal.role == Role.admin:
        if side is None:
            raise field_error("side", "an admin names the side whose consent it records")
        return side
    owned = [
        s
        for s, scope in ((Side.lq, pairing.lq_microscope), (Side.hq, pairing.hq_microscope))
        if scope.institution_id == principal.institution_id
    ]
    if side is not None and side not in owned:
        raise ApiError(
            403,
            "forbidden",
            f"only the institution of the pairing's {side.value.upper()} microscope and admins "
            "may consent for that side",
        )
    if side is None:
        if len(owned) != 1:
            raise field_error("side", "this institution owns both sides; name the side")
        return owned[0]
    return side


def set_consent(
    session: Session, principal: Principal, pairing: Pairing, side: Side | None, consent: bool
) -> Pairing:
    """Record (or withdraw) one side's consent; a withdrawal taints the bases that read it."""
    chosen = consenting_side(principal, pairing, side)
    setattr(pairing, f"{chosen.value}_share_for_pretraining", consent)
    if not consent:
        taint_bases(session, pairing.id, f"the {chosen.value.upper()} side withdrew consent")
    session.commit()
    return pairing


def taint_bases(session: Session, pairing_id: int, why: str) -> list[int]:
    """Mark every untainted base that read this pairing; returns their numbers."""
    now = utcnow()
    marked = []
    for base in session.scalars(
        select(BaseVersion).where(BaseVersion.tainted_by_withdrawal.is_(False))
    ):
        if pairing_id in base.pairing_ids:
            base.tainted_by_withdrawal = True
            when = now.isoformat(timespec="seconds")
            base.taint_reason = f"pairing {pairing_id}: {why} at {when}"
            base.tainted_at = now
            marked.append(base.number)
    return marked
