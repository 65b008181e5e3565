"""Model versions and their aliases. Promotion to production passes a quality gate: the version
must beat the current production version and Richardson–Lucy on PSNR and SSIM, compared on the
same test fields, and its calibrated uncertainty intervals must cover what they say; an admin
may override with a reason, which the audit log keeps."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.services.access import require_gate_override, require_lq_side
from api.storage import ObjectNotFound, ObjectStore
from api.tables import Alias, AliasEvent, EnhancementJob, ModelVersion, Pairing, Principal, Role

ALIASES = ("production", "staging")
GATE_METRICS = ("psnr", "ssim")
#: The calibrated uncertainty intervals' coverage a production version must show on its test
#: fields (metrics["trust"]["uncertainty_coverage"], the fraction of pixels inside the nominal
#: 90 % interval): within [0.85, 0.95]. A version published before the coverage was measured
#: has none and is not refused for it.
UNCERTAINTY_COVERAGE_RANGE = (0.85, 0.95)


def get_version(session: Session, pairing: Pairing, number: int) -> ModelVersion:
    version = session.scalar(
        select(ModelVersion).where(
            ModelVersion.pairing_id == pairing.id, ModelVersion.number == number
        )
    )
    if version is None:
        raise ApiError(404, "not_found", f"version {number} does not exist for this pairing")
    return version


def bioimageio_state(version: ModelVersion) -> dict[str, Any]:
    """Whether the version has a bioimage.io package, its hash, or why it has none."""
    return {
        "available": version.bioimageio_key is not None,
        "sha256": version.bioimageio_sha256,
        "error": version.bioimageio_error,
    }


def artifact(version: ModelVersion, name: str) -> tuple[str, str]:
    """The stored key and sha256 of one of the version's artifacts; a 409 when it has none."""
    if name == "bioimage.io package":
        if version.bioimageio_key is None or version.bioimageio_sha256 is None:
            raise ApiError(
                409,
                "artifact_unavailable",
                f"version {version.number} has no bioimage.io package: "
                f"{version.bioimageio_error or 'none was built'}",
                extra={"artifact": name},
            )
        return version.bioimageio_key, version.bioimageio_sha256
    return {
        "model": (version.model_key, version.model_sha256),
        "report.json": (version.report_key, version.report_sha256),
        "report.png": (version.report_png_key, version.report_png_sha256),
    }[name]


def verified_copy(store: ObjectStore, version: ModelVersion, name: str, folder: Path) -> Path:
    """The artifact copied into a new file in `folder`, hashed on the way: a download is
    answered only once its bytes are known to be the recorded ones, so a missing or altered
    object is a 409 naming it, never a 200 with a short or wrong body. The caller removes the
    file."""
    key, sha256 = artifact(version, name)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix="artifact-", suffix=".part")
    path, digest = Path(temp), hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in store.iter_bytes(key):
                digest.update(chunk)
                out.write(chunk)
    except ObjectNotFound:
        path.unlink(missing_ok=True)
        raise ApiError(
            409,
            "artifact_unavailable",
            f"the {name} of version {version.number} is missing from the object store",
            extra={"artifact": name},
        ) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != sha256:
        path.unlink(missing_ok=True)
        raise ApiError(
            409,
            "artifact_unavailable",
            f"the {name} of version {version.number} does not match its recorded sha256 "
            "(the stored object was altered or damaged)",
            extra={"artifact": name},
        )
    return path


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
    failures += uncertainty_coverage_failures(candidate)
    figures["failures"] = failures
    return not failures, figures


def uncertainty_coverage_failures(candidate: ModelVersion) -> list[str]:
    """The coverage target: intervals that hold the truth far more or far less often than
    they say are refused; a version without a measured coverage (older) is not."""
    coverage = (candidate.metrics.get("trust") or {}).get("uncertainty_coverage")
    low, high = UNCERTAINTY_COVERAGE_RANGE
    if coverage is None or low <= coverage <= high:
        return []
    return [
        f"uncertainty coverage {coverage:.3f} of the nominal 90 % interval is outside "
        f"[{low:.2f}, {high:.2f}]"
    ]


def move_alias(
    session: Session,
    *,
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
    if override_reason is not None:
        require_gate_override(principal)
    return _record_move(
        session,
        principal=principal,
        pairing=pairing,
        name=name,
        current=current,
        version=version,
        reason=override_reason,
        action="promote",
    )


def _record_move(
    session: Session,
    *,
    principal: Principal,
    pairing: Pairing,
    name: str,
    current: ModelVersion | None,
    version: ModelVersion,
    reason: str | None,
    action: str,
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
            override_reason=reason,
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
        principal=principal,
        pairing=pairing,
        name=name,
        current=current,
        version=previous,
        reason=f"rollback from version {current.number}",
        action="rollback",
    )


def delete_version(
    session: Session,
    *,
    store: ObjectStore,
    principal: Principal,
    pairing: Pairing,
    version: ModelVersion,
) -> None:
    require_lq_side(principal, pairing, "delete its model versions")
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
    keys = [version.model_key, version.report_key, version.report_png_key]
    if version.bioimageio_key:
        keys.append(version.bioimageio_key)
    session.delete(version)
    session.commit()
    for key in keys:
        store.delete(key)
