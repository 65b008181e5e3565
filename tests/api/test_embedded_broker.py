"""The embedded broker never hands a consumer a half-written message."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kombu import Connection

from api.embedded_broker import TRANSPORT


def test_messages_appear_whole_under_concurrent_polling(tmp_path: Path) -> None:
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "processed_folder": str(tmp_path / "done"),
        "store_processed": False,
        "control_folder": str(tmp_path / "control"),
    }
    sent, received, errors = 300, [], []
    stop = threading.Event()

    def consume() -> None:
        with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as c:
            queue = c.SimpleQueue("jobs")
            while not stop.is_set() or len(received) < sent:
                try:
                    message = queue.get(timeout=0.01)
                except queue.Empty:
                    continue
                except Exception as exc:  # a torn message would land here
                    errors.append(exc)
                    return
                received.append(message.payload)
                message.ack()

    # Declare the queue before the consumer starts: kombu rewrites its exchange table (not a
    # message) on a first binding, which is outside what this test is about.
    with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as c:
        queue = c.SimpleQueue("jobs")
        consumer = threading.Thread(target=consume)
        consumer.start()
        for i in range(sent):
            queue.put({"job": i, "padding": "x" * 5000})
    stop.set()
    consumer.join(timeout=60)
    assert errors == [] and sorted(p["job"] for p in received) == list(range(sent))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".writing-")]
