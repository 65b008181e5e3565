"""The embedded broker: kombu's filesystem transport, with messages written atomically.

kombu's own `_put` opens the final file name and then writes it; a consumer polling the folder
can move and read the file in between and get an empty message, which kills the worker
("Unrecoverable error: JSONDecodeError"). Here a message is written under a name the consumer
ignores and renamed into place, so it appears whole or not at all.
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


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicChannel


TRANSPORT = f"{__name__}:AtomicFilesystemTransport"
