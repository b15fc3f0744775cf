"""The embedded stack behind `internflow up` and `make demo`: PostgreSQL, Temporal, mail, worker."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import structlog
from pydantic import SecretStr

from embedded import child_process
from embedded.mail_sink import MailSinkProcess
from embedded.ports import answers
from embedded.postgres import EmbeddedPostgres, public_dsn
from embedded.service import Service
from embedded.temporal_server import TemporalServer
from runtime.clients import for_embedded_stack
from runtime.database import owner_dsn
from runtime.errors import StackError, ensure_directory, ensure_port_free
from runtime.migrations import apply_migrations
from runtime.secret import load_or_create_secret
from runtime.settings import Settings

log = structlog.get_logger(__name__)

STACK_FILE = "stack.json"

#: Each part of the stack as a person names it (workers are "worker", "worker-2", ...).
PART_LABELS = {
    "postgres": "PostgreSQL",
    "temporal": "Temporal",
    "mail": "the mail sink",
    "worker": "the worker",
    "api": "the HTTP API",
}


def part_label(name: str) -> str:
    """`name` (a part of stack.json) as a person reads it: "Temporal", "the worker 2"."""
    kind, _, number = name.partition("-")
    return PART_LABELS[kind] + (f" {number}" if number else "")


MAX_WORKERS = 16
"""The most worker processes `internflow up --workers` starts (each is a whole Python process)."""


def check_workers(workers: int) -> int:
    """`workers` if it is a worker count the stack runs (1..MAX_WORKERS), else StackError naming
    --workers."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise StackError(
            f"--workers must be a whole number from 1 to {MAX_WORKERS} (got {workers!r}): each "
            "worker is a process polling the same task queue"
        )
    return workers


def worker_name(index: int) -> str:
    """The name of worker `index` (0-based) in stack.json and its log: worker, worker-2, ..."""
    return "worker" if index == 0 else f"worker-{index + 1}"


def worker_command() -> list[str]:
    """How the stack runs the worker: this Python, `-m worker`."""
    return [sys.executable, "-m", "worker"]


def api_command() -> list[str]:
    """How the stack runs the HTTP API: this Python, `-m api` (uvicorn on api_host:api_port)."""
    return [sys.executable, "-m", "api"]


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment a child needs to rebuild exactly these settings: ours, with every
    INTERNFLOW_* variable set from `settings` (unset where the value is None)."""
    env = dict(os.environ)
    prefix = settings.model_config.get("env_prefix", "")
    for name in type(settings).model_fields:
        key = f"{prefix}{name}".upper()
        value = getattr(settings, name)
        if value is None:
            env.pop(key, None)
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, Path):
            env[key] = str(value.absolute())
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(value)
    return env


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment of the stack's worker and API: its settings, as a trial (the embedded
    stack generates its own secrets and runs without payload encryption), without Temporal's
    client configuration, without the owner's DSN (they connect as the application role)."""
    # Its Temporal is the dev server, in clear text: not what TEMPORAL_* or a Temporal config
    # file in the developer's environment may say about another cluster.
    env = settings_environment(for_embedded_stack(settings).model_copy(update={"demo": True}))
    env.pop(f"{settings.model_config.get('env_prefix', '')}DATABASE_OWNER_URL".upper(), None)
    return env


@dataclass(frozen=True)
class ProcessRecord:
    """A process named by pid and creation time (a reused pid is not mistaken for it)."""

    pid: int
    create_time: float | None

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        return cls(pid, child_process.process_identity(pid))

    def alive(self) -> bool:
        return child_process.process_alive(self.pid, self.create_time)


@dataclass(frozen=True)
class StackInfo:
    """What `<state_dir>/stack.json` says about a stack: who owns it and where each part is."""

    owner: ProcessRecord
    started_at: str
    ready: bool
    state_dir: str
    temporal_address: str
    temporal_namespace: str
    temporal_ui_url: str
    database_dsn: str
    smtp_address: str
    outbox: str
    worker_log: str
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    api_url: str | None = None
    api_log: str | None = None
    #: The dev server's own Web UI when the API serves it (temporal_ui_url) for admins.
    temporal_dev_ui_url: str | None = None
    #: Parts whose process exited and that `internflow up` is restarting, with since when (UTC).
    down: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StackInfo:
        data: dict[str, Any] = json.loads(text)
        data["owner"] = ProcessRecord(**data["owner"])
        data["processes"] = {k: ProcessRecord(**v) for k, v in data["processes"].items()}
        return cls(**data)

    def endpoints(self) -> dict[str, tuple[str, int]]:
        """The host:port of every listening part, by part."""
        dsn = urlsplit(self.database_dsn)
        result = {"postgres": (dsn.hostname or "127.0.0.1", dsn.port or 5432)}
        for name, address in (("temporal", self.temporal_address), ("mail", self.smtp_address)):
            host, _, port = address.rpartition(":")
            result[name] = (host, int(port))
        if self.api_url is not None:
            api = urlsplit(self.api_url)
            result["api"] = (api.hostname or "127.0.0.1", api.port or 80)
        return result

    def unreachable(self) -> list[str]:
        """The parts that are down right now, in start order: being restarted (`down`), a
        listening part whose port does not answer, or a worker whose process is gone."""
        endpoints = self.endpoints()
        found = []
        for name in ("postgres", "temporal", "mail", *self._worker_names(), "api"):
            if name in self.down:
                found.append(name)
            elif name in endpoints and not answers(*endpoints[name]):
                found.append(name)
            elif name.startswith("worker") and not self.processes[name].alive():
                found.append(name)
        return found

    def _worker_names(self) -> list[str]:
        return [name for name in self.processes if name.split("-")[0] == "worker"]

    def down_sentence(self, parts: Sequence[str], *, nothing_recorded: bool = False) -> str:
        """One sentence saying which parts are down, what the stack does about it and (for a
        write that was refused) that nothing was recorded."""
        labels = [part_label(name) for name in parts]
        named = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
        verb = "is" if len(labels) == 1 else "are"
        done = "nothing was recorded; " if nothing_recorded else ""
        return (
            f"{named} {verb} down in the embedded stack (`internflow up`, pid {self.owner.pid}), "
            f"which restarts {'it' if len(labels) == 1 else 'them'} by itself: {done}try again "
            f"in a minute; if it stays down, see {Path(self.worker_log).parent}"
        )

    def describe(self) -> list[str]:
        """Where each part listens, one line each, for a person to read."""
        workers = {
            name: record
            for name, record in self.processes.items()
            if name == "worker" or name.startswith("worker-")
        }
        alive = [record.pid for record in workers.values() if record.alive()]
        if len(workers) > 1:
            logs = Path(self.worker_log).parent
            worker_line = (
                f"{len(alive)} of {len(workers)} processes running, pids "
                f"{', '.join(map(str, alive)) or '-'} (logs {logs}/worker*.log)"
            )
        elif alive:
            worker_line = f"pid {alive[0]} (log {self.worker_log})"
        else:
            worker_line = f"not running (log {self.worker_log})"
        lines = [
            f"Temporal gRPC     {self.temporal_address} (namespace {self.temporal_namespace})",
            f"Temporal Web UI   {self.temporal_ui_url}"
            + (
                f" (admins: sign in at {self.api_url}/admin first; there it decrypts payloads "
                f"and is read-only. Without the API: {self.temporal_dev_ui_url}, which does "
                "neither)"
                if self.api_url is not None and self.temporal_dev_ui_url is not None
                else ""
            ),
            f"PostgreSQL        {self.database_dsn}",
            f"SMTP sink         {self.smtp_address}",
            f"Outbox            {self.outbox}",
            f"Worker            {worker_line}",
        ]
        if self.api_url is not None:
            api = self.processes.get("api")
            running = api is not None and api.alive()
            lines.append(
                f"HTTP API          {self.api_url} (OpenAPI {self.api_url}/docs, "
                f"admin {self.api_url}/admin; log {self.api_log})"
                if running
                else f"HTTP API          not running (log {self.api_log})"
            )
        lines.append(f"State             {self.state_dir} (stack pid {self.owner.pid})")
        for name, since in self.down.items():
            lines.append(f"DOWN              {part_label(name)} since {since}, restarting")
        return lines


def _read_stack_file(path: Path) -> StackInfo | None:
    try:
        return StackInfo.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EmbeddedStack(Service):
    """Starts PostgreSQL (+ migrations), Temporal, the mail sink, the worker and (when asked)
    the HTTP API, in that order, and stops them in reverse. One stack per state dir: a lock file
    guards it and `<state_dir>/stack.json` tells other processes where its parts listen."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker: Sequence[str] | None = None,
        start_worker: bool = True,
        postgres_options: Mapping[str, str] | None = None,
        temporal_args: Sequence[str] = (),
        api: Sequence[str] | None = None,
        start_api: bool = False,
        workers: int = 1,
    ) -> None:
        self.settings = settings
        self.worker_argv = list(worker) if worker is not None else worker_command()
        self.start_worker = start_worker
        self.workers = check_workers(workers)
        self.api_argv = list(api) if api is not None else api_command()
        self.start_api = start_api
        self.api_log = settings.state_dir / "logs" / "api.log"
        self._api: subprocess.Popen[bytes] | None = None
        self.postgres = EmbeddedPostgres(settings, server_options=postgres_options)
        self.temporal = TemporalServer(settings, extra_args=temporal_args)
        self.mail_sink = MailSinkProcess(settings, env=child_environment(settings))
        self.stack_file = settings.state_dir / STACK_FILE
        self.worker_log = settings.state_dir / "logs" / "worker.log"
        self._workers: list[subprocess.Popen[bytes]] = []
        self._lock: IO[bytes] | None = None
        self._started_at = ""
        self._down: dict[str, str] = {}

    # ---- finding a stack another process runs -------------------------------------------------

    @staticmethod
    def find_running(settings: Settings) -> StackInfo | None:
        """The stack described by `<state_dir>/stack.json` if its owner process (`internflow
        up`) is alive and finished starting; None otherwise (no file, stale or broken). Some of
        its parts may be down meanwhile (`StackInfo.unreachable` says which): the owner
        restarts them, and until then the stack is still this one, with its own rules."""
        info = _read_stack_file(settings.state_dir / STACK_FILE)
        if info is None or not info.ready or not info.owner.alive():
            return None
        return info

    # ---- starting and stopping ----------------------------------------------------------------

    async def start(self) -> None:
        """Start every part; on any failure stop what started and re-raise (StackError for
        problems the user can fix)."""
        state_dir = ensure_directory(self.settings.state_dir)
        self.stack_file = state_dir / STACK_FILE
        self._acquire_lock(state_dir)
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            await self._clear_stale_stack()
            if self.start_api:
                ensure_port_free(
                    self.settings.api_host, self.settings.api_port, "INTERNFLOW_API_PORT"
                )
            load_or_create_secret(self.settings)  # before any child could race to create it
            # A worker and the API refuse to start without the signing key directory (in
            # production it is mounted): the stack makes it, and its first worker fills it.
            self._ensure_key_dir()
            await self.postgres.start()
            self._write_stack_file(ready=False)
            # As the tables' owner; the worker and the API connect as the application role.
            applied = await apply_migrations(owner_dsn(self.settings))
            if applied:
                log.info("stack.migrated", applied=applied)
            await self.temporal.start()
            self._write_stack_file(ready=False)
            await self.mail_sink.start()
            if self.start_worker:
                self._spawn_workers()
            if self.start_api:
                await self._spawn_api()
            self._write_stack_file(ready=True)
        except BaseException:
            await self.stop()
            raise
        log.info("stack.started", state_dir=str(state_dir))

    async def stop(self) -> None:
        """Stop the worker, the mail sink, Temporal and PostgreSQL (reverse order of start)."""
        try:
            await self._stop_api()
            await self._stop_workers()
            await self.mail_sink.stop()
            await self.temporal.stop()
            await self.postgres.stop()
        finally:
            info = _read_stack_file(self.stack_file)
            if self._lock is not None and info is not None and info.owner.pid == os.getpid():
                self.stack_file.unlink(missing_ok=True)
            self._release_lock()

    def _ensure_key_dir(self) -> None:
        keys = self.settings.keys_path
        if not keys.is_dir():
            ensure_directory(keys, "INTERNFLOW_KEY_DIR")
            keys.chmod(0o700)  # as badges/keys.py makes it: the private keys are in it

    def _acquire_lock(self, state_dir: Path) -> None:
        if self._lock is not None:
            raise StackError("this stack is already started")
        lock = (state_dir / "stack.lock").open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StackError(
                f"another internflow stack is starting or running on {state_dir}: use it, "
                "stop it (Ctrl-C in its terminal), or set INTERNFLOW_STATE_DIR to another "
                "directory"
            ) from None
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    async def _clear_stale_stack(self) -> None:
        """Stop what a killed earlier `up` left running (by pid and creation time) and forget
        its stack.json. We hold the lock, so its owner is gone or is not a stack any more."""
        info = _read_stack_file(self.stack_file)
        if info is None:
            self.stack_file.unlink(missing_ok=True)
            return
        signals = {
            "api": signal.SIGTERM,
            "worker": signal.SIGTERM,
            "mail": signal.SIGTERM,
            "temporal": signal.SIGTERM,
            "postgres": signal.SIGINT,
        }
        for name, record in sorted(
            info.processes.items(), key=lambda item: list(signals).index(item[0].split("-")[0])
        ):
            await child_process.terminate_leftover(
                record.pid, record.create_time, name=name, sig=signals[name.split("-")[0]]
            )
        log.info("stack.stale_file_replaced", owner_pid=info.owner.pid)
        self.stack_file.unlink(missing_ok=True)

    # ---- the workers -------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        """The first worker's pid while it runs (with one worker: the worker's)."""
        return self.worker_pids[0] if self.worker_pids and self._workers[0].poll() is None else None

    @property
    def worker_pids(self) -> list[int]:
        """The pid of every worker process started (running or not), in start order."""
        return [proc.pid for proc in self._workers]

    def worker_exit_code(self) -> int | None:
        """The exit code of the first worker found to have exited, else None."""
        for proc in self._workers:
            code = proc.poll()
            if code is not None:
                return code
        return None

    def worker_log_path(self, index: int) -> Path:
        """Worker `index`'s log: logs/worker.log for the first, logs/worker-2.log and so on."""
        return self.worker_log.with_name(f"{worker_name(index)}.log")

    def _spawn_workers(self) -> None:
        for index in range(self.workers):
            self._workers.append(self._spawn_worker(index))

    def _spawn_worker(self, index: int) -> subprocess.Popen[bytes]:
        env = child_environment(self.settings)
        if self.settings.metrics_port and index:
            # One Prometheus endpoint each: the next ports up.
            prefix = self.settings.model_config.get("env_prefix", "")
            env[f"{prefix}METRICS_PORT".upper()] = str(self.settings.metrics_port + index)
        proc = child_process.spawn(
            self.worker_argv,
            log_path=self.worker_log_path(index),
            env=env,
            # If the stack's process dies, its workers go at once: a graceful shutdown that
            # evicts thousands of cached workflows can take minutes, and losing a worker loses
            # nothing (Temporal hands its work to the next one).
            death_signal=signal.SIGKILL,
        )
        log.info("worker.started", pid=proc.pid, worker=worker_name(index))
        return proc

    async def _stop_workers(self, grace_seconds: float = 15.0) -> None:
        workers, self._workers = self._workers, []
        codes = await asyncio.gather(
            *(
                child_process.stop(
                    proc, name=worker_name(i), sig=signal.SIGTERM, grace_seconds=grace_seconds
                )
                for i, proc in enumerate(workers)
            )
        )
        for index, code in enumerate(codes):
            log.info("worker.stopped", worker=worker_name(index), exit_code=code)

    # ---- the HTTP API -------------------------------------------------------------------------

    @property
    def api_pid(self) -> int | None:
        return self._api.pid if self._api is not None and self._api.poll() is None else None

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    async def _spawn_api(self, wait_seconds: float = 30.0) -> None:
        """Start the API and wait until its port answers; StackError (with its log) if it
        exits first."""
        api_settings = self.settings
        if not api_settings.web_ui_upstream:
            # Admins open the Web UI on the API's origin, where it reaches /codec with their
            # session (api/web_ui.py).
            api_settings = api_settings.model_copy(update={"web_ui_upstream": self.temporal.ui_url})
        self._api = child_process.spawn(
            self.api_argv, log_path=self.api_log, env=child_environment(api_settings)
        )
        log.info("api.started", pid=self._api.pid, url=self.api_url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not answers(self.settings.api_host, self.settings.api_port):
            code = self._api.poll()
            if code is not None:
                raise StackError(
                    f"the HTTP API exited with code {code} while starting; its log "
                    f"({self.api_log}) ends with:\n{child_process.log_tail(self.api_log)}"
                )
            if loop.time() > deadline:
                log.warning("api.slow_start", after_seconds=wait_seconds)
                return
            await asyncio.sleep(0.1)

    async def _stop_api(self) -> None:
        if self._api is None:
            return
        code = await child_process.stop(
            self._api, name="api", sig=signal.SIGTERM, grace_seconds=10.0
        )
        log.info("api.stopped", exit_code=code)
        self._api = None

    def kill_worker(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to every worker's process group (SIGKILL: the crash a durability test
        needs; with several workers, all of them, so that work in flight is lost for sure)."""
        running = [proc for proc in self._workers if proc.poll() is None]
        if not running:
            raise StackError("no worker is running")
        for proc in running:
            os.killpg(proc.pid, sig)
            log.info("worker.signalled", pid=proc.pid, signal=signal.Signals(sig).name)

    async def restart_worker(self) -> int:
        """Stop the workers that still run (reap those that were killed), start as many new
        ones, and record them in stack.json; returns the first one's pid."""
        await self._stop_workers()
        self._spawn_workers()
        self._write_stack_file(ready=True)
        return self._workers[0].pid

    # ---- each part, for the supervisor (embedded/supervisor.py) ----------------------------------

    def exited_parts(self) -> dict[str, int]:
        """The parts whose process has exited (by name, in start order), with exit codes."""
        codes: list[tuple[str, int | None]] = [
            ("postgres", self.postgres.exit_code()),
            ("temporal", self.temporal.exit_code()),
            ("mail", self.mail_sink.exit_code()),
            *((worker_name(i), proc.poll()) for i, proc in enumerate(self._workers)),
            ("api", self._api.poll() if self._api is not None else None),
        ]
        return {name: code for name, code in codes if code is not None}

    def part_log(self, name: str) -> Path:
        """Where part `name` writes its log."""
        if name.split("-")[0] == "worker":
            return self.worker_log_path(self._worker_index(name))
        logs = {
            "postgres": self.postgres.log_path,
            "temporal": self.temporal.log_path,
            "mail": self.mail_sink.log_path,
            "api": self.api_log,
        }
        return logs[name]

    def part_pid(self, name: str) -> int | None:
        """The pid of part `name` while its process runs."""
        record = self.info().processes.get(name)
        return record.pid if record is not None else None

    async def restart_part(self, name: str) -> None:
        """Start part `name` again after its process exited: what is left of it (its process
        group) is cleared first, then it starts as at the stack's start, and stack.json names
        its new process. StackError if it cannot start."""
        if name == "postgres":
            await self.postgres.stop(grace_seconds=5.0)
            await self.postgres.start()
        elif name == "temporal":
            await self.temporal.stop(grace_seconds=5.0)
            await self.temporal.start()
        elif name == "mail":
            await self.mail_sink.stop()
            await self.mail_sink.start()
        elif name == "api":
            await self._stop_api()
            await self._spawn_api()
        else:
            index = self._worker_index(name)
            await child_process.stop(self._workers[index], name=name, grace_seconds=5.0)
            self._workers[index] = self._spawn_worker(index)
        self._write_stack_file(ready=True)

    def _worker_index(self, name: str) -> int:
        _, _, number = name.partition("-")
        return int(number) - 1 if number else 0

    def mark_down(self, name: str, since: datetime) -> None:
        """Say in stack.json that part `name` is down since `since`, and being restarted."""
        self._down[name] = since.isoformat(timespec="seconds")
        self._write_stack_file(ready=True)

    def mark_up(self, name: str) -> None:
        self._down.pop(name, None)
        self._write_stack_file(ready=True)

    # ---- describing ---------------------------------------------------------------------------

    def info(self, *, ready: bool = True) -> StackInfo:
        """This stack as stack.json records it."""
        processes: dict[str, ProcessRecord] = {}
        workers = [
            (worker_name(i), proc.pid if proc.poll() is None else None)
            for i, proc in enumerate(self._workers)
        ]
        for name, pid in (
            ("postgres", self.postgres.pid),
            ("temporal", self.temporal.pid),
            ("mail", self.mail_sink.pid),
            *workers,
            ("api", self.api_pid),
        ):
            if pid is not None:
                processes[name] = ProcessRecord.of(pid)
        return StackInfo(
            owner=ProcessRecord.of(os.getpid()),
            started_at=self._started_at,
            ready=ready,
            state_dir=str(self.settings.state_dir.absolute()),
            temporal_address=self.temporal.address,
            temporal_namespace=self.settings.temporal_namespace,
            temporal_ui_url=f"{self.settings.public_base_url}/temporal"
            if self.start_api
            else self.temporal.ui_url,
            temporal_dev_ui_url=self.temporal.ui_url if self.start_api else None,
            database_dsn=public_dsn(self.settings.database_url),
            smtp_address=f"{self.settings.smtp_host}:{self.settings.smtp_port}",
            outbox=str(self.settings.outbox_path.absolute()),
            worker_log=str(self.worker_log.absolute()),
            processes=processes,
            api_url=self.api_url if self.start_api else None,
            api_log=str(self.api_log.absolute()) if self.start_api else None,
            down=dict(self._down),
        )

    def describe(self) -> list[str]:
        """Where each part listens, one line each, for `internflow up` to print."""
        return self.info().describe()

    def _write_stack_file(self, *, ready: bool) -> None:
        temp = self.stack_file.with_name(f".{STACK_FILE}.{os.getpid()}.tmp")
        temp.write_text(self.info(ready=ready).to_json())
        os.replace(temp, self.stack_file)


@contextlib.asynccontextmanager
async def running_stack(settings: Settings, **options: Any) -> AsyncIterator[StackInfo]:
    """A running stack for the duration of the block: the one already running on this state
    dir, else one started here (and stopped on exit). `options` go to EmbeddedStack."""
    found = EmbeddedStack.find_running(settings)
    if found is not None:
        yield await whole(settings, found)
        return
    async with EmbeddedStack(settings, **options) as stack:
        yield stack.info()


async def whole(settings: Settings, found: StackInfo, within: float = 60.0) -> StackInfo:
    """`found` once every part of it answers: a part that is down is being restarted by its
    `internflow up`, so wait up to `within` seconds for it; StackError naming what is still
    down after that (or the stack gone)."""
    deadline = time.monotonic() + within
    while down := found.unreachable():
        if time.monotonic() > deadline:
            raise StackError(found.down_sentence(down))
        log.info("stack.waiting_for", parts=down)
        await asyncio.sleep(0.5)
        again = EmbeddedStack.find_running(settings)
        if again is None:
            raise StackError(
                f"the internflow stack (pid {found.owner.pid}) stopped: start it again with "
                "`internflow up`"
            )
        found = again
    return found
