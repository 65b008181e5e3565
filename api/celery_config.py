"""Celery configuration derived from the service settings, shared by the API (which only sends
tasks, by name) and the worker (which runs them). Kept free of any task code."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from api.embedded_broker import TRANSPORT as EMBEDDED_TRANSPORT
from api.settings import Settings

QUEUES = ("train", "infer", "default")

# Task names are the contract between api/ and worker/: the API sends by these names only.
READINESS_REPORT = "pairscope.readiness_report"
ALIGN_PAIR = "pairscope.align_pair"
TRAIN = "pairscope.train"
PRETRAIN = "pairscope.pretrain"
ENHANCE = "pairscope.enhance"
REAP_STALE_JOBS = "pairscope.reap_stale_jobs"

TASK_ROUTES = {
    READINESS_REPORT: {"queue": "default"},
    ALIGN_PAIR: {"queue": "default"},
    TRAIN: {"queue": "train"},
    PRETRAIN: {"queue": "train"},
    ENHANCE: {"queue": "infer"},
    REAP_STALE_JOBS: {"queue": "default"},
}


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.resolved_broker_url,
        "result_backend": settings.resolved_result_backend,
        "task_queues": [Queue(name, routing_key=name) for name in QUEUES],
        "task_default_queue": "default",
        "task_routes": TASK_ROUTES,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "result_expires": 7 * 24 * 3600,
        "worker_hijack_root_logger": False,
    }
    if settings.uses_embedded_broker:
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        config["broker_transport"] = EMBEDDED_TRANSPORT
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.1,
        }
        # The filesystem transport has no fan-out: remote control and events are off.
        config["worker_enable_remote_control"] = False
    else:
        # Task events for Flower and `celery events` (the filesystem broker cannot carry them).
        config["worker_send_task_events"] = True
        config["task_send_sent_event"] = True
        config["broker_transport_options"] = {
            "visibility_timeout": settings.broker_visibility_timeout_s
        }
        config["result_backend_transport_options"] = {
            "visibility_timeout": settings.broker_visibility_timeout_s
        }
    return config
