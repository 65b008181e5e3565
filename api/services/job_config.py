"""What training and pretraining jobs share: the Config a request asks for, checked with
messages that name the field (422), and the columns every newly queued job row starts with."""

from __future__ import annotations

from typing import Any

from api.errors import field_error
from api.tables import JobState, Principal, utcnow
from models.config import PRESETS, Config

RESERVED = ("init", "init_sha256")  # set from the request's `init`, never as overrides


def job_config(preset: str, overrides: dict[str, Any], extra: dict[str, Any]) -> Config:
    """The preset with the request's overrides and the service's ``extra`` keys on top."""
    if preset not in PRESETS:
        raise field_error(
            "preset", f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}"
        )
    for reserved in RESERVED:
        if reserved in overrides:
            raise field_error(f"overrides.{reserved}", "give the starting weights as `init`")
    merged = {**overrides, **extra}
    try:
        return Config.preset(preset).with_overrides(merged)
    except ValueError as exc:  # Config's own validation messages, written for people
        key = next((k for k in merged if str(k) in str(exc)), None)
        raise field_error(f"overrides.{key}" if key else "overrides", str(exc)) from exc
    except TypeError as exc:
        raise field_error("overrides", "a value has a type the configuration cannot use") from exc


def queued_job_fields(
    config: Config, principal: Principal, preset: str, overrides: dict[str, Any]
) -> dict[str, Any]:
    """A new job row's columns: queued, at step 0 of the Config's steps, dispatched now."""
    return {
        "preset": preset,
        "overrides": overrides,
        "config": config.to_dict(),
        "seed": config.seed,
        "minutes": config.minutes,
        "state": JobState.queued,
        "started_by_id": principal.id,
        "progress": {"step": 0, "total": config.steps, "percent": 0.0},
        "dispatched_at": utcnow(),
    }
