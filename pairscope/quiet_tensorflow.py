"""TensorFlow without its start-up chatter, for the local science commands (`enhance`,
`train-local`) only: a scientist should see the progress bar and the result, not oneDNN notes,
"could not find cuda drivers" or a cuInit error on a machine that has no GPU.

TF_CPP_MIN_LOG_LEVEL covers what TensorFlow logs once it runs, but not what its libraries print
while they load (before absl logging is set up), so the import and the first device query run
with the process's stderr sent to a file, which is shown only if the import fails. Setting
TF_CPP_MIN_LOG_LEVEL yourself (0 shows everything) turns all of this off.
"""

from __future__ import annotations

import os
import sys
import tempfile

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and let it look for GPUs) without its logs; call before anything
    imports it. A no-op when the user chose a log level or TensorFlow is already loaded."""
    if LOG_LEVEL in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA's start-up errors happen here
            tf.get_logger().setLevel("ERROR")
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
