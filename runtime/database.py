"""The two database roles: the owner of the tables (migrations) and the application role.

The worker, the API and the CLI connect as the application role, `internflow_app` (or a role
that is a member of it): it may read and append to the audit trail and the submissions, change
only the read model's columns, and cannot alter, disable or drop a table or a trigger. The
migrations run as the tables' owner and grant exactly that (db/migrations/0013_roles.sql).

A DSN carries its TLS settings in its query (`?sslmode=verify-full&sslrootcert=<CA file>`, as
libpq's): asyncpg reads them from there, and every rewrite here (the generated password, the
owner's DSN) keeps the query. A connection refused for a setting's sake (a certificate that does
not verify, a CA file that is missing, a server that wants TLS or other credentials) is a
StackError naming the variable to change (`named_refusals`).
"""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import asyncpg

from runtime.errors import StackError, ensure_directory
from runtime.settings import Settings

#: The role the migrations grant the application's privileges to.
APP_ROLE = "internflow_app"
#: Where the embedded stack keeps the password it generated for the application role.
PASSWORD_FILE = "database-password"  # noqa: S105  # the file name, not a password


def password_path(settings: Settings) -> Path:
    return settings.state_dir / PASSWORD_FILE


def user_of(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    return unquote(parts.username) if parts.username else None


def password_of(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    return unquote(parts.password) if parts.password is not None else None


def with_password(dsn: str, password: str) -> str:
    """`dsn` with `password` in it (replacing any)."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{quote(password, safe='')}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def generated_password(settings: Settings) -> str | None:
    """The application role's password the embedded stack generated, if it did."""
    try:
        return password_path(settings).read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StackError(
            f"cannot read {password_path(settings)} ({error.strerror}): fix its permissions, or "
            "put the password in INTERNFLOW_DATABASE_URL"
        ) from None


def load_or_create_password(settings: Settings) -> str:
    """The application role's password for the embedded stack: the one in INTERNFLOW_DATABASE_URL
    if it has one, else `<state_dir>/database-password`, created on first use with 32 random
    bytes (mode 0600, never printed), like the secret key."""
    given = password_of(settings.database_url)
    if given is not None:
        return given
    existing = generated_password(settings)
    if existing is not None:
        return existing
    path = password_path(settings)
    ensure_directory(path.parent)
    candidate = secrets.token_urlsafe(32)
    temp = path.with_name(f".{PASSWORD_FILE}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(candidate + "\n")
    try:
        os.link(temp, path)  # the first complete file wins a race
    except FileExistsError:
        return path.read_text().strip()
    finally:
        temp.unlink(missing_ok=True)
    return candidate


def application_dsn(settings: Settings) -> str:
    """The DSN to connect as the application: INTERNFLOW_DATABASE_URL, with the embedded stack's
    generated password when it names none and the embedded stack made one."""
    url = settings.database_url
    if password_of(url) is not None:
        return url
    generated = generated_password(settings)
    return with_password(url, generated) if generated is not None else url


def owner_dsn(settings: Settings) -> str:
    """The DSN of the tables' owner, which applies the migrations."""
    return settings.database_owner_dsn


def _server_of(dsn: str) -> tuple[str, str]:
    """(`host:port`, the role) a DSN connects to, for messages (never its password)."""
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 5432}", user_of(dsn) or "the default role"


def _query_value(dsn: str, name: str) -> str | None:
    values = parse_qs(urlsplit(dsn).query).get(name)
    return values[-1] if values else None


def refused_connection(error: BaseException, dsn: str, variable: str) -> StackError | None:
    """What to change in `variable` (which holds `dsn`) when connecting failed with `error`
    because of a setting: PostgreSQL's certificate does not verify or does not name the host,
    the CA file cannot be read, the server offers no TLS or takes this role only over TLS, or it
    refused the role's credentials. None for anything else (a server that is down may be back
    later). The message is one line and never holds the password."""
    where, role = _server_of(dsn)
    mode = _query_value(dsn, "sslmode")
    if isinstance(error, ssl.SSLCertVerificationError):
        why = str(error.verify_message or error).rstrip(".")
        if why.startswith("Hostname mismatch"):
            return StackError(
                f"PostgreSQL's certificate at {where} does not name that host ({why}): put a "
                f"host name the certificate holds in {variable}"
            )
        return StackError(
            f"PostgreSQL's certificate at {where} does not verify ({why}): set sslrootcert in "
            f"{variable} to the PEM file of the CA that signed it "
            "(...?sslmode=verify-full&sslrootcert=/path/to/ca.pem)"
        )
    cut = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
    if (
        isinstance(error, ssl.SSLError)
        and not isinstance(error, cut)
        and error.reason != "UNEXPECTED_EOF_WHILE_READING"
    ):  # a connection cut during the handshake (a server restarting) may pass: not a setting
        return StackError(
            f"TLS with PostgreSQL at {where} failed ({error.reason or error}): check the server's "
            f"TLS settings and sslmode in {variable}"
        )
    root = _query_value(dsn, "sslrootcert")
    if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)) and root:
        return StackError(
            f"cannot read the CA file {root} that sslrootcert names in {variable} "
            f"({error.strerror or type(error).__name__}): give the path of a readable PEM file"
        )
    if isinstance(error, asyncpg.ClientConfigurationError):
        if "root certificate file" in str(error):
            return StackError(
                f"{variable} asks for PostgreSQL's certificate to be verified (sslmode={mode}) "
                "but names no CA file: add sslrootcert=/path/to/ca.pem to it"
            )
        return StackError(f"{variable} cannot be used: {error}")
    if isinstance(error, ConnectionError) and "rejected SSL upgrade" in str(error):
        return StackError(
            f"PostgreSQL at {where} does not offer TLS, which {variable} asks for "
            f"(sslmode={mode}): turn on ssl on the server, or change sslmode"
        )
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        message = str(error)
        if "no encryption" in message:
            return StackError(
                f"PostgreSQL at {where} takes {role} only over TLS ({message}): add "
                f"sslmode=verify-full&sslrootcert=/path/to/ca.pem to {variable}"
            )
        return StackError(
            f"PostgreSQL at {where} refused {role} ({message}): check the role and its password "
            f"in {variable}"
        )
    return None


@contextmanager
def named_refusals(dsn: str, variable: str) -> Iterator[None]:
    """Connect to `dsn` inside this block: a connection refused for a setting's sake (see
    `refused_connection`) becomes a StackError naming `variable`; anything else passes as
    it is."""
    try:
        yield
    except (
        OSError,
        asyncpg.ClientConfigurationError,
        asyncpg.InvalidAuthorizationSpecificationError,
    ) as error:
        refusal = refused_connection(error, dsn, variable)
        if refusal is None:
            raise
        raise refusal from None
