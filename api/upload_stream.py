"""Receives a multipart upload as a stream: the file part goes straight to a temporary file,
hashed and counted on the way, and the size limit is enforced while bytes arrive — the upload is
never held whole in memory, and an oversized one is cut off early. A body declaring more than
the limit is refused before a byte of it is read; what is held in memory (text fields, part
headers) is bounded in size and count."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.errors import ApiError

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
MAX_FIELDS_TOTAL_BYTES = 256 * 1024
MAX_FILES = 500
MAX_PART_HEADER_BYTES = 16 * 1024
# Besides the files themselves a form carries its text fields, boundaries and part headers.
FORM_OVERHEAD_BYTES = MAX_FIELDS_TOTAL_BYTES + 1024 * 1024
MAX_FILENAME_CHARS = 255
_UNSAFE_IN_NAME = re.compile(r'[\\/"<>:|?*]')


def safe_filename(raw: str) -> str:
    """The name kept for an uploaded file: its last path component, NFC, without control or
    format characters (no CR/LF, no right-to-left override) nor characters file systems or
    headers treat specially, and at most MAX_FILENAME_CHARS long with its extension kept."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(
        c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C"
    )
    name = _UNSAFE_IN_NAME.sub("_", name).strip(" .")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        keep = f"{dot}{suffix}" if stem and len(suffix) <= 16 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep)] + keep
    return name or "upload.tif"


def too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, "too_large", f"{what} exceeds the upload limit of {limit} bytes")


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
        self._fields_bytes = 0
        self._part_header_bytes = 0
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
        self._part_header_bytes = 0

    def _count_header(self, size: int) -> None:
        self._part_header_bytes += size
        if self._part_header_bytes > MAX_PART_HEADER_BYTES:
            raise ApiError(
                413, "too_large", f"a part's headers exceed {MAX_PART_HEADER_BYTES} bytes"
            )

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in params:
            if len(self.files) >= MAX_FILES:
                raise ApiError(413, "too_large", f"send at most {MAX_FILES} files per request")
            filename = safe_filename(params[b"filename"].decode("utf-8", "replace"))
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=self.directory, prefix=".receive-", suffix=".tif")
            self._out = os.fdopen(fd, "wb")
            self.file = ReceivedFile(Path(path), filename, 0, "")
            self.files.append(self.file)
            self._hash, self._size = hashlib.sha256(), 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._out is not None:
            self._size += len(chunk)
            if self._size > self.limit:
                raise too_large("the file", self.limit)
            self._hash.update(chunk)
            self._out.write(chunk)
        else:
            self._buffer += chunk
            if len(self._buffer) > MAX_FIELD_BYTES:
                raise ApiError(422, "validation_error", f"{self._name}: the field is too long")
            self._fields_bytes += len(chunk)
            if self._fields_bytes > MAX_FIELDS_TOTAL_BYTES:
                raise ApiError(
                    413,
                    "too_large",
                    f"the form's text fields exceed {MAX_FIELDS_TOTAL_BYTES} bytes in all",
                )

    def on_part_end(self) -> None:
        if self._out is not None and self.file is not None:
            self._out.close()
            self._out = None
            self.file.size, self.file.sha256 = self._size, self._hash.hexdigest()
        elif self._name:
            if self._name not in self.fields and len(self.fields) >= MAX_FIELDS:
                raise ApiError(413, "too_large", f"the form has more than {MAX_FIELDS} text fields")
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
    bytes, the whole body at most `limit` plus the form's overhead), the text fields to a dict.
    The caller discards the files when done with them."""
    body_limit = limit + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_limit:
        raise too_large("the request", limit)
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
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise too_large("the request", limit)
            parser.write(chunk)
        parser.finalize()
    except BaseException:
        receiver.close()
        raise
    if not receiver.files:
        raise ApiError(422, "validation_error", "file: the upload holds no file")
    return receiver.files, receiver.fields
