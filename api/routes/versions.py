"""Model versions of a pairing, their artifacts, and the production / staging aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.background import BackgroundTask

from api.deps import PairingDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from api.downloads import content_disposition
from api.openapi_responses import BAD_REQUEST, CONFLICT, FORBIDDEN, PAIRING_SCOPED, file_body
from api.pagination import paginate
from api.params import Offset, PathInt
from api.schemas import (
    AliasEventOut,
    AliasMove,
    AliasOut,
    BioimageioOut,
    CurvePointOut,
    ExpectedPointOut,
    LearningCurveOut,
    Page,
    VersionOut,
)
from api.services import learning_curve, model_versions
from api.tables import Alias, AliasEvent, ModelVersion

router = APIRouter(prefix="/pairings/{pairing_id}", tags=["versions"], responses=PAIRING_SCOPED)


def _out(session: SessionDep, version: ModelVersion) -> VersionOut:
    out = VersionOut.model_validate(version)
    out.bioimageio = BioimageioOut(**model_versions.bioimageio_state(version))
    out.aliases = list(session.scalars(select(Alias.name).where(Alias.version_id == version.id)))
    return out


@router.get("/versions", summary="List model versions")
def list_versions(
    pairing: PairingDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[VersionOut]:
    """This pairing's model versions, with their metrics and the aliases pointing at each."""
    query = select(ModelVersion).where(ModelVersion.pairing_id == pairing.id)
    page = paginate(session, query, limit, offset, ModelVersion.number)
    page.items = [_out(session, v) for v in page.items]
    return page


@router.get("/learning-curve", summary="The pairing's learning curve")
def get_learning_curve(pairing: PairingDep, session: SessionDep) -> LearningCurveOut:
    """Fields imaged → test quality, one point per version, and the expected quality of more
    fields once versions trained on three field counts can be fitted — to decide how many
    fields to image next."""
    curve = learning_curve.learning_curve(session, pairing)
    return LearningCurveOut(
        fields_available=curve.fields_available,
        points=[CurvePointOut(**vars(p)) for p in curve.points],
        expected=[ExpectedPointOut(train_fields=n, psnr=psnr) for n, psnr in curve.expected],
        fit=curve.fit,
    )


@router.get("/versions/{number}", summary="Get a model version")
def get_version(pairing: PairingDep, number: PathInt, session: SessionDep) -> VersionOut:
    """Config, seed, software, dataset digest, artifact hashes and evaluation metrics."""
    return _out(session, model_versions.get_version(session, pairing, number))


def _download(  # type: ignore[no-untyped-def]
    store, settings, version: ModelVersion, artifact: str, media_type: str, filename: str
) -> FileResponse:
    """The artifact, sent only after its bytes matched their recorded hash."""
    path = model_versions.verified_copy(store, version, artifact, settings.data_dir / "tmp")
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(filename)},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.get(
    "/versions/{number}/model",
    response_class=FileResponse,
    summary="Download a model",
    responses={**file_body("application/zip", "The saved model."), **CONFLICT},
)
def download_model(
    pairing: PairingDep,
    number: PathInt,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
) -> FileResponse:
    """The saved model (.zip) as models/ writes it; `pairscope enhance --model` reads it.
    A 409 names an artifact that is missing or no longer matches its recorded hash."""
    version = model_versions.get_version(session, pairing, number)
    return _download(
        store, settings, version, "model", "application/zip", f"pairing-{pairing.id}-v{number}.zip"
    )


@router.get(
    "/versions/{number}/bioimageio.zip",
    response_class=FileResponse,
    summary="Download a bioimage.io model package",
    responses={**file_body("application/zip", "A bioimage.io model package."), **CONFLICT},
)
def download_bioimageio(
    pairing: PairingDep,
    number: PathInt,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
) -> FileResponse:
    """The version as a bioimage.io model package (ONNX and Keras HDF5 weights), built by the
    worker when the version was published; for deepImageJ, ilastik, bioimageio.core. A 409
    says why a version has none."""
    version = model_versions.get_version(session, pairing, number)
    return _download(
        store,
        settings,
        version,
        "bioimage.io package",
        "application/zip",
        f"pairing-{pairing.id}-v{number}.bioimageio.zip",
    )


@router.get(
    "/versions/{number}/report.json",
    response_class=FileResponse,
    summary="Download an evaluation report",
    responses={**file_body("application/json", "The evaluation report."), **CONFLICT},
)
def download_report(
    pairing: PairingDep,
    number: PathInt,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
) -> FileResponse:
    """The evaluation as JSON: the generator and the baselines, scored on the test fields."""
    version = model_versions.get_version(session, pairing, number)
    return _download(
        store, settings, version, "report.json", "application/json", f"v{number}-report.json"
    )


@router.get(
    "/versions/{number}/report.png",
    response_class=FileResponse,
    summary="Download an evaluation figure",
    responses={**file_body("image/png", "The report figure."), **CONFLICT},
)
def download_report_png(
    pairing: PairingDep,
    number: PathInt,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
) -> FileResponse:
    """The evaluation report drawn as a PNG."""
    version = model_versions.get_version(session, pairing, number)
    return _download(store, settings, version, "report.png", "image/png", f"v{number}-report.png")


@router.delete(
    "/versions/{number}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a model version",
    responses={**FORBIDDEN, **CONFLICT},
)
def delete_version(
    pairing: PairingDep,
    number: PathInt,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> None:
    """Delete a version nothing points at. Only the wide-field (LQ) institution and admins may;
    refused (409) while an alias points at it or enhancement results were made with it (it is
    their provenance)."""
    version = model_versions.get_version(session, pairing, number)
    model_versions.delete_version(
        session, store=store, principal=principal, pairing=pairing, version=version
    )


@router.get("/aliases", summary="List aliases")
def list_aliases(pairing: PairingDep, session: SessionDep) -> list[AliasOut]:
    """Where `production` and `staging` point."""
    rows = session.execute(
        select(Alias, ModelVersion.number)
        .join(ModelVersion, Alias.version_id == ModelVersion.id)
        .where(Alias.pairing_id == pairing.id)
    )
    return [AliasOut(name=a.name, version=n, updated_at=a.updated_at) for a, n in rows]


@router.put(
    "/aliases/{name}", summary="Move an alias", responses={**BAD_REQUEST, **FORBIDDEN, **CONFLICT}
)
def move_alias(
    pairing: PairingDep, name: str, body: AliasMove, session: SessionDep, principal: PrincipalDep
) -> AliasOut:
    """Point an alias at a version. Production passes the quality gate (or an admin's
    recorded override)."""
    version = model_versions.get_version(session, pairing, body.version)
    alias = model_versions.move_alias(
        session,
        principal=principal,
        pairing=pairing,
        name=name,
        version=version,
        override_reason=body.override_reason,
    )
    return AliasOut(name=alias.name, version=version.number, updated_at=alias.updated_at)


@router.post(
    "/aliases/{name}/rollback", summary="Roll back an alias", responses={**FORBIDDEN, **CONFLICT}
)
def roll_back_alias(
    pairing: PairingDep, name: str, session: SessionDep, principal: PrincipalDep
) -> AliasOut:
    """Move the alias back to the version it pointed at before its last move."""
    alias = model_versions.roll_back(session, principal, pairing, name)
    number = session.get_one(ModelVersion, alias.version_id).number
    return AliasOut(name=alias.name, version=number, updated_at=alias.updated_at)


@router.get("/alias-events", summary="List alias moves")
def alias_events(
    pairing: PairingDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Page[AliasEventOut]:
    """The audit log: who moved which alias, when, from which version to which, and why."""
    query = select(AliasEvent).where(AliasEvent.pairing_id == pairing.id)
    return paginate(session, query, limit, offset, AliasEvent.id)
