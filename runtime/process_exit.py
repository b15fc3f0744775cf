"""Ending a process whose work is done without the interpreter's teardown."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush the logs and the standard streams, then end the process with `code` at once.

    Threads of the Temporal SDK's Rust core can outlive the event loop and abort a finalizing
    interpreter ("Fatal Python error: PyGILState_Release", exit 134 with a core dump;
    temporalio/sdk-python#300): a command that had printed its answer, or a worker stopped
    cleanly by SIGTERM, would now and then end as a crash. Call it only once everything is
    closed: atexit handlers do not run."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`internflow list | head`)
            pass
    os._exit(code)
