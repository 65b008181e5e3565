"""Responses the OpenAPI document promises: errors in the shape `api/errors.py` really sends,
and file downloads with their media type.

Each family is one `responses=` dict that routers (or, where only some routes can fail that way,
single routes) attach. Declaring 422 here also keeps FastAPI from documenting its own
`HTTPValidationError`, which this service never sends.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldProblem(BaseModel):
    """What is wrong with one named input."""

    field: str = Field(
        description="The input at fault: a body field (dotted for nested ones), a query or path "
        "parameter, a form field, or `request`.",
        examples=["numerical_aperture"],
    )
    message: str = Field(
        description="What is wrong with it, for a person to act on.",
        examples=["Input should be less than or equal to 1.7"],
    )


class ErrorDetail(BaseModel):
    """The error itself; some codes add keys of their own (`quality_gate` adds `figures`)."""

    model_config = ConfigDict(extra="allow")

    status: int = Field(description="The HTTP status, repeated in the body.", examples=[422])
    code: str = Field(
        description="A stable machine-readable reason, e.g. `validation_error`, "
        "`invalid_image`, `unauthorized`, `forbidden`, `not_found`, `conflict`, "
        "`quality_gate`, `too_large`, `broker_unavailable`, `database_unavailable`, "
        "`object_store_unavailable`.",
        examples=["validation_error"],
    )
    message: str = Field(
        description="One sentence a person can act on.",
        examples=["numerical_aperture: Input should be less than or equal to 1.7"],
    )
    fields: list[FieldProblem] | None = Field(
        None,
        description="Each input at fault; present only when particular inputs are to blame.",
        examples=[[{"field": "numerical_aperture", "message": "Input should be <= 1.7"}]],
    )


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx this service answers has this body."""

    error: ErrorDetail = Field(
        description="What went wrong.",
        examples=[{"status": 404, "code": "not_found", "message": "pairing 7 does not exist"}],
    )


def _family(status: int, description: str, code: str, message: str) -> dict[int | str, Any]:
    example = {"error": {"status": status, "code": code, "message": message}}
    return {
        status: {
            "model": ErrorResponse,
            "description": description,
            "content": {"application/json": {"example": example}},
        }
    }


BAD_REQUEST = _family(
    400,
    "The body cannot be parsed (JSON that does not decode, a malformed multipart body).",
    "bad_request",
    "the multipart body is malformed",
)
UNAUTHORIZED = _family(
    401,
    "No API key was sent, or it is unknown or revoked.",
    "unauthorized",
    "send an API key as `Authorization: Bearer <key>`",
)
FORBIDDEN = _family(
    403,
    "This key may see the resource but not do this (admin-only, or the other side's role).",
    "forbidden",
    "this action needs an admin key",
)
NOT_FOUND = _family(
    404,
    "It does not exist, or this key may not see it (both answer alike).",
    "not_found",
    "pairing 7 does not exist",
)
CONFLICT = _family(
    409,
    "The request clashes with the current state (a duplicate, a record still in use, an "
    "archived pairing, a job already ended, a failed quality gate).",
    "conflict",
    "an institution named 'Lab Institute' already exists",
)
TOO_LARGE = _family(
    413, "The uploaded file exceeds the upload limit.", "too_large", "the file exceeds the limit"
)
UNSUPPORTED_MEDIA = _family(
    415,
    "The body is not multipart/form-data.",
    "unsupported_media_type",
    "send the image as multipart/form-data with a part named 'file'",
)
INVALID = _family(
    422,
    "An input is invalid; `fields` names each one. Unreadable images answer `invalid_image`.",
    "validation_error",
    "numerical_aperture: Input should be less than or equal to 1.7",
)
BROKER_UNAVAILABLE = _family(
    503,
    "The task queue cannot be reached; nothing was queued and nothing was left behind.",
    "broker_unavailable",
    "the task queue cannot be reached; nothing was queued",
)

# Every route under /pairings/{pairing_id}: an id that may not exist, parameters to validate.
PAIRING_SCOPED = {**NOT_FOUND, **INVALID}
# Streamed multipart uploads (images, enhancement inputs).
UPLOAD = {**BAD_REQUEST, **TOO_LARGE, **UNSUPPORTED_MEDIA}


def file_body(media_type: str, description: str) -> dict[int | str, Any]:
    """A 200 whose body is a file of `media_type`, streamed."""
    binary = {"type": "string", "format": "binary"}
    return {200: {"description": description, "content": {media_type: {"schema": binary}}}}
