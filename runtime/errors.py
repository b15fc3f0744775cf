"""Errors a user can cause while starting the embedded stack, and the checks that raise them."""

from __future__ import annotations

import errno
import socket
from pathlib import Path


class StackError(Exception):
    """A problem the user can fix (a port in use, a missing binary, an unusable state dir).

    The message says what to change; the CLI prints it without a traceback."""


def ensure_port_free(host: str, port: int, setting: str, wanted: str = "a free port") -> None:
    """Raise StackError naming `setting` (and what to set it to) unless we may listen on
    host:port."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StackError(
                f"port {port} on {host} is in use by another program: "
                f"stop it or set {setting} to {wanted}"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise StackError(
                f"port {port} on {host} needs privileges this user lacks: "
                f"set {setting} to a port above 1023"
            ) from None
        raise StackError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
            f"set {setting} to an address of this machine"
        ) from None


def ensure_directory(path: Path, setting: str = "INTERNFLOW_STATE_DIR") -> Path:
    """Create `path` (and parents) or raise StackError naming `setting`; returns it absolute."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StackError(f"{path} exists and is not a directory: set {setting} elsewhere") from None
    except OSError as exc:
        raise StackError(
            f"cannot create directory {path} ({exc.strerror or exc}): "
            f"set {setting} to a writable directory"
        ) from None
    return path.resolve()
