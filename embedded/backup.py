"""Backup and restore of the embedded stack: one archive with everything a school cannot make again.

`internflow backup FILE` writes one gzip'd tar archive of a state dir:

    manifest.json              what is inside (sha256 of each member), versions, row counts
    postgres/internflow.dump   the application database (pg_dump, custom format)
    temporal/temporal.sqlite   Temporal's state (SQLite's online backup of the dev server's file)
    keys/*.pem                 the deployment's signing keys
    keys/issuers/<id>/*.pem    each did:web institution's own signing keys
    secret                     the key that signs party links and admin sessions
    database-password          the application role's generated password, when there is one
    codec-keys.json            the payload encryption keys, when payloads are encrypted

`internflow restore FILE` puts it into an empty state dir (on any machine: nothing in the archive
names a path or a port), loads the dump into a new embedded PostgreSQL and checks every table's
rows against the manifest; `internflow up` then goes on with every internship.

Consistency. The two databases are copied one after the other, so what matters is what each may
know that the other does not. A PostgreSQL older than Temporal loses records for good: activities
write their rows before Temporal hears they completed, and a Temporal that counts them as written
never writes them again. A Temporal older than PostgreSQL repeats what the workflows did by
themselves in between, idempotently (event ids, `ON CONFLICT DO NOTHING`, a credential stored
once under an id derived from the internship, an e-mail not sent again once `sent`); but a
submission accepted in between would be in the records and unknown to the restored workflow. So
the backup pauses the stack's writers (SIGSTOP to the process groups of the workers and the API,
as stack.json names them; SIGCONT in a `finally`, and by a guard process should this one die),
copies Temporal's database, takes PostgreSQL's snapshot and lets them go (pg_dump then dumps
that snapshot): nothing writes to PostgreSQL and no submission is accepted (an update needs a
worker) meanwhile, so Temporal knows at least all that the snapshot holds; a submission whose
rows the paused API had not written yet is written by the workflow's own confirmation
(`missing_records`). A stack that is not running is backed up cold (PostgreSQL started alone
under the stack's lock, so that `internflow up` waits).
See docs/backup.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil  # type: ignore[import-untyped]  # psutil ships no type information
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from embedded.ports import free_port
from embedded.postgres import (
    EmbeddedPostgres,
    postgres_bin_dir,
    postgres_major_version,
    public_dsn,
)
from embedded.stack import STACK_FILE, EmbeddedStack, StackInfo
from runtime.codec import CodecConfigError, codec_from_settings
from runtime.database import PASSWORD_FILE, password_of
from runtime.errors import StackError, ensure_directory
from runtime.migrations import discover_migrations
from runtime.secret import SECRET_FILE
from runtime.settings import Settings

log = structlog.get_logger(__name__)

FORMAT: Final = "internflow-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "postgres/internflow.dump"
TEMPORAL_DB = "temporal/temporal.sqlite"
KEYS = "keys/"
#: Under KEYS: a directory of keys per institution on did:web (issuance/issuers.py).
INSTITUTION_KEYS = "issuers/"
CODEC_KEYS = "codec-keys.json"
SECRET = SECRET_FILE
PASSWORD = PASSWORD_FILE
LOCK_FILE = "stack.lock"

#: What a key file in the archive may be called (a plain file name: no directory, no `..`).
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: The most a manifest may hold; anything larger is not one of ours.
_MANIFEST_LIMIT = 1 << 20
#: The processes of stack.json that write: paused while Temporal's database is copied and
#: PostgreSQL's snapshot taken.
_WRITERS = ("worker", "api")
#: How long a paused process may take to show as stopped.
_STOP_WAIT = 5.0

#: Run in a process of its own while the writers are paused: when this process ends, however it
#: ends (even SIGKILL), its end of the pipe closes and the guard resumes them.
_THAW_GUARD = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
sys.stdin.buffer.read()
for group in sys.argv[1:]:
    try:
        os.killpg(int(group), signal.SIGCONT)
    except OSError:
        pass
"""


class BackupError(StackError):
    """A backup or restore the user can fix: the message says what to change."""


# ---- the manifest ------------------------------------------------------------------------------


class Member(BaseModel):
    """One file of the archive, as the manifest lists it."""

    model_config = ConfigDict(extra="ignore")

    bytes: int
    sha256: str


class Manifest(BaseModel):
    """What an archive holds, and what its databases held when it was made."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["internflow-backup"] = FORMAT
    format_version: int = FORMAT_VERSION
    created_at: str
    internflow_version: str
    postgresql_major: str
    online: bool
    public_base_url: str
    members: dict[str, Member] = {}
    tables: dict[str, int] = {}
    """Rows of every table of the application database, as dumped."""
    internships: dict[str, int] = {}
    """Internships per phase, as dumped."""
    credentials: int = 0
    migrations: list[str] = []
    codec_key_ids: list[str] = []
    codec_key_id: str | None = None
    paused_seconds: float | None = None
    """How long the workers and the API were paused (online backups)."""

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, source: Path) -> Manifest:
        not_ours = BackupError(
            f"{source} is not an internflow backup (its manifest cannot be read): give the "
            "file `internflow backup` wrote"
        )
        try:
            raw = json.loads(data)
        except ValueError:
            raise not_ours from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise not_ours
        version = raw.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise BackupError(
                f"{source} was made by a newer internflow (backup format {version}; this one "
                f"reads format {FORMAT_VERSION} and older): restore it with that version"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError:
            raise not_ours from None


@dataclass(frozen=True)
class BackupReport:
    path: Path
    bytes: int
    seconds: float
    manifest: Manifest


@dataclass(frozen=True)
class RestoreReport:
    state_dir: Path
    seconds: float
    manifest: Manifest
    codec_keys_file: Path | None
    notes: list[str]


# ---- helpers -----------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _version() -> str:
    try:
        return metadata.version("internflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def _without_password(dsn: str) -> tuple[str, str | None]:
    """`dsn` without its password (to pass on a command line), and the password (for PGPASSWORD)."""
    return public_dsn(dsn), password_of(dsn)


def _pg_env(password: str | None) -> dict[str, str]:
    """A clean environment for pg_dump and pg_restore: no PG* variable of the user's can point
    them elsewhere; the password (if any) travels in PGPASSWORD, never on the command line."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    env["PGCONNECT_TIMEOUT"] = "10"
    if password is not None:
        env["PGPASSWORD"] = password
    return env


async def _run_pg_tool(argv: list[str], password: str | None, what: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=_pg_env(password),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()[-3:]
        raise BackupError(f"{what} failed (exit code {proc.returncode}): {' / '.join(lines)}")


@contextlib.contextmanager
def _stack_lock(state_dir: Path, busy: str) -> Iterator[None]:
    """The lock `internflow up` holds while it runs: held here, no stack starts on `state_dir`.
    `busy` is the message when someone else holds it."""
    with (state_dir / LOCK_FILE).open("ab") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(busy) from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _settings_with(settings: Settings, **changes: Any) -> Settings:
    """A copy of `settings` with `changes`, validated afresh (nothing cached carried over)."""
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    return type(settings)(**{**values, **changes})


def _on_free_port(settings: Settings) -> Settings:
    """The settings with PostgreSQL on a free loopback port: a restore or a cold backup runs its
    own short-lived server, which must not need the stack's port (another stack may use it)."""
    parts = urlsplit(settings.database_url)
    netloc = parts.netloc.rpartition("@")
    credentials = f"{netloc[0]}@" if netloc[1] else ""
    url = urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{free_port()}"))
    owner = None
    if settings.database_owner_url:
        owner_parts = urlsplit(settings.database_owner_url)
        owner_netloc = owner_parts.netloc.rpartition("@")
        owner_credentials = f"{owner_netloc[0]}@" if owner_netloc[1] else ""
        owner = urlunsplit(
            owner_parts._replace(netloc=f"{owner_credentials}{urlsplit(url).netloc.split('@')[-1]}")
        )
    return _settings_with(settings, database_url=url, database_owner_url=owner)


def _codec_keys_text(settings: Settings) -> tuple[bytes | None, list[str], str | None]:
    """The payload encryption keys as the stack is configured with them (the JSON text), their
    ids and the current one; (None, [], None) when payloads are not encrypted."""
    try:
        codec = codec_from_settings(settings)
    except CodecConfigError as error:
        raise BackupError(f"the codec settings cannot be read: {error}") from None
    if codec is None:
        return None, [], None
    if settings.codec_keys is not None and settings.codec_keys.get_secret_value().strip():
        text = settings.codec_keys.get_secret_value().encode()
    else:
        assert settings.codec_keys_file is not None
        text = settings.codec_keys_file.read_bytes()
    return text, codec.key_ids, codec.current_key_id


# ---- pausing the writers -----------------------------------------------------------------------


def _writers(info: StackInfo) -> dict[str, int]:
    """name -> process group of every running worker and the API of the stack."""
    groups: dict[str, int] = {}
    for name, record in info.processes.items():
        if name.split("-")[0] not in _WRITERS or not record.alive():
            continue
        try:
            groups[name] = os.getpgid(record.pid)
        except ProcessLookupError:
            continue
    return groups


def _stopped(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() in (psutil.STATUS_STOPPED, "tracing-stop"))
    except psutil.NoSuchProcess:
        return True


class WriterPause:
    """The stack's writers paused (SIGSTOP to their process groups) until `resume`, which a guard
    process also does should this process die first."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self._guard: subprocess.Popen[bytes] | None = None
        self.began = 0.0
        self.seconds = 0.0

    def pause(self, groups: set[int]) -> None:
        new = groups - self.groups
        if not new:
            return
        if os.getpgid(0) in new:
            raise BackupError("the stack's worker runs in this command's process group")
        # The guard knows every group before any is paused.
        self._start_guard(self.groups | new)
        if not self.began:
            self.began = time.monotonic()
        for group in sorted(new):
            try:
                os.killpg(group, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            except PermissionError:
                raise BackupError(
                    "the stack's processes belong to another user: run `internflow backup` as "
                    "the user who runs `internflow up`"
                ) from None
            self.groups.add(group)
        deadline = time.monotonic() + _STOP_WAIT
        while not all(_stopped(group) for group in new):
            if time.monotonic() > deadline:
                raise BackupError(
                    f"the stack's worker or API did not pause within {_STOP_WAIT:g} s: try again"
                )
            time.sleep(0.005)

    def _start_guard(self, groups: set[int]) -> None:
        previous = self._guard
        self._guard = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _THAW_GUARD, *map(str, sorted(groups))],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal does not reach it
        )
        if previous is not None:
            # Killed, not closed: a guard whose pipe closes resumes its groups, and the new one
            # now answers for them.
            previous.kill()
            previous.wait()

    @staticmethod
    def _close_guard(guard: subprocess.Popen[bytes]) -> None:
        assert guard.stdin is not None
        with contextlib.suppress(OSError):
            guard.stdin.close()
        try:
            guard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            guard.kill()
            guard.wait()

    def resume(self) -> None:
        for group in sorted(self.groups):
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGCONT)
        if self.began:
            self.seconds = time.monotonic() - self.began
        if self._guard is not None:
            self._close_guard(self._guard)
            self._guard = None


@contextlib.contextmanager
def _paused(state_dir: Path, info: StackInfo) -> Iterator[WriterPause]:
    """The stack's workers and API paused for the block; resumed whatever happens. A process the
    stack (re)started meanwhile is paused too: stack.json is read again until it holds still."""
    pause = WriterPause()
    try:
        current = info
        for _ in range(5):
            groups = _writers(current)
            pause.pause(set(groups.values()))
            again = _read_info(state_dir)
            if again is None or set(_writers(again).values()) <= pause.groups:
                break
            current = again
        else:
            raise BackupError("the stack kept restarting its processes meanwhile: back up again")
        yield pause
    finally:
        pause.resume()


def _read_info(state_dir: Path) -> StackInfo | None:
    try:
        return StackInfo.from_json((state_dir / STACK_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ---- copying the databases ---------------------------------------------------------------------


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database another process may be writing (WAL mode): the
    online backup API copies every page within one read transaction. The copy is one file, its
    journal in rollback mode (the dev server turns WAL on again when it opens it)."""
    if not source.is_file():
        raise BackupError(
            f"{source} is missing: this state dir holds no Temporal database (was the stack "
            "ever started here?)"
        )
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = dst.execute("PRAGMA quick_check").fetchone()
            if problems is None or problems[0] != "ok":
                raise BackupError(
                    f"Temporal's database {source} is damaged ({problems}): it cannot be backed up"
                )
        finally:
            dst.close()
    finally:
        src.close()


async def _snapshot_figures(conn: asyncpg.Connection, manifest: Manifest) -> None:
    """Rows per table, internships per phase, badges and migrations, in the dump's snapshot."""
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    for row in tables:
        name = row["relname"]
        quoted = '"' + name.replace('"', '""') + '"'
        manifest.tables[name] = int(await conn.fetchval(f"SELECT count(*) FROM {quoted}"))  # noqa: S608
    if "internships" in manifest.tables:
        phases = await conn.fetch("SELECT phase, count(*) AS n FROM internships GROUP BY phase")
        manifest.internships = {row["phase"]: int(row["n"]) for row in phases}
    manifest.credentials = manifest.tables.get("credentials", 0)
    if "schema_migrations" in manifest.tables:
        names = await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")
        manifest.migrations = [row["name"] for row in names]


TakeSnapshot = Callable[[], Awaitable[str]]


@contextlib.asynccontextmanager
async def _snapshot(dsn: str) -> AsyncIterator[tuple[asyncpg.Connection, TakeSnapshot]]:
    """A read-only repeatable-read transaction on the database `dsn` names, and a call that takes
    its snapshot (its first statement) and exports it for pg_dump: the moment PostgreSQL is
    backed up is when that call runs, however long the dump takes after it."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):

            async def take() -> str:
                snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
                return snapshot

            yield conn, take
    finally:
        await conn.close()


async def _dump(
    conn: asyncpg.Connection, dsn: str, snapshot: str, target: Path, manifest: Manifest
) -> None:
    """pg_dump of the snapshot `conn`'s transaction exported, and the figures of the same
    snapshot into the manifest. The transaction must stay open until it returns."""
    await _snapshot_figures(conn, manifest)
    bare, password = _without_password(dsn)
    await _run_pg_tool(
        [
            str(postgres_bin_dir() / "pg_dump"),
            "--format=custom",
            "--compress=0",  # the archive is compressed as a whole
            f"--snapshot={snapshot}",
            f"--file={target}",
            f"--dbname={bare}",
        ],
        password,
        "pg_dump",
    )


def _superuser_dsn(settings: Settings, host: str, port: int) -> str:
    """The tables' owner (the embedded superuser unless configured) on `host:port`."""
    owner = urlsplit(settings.database_owner_dsn)
    netloc = owner.netloc.rpartition("@")
    credentials = f"{netloc[0]}@" if netloc[1] else ""
    host_part = f"[{host}]" if ":" in host else host
    return urlunsplit(owner._replace(netloc=f"{credentials}{host_part}:{port}"))


# ---- backup ------------------------------------------------------------------------------------


def _collect_files(settings: Settings, staging: Path, manifest: Manifest) -> list[str]:
    """Copy the keys and secrets into `staging`; the member names written."""
    names: list[str] = []
    keys = settings.keys_path
    # The key files the key ring reads (badges/keyring.py): every *.pem of the key dir.
    key_files = sorted(p for p in keys.glob("*.pem") if p.is_file()) if keys.is_dir() else []
    if not key_files:
        raise BackupError(
            f"no signing keys in {keys}: this is not a state dir the stack has run on (set "
            "INTERNFLOW_STATE_DIR, or INTERNFLOW_KEY_DIR, to the stack's)"
        )
    (staging / "keys").mkdir(mode=0o700)
    for path in key_files:
        if not _KEY_NAME.match(path.name):
            raise BackupError(f"{path} has a name a key file cannot have: rename or move it")
        _write_private(staging / "keys" / path.name, path.read_bytes())
        names.append(f"{KEYS}{path.name}")
    # Each did:web institution's own keys: losing them leaves its badges unverifiable too.
    own = keys / INSTITUTION_KEYS
    for directory in sorted(own.iterdir()) if own.is_dir() else []:
        files = sorted(p for p in directory.glob("*.pem") if p.is_file())
        if not files:
            continue
        if not _KEY_NAME.match(directory.name):
            raise BackupError(f"{directory} has a name an institution cannot have: move it")
        target = staging / "keys" / INSTITUTION_KEYS / directory.name
        target.mkdir(mode=0o700, parents=True)
        for path in files:
            if not _KEY_NAME.match(path.name):
                raise BackupError(f"{path} has a name a key file cannot have: rename or move it")
            _write_private(target / path.name, path.read_bytes())
            names.append(f"{KEYS}{INSTITUTION_KEYS}{directory.name}/{path.name}")
    if settings.secret_key is not None:
        secret: bytes | None = settings.secret_key.get_secret_value().encode() + b"\n"
    else:
        source = settings.state_dir / SECRET
        secret = source.read_bytes() if source.is_file() else None
    if secret is not None:
        _write_private(staging / SECRET, secret)
        names.append(SECRET)
    password_file = settings.state_dir / PASSWORD
    if password_file.is_file():
        _write_private(staging / PASSWORD, password_file.read_bytes())
        names.append(PASSWORD)
    codec_text, key_ids, current = _codec_keys_text(settings)
    if codec_text is not None:
        _write_private(staging / CODEC_KEYS, codec_text)
        names.append(CODEC_KEYS)
        manifest.codec_key_ids, manifest.codec_key_id = key_ids, current
    return names


def _write_archive(target: Path, staging: Path, manifest: Manifest, names: list[str]) -> int:
    """The archive at `target` (0600, written beside it and renamed into place): the manifest
    first, then every member with its checksum in it. Returns its size in bytes."""
    for name in names:
        path = staging / name
        manifest.members[name] = Member(bytes=path.stat().st_size, sha256=_sha256(path))
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            with tarfile.open(fileobj=out, mode="w:gz", compresslevel=6) as tar:
                _add(tar, MANIFEST, manifest.to_json())
                for name in names:
                    path = staging / name
                    info = tarfile.TarInfo(name)
                    info.size = path.stat().st_size
                    info.mode = 0o600
                    info.mtime = int(time.time())
                    with path.open("rb") as source:
                        tar.addfile(info, source)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, target)  # only if the name is still free
        except FileExistsError:
            raise BackupError(
                f"{target} appeared while the backup was written: choose another name"
            ) from None
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _check_target(target: Path) -> Path:
    if target.exists() or target.is_symlink():
        raise BackupError(f"{target} exists: choose a new file name (a backup never overwrites)")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise BackupError(f"{parent} is not a directory: create it, or choose another place")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BackupError(f"cannot write in {parent}: choose a directory you may write to")
    return target.absolute()


@contextlib.contextmanager
def _user_errors(what: str) -> Iterator[None]:
    """A failing disk, a permission or a database gone away, as one line saying what to check
    (never a traceback)."""
    try:
        yield
    except ConnectionError as error:
        raise BackupError(
            f"cannot {what}: PostgreSQL stopped answering ({error.strerror or error}): check "
            "that the stack still runs, then try again"
        ) from None
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise BackupError(
            f"cannot {what}: {error.strerror or error}{where}: check the free space and the "
            "permissions there, then try again"
        ) from None
    except sqlite3.Error as error:
        raise BackupError(
            f"cannot {what}: Temporal's database could not be read ({error}): try again; if it "
            "persists, stop the stack and back it up stopped"
        ) from None


async def backup(settings: Settings, target: Path) -> BackupReport:
    """Write one archive of the stack on `settings.state_dir` to `target` (a new file): online
    when a stack runs there (its writers paused while the two databases' copies are taken), else
    cold."""
    with _user_errors("back up"):
        return await _backup(settings, target)


async def _backup(settings: Settings, target: Path) -> BackupReport:
    started = time.monotonic()
    target = _check_target(target)
    state_dir = settings.state_dir
    if not (state_dir / "postgres" / "data" / "PG_VERSION").is_file():
        raise BackupError(
            f"{state_dir} holds no internflow stack (no PostgreSQL data): set "
            "INTERNFLOW_STATE_DIR to the stack's state dir"
        )
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        internflow_version=_version(),
        postgresql_major=postgres_major_version(),
        online=False,
        public_base_url=settings.public_base_url,
    )
    staging_root = tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
    staging = Path(staging_root)
    try:
        names = _collect_files(settings, staging, manifest)
        (staging / "temporal").mkdir()
        (staging / "postgres").mkdir()
        info = EmbeddedStack.find_running(settings)
        if info is not None:
            await _backup_online(settings, info, staging, manifest)
        else:
            busy = (
                f"an internflow stack is starting or stopping on {state_dir}: wait until "
                "`internflow up` says it is running (or has stopped), then back up again"
            )
            with _stack_lock(state_dir, busy):
                info = EmbeddedStack.find_running(settings)
                if info is not None:  # it finished starting meanwhile: it holds the lock
                    raise BackupError(busy)
                await _backup_cold(settings, staging, manifest)
        names += [TEMPORAL_DB, DUMP]
        size = await asyncio.to_thread(_write_archive, target, staging, manifest, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - started
    log.info(
        "backup.written",
        bytes=size,
        seconds=round(seconds, 2),
        online=manifest.online,
        paused_seconds=manifest.paused_seconds,
    )
    return BackupReport(target, size, seconds, manifest)


async def _backup_online(
    settings: Settings, info: StackInfo, staging: Path, manifest: Manifest
) -> None:
    """Pause the writers, copy Temporal's database and take PostgreSQL's snapshot (the stack's
    own server, as stack.json names it), resume the writers, then dump that snapshot: the pause
    lasts the SQLite copy, not the dump."""
    parts = urlsplit(info.database_dsn)
    dsn = _superuser_dsn(settings, parts.hostname or "127.0.0.1", parts.port or 5432)
    temporal_db = settings.state_dir / "temporal" / "temporal.sqlite"
    async with _snapshot(dsn) as (conn, take):
        with _paused(settings.state_dir, info) as pause:
            _copy_sqlite(temporal_db, staging / TEMPORAL_DB)
            snapshot = await take()
        await _dump(conn, dsn, snapshot, staging / DUMP, manifest)
    manifest.online = True
    manifest.paused_seconds = round(pause.seconds, 3)


async def _backup_cold(settings: Settings, staging: Path, manifest: Manifest) -> None:
    """No stack runs (and none can start: the caller holds the lock): copy Temporal's file and
    dump PostgreSQL from a server of our own on a free port."""
    _copy_sqlite(settings.state_dir / "temporal" / "temporal.sqlite", staging / TEMPORAL_DB)
    own = _on_free_port(settings)
    async with EmbeddedPostgres(own):
        host, port = own.database_host_port
        dsn = _superuser_dsn(own, host, port)
        async with _snapshot(dsn) as (conn, take):
            await _dump(conn, dsn, await take(), staging / DUMP, manifest)


# ---- restore -----------------------------------------------------------------------------------


def _entries(state_dir: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in state_dir.iterdir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise BackupError(
            f"{state_dir} is a file, not a directory: set INTERNFLOW_STATE_DIR to a new directory"
        ) from None


def _check_archive(archive: Path) -> None:
    if not archive.is_file():
        if archive.exists():
            raise BackupError(f"{archive} is not a file: give the path of a backup")
        raise BackupError(f"{archive} does not exist: give the path of a backup")


def _check_empty(settings: Settings) -> None:
    state_dir = settings.state_dir
    if EmbeddedStack.find_running(settings) is not None:
        raise BackupError(
            f"an internflow stack is running on {state_dir}: restore into a new, empty state dir "
            "(set INTERNFLOW_STATE_DIR), or stop the stack and move the directory away first"
        )
    if _entries(state_dir):
        raise BackupError(
            f"{state_dir} is not empty: restore only into an empty or new directory (set "
            "INTERNFLOW_STATE_DIR to one, or move this one away)"
        )
    keys = settings.keys_path
    if keys.is_dir() and any(keys.iterdir()):
        raise BackupError(
            f"{keys} already holds keys: restore into an empty key directory (unset "
            "INTERNFLOW_KEY_DIR or point it at a new directory)"
        )


def _read_members(archive: Path, staging: Path) -> Manifest:
    """Every member of the archive into `staging`, each checked against the manifest (which
    comes first); BackupError for anything that is not exactly what the manifest says."""
    not_ours = (
        f"{archive} is not an internflow backup, or is damaged: give the file `internflow "
        "backup` wrote"
    )
    try:
        tar = tarfile.open(archive, mode="r|gz")
    except FileNotFoundError:
        raise BackupError(f"{archive} does not exist: give the path of a backup") from None
    except IsADirectoryError:
        raise BackupError(f"{archive} is a directory: give the path of a backup file") from None
    except PermissionError:
        raise BackupError(f"cannot read {archive}: check its permissions") from None
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError):
        raise BackupError(not_ours) from None
    manifest: Manifest | None = None
    seen: set[str] = set()
    try:
        with tar:
            for member in tar:
                if manifest is None:
                    if member.name != MANIFEST or not member.isfile():
                        raise BackupError(not_ours)
                    if member.size > _MANIFEST_LIMIT:
                        raise BackupError(not_ours)
                    source = tar.extractfile(member)
                    assert source is not None
                    manifest = Manifest.from_json(source.read(), archive)
                    continue
                expected = manifest.members.get(member.name)
                if expected is None or not member.isfile() or member.name in seen:
                    raise BackupError(
                        f"{archive} holds {member.name!r}, which its manifest does not list: it "
                        "is not a backup internflow wrote, or it was changed"
                    )
                if member.size != expected.bytes:
                    raise BackupError(_damaged(archive, member.name))
                seen.add(member.name)
                target = staging / _member_path(member.name)
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                digest = _copy_out(source, target)
                if digest != expected.sha256:
                    raise BackupError(_damaged(archive, member.name))
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, ValueError):
        # Unreadable, cut short or not gzip'd: not what a backup wrote (a disk that cannot take
        # the files is another error, said as such).
        raise BackupError(not_ours) from None
    if manifest is None:
        raise BackupError(not_ours)
    missing = sorted(set(manifest.members) - seen)
    if missing:
        raise BackupError(
            f"{archive} is incomplete ({', '.join(missing)} missing): it was cut short; use "
            "another copy"
        )
    for needed in (DUMP, TEMPORAL_DB):
        if needed not in seen:
            raise BackupError(f"{archive} has no {needed}: it is not a whole backup")
    return manifest


def _damaged(archive: Path, name: str) -> str:
    return (
        f"{archive} is damaged: {name} does not match the checksum in its manifest; use "
        "another copy of the backup"
    )


def _member_path(name: str) -> Path:
    """Where a member goes under the staging directory; only the names a backup writes."""
    if name in (DUMP, TEMPORAL_DB, SECRET, PASSWORD, CODEC_KEYS):
        return Path(name)
    if name.startswith(KEYS) and _KEY_NAME.match(name.removeprefix(KEYS)):
        return Path("keys") / name.removeprefix(KEYS)
    if name.startswith(KEYS + INSTITUTION_KEYS):
        institution, slash, file = name.removeprefix(KEYS + INSTITUTION_KEYS).partition("/")
        if slash and _KEY_NAME.match(institution) and _KEY_NAME.match(file):
            return Path("keys") / INSTITUTION_KEYS / institution / file
    raise ValueError(f"unexpected member {name!r}")


def _copy_out(source: IO[bytes], target: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _check_compatible(manifest: Manifest, archive: Path) -> None:
    local_major = postgres_major_version()
    try:
        newer = int(manifest.postgresql_major) > int(local_major)
    except ValueError:
        newer = True
    if newer:
        raise BackupError(
            f"{archive} holds a PostgreSQL {manifest.postgresql_major} dump; this installation "
            f"has PostgreSQL {local_major}: restore it with an internflow whose embedded "
            "PostgreSQL is as new"
        )
    known = {migration.name for migration in discover_migrations()}
    unknown = [name for name in manifest.migrations if name not in known]
    if unknown:
        raise BackupError(
            f"{archive} was made by a newer internflow ({manifest.internflow_version}; its "
            f"database has migration {unknown[0]}, which this one does not know): restore it "
            "with that version or a newer one"
        )


def _place(staging: Path, settings: Settings, manifest: Manifest) -> Path | None:
    """Move the keys, the secrets and Temporal's database into the state dir, owner-only;
    returns where the codec keys went (None without them)."""
    state_dir = settings.state_dir
    keys = settings.keys_path
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    for path in sorted((staging / "keys").iterdir()):
        shutil.move(path, keys / path.name)  # the key dir may be on another file system
    own = keys / INSTITUTION_KEYS
    if own.is_dir():  # each institution's keys: owner-only, as the key dir itself
        for directory in [own, *own.iterdir()]:
            os.chmod(directory, 0o700)
    for name in (SECRET, PASSWORD, CODEC_KEYS):
        if (staging / name).is_file():
            os.replace(staging / name, state_dir / name)
    temporal = state_dir / "temporal"
    temporal.mkdir(mode=0o700, exist_ok=True)
    os.replace(staging / TEMPORAL_DB, temporal / "temporal.sqlite")
    return state_dir / CODEC_KEYS if CODEC_KEYS in manifest.members else None


async def _load_dump(settings: Settings, dump: Path, manifest: Manifest, archive: Path) -> None:
    """A new embedded PostgreSQL (set up as `internflow up` sets it up: its roles, the
    application role's password, pg_hba) on a free port, the dump loaded into it, every table's
    rows checked against the manifest, stopped."""
    own = _on_free_port(settings)
    async with EmbeddedPostgres(own):
        host, port = own.database_host_port
        dsn = _superuser_dsn(own, host, port)
        bare, password = _without_password(dsn)
        await _run_pg_tool(
            [
                str(postgres_bin_dir() / "pg_restore"),
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",  # everything belongs to the tables' owner, as after migrations
                f"--dbname={bare}",
                str(dump),
            ],
            password,
            "pg_restore",
        )
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            restored = manifest.model_copy(update={"tables": {}})
            await _snapshot_figures(conn, restored)
        finally:
            await conn.close()
        if restored.tables != manifest.tables:
            differ = sorted(
                name
                for name in set(restored.tables) | set(manifest.tables)
                if restored.tables.get(name) != manifest.tables.get(name)
            )
            raise BackupError(
                f"the database restored from {archive} differs from its manifest (tables "
                f"{', '.join(differ)}): the backup is damaged; use another copy"
            )


def _notes(settings: Settings, manifest: Manifest, codec_file: Path | None) -> list[str]:
    """What the person who restored must know before `internflow up` (no secret in them)."""
    notes = []
    if codec_file is not None:
        have: set[str] = set()
        with contextlib.suppress(StackError):
            codec = codec_from_settings(settings)
            have = set(codec.key_ids) if codec is not None else set()
        if not set(manifest.codec_key_ids) <= have:
            current = (
                f" INTERNFLOW_CODEC_KEY_ID={manifest.codec_key_id}"
                if len(manifest.codec_key_ids) > 1
                else ""
            )
            notes.append(
                "Temporal's payloads are encrypted: start the stack with "
                f"INTERNFLOW_CODEC_KEYS_FILE={codec_file}{current}"
            )
    if settings.public_base_url != manifest.public_base_url:
        notes.append(
            f"the badges name {manifest.public_base_url} (their issuer, keys and status lists): "
            f"start the stack with INTERNFLOW_PUBLIC_BASE_URL={manifest.public_base_url} so that "
            "they still verify"
        )
    if password_of(settings.database_url) is None and PASSWORD not in manifest.members:
        notes.append(
            "the backup holds no application database password: one is generated on restore "
            "(set INTERNFLOW_DATABASE_URL with the old one if other programs use it)"
        )
    return notes


async def restore(settings: Settings, archive: Path) -> RestoreReport:
    """Restore `archive` into the (empty or new) state dir of `settings`; on any failure the
    state dir is left as empty as it was found."""
    with _user_errors("restore"):
        return await _restore(settings, archive)


async def _restore(settings: Settings, archive: Path) -> RestoreReport:
    started = time.monotonic()
    state_dir = settings.state_dir
    _check_archive(archive)
    _check_empty(settings)
    existed = state_dir.exists()
    keys_existed = settings.keys_path.exists()
    ensure_directory(state_dir)
    busy = f"another internflow command is using {state_dir}: wait for it to end"
    with _stack_lock(state_dir, busy):
        if [name for name in _entries(state_dir) if name != LOCK_FILE]:
            raise BackupError(f"{state_dir} is not empty any more: restore into an empty one")
        # From here on, everything in the state dir is this restore's own.
        try:
            staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=state_dir))
            try:
                manifest = await asyncio.to_thread(_read_members, archive, staging)
                _check_compatible(manifest, archive)
                codec_file = _place(staging, settings, manifest)
                await _load_dump(settings, staging / DUMP, manifest, archive)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            _undo(settings, existed, keys_existed)
            raise
    seconds = time.monotonic() - started
    log.info("restore.done", seconds=round(seconds, 2), internships=manifest.internships)
    return RestoreReport(
        state_dir, seconds, manifest, codec_file, _notes(settings, manifest, codec_file)
    )


def _undo(settings: Settings, existed: bool, keys_existed: bool) -> None:
    """Leave the state dir (and a key dir outside it) as empty as the restore found them."""
    state_dir = settings.state_dir
    if not keys_existed:
        shutil.rmtree(settings.keys_path, ignore_errors=True)
    if not existed:
        shutil.rmtree(state_dir, ignore_errors=True)
        return
    for entry in _entries(state_dir):
        path = state_dir / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# ---- for tests and the benchmark ---------------------------------------------------------------


def read_manifest(archive: Path) -> Manifest:
    """The manifest of an archive, without reading the rest."""
    with tarfile.open(archive, mode="r|gz") as tar:
        for member in tar:
            source = tar.extractfile(member)
            if member.name != MANIFEST or source is None:
                break
            return Manifest.from_json(source.read(), archive)
    raise BackupError(f"{archive} has no manifest first: it is not an internflow backup")
