"""One page of a query's rows with the total count: how every list endpoint answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.schemas import Page


def paginate(session: Session, query: Select[Any], limit: int, offset: int, order: Any) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = session.scalars(query.order_by(order).limit(limit).offset(offset)).all()
    return Page(items=list(items), total=total or 0, limit=limit, offset=offset)
