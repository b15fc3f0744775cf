"""The one settings model: every configurable value, from INTERNFLOW_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of every internflow process. No other module reads the environment."""

    model_config = SettingsConfigDict(env_prefix="INTERNFLOW_", frozen=True, extra="forbid")

    state_dir: Path = Field(
        Path(".internflow"),
        description="Where the embedded stack keeps its data, keys and outbox.",
    )
    temporal_address: str = Field("127.0.0.1:7233", description="Temporal frontend host:port.")
    temporal_namespace: str = "internflow"
    temporal_ui_port: int = Field(8233, description="Web UI port of the embedded Temporal server.")
    task_queue: str = "internflow"
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:55432/internflow",
        description="PostgreSQL DSN of the application's database.",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "internflow <noreply@internflow.localhost>"
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL under which issuer profiles, keys and verification pages are served.",
    )
    key_dir: Path | None = Field(None, description="Signing keys; default <state_dir>/keys.")
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @cached_property
    def keys_path(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.state_dir / "keys"

    @cached_property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox"

    @cached_property
    def temporal_host_port(self) -> tuple[str, int]:
        host, _, port = self.temporal_address.rpartition(":")
        return host, int(port)

    @cached_property
    def database_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.database_url)
        return parts.hostname or "127.0.0.1", parts.port or 5432

    @cached_property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/") or "postgres"
