"""Free loopback ports, whether one answers, and settings for a stack on free ports only."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

from runtime.settings import Settings


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def throwaway_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a stack in `state_dir` with every port free (tests, drills, benchmarks). The
    application connects as internflow_app with a password of its own (the embedded PostgreSQL
    sets it); the migrations run as the superuser, postgres."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "temporal_address": f"127.0.0.1:{free_port()}",
        "temporal_ui_port": free_port(),
        "database_url": (
            f"postgresql://internflow_app:{secrets.token_urlsafe(16)}@127.0.0.1:{free_port()}"
            "/internflow"
        ),
        "smtp_host": "127.0.0.1",
        "smtp_port": free_port(),
        "api_port": free_port(),
        # Their Temporal is a dev server on the address above, whatever TEMPORAL_* may say.
        "temporal_client_config": False,
    }
    values.update(overrides)
    return Settings(**values)
