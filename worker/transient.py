"""Errors that say a dependency is briefly unreachable, not that the work is bad. A task that
meets one is retried with backoff instead of being recorded as failed or acknowledged as done."""

from __future__ import annotations

from botocore.exceptions import ConnectionClosedError
from botocore.exceptions import ConnectionError as StoreConnectionError
from sqlalchemy.exc import InterfaceError, OperationalError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # the database refused, dropped or timed out the connection
    InterfaceError,
    ConnectionError,  # a socket refused or reset (the builtin: local and HTTP clients)
    StoreConnectionError,  # the S3 endpoint could not be reached
    ConnectionClosedError,
)

# Celery's retry options for every task: back off 1, 2, 4 … s up to a minute, and keep trying
# (the reconciler re-sends anything that is still waiting once the dependency is back).
RETRY_ON_TRANSIENT = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": None,
}


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)
