"""One place for every setting, read from the environment with the prefix ``PAIRSCOPE_``.

With nothing set, everything runs on one machine: SQLite and objects under ``./var``, and a
Celery broker on the local filesystem, so a laptop needs no server at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration. Unset URLs fall back to the embedded defaults under `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="PAIRSCOPE_", extra="forbid")

    data_dir: Path = Field(Path("var"), description="Where embedded data lives.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    database_connect_timeout_s: int = Field(
        5, ge=1, description="Seconds to wait for PostgreSQL to accept a connection."
    )
    database_statement_timeout_s: float = Field(
        60.0,
        ge=0,
        description="PostgreSQL cancels a statement running longer than this (0: never).",
    )

    storage_backend: Literal["local", "s3"] = "local"
    objects_dir: Path | None = Field(
        None, description="Local object store; default data_dir/objects."
    )
    s3_bucket: str = ""
    s3_endpoint_url: str = Field("", description="Any S3 endpoint (MinIO, AWS); empty means AWS.")
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_connect_timeout_s: float = Field(
        5.0, gt=0, description="Seconds to wait for the object store to accept a connection."
    )
    s3_read_timeout_s: float = Field(
        30.0, gt=0, description="Seconds to wait for the object store to answer a request."
    )
    s3_max_attempts: int = Field(
        3, ge=1, description="Tries per object-store call (the first one included)."
    )

    broker_url: str = Field("", description="Celery broker; empty means the filesystem broker.")
    result_backend: str = Field("", description="Celery results; empty means SQLite in data_dir.")
    broker_visibility_timeout_s: int = Field(
        3600,
        gt=0,
        description="Seconds before an unacknowledged task is redelivered (Redis); recovery "
        "does not wait for it (see docs/architecture.md).",
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    serve_worker: bool = Field(True, description="`pairscope serve` also starts one worker.")
    upload_max_bytes: int = Field(2 * 1024**3, gt=0)
    align_ncc_threshold: float = Field(
        0.4, gt=-1, lt=1, description="Pairs whose aligned channels correlate less are rejected."
    )
    shipped_base: bool = Field(
        True,
        description="While the network has no untainted base of its own, `init=base` starts "
        "from the base shipped with Pairscope (never a default: on W2S it did worse than "
        "scratch); false: `init=base` is refused until the network pretrains one.",
    )
    job_progress_interval_s: float = Field(
        2.0, gt=0, description="Training progress and heartbeat go to the database this often."
    )
    job_stale_after_s: float = Field(
        120.0, gt=0, description="A running job unheard of this long is requeued or failed."
    )
    job_max_attempts: int = Field(3, ge=1, description="Deliveries before a job is failed.")
    dispatch_grace_s: float = Field(
        300.0,
        gt=0,
        description="A row still waiting this long after its task was sent is sent again, "
        "if its queue is empty (the message was lost).",
    )
    worker_precision: str = Field(
        "auto", description="Training precision when a job does not set one (auto: hardware)."
    )
    log_level: str = "info"

    @model_validator(mode="after")
    def _check_s3(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("PAIRSCOPE_S3_BUCKET is required when PAIRSCOPE_STORAGE_BACKEND=s3")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'pairscope.sqlite').resolve()}"

    @property
    def resolved_objects_dir(self) -> Path:
        return (self.objects_dir or self.data_dir / "objects").resolve()

    @property
    def broker_dir(self) -> Path:
        """Folder shared by producers and consumers of the filesystem broker."""
        return (self.data_dir / "broker").resolve()

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def resolved_result_backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        return f"db+sqlite:///{(self.data_dir / 'celery-results.sqlite').resolve()}"

    @property
    def uses_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
