"""Image uploads and the pairs they form: validation, storage, idempotency, alignment dispatch.

Nothing is stored before the file has been checked completely, and a failure after the object
was written removes it again: bad input leaves no object and no row behind.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.celery_config import ALIGN_PAIR
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.storage import ObjectStore
from api.tables import (
    DatasetMember,
    Image,
    Microscope,
    Pair,
    Pairing,
    PairingStatus,
    PairStatus,
    Principal,
    Side,
    utcnow,
)
from api.tiff_inspect import ImageInfo, InvalidImage, inspect_tiff
from api.upload_stream import ReceivedFile

FIELD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PIXEL_SIZE_TOLERANCE = 0.05


def field_id_for(received: ReceivedFile, requested: str | None) -> str:
    """The field id given, else the file name without its TIFF extension."""
    field_id = requested or re.sub(r"(\.ome)?\.tiff?$", "", received.filename, flags=re.I)
    if not FIELD_ID.match(field_id):
        raise field_error(
            "field_id",
            f"{field_id!r} is not a valid field id (letters, digits, "
            "'.', '_', '-'; at most 100 characters)",
        )
    return field_id


def require_side(principal: Principal, pairing: Pairing, side: Side) -> None:
    """Only the institution that owns that side's microscope may upload its images."""
    if _microscope(pairing, side).institution_id != principal.institution_id:
        owner = "wide-field (LQ)" if side == Side.lq else "reference (HQ)"
        raise ApiError(
            403,
            "forbidden",
            f"only keys of the {owner} institution of this pairing may upload "
            f"{side.value.upper()} images",
        )


def _microscope(pairing: Pairing, side: Side) -> Microscope:
    return pairing.lq_microscope if side == Side.lq else pairing.hq_microscope


def check_image(received: ReceivedFile, microscope: Microscope) -> ImageInfo:
    """The whole file checked, and its channel count against the microscope's."""
    channels = len(microscope.channels)
    try:
        info = inspect_tiff(received.path, channels=channels)
    except InvalidImage as exc:
        raise ApiError(422, "invalid_image", f"{received.filename}: {exc}") from exc
    found = info.shape[info.axes.index("C")]
    if found != channels:
        names = ", ".join(c.name for c in microscope.channels)
        raise ApiError(
            422,
            "invalid_image",
            f"{received.filename}: has {found} channel(s) but microscope "
            f"{microscope.name!r} has {channels} ({names})",
        )
    return info


def object_key(pairing: Pairing, side: Side, institution_id: int, sha256: str) -> str:
    return f"institutions/{institution_id}/pairings/{pairing.id}/{side.value}/{sha256}.tif"


def upload_image(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    principal: Principal,
    pairing: Pairing,
    side: Side,
    field_id: str,
    received: ReceivedFile,
) -> tuple[Image, bool]:
    """Check, store and record one image; returns (image, created). Identical re-uploads return
    the existing record."""
    require_side(principal, pairing, side)
    if pairing.status != PairingStatus.active:
        raise ApiError(409, "conflict", "the pairing is archived; reactivate it to add images")
    existing = session.scalar(
        select(Image).where(
            Image.pairing_id == pairing.id, Image.side == side, Image.field_id == field_id
        )
    )
    if existing is not None:
        if existing.sha256 == received.sha256:
            return existing, False
        raise ApiError(
            409,
            "conflict",
            f"field {field_id!r} already has a different {side.value.upper()} image "
            f"(image {existing.id}, sha256 {existing.sha256[:12]}…); delete it first "
            "to replace it",
        )
    microscope = _microscope(pairing, side)
    info = check_image(received, microscope)
    warnings: list[str] = []
    pixel_size, source = microscope.pixel_size_um, "microscope"
    if info.pixel_size_um is not None:
        pixel_size, source = info.pixel_size_um, info.pixel_size_source or "file"
        deviation = abs(info.pixel_size_um - microscope.pixel_size_um) / microscope.pixel_size_um
        if deviation > PIXEL_SIZE_TOLERANCE:
            warnings.append(
                f"the file's {source} metadata says {info.pixel_size_um:.4g} µm per pixel, the "
                f"microscope record {microscope.pixel_size_um:.4g} µm; using the file's value"
            )
    if "Z" in info.axes and info.z_step_um is None and microscope.z_step_um is None:
        warnings.append("a Z stack without a z-step in the file or the microscope record")

    key = object_key(pairing, side, microscope.institution_id, received.sha256)
    stored = store.put_file(key, received.path, received.sha256)
    image = Image(
        pairing_id=pairing.id,
        side=side,
        field_id=field_id,
        institution_id=microscope.institution_id,
        uploaded_by_id=principal.id,
        filename=received.filename,
        object_key=key,
        sha256=stored.sha256,
        size_bytes=stored.size,
        file_format=info.file_format,
        axes=info.axes,
        shape=list(info.shape),
        dtype=info.dtype,
        pixel_size_um=pixel_size,
        pixel_size_source=source,
        z_step_um=info.z_step_um or microscope.z_step_um,
        warnings=warnings,
    )
    try:
        session.add(image)
        session.commit()
    except BaseException:
        session.rollback()
        if not _key_in_use(session, key):
            store.delete(key)
        raise
    make_pair_if_complete(session, dispatcher, pairing, field_id)
    return image, True


def _key_in_use(session: Session, key: str) -> bool:
    return session.scalar(select(Image.id).where(Image.object_key == key)) is not None


def make_pair_if_complete(
    session: Session, dispatcher: Dispatcher, pairing: Pairing, field_id: str
) -> Pair | None:
    """When both halves of a field exist, record the pair and queue its alignment."""
    images = {
        i.side: i
        for i in session.scalars(
            select(Image).where(Image.pairing_id == pairing.id, Image.field_id == field_id)
        )
    }
    if set(images) != {Side.lq, Side.hq}:
        return None
    pair = session.scalar(
        select(Pair).where(Pair.pairing_id == pairing.id, Pair.field_id == field_id)
    )
    if pair is None:
        pair = Pair(
            pairing_id=pairing.id,
            field_id=field_id,
            lq_image_id=images[Side.lq].id,
            hq_image_id=images[Side.hq].id,
            status=PairStatus.pending,
        )
        session.add(pair)
        session.commit()
    queue_alignment(session, dispatcher, pair)
    return pair


def queue_alignment(session: Session, dispatcher: Dispatcher, pair: Pair) -> None:
    """Reset the pair to pending and send it to a worker. If the broker is down the pair stays
    pending, and re-running alignment later picks it up."""
    pair.status, pair.reason, pair.score = PairStatus.pending, None, None
    pair.accepted_by_id = pair.accepted_manually_at = None
    session.commit()
    try:
        dispatcher.send(ALIGN_PAIR, pair.id)
    except Exception as exc:  # the upload itself succeeded; say why alignment waits
        pair.reason = f"waiting: the task queue could not be reached ({type(exc).__name__})"
        session.commit()


def accept_by_hand(session: Session, principal: Principal, pair: Pair) -> Pair:
    if pair.status != PairStatus.rejected:
        raise ApiError(
            409,
            "conflict",
            f"only a rejected pair can be accepted by hand; this one is {pair.status.value}",
        )
    if pair.lq_aligned_key is None or pair.hq_aligned_key is None:
        raise ApiError(
            409,
            "conflict",
            "this pair has no aligned images to accept (the aligner could not "
            "produce any); re-run alignment or replace an image",
        )
    pair.status = PairStatus.accepted
    pair.accepted_by_id = principal.id
    pair.accepted_manually_at = utcnow()
    session.commit()
    return pair


def delete_image(session: Session, store: ObjectStore, principal: Principal, image: Image) -> None:
    """An institution may delete its own upload unless a dataset snapshot uses it."""
    if principal.institution_id != image.institution_id:
        raise ApiError(
            403, "forbidden", "only the institution that uploaded an image may delete it"
        )
    used = session.scalar(
        select(DatasetMember.dataset_id).where(
            (DatasetMember.lq_image_id == image.id) | (DatasetMember.hq_image_id == image.id)
        )
    )
    if used is not None:
        raise ApiError(
            409, "conflict", f"dataset snapshot {used} uses this image; snapshots are immutable"
        )
    keys = [image.object_key]
    pair = session.scalar(
        select(Pair).where((Pair.lq_image_id == image.id) | (Pair.hq_image_id == image.id))
    )
    if pair is not None:
        keys += [k for k in (pair.lq_aligned_key, pair.hq_aligned_key, pair.preview_key) if k]
        session.delete(pair)
        session.flush()
    session.delete(image)
    session.commit()
    for key in keys:
        if not _key_in_use(session, key):
            store.delete(key)
