"""The deployment's secret key (party links, admin sessions): from settings, or created once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from runtime.errors import StackError, ensure_directory
from runtime.settings import Settings

SECRET_FILE = "secret"  # noqa: S105  # the file name, not a secret


def secret_path(settings: Settings) -> Path:
    return settings.state_dir / SECRET_FILE


def load_or_create_secret(settings: Settings) -> bytes:
    """INTERNFLOW_SECRET_KEY if set; otherwise `<state_dir>/secret`, created on first use with 32
    random bytes (mode 0600, never printed). Every process of one stack shares the file."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value().encode()
        if len(value) < 16:
            raise StackError("INTERNFLOW_SECRET_KEY is too short: use at least 16 characters")
        return value
    path = secret_path(settings)
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    except OSError as error:
        raise StackError(
            f"cannot read {path} ({error.strerror}): fix its permissions or set "
            "INTERNFLOW_SECRET_KEY"
        ) from None
    if existing:
        return existing.encode()
    ensure_directory(path.parent)
    candidate = secrets.token_urlsafe(32)
    temp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(candidate + "\n")
    try:
        # A hard link creates the name only if it is free: when two processes start together,
        # the first complete file wins and both use it.
        os.link(temp, path)
    except FileExistsError:
        return path.read_text().strip().encode()
    finally:
        temp.unlink(missing_ok=True)
    return candidate.encode()
