"""Object storage: local disk and S3 (a real moto server over HTTP) behave the same."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from api.settings import Settings
from api.storage import LocalStore, ObjectNotFound, ObjectStore, ObjectTooLarge, S3Store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path) -> ObjectStore:  # type: ignore[no-untyped-def]
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Store(
        Settings(
            data_dir=tmp_path,
            storage_backend="s3",
            s3_bucket=bucket,
            s3_endpoint_url=endpoint,
            s3_access_key_id="test",
            s3_secret_access_key="test",
        )
    )


def test_round_trip_with_hash_and_size(store: ObjectStore) -> None:
    data = bytes(range(256)) * 200_000  # 51 MB: several multipart chunks on S3
    stored = store.put("inst-1/pairing-2/lq/a.tif", io.BytesIO(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists(stored.key)
    assert b"".join(store.iter_bytes(stored.key)) == data
    store.delete(stored.key)
    assert not store.exists(stored.key)
    with pytest.raises(ObjectNotFound):
        b"".join(store.iter_bytes(stored.key))


def test_oversized_write_leaves_nothing(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectTooLarge):
        store.put("inst-1/big.bin", io.BytesIO(b"x" * (40 * 1024 * 1024)), limit=20 * 1024 * 1024)
    assert not store.exists("inst-1/big.bin")
    if isinstance(store, LocalStore):
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_keys_cannot_escape(store: ObjectStore) -> None:
    for key in ("../etc/passwd", "/abs", "a//b", ""):
        with pytest.raises(ValueError):
            store.put(key, io.BytesIO(b"x"))


def test_check_describes_the_store(store: ObjectStore) -> None:
    assert store.check()
