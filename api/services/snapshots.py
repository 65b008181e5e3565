"""Dataset snapshots: an immutable list of a pairing's accepted pairs, split by field.

The split is decided per field, before any patch is cut or any image augmented, so no field
is ever seen in training and in evaluation; it depends only on the seed and the field ids.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.tables import Dataset, DatasetMember, Pair, Pairing, PairStatus, Principal, Split


def split_fields(field_ids: list[str], fractions: dict[str, float], seed: int) -> dict[str, Split]:
    """Deterministic split: fields ordered by a seeded hash, then cut by the fractions. With three
    or more fields, every non-zero fraction gets at least one field and training keeps one."""
    order = sorted(field_ids, key=lambda f: hashlib.sha256(f"{seed}:{f}".encode()).hexdigest())
    n = len(order)
    counts = {name: round(fractions[name] * n) for name in ("validation", "test")}
    if n >= 3:
        for name in counts:
            if fractions[name] > 0:
                counts[name] = max(1, counts[name])
    while counts["validation"] + counts["test"] > n - 1 and counts["validation"] + counts["test"]:
        largest = max(counts, key=lambda k: counts[k])
        counts[largest] -= 1
    split: dict[str, Split] = {}
    for i, field_id in enumerate(order):
        if i < counts["test"]:
            split[field_id] = Split.test
        elif i < counts["test"] + counts["validation"]:
            split[field_id] = Split.validation
        else:
            split[field_id] = Split.train
    return split


def snapshot_digest(members: list[DatasetMember], fractions: dict[str, float], seed: int) -> str:
    digest = hashlib.sha256(f"seed={seed};fractions={sorted(fractions.items())}\n".encode())
    for m in sorted(members, key=lambda m: m.field_id):
        line = f"{m.field_id}\t{m.split.value}\t{m.lq_aligned_sha256}\t{m.hq_aligned_sha256}\n"
        digest.update(line.encode())
    return digest.hexdigest()


def trainable_pairs(pairing: Pairing) -> Select[tuple[Pair]]:
    """The pairing's accepted pairs with both aligned halves stored: what a snapshot splits."""
    return select(Pair).where(
        Pair.pairing_id == pairing.id,
        Pair.status == PairStatus.accepted,
        Pair.lq_aligned_key.is_not(None),
        Pair.hq_aligned_key.is_not(None),
    )


def get_dataset(session: Session, pairing: Pairing, dataset_id: int) -> Dataset:
    dataset = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.pairing_id == pairing.id)
    )
    if dataset is None:
        raise ApiError(404, "not_found", f"dataset {dataset_id} does not exist")
    return dataset


def create_snapshot(
    session: Session,
    *,
    principal: Principal,
    pairing: Pairing,
    fractions: dict[str, float],
    seed: int,
) -> tuple[Dataset, bool]:
    """Snapshot the accepted pairs; returns (dataset, created). A snapshot with the same digest
    (same pairs, split and hashes) is returned instead of a copy, even under concurrent requests:
    the pairing's row is locked first, so requests for one pairing take turns."""
    _lock_pairing(session, pairing)
    pairs = session.scalars(trainable_pairs(pairing).order_by(Pair.field_id)).all()
    if not pairs:
        raise ApiError(
            409,
            "conflict",
            "this pairing has no accepted pairs yet; upload both "
            "halves of some fields and wait for alignment",
        )
    split = split_fields([p.field_id for p in pairs], fractions, seed)
    members = [
        DatasetMember(
            pair_id=p.id,
            field_id=p.field_id,
            split=split[p.field_id],
            lq_image_id=p.lq_image_id,
            hq_image_id=p.hq_image_id,
            lq_aligned_key=p.lq_aligned_key,
            lq_aligned_sha256=p.lq_aligned_sha256,
            hq_aligned_key=p.hq_aligned_key,
            hq_aligned_sha256=p.hq_aligned_sha256,
        )
        for p in pairs
    ]
    digest = snapshot_digest(members, fractions, seed)
    existing = session.scalar(
        select(Dataset)
        .where(Dataset.pairing_id == pairing.id, Dataset.digest == digest)
        .order_by(Dataset.id)
    )
    if existing is not None:
        session.rollback()  # releases the lock
        return existing, False
    dataset = Dataset(
        pairing_id=pairing.id,
        seed=seed,
        fractions=fractions,
        created_by_id=principal.id,
        members=members,
        digest=digest,
    )
    session.add(dataset)
    session.commit()
    return dataset, True


def _lock_pairing(session: Session, pairing: Pairing) -> None:
    """A no-op write to the pairing's row: a row lock on PostgreSQL, the write lock on SQLite,
    held until this transaction ends."""
    session.execute(update(Pairing).where(Pairing.id == pairing.id).values(id=Pairing.id))
