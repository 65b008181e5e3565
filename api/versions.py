"""Model versions and their aliases. Promotion to production passes a quality gate: the version
must beat the current production version and Richardson–Lucy on PSNR and SSIM, compared on the
same test fields; an admin may override with a reason, which the audit log keeps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.access import require_lq_side
from api.errors import ApiError
from api.storage import ObjectStore
from api.tables import Alias, AliasEvent, EnhancementJob, ModelVersion, Pairing, Principal, Role

ALIASES = ("production", "staging")
GATE_METRICS = ("psnr", "ssim")


def get_version(session: Session, pairing: Pairing, number: int) -> ModelVersion:
    version = session.scalar(
        select(ModelVersion).where(
            ModelVersion.pairing_id == pairing.id, ModelVersion.number == number
        )
    )
    if version is None:
        raise ApiError(404, "not_found", f"version {number} does not exist for this pairing")
    return version


def alias_target(session: Session, pairing: Pairing, name: str) -> ModelVersion | None:
    alias = session.scalar(select(Alias).where(Alias.pairing_id == pairing.id, Alias.name == name))
    return session.get(ModelVersion, alias.version_id) if alias else None


def _medians(version: ModelVersion, method: str) -> dict[str, float] | None:
    """A method's medians from the version's evaluation ("inf"/"nan" are stored as text)."""
    found = version.metrics.get("medians", {}).get(method)
    return {k: float(v) for k, v in found.items()} if found else None


def gate_figures(
    session: Session, candidate: ModelVersion, production: ModelVersion | None
) -> tuple[bool, dict[str, Any]]:
    """Whether the candidate passes, and the figures that decided it (shown with a 409)."""
    own = _medians(candidate, candidate.metrics.get("self_method", "version"))
    figures: dict[str, Any] = {"candidate": own}
    failures: list[str] = []
    rl = _medians(candidate, "richardson_lucy")
    figures["richardson_lucy"] = rl
    if own is None or rl is None:
        failures.append("the version has no evaluation against Richardson–Lucy")
    else:
        failures += [
            f"{m} {own[m]:.4g} does not beat Richardson–Lucy's {rl[m]:.4g}"
            for m in GATE_METRICS
            if not own[m] > rl[m]
        ]
    if production is not None and production.id != candidate.id:
        prod = _medians(candidate, f"production (version {production.number})")
        if prod is None and production.dataset_id == candidate.dataset_id:
            prod = _medians(production, production.metrics.get("self_method", "version"))
        figures["production"] = {"version": production.number, "medians": prod}
        if prod is None:
            failures.append(
                f"version {production.number} (production) was never scored on "
                "this version's test fields"
            )
        elif own is not None:
            failures += [
                f"{m} {own[m]:.4g} does not beat production version "
                f"{production.number}'s {prod[m]:.4g}"
                for m in GATE_METRICS
                if not own[m] > prod[m]
            ]
    figures["failures"] = failures
    return not failures, figures


def move_alias(
    session: Session,
    principal: Principal,
    pairing: Pairing,
    name: str,
    version: ModelVersion,
    override_reason: str | None,
) -> Alias:
    require_lq_side(principal, pairing, "move its aliases")
    if name not in ALIASES:
        raise ApiError(
            404, "not_found", f"alias {name!r} does not exist; use {' or '.join(ALIASES)}"
        )
    current = alias_target(session, pairing, name)
    if name == "production":
        passed, figures = gate_figures(session, version, current)
        if not passed:
            if override_reason is None or principal.role != Role.admin:
                hint = (
                    "an admin may override with a reason"
                    if principal.role != Role.admin
                    else "send override_reason to override"
                )
                raise ApiError(
                    409,
                    "quality_gate",
                    f"version {version.number} does not pass the quality gate: "
                    f"{'; '.join(figures['failures'])} ({hint})",
                    extra={"figures": figures},
                )
    if override_reason is not None and principal.role != Role.admin:
        raise ApiError(403, "forbidden", "only an admin may override the quality gate")
    return _record_move(session, principal, pairing, name, current, version, override_reason)


def _record_move(
    session: Session,
    principal: Principal,
    pairing: Pairing,
    name: str,
    current: ModelVersion | None,
    version: ModelVersion,
    override_reason: str | None,
    action: str = "promote",
) -> Alias:
    alias = session.scalar(select(Alias).where(Alias.pairing_id == pairing.id, Alias.name == name))
    if alias is None:
        alias = Alias(pairing_id=pairing.id, name=name, version_id=version.id)
        session.add(alias)
    alias.version_id = version.id
    session.add(
        AliasEvent(
            pairing_id=pairing.id,
            alias=name,
            action=action,
            from_version=current.number if current else None,
            to_version=version.number,
            principal_id=principal.id,
            override_reason=override_reason,
        )
    )
    session.commit()
    return alias


def roll_back(session: Session, principal: Principal, pairing: Pairing, name: str) -> Alias:
    """Move the alias back to the version it pointed at before the current one was promoted.
    Rolling back again goes further back, never forward (rollback moves are skipped). That
    version passed the gate when it was promoted, so the gate is not asked again."""
    require_lq_side(principal, pairing, "move its aliases")
    current = alias_target(session, pairing, name)
    if current is None:
        raise ApiError(409, "conflict", f"alias {name!r} points at no version")
    promoted = session.scalar(
        select(AliasEvent)
        .where(
            AliasEvent.pairing_id == pairing.id,
            AliasEvent.alias == name,
            AliasEvent.action == "promote",
            AliasEvent.to_version == current.number,
        )
        .order_by(AliasEvent.id.desc())
    )
    if promoted is None or promoted.from_version is None:
        raise ApiError(409, "conflict", f"alias {name!r} has no earlier version to roll back to")
    previous = get_version(session, pairing, promoted.from_version)
    return _record_move(
        session,
        principal,
        pairing,
        name,
        current,
        previous,
        f"rollback from version {current.number}",
        action="rollback",
    )


def delete_version(session: Session, store: ObjectStore, version: ModelVersion) -> None:
    aliases = session.scalars(select(Alias.name).where(Alias.version_id == version.id)).all()
    if aliases:
        raise ApiError(
            409,
            "conflict",
            f"alias {', '.join(aliases)} points at version {version.number}; move it first",
        )
    if session.scalar(select(EnhancementJob.id).where(EnhancementJob.version_id == version.id)):
        raise ApiError(
            409,
            "conflict",
            f"enhancement results were made with version "
            f"{version.number}; it is kept as their provenance",
        )
    keys = (version.model_key, version.report_key, version.report_png_key)
    session.delete(version)
    session.commit()
    for key in keys:
        store.delete(key)
