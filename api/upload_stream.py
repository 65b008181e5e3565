"""Receives a multipart upload as a stream: the file part goes straight to a temporary file,
hashed and counted on the way, and the size limit is enforced while bytes arrive — the upload is
never held whole in memory, and an oversized one is cut off early."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.errors import ApiError

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class _Receiver:
    """Multipart callbacks: file parts to disk (hashed, size-checked), text fields to memory."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory, self.limit = directory, limit
        self.fields: dict[str, str] = {}
        self.files: list[ReceivedFile] = []
        self.file: ReceivedFile | None = None
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._buffer = bytearray()
        self._out = None
        self._hash = hashlib.sha256()
        self._size = 0

    def on_part_begin(self) -> None:
        self._headers, self._buffer = {}, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in params:
            filename = params[b"filename"].decode("utf-8", "replace")
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=self.directory, prefix=".receive-", suffix=".tif")
            self._out = os.fdopen(fd, "wb")
            self.file = ReceivedFile(Path(path), Path(filename).name or "upload.tif", 0, "")
            self.files.append(self.file)
            self._hash, self._size = hashlib.sha256(), 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._out is not None:
            self._size += len(chunk)
            if self._size > self.limit:
                raise ApiError(
                    413, "too_large", f"the file exceeds the upload limit of {self.limit} bytes"
                )
            self._hash.update(chunk)
            self._out.write(chunk)
        else:
            self._buffer += chunk
            if len(self._buffer) > MAX_FIELD_BYTES:
                raise ApiError(422, "validation_error", f"{self._name}: the field is too long")

    def on_part_end(self) -> None:
        if self._out is not None and self.file is not None:
            self._out.close()
            self._out = None
            self.file.size, self.file.sha256 = self._size, self._hash.hexdigest()
        elif self._name:
            self.fields[self._name] = self._buffer.decode("utf-8", "replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
        for received in self.files:
            received.discard()


async def receive_upload(request: Request, directory: Path, limit: int) -> ReceivedFile:
    """Stream a multipart body with exactly one file; the caller discards it when done."""
    files, fields = await receive_files(request, directory, limit)
    if len(files) != 1:
        for received in files:
            received.discard()
        raise ApiError(422, "validation_error", "file: send exactly one file per request")
    files[0].fields = fields
    return files[0]


async def receive_files(
    request: Request, directory: Path, limit: int
) -> tuple[list[ReceivedFile], dict[str, str]]:
    """Stream a multipart body: every file part to a temporary file (each at most `limit`
    bytes), the text fields to a dict. The caller discards the files when done with them."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the image as multipart/form-data with a part named 'file'",
        )
    receiver = _Receiver(directory, limit)
    parser = MultipartParser(
        boundary,
        {
            name: getattr(receiver, name)
            for name in (
                "on_part_begin",
                "on_part_data",
                "on_part_end",
                "on_header_field",
                "on_header_value",
                "on_header_end",
                "on_headers_finished",
            )
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException:
        receiver.close()
        raise
    if not receiver.files:
        raise ApiError(422, "validation_error", "file: the upload holds no file")
    return receiver.files, receiver.fields
