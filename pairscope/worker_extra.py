"""Whether the `worker` extra (TensorFlow and Keras) is installed.

`pip install pairscope` is the client commands and the API server, without TensorFlow's 1.9 GB:
what a lab's acquisition PC that only uploads and downloads needs. The commands that run networks
here (worker, train-local, enhance) need `pairscope[worker]`; without it they say so in one line
and exit 2 instead of a traceback from deep inside an import.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
from collections.abc import Callable

from pairscope.cli_support import fail

MODULES = ("tensorflow", "keras")
INSTALL = "pip install 'pairscope[worker]'"
HINT = f"this command needs the worker extra: {INSTALL}"

Command = Callable[[argparse.Namespace], int]


def worker_extra_installed() -> bool:
    """True when TensorFlow and Keras can be imported (found, not imported: that takes seconds)."""
    return all(importlib.util.find_spec(module) is not None for module in MODULES)


def needs_worker_extra(command: Command) -> Command:
    """A command that runs networks in this process: without the extra, the hint and exit 2."""

    @functools.wraps(command)
    def checked(args: argparse.Namespace) -> int:
        if not worker_extra_installed():
            return fail(HINT, 2)
        return command(args)

    return checked
