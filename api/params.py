"""Integers a request may carry, bounded to what the database holds (a signed 64-bit integer).

Without the bound an id or offset beyond 64 bits reaches the driver and overflows there (a 500);
with it the request is a 422 that names the parameter. Every path id, integer query parameter
and integer body field uses one of these types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

DB_INT_MIN, DB_INT_MAX = -(2**63), 2**63 - 1

DbInt = Annotated[int, Field(ge=DB_INT_MIN, le=DB_INT_MAX)]
"""An integer in a JSON body (an id, a version number)."""

PathInt = Annotated[int, Path(ge=DB_INT_MIN, le=DB_INT_MAX)]
"""An id or number in the URL path."""

QueryInt = Annotated[int | None, Query(ge=DB_INT_MIN, le=DB_INT_MAX)]
"""An optional integer filter in the query string."""

Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX)]
"""How many rows of a list to skip."""
