"""Every file download the API answers: the stored object streamed with an RFC 6266
Content-Disposition, so any file name — non-Latin-1 letters, quotes, semicolons — reaches the
client intact and can neither break the header (a 500) nor add parameters to it."""

from __future__ import annotations

import itertools
import re
import unicodedata
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from api.errors import ApiError
from api.storage import ObjectNotFound, ObjectStore

# RFC 5987 attr-char beyond letters and digits: what filename*= may carry unencoded.
_ATTR_CHARS = "!#$&+-.^_`|~"
_UNSAFE_FALLBACK = re.compile(r"[^A-Za-z0-9._()+, -]")


def content_disposition(filename: str) -> str:
    """`attachment` with a quoted ASCII fallback name and the exact name as filename*=UTF-8''."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = _UNSAFE_FALLBACK.sub("_", ascii_name).strip() or "download"
    encoded = quote(filename, safe=_ATTR_CHARS)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def download(
    store: ObjectStore,
    key: str,
    *,
    media_type: str,
    filename: str,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """Stream a stored object as an attachment. The first chunk is read before answering, so a
    missing object is a 404 in the error shape rather than a response cut off after its headers."""
    chunks = store.iter_bytes(key)
    try:
        first = next(chunks, b"")
    except ObjectNotFound as exc:
        raise ApiError(404, "not_found", f"the stored file for {filename} is missing") from exc
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(filename), **(headers or {})},
    )
