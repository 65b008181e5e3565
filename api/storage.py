"""Object storage: one interface, a local-disk store (embedded) and an S3 store (boto3).

Writes stream and hash on the way, so an upload is never held whole in memory, and a failed or
oversized write leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from api.settings import Settings
from models.files import atomic_write

CHUNK = 1024 * 1024
# A readiness probe must answer fast: one try, short timeouts, whatever the settings say.
PROBE_TIMEOUT_S = 2.0

log = logging.getLogger("pairscope.storage")


class ObjectTooLarge(Exception):
    """The stream went past the size limit; the partial object was discarded."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds the size limit of {limit} bytes")
        self.limit = limit


class ObjectNotFound(KeyError):
    pass


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class HashingReader:
    """Wraps a binary stream: counts bytes, hashes them and enforces a size limit while reading."""

    def __init__(self, raw: BinaryIO, limit: int | None = None) -> None:
        self._raw = raw
        self._limit = limit
        self.size = 0
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n if n and n > 0 else CHUNK)
        self.size += len(data)
        if self._limit is not None and self.size > self._limit:
            raise ObjectTooLarge(self._limit)
        self._hash.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class ObjectStore(Protocol):
    """What the service needs of any object store."""

    def put(self, key: str, stream: BinaryIO, limit: int | None = None) -> StoredObject: ...
    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        """Store a local file whose hash the caller already computed while receiving it."""
        ...

    def iter_bytes(self, key: str) -> Iterator[bytes]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def check(self) -> str:
        """Raise if the store is unreachable; return a short description of it."""
        ...


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


class LocalStore:
    """Objects as files under one folder; each write goes to a temporary file, then is renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def put(self, key: str, stream: BinaryIO, limit: int | None = None) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = HashingReader(stream, limit)
        with atomic_write(path, durable=True) as tmp, tmp.open("wb") as out:
            while chunk := reader.read(CHUNK):
                out.write(chunk)
        return StoredObject(key, reader.size, reader.sha256)

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as tmp:
            shutil.copyfile(path, tmp)
        return StoredObject(key, target.stat().st_size, sha256)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def check(self) -> str:
        probe = self.root / ".readyz"
        probe.write_bytes(b"ok")
        probe.unlink()
        return f"local:{self.root}"


class S3Store:
    """Objects in an S3 bucket (MinIO, AWS, any S3 endpoint); large writes go multipart."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.endpoint = settings.s3_endpoint_url or None

        def client(connect_timeout: float, read_timeout: float, attempts: int):  # type: ignore[no-untyped-def]
            return boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id or None,
                aws_secret_access_key=settings.s3_secret_access_key or None,
                config=Config(
                    retries={"total_max_attempts": attempts, "mode": "standard"},
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                ),
            )

        self._client = client(
            settings.s3_connect_timeout_s, settings.s3_read_timeout_s, settings.s3_max_attempts
        )
        self._probe_client = client(PROBE_TIMEOUT_S, PROBE_TIMEOUT_S, 1)
        self._transfer = TransferConfig(
            multipart_threshold=16 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=4
        )

    def put(self, key: str, stream: BinaryIO, limit: int | None = None) -> StoredObject:
        reader = HashingReader(stream, limit)
        try:
            self._client.upload_fileobj(reader, self.bucket, _safe_key(key), Config=self._transfer)
        except BaseException:
            self._discard(key)
            raise
        return StoredObject(key, reader.size, reader.sha256)

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        """Multipart upload straight from the file: parts are read lazily, memory stays flat."""
        try:
            self._client.upload_file(str(path), self.bucket, _safe_key(key), Config=self._transfer)
        except BaseException:
            self._discard(key)
            raise
        return StoredObject(key, path.stat().st_size, sha256)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=_safe_key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from exc
            raise
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=_safe_key(key))
        except ClientError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=_safe_key(key))

    def _discard(self, key: str) -> None:
        """Remove a partial write; when the store is unreachable there is nothing to remove
        (S3 keeps no object whose upload did not complete), so the write's own error stands."""
        try:
            self._probe_client.delete_object(Bucket=self.bucket, Key=_safe_key(key))
        except Exception as exc:
            log.warning("could not remove the partial object %s: %s", key, exc)

    def check(self) -> str:
        self._probe_client.head_bucket(Bucket=self.bucket)
        return f"s3://{self.bucket}" + (f" at {self.endpoint}" if self.endpoint else "")


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        return S3Store(settings)
    return LocalStore(settings.resolved_objects_dir)
