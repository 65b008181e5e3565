"""Image uploads and the pairs they form: validation, storage, idempotency, alignment dispatch.

Nothing is stored before the file has been checked completely, and a failure after the object
was written removes it again: bad input leaves no object and no row behind.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.celery_config import ALIGN_PAIR
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.services.access import require_image_owner, require_upload_side
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
from api.upload_stream import ReceivedFile
from models.image_io import ImageInfo, InvalidImage, inspect_tiff

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


def get_image(session: Session, pairing: Pairing, image_id: int) -> Image:
    image = session.scalar(
        select(Image).where(Image.id == image_id, Image.pairing_id == pairing.id)
    )
    if image is None:
        raise ApiError(404, "not_found", f"image {image_id} does not exist")
    return image


def get_pair(session: Session, pairing: Pairing, pair_id: int) -> Pair:
    pair = session.scalar(select(Pair).where(Pair.id == pair_id, Pair.pairing_id == pairing.id))
    if pair is None:
        raise ApiError(404, "not_found", f"pair {pair_id} does not exist")
    return pair


def upload_image(
    session: Session,
    *,
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
    require_upload_side(principal, pairing, side)
    if pairing.status != PairingStatus.active:
        raise ApiError(409, "conflict", "the pairing is archived; reactivate it to add images")
    existing = _existing_upload(session, pairing, side, field_id, received.sha256)
    if existing is not None:
        return existing, False
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
    except IntegrityError:
        # An identical upload of the same field won the race: answer with its record.
        session.rollback()
        existing = _existing_upload(session, pairing, side, field_id, received.sha256)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        session.rollback()
        if not _key_in_use(session, key):
            store.delete(key)
        raise
    make_pair_if_complete(session, dispatcher, pairing, field_id)
    return image, True


def _existing_upload(
    session: Session, pairing: Pairing, side: Side, field_id: str, sha256: str
) -> Image | None:
    """The field's image on this side if it has exactly this content; 409 if it differs."""
    existing = session.scalar(
        select(Image).where(
            Image.pairing_id == pairing.id, Image.side == side, Image.field_id == field_id
        )
    )
    if existing is None or existing.sha256 == sha256:
        return existing
    raise ApiError(
        409,
        "conflict",
        f"field {field_id!r} already has a different {side.value.upper()} image "
        f"(image {existing.id}, sha256 {existing.sha256[:12]}…); delete it first "
        "to replace it",
    )


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
        try:
            session.commit()
        except IntegrityError:  # the other half's upload recorded the pair first
            session.rollback()
            return None
    queue_alignment(session, dispatcher, pair)
    return pair


def queue_alignment(session: Session, dispatcher: Dispatcher, pair: Pair) -> None:
    """Reset the pair to pending and send it to a worker. If the broker is down the pair stays
    pending and the reconciler in every worker sends it once the broker is back."""
    pair.status, pair.reason, pair.score = PairStatus.pending, None, None
    pair.accepted_by_id = pair.accepted_manually_at = None
    pair.rejected_by_id = pair.rejected_manually_at = None
    pair.dispatched_at = utcnow()
    session.commit()
    if not dispatcher.send_recorded(session, ALIGN_PAIR, pair):
        pair.reason = "waiting: the task queue could not be reached; it is sent when it is back"
        session.commit()


def realign(session: Session, dispatcher: Dispatcher, pair: Pair) -> Pair:
    """Align again (for example after a microscope's pixel size was corrected)."""
    if pair.status == PairStatus.aligning:
        raise ApiError(409, "conflict", "this pair is being aligned right now")
    queue_alignment(session, dispatcher, pair)
    return pair


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
    pair.rejected_by_id = pair.rejected_manually_at = None
    session.commit()
    return pair


def reject_by_hand(session: Session, principal: Principal, pair: Pair, reason: str) -> Pair:
    """Take an accepted pair out of future snapshots, with the lab's reason; who and when are
    recorded. Snapshots that already hold it keep it (they are immutable). Only an accepted
    pair: a pending or aligning one would be overwritten by the aligner's verdict."""
    if pair.status != PairStatus.accepted:
        raise ApiError(
            409,
            "conflict",
            f"only an accepted pair can be rejected by hand; this one is {pair.status.value}",
        )
    pair.status, pair.reason = PairStatus.rejected, reason
    pair.rejected_by_id = principal.id
    pair.rejected_manually_at = utcnow()
    pair.accepted_by_id = pair.accepted_manually_at = None
    session.commit()
    return pair


def delete_image(session: Session, store: ObjectStore, principal: Principal, image: Image) -> None:
    """An institution may delete its own upload unless a dataset snapshot uses it."""
    require_image_owner(principal, image)
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
