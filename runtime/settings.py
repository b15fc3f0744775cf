"""The one settings model: every configurable value, from INTERNFLOW_* environment variables."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of every internflow process. No other module reads the environment."""

    model_config = SettingsConfigDict(env_prefix="INTERNFLOW_", frozen=True, extra="forbid")

    state_dir: Path = Field(
        Path(".internflow"),
        description="Where the embedded stack keeps its data, keys and outbox.",
    )
    temporal_address: str = Field(
        "127.0.0.1:7233",
        description="Temporal frontend host:port. When set, it wins over Temporal's own "
        "TEMPORAL_ADDRESS and config file profile (runtime/clients.py, temporal_connection).",
    )
    temporal_namespace: str = Field(
        "internflow",
        description="Temporal namespace. When set, it wins over TEMPORAL_NAMESPACE and the "
        "config file profile.",
    )
    temporal_client_config: bool = Field(
        True,
        description="Read Temporal's own client configuration (TEMPORAL_API_KEY, TEMPORAL_TLS*, "
        "TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_PROFILE and the config file) for TLS, "
        "client certificates and API keys. The embedded stack's processes, and commands beside "
        "it, turn it off: its dev server speaks clear text on INTERNFLOW_TEMPORAL_ADDRESS.",
    )
    temporal_ui_port: int = Field(8233, description="Web UI port of the embedded Temporal server.")
    task_queue: str = "internflow"
    database_url: str = Field(
        "postgresql://internflow_app@127.0.0.1:55432/internflow",
        description="PostgreSQL DSN the worker, the API and the CLI connect with: the application "
        "role (internflow_app), which may not change or remove the audit trail. Without a "
        "password in it, the embedded stack's generated one (<state_dir>/database-password).",
    )
    database_owner_url: str | None = Field(
        None,
        description="PostgreSQL DSN of the role that owns the tables and applies the migrations "
        "(`internflow migrate`); only the migration step needs it. Default: the embedded stack's "
        "superuser (postgres, no password) at database_url's host, port and database.",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "internflow <noreply@internflow.localhost>"
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL under which issuer profiles, keys and verification pages are served; "
        "default http://<api_host>:<api_port>. It is written into every badge: https:// unless "
        "the host is loopback (the demo).",
    )
    did_web_institutions: str | None = Field(
        None,
        description="Comma-separated institution ids (or *) whose new badges name the "
        "institution's own did:web DID (did:web:<public host>:issuers:<id>, its document at "
        "/issuers/<id>/did.json, its keys in <key_dir>/issuers/<id>/) as issuer id instead of "
        "the HTTPS profile URL; needs an https:// public base URL.",
    )
    key_dir: Path | None = Field(None, description="Signing keys; default <state_dir>/keys.")
    seal_dir: Path | None = Field(
        None,
        description="Institutions' own electronic seal certificates for European Digital "
        "Credentials, one PKCS#12 file each (<institution id>.p12, its passphrase, if any, in "
        "<institution id>.p12.pass); default <state_dir>/seals.",
    )
    api_host: str = Field(
        "127.0.0.1", description="Where `internflow serve` (the HTTP API) listens."
    )
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API.")
    secret_key: SecretStr | None = Field(
        None,
        description="Signs party links and admin sessions; default: created once into "
        "<state_dir>/secret (see runtime/secret.py).",
    )
    rate_limit_per_minute: int = Field(
        120, ge=1, description="Requests per minute per client address on public and party pages."
    )
    document_rate_limit_per_minute: int = Field(
        6000,
        ge=1,
        description="Requests per minute per client address for the verification documents "
        "(issuer profiles, keys, DID documents, JWKS, status lists, credential JSON, wallet "
        "metadata), a limit of their own: a verifier fetches at most five per badge, so the "
        "default lets one address check 1,200 badges a minute without any HTTP cache.",
    )
    workflow_cache: int = Field(
        1000,
        ge=1,
        description="Internship workflows a worker keeps in memory (the SDK's "
        "max_cached_workflows); one outside it is replayed from its history when it next has "
        "work or is queried.",
    )
    demo: bool = Field(
        False,
        description="A trial with no real data: public placeholder or missing secrets are "
        "accepted (with a warning) instead of refused. The embedded stack's processes are "
        "always a trial.",
    )
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Payload encryption, metrics and tracing (production shape; all off by default).
    codec_keys: SecretStr | None = Field(
        None,
        description='Payload encryption keys as JSON, {"<key id>": "<base64 of 32 random bytes>"}; '
        "unset (and no codec_keys_file) = payloads are not encrypted.",
    )
    codec_keys_file: Path | None = Field(
        None, description="A file holding the codec_keys JSON (e.g. a mounted secret)."
    )
    codec_key_id: str | None = Field(
        None,
        description="The key new payloads are encrypted with; default: the only key. The others "
        "still decrypt (rotation).",
    )
    codec_cors_origins: str | None = Field(
        None,
        description="Comma-separated origins (Temporal Web UI) allowed to call the codec endpoint; "
        "default: the embedded Web UI.",
    )
    web_ui_upstream: str | None = Field(
        None,
        description="A Temporal Web UI started with --ui-public-path /temporal (e.g. "
        "http://127.0.0.1:8233/temporal) that the API serves to signed-in admins under "
        "<public base URL>/temporal, on the codec endpoint's origin; the embedded stack sets it. "
        "Unset: no /temporal.",
    )
    metrics_host: str = Field("127.0.0.1", description="Address the worker's metrics bind to.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Worker's Prometheus port (SDK metrics); unset/0 = off."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); unset = "
        "no tracing. Needs the [otel] extra.",
    )

    @model_validator(mode="before")
    @classmethod
    def _public_base_url_from_api_address(cls, data: Any) -> Any:
        """Unless set, the public base URL is where the API listens (http://api_host:api_port)."""
        if isinstance(data, dict) and not data.get("public_base_url"):
            host = data.get("api_host") or "127.0.0.1"
            port = data.get("api_port") or 8000
            data = {**data, "public_base_url": f"http://{host}:{port}"}
        return data

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url_reachable(cls, value: str) -> str:
        """Every badge carries this URL (issuer id, keys, status lists): refuse one that
        verifiers could not reach safely, before anything is issued under it."""
        problem = public_base_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("did_web_institutions")
    @classmethod
    def _did_web_needs_https(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value or not value.strip():
            return None
        base = info.data.get("public_base_url")
        if isinstance(base, str) and urlsplit(base).scheme != "https":
            raise ValueError(
                f"did:web needs an https:// INTERNFLOW_PUBLIC_BASE_URL (it is {base}): a did:web "
                "DID is resolved over HTTPS only"
            )
        return value

    @cached_property
    def temporal_ui_url(self) -> str:
        """Where admins open the Web UI: under the API when it serves the UI, else the dev
        server's."""
        if self.web_ui_upstream:
            return f"{self.public_base_url}/temporal"
        host, _ = self.temporal_host_port
        return f"http://{host}:{self.temporal_ui_port}"

    @cached_property
    def keys_path(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.state_dir / "keys"

    @cached_property
    def seals_path(self) -> Path:
        return self.seal_dir if self.seal_dir is not None else self.state_dir / "seals"

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

    @cached_property
    def database_owner_dsn(self) -> str:
        """The DSN migrations run with: database_owner_url, or the embedded stack's superuser
        (`postgres`, trusted on loopback) on database_url's server and database."""
        if self.database_owner_url:
            return self.database_owner_url
        parts = urlsplit(self.database_url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        return urlunsplit(parts._replace(netloc=f"postgres@{host}{port}"))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_base_url_problem(url: str) -> str | None:
    """Why url cannot be the public base URL of a deployment that issues badges, or None.

    It must be https:// (a plain http:// URL only on a loopback host, which is the demo): the
    URL becomes part of every badge (issuer id, key, status list and verification URLs) and
    cannot change afterwards, so verifiers must be able to fetch it, securely, for as long as
    the badges exist."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"INTERNFLOW_PUBLIC_BASE_URL must be an https:// URL with a host name, not {url!r}"
    if parts.query or parts.fragment:
        return f"INTERNFLOW_PUBLIC_BASE_URL must not have a query or fragment ({url!r})"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return (
            f"INTERNFLOW_PUBLIC_BASE_URL must be https:// ({url} is plain http): it becomes part "
            "of every badge (issuer id, keys, status lists, verification link) and cannot change "
            "afterwards, so verifiers must be able to reach it over HTTPS for as long as the "
            "badges exist; plain http:// is accepted only for a loopback host (127.0.0.1, "
            "localhost), as in the demo. Set INTERNFLOW_PUBLIC_BASE_URL to the https:// address "
            "where this API is published"
        )
    return None
