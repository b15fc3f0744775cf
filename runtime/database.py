"""The two database roles: the owner of the tables (migrations) and the application role.

The worker, the API and the CLI connect as the application role, `internflow_app` (or a role
that is a member of it): it may read and append to the audit trail and the submissions, change
only the read model's columns, and cannot alter, disable or drop a table or a trigger. The
migrations run as the tables' owner and grant exactly that (db/migrations/0013_roles.sql).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

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
