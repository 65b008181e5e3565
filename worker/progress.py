"""Training progress for the database: throttled writes (progress, curves, heartbeat), the
cancel flag read back, and each new checkpoint copied to the object store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.storage import ObjectStore
from api.tables import TrainingJob, utcnow
from models.files import sha256_file
from models.training import CHECKPOINT_FILE

MAX_HISTORY = 2000


class JobReporter:
    """Called by the training loop after every step; touches the database at most every
    `interval_s` seconds, so progress costs almost nothing per step."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        store: ObjectStore,
        job_id: int,
        interval_s: float,
        checkpoint_dir: Path,
        checkpoint_prefix: str,
    ) -> None:
        self.factory, self.store, self.job_id = factory, store, job_id
        self.interval_s = interval_s
        self.checkpoint_path = checkpoint_dir / CHECKPOINT_FILE
        self.checkpoint_prefix = checkpoint_prefix
        self._last_write = 0.0
        self._last_checkpoint_mtime = self._mtime()
        self._cancel = False
        self._pending: list[dict[str, Any]] = []
        self._latest: dict[str, Any] = {}

    def _mtime(self) -> float:
        try:
            return self.checkpoint_path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def progress(self, info: dict[str, Any]) -> None:
        self._latest = info
        step = int(info["step"])
        point: dict[str, Any] = {
            "step": step,
            **{f"loss_{k}": float(v) for k, v in (info.get("losses") or {}).items()},
        }
        if info.get("val_psnr") is not None:
            point["val_psnr"] = float(info["val_psnr"])
            point["val_ssim"] = float(info["val_ssim"])
        if self._mtime() != self._last_checkpoint_mtime:
            self._upload_checkpoint(step)
        if time.monotonic() - self._last_write >= self.interval_s:
            self._pending.append(point)
            self.flush()

    def flush(self, **fields: Any) -> None:
        info = self._latest
        with session_scope(self.factory) as session:
            job = session.get_one(TrainingJob, self.job_id)
            if info:
                job.progress = {
                    "step": info.get("step"),
                    "total": info.get("total"),
                    "percent": round(float(info.get("percent", 0.0)), 2),
                    "eta_s": info.get("eta_s"),
                    "elapsed_s": info.get("elapsed_s"),
                    "losses": info.get("losses"),
                    "val_psnr": info.get("val_psnr"),
                    "val_ssim": info.get("val_ssim"),
                    "best_step": info.get("best_step"),
                    "lr": info.get("lr"),
                }
            if self._pending:
                job.history = (list(job.history or []) + self._pending)[-MAX_HISTORY:]
                self._pending = []
            job.heartbeat_at = utcnow()
            for key, value in fields.items():
                setattr(job, key, value)
            self._cancel = bool(job.cancel_requested)
        self._last_write = time.monotonic()

    def stop(self) -> bool:
        return self._cancel

    @property
    def latest(self) -> dict[str, Any]:
        """The last progress the training loop reported."""
        return self._latest

    def _upload_checkpoint(self, step: int) -> None:
        """Store the checkpoint under a key of its own, record it, and only then delete the one
        recorded before: whenever the process dies, the row names a stored object whose hash
        it holds."""
        digest = sha256_file(self.checkpoint_path)
        key = checkpoint_key(self.checkpoint_prefix, step)
        stored = self.store.put_file(key, self.checkpoint_path, digest)
        self._last_checkpoint_mtime = self._mtime()
        with session_scope(self.factory) as session:
            job = session.get_one(TrainingJob, self.job_id)
            previous = job.checkpoint_key
            job.checkpoint_key, job.checkpoint_sha256 = stored.key, stored.sha256
            job.checkpoint_step = step
            job.heartbeat_at = utcnow()
        if previous and previous != stored.key and previous.startswith(self.checkpoint_prefix):
            self.store.delete(previous)

    def final_checkpoint(self) -> None:
        """Copy the checkpoint written at cancellation or at the end, if it is new."""
        if self._mtime() != self._last_checkpoint_mtime and self.checkpoint_path.exists():
            self._upload_checkpoint(int(self._latest.get("step", 0)))


def checkpoint_key(prefix: str, step: int) -> str:
    """Each checkpoint its own object (by step), so a new one never overwrites the recorded one."""
    return f"{prefix}/checkpoints/step-{step:09d}-{CHECKPOINT_FILE}"
