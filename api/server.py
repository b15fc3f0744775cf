"""Run the API under uvicorn on settings.api_host:api_port, with internflow's logging."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from api.app import create_app
from runtime.deployment import SERVER_NEEDS, require_secrets
from runtime.errors import StackError, ensure_port_free
from runtime.logging import configure_logging
from runtime.process_exit import exit_now
from runtime.readiness import check_at_start
from runtime.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. StackError if the port is taken (naming the setting),
    InsecureConfiguration (naming each variable) with a missing or public secret key, codec keys
    or database password, unless INTERNFLOW_DEMO=true, and NotReady (runtime/readiness.py) for
    what the deployment lacks in the parts it reaches."""
    require_secrets(settings, SERVER_NEEDS)
    ensure_port_free(settings.api_host, settings.api_port, "INTERNFLOW_API_PORT")
    # Refused (one line) for what is wrong in the deployment: credentials Temporal refuses, no
    # namespace, a missing search attribute, migrations behind the code, no signing keys.
    asyncio.run(check_at_start(settings))
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        proxy_headers=True,
        loop="uvloop",  # named, not "auto": a missing dependency fails here, not slows down
        http="httptools",
        log_level=settings.log_level,
        # Our logging (runtime/logging.py), not uvicorn's own formats: with
        # INTERNFLOW_LOG_FORMAT=json uvicorn's lines are JSON too. No access log: a party page's
        # path carries the party's token (requests are counted per route in /metrics instead).
        log_config=None,
        access_log=False,
    )
    server = _StoppedBySignalIsDone(config)
    server.run()
    if not server.started:  # what uvicorn.run does: the app's startup failed (logged)
        sys.exit(STARTUP_FAILURE)


class _StoppedBySignalIsDone(uvicorn.Server):
    """uvicorn's server, except that SIGTERM or SIGINT ends it like a finished job: uvicorn
    shuts down gracefully (requests in flight answered, the app's shutdown run), then raises
    the signal again by default, so the process dies of it (exit 143 for SIGTERM) and a
    supervisor counts a normal stop as a failure. Here the process goes on to exit 0, as the
    worker does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # Read by the base class once the server has stopped: nothing left to raise.
            self._captured_signals.clear()


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    try:
        serve(settings)
    except StackError as error:
        structlog.get_logger("api").error("api.refused", error=str(error))
        exit_now(2)
    # Not the interpreter's teardown: the API's Temporal client has the worker's threads.
    exit_now(0)


if __name__ == "__main__":
    main()
