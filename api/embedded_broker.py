"""The embedded broker: kombu's filesystem transport, with messages written atomically.

kombu's own `_put` opens the final file name and then writes it; a consumer polling the folder
can move and read the file in between and get an empty message, which kills the worker
("Unrecoverable error: JSONDecodeError"). Here a message is written under a name the consumer
ignores and renamed into place, so it appears whole or not at all; the exchange table is
created whole in the same way.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class AtomicChannel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{int(round(filesystem.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.data_folder_out, prefix=".writing-")
            with os.fdopen(fd, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(tmp, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        """kombu creates the exchange table by truncating and then locking it, so a publisher
        can read it empty; create it whole (hard link of a finished file), then let kombu add
        to it under its lock."""
        table = self._exchange_file(exchange)
        if not table.exists():
            self.control_folder.mkdir(parents=True, exist_ok=True)
            entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
            fd, tmp = tempfile.mkstemp(dir=self.control_folder, prefix=".writing-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(str_to_bytes(dumps([entry])))
                os.link(tmp, table)
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        super()._queue_bind(exchange, routing_key, pattern, queue)


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicChannel


TRANSPORT = f"{__name__}:AtomicFilesystemTransport"
