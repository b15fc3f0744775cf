"""Client factories: the Temporal client (where and how to connect, with the pydantic data
converter) and the asyncpg pool. Every Temporal client of the project comes from here."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import structlog
from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
)
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS
from temporalio.runtime import Runtime
from temporalio.service import RPCError, TLSConfig

from runtime.codec import EncryptionCodec, codec_from_settings
from runtime.database import application_dsn, named_refusals
from runtime.errors import StackError
from runtime.settings import Settings
from runtime.tracing import tracing_interceptors

log = structlog.get_logger(__name__)


class SharedPydanticPayloadConverter(CompositePayloadConverter):
    """The pydantic payload converter (the same JSON on the wire), with one cache of pydantic
    TypeAdapters for the whole process.

    The SDK makes a payload converter per workflow instance (it could carry a serialization
    context), and the contrib pydantic converter keeps its own TypeAdapter cache: every cached
    internship built and held a TypeAdapter for its input, its receipts and each submission type.
    That was most of a cached workflow's memory (0.26 MiB each, against 0.08 MiB for a bare
    workflow) and CPU on every workflow start and replay. The converters here are stateless apart
    from that cache, so sharing them is safe."""

    _shared = PydanticPayloadConverter()

    def __init__(self) -> None:
        super().__init__(*self._shared.converters.values())


PYDANTIC = DataConverter(payload_converter_class=SharedPydanticPayloadConverter)
"""The data converter of every client and worker (without payload encryption)."""


def data_converter(settings: Settings, codec: EncryptionCodec | None = None) -> DataConverter:
    """The pydantic data converter; with payload encryption when codec keys are configured (then
    failure messages and stack traces are encrypted too)."""
    codec = codec if codec is not None else codec_from_settings(settings)
    if codec is None:
        return PYDANTIC
    return dataclasses.replace(
        PYDANTIC,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


# ---- where and how to connect to Temporal ------------------------------------------------------

DEFAULT_ADDRESS = str(Settings.model_fields["temporal_address"].default)
DEFAULT_NAMESPACE = str(Settings.model_fields["temporal_namespace"].default)

#: Temporal's variables that name a file (TLS material), by what the file is.
_PATH_VARIABLES = {
    "server CA certificate": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "client certificate": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "client private key": "TEMPORAL_TLS_CLIENT_KEY_PATH",
}


class TemporalConfigError(StackError):
    """Temporal's client configuration cannot be used (a file it names is missing, a profile is
    unknown, a certificate without its key): one line naming what to change."""


class TemporalRefused(StackError):
    """Temporal answered but refused this client (credentials, TLS): not an outage, so waiting
    would not help. One line saying what is missing or wrong."""


@dataclasses.dataclass(frozen=True)
class TemporalConnection:
    """Where and how this process's clients connect to Temporal: the resolution of
    INTERNFLOW_TEMPORAL_ADDRESS/_NAMESPACE and Temporal's own client configuration. Its repr
    holds no secret (the API key, the private key and gRPC metadata are left out)."""

    address: str
    namespace: str
    address_from: str
    """What set the address: a variable's name, a config file profile, or "the default"."""
    namespace_from: str
    tls: bool | TLSConfig = dataclasses.field(default=False, repr=False)
    api_key: str | None = dataclasses.field(default=None, repr=False)
    rpc_metadata: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.tls is not False

    @property
    def client_certificate(self) -> bool:
        return isinstance(self.tls, TLSConfig) and self.tls.client_cert is not None

    def describe(self) -> str:
        """Where and how, without secrets: `host:7233 (namespace x; TLS, API key)`."""
        how = "clear text"
        if self.uses_tls:
            credentials = [
                name
                for name, present in (
                    ("client certificate", self.client_certificate),
                    ("API key", self.api_key is not None),
                )
                if present
            ]
            how = "TLS" + (f", {' and '.join(credentials)}" if credentials else "")
        elif self.api_key is not None:
            how = "clear text, API key"
        return f"{self.address} (namespace {self.namespace}; {how})"


def for_embedded_stack(settings: Settings) -> Settings:
    """`settings` as the embedded stack's processes, and commands beside it, use them: its
    Temporal is the dev server on INTERNFLOW_TEMPORAL_ADDRESS, in clear text, so Temporal's own
    client configuration (meant for a real cluster, perhaps in the developer's shell or
    config file) is not read."""
    if not settings.temporal_client_config:
        return settings
    return settings.model_copy(update={"temporal_client_config": False})


def _load_profile(environ: Mapping[str, str]) -> tuple[ClientConfigProfile, str]:
    """Temporal's client configuration profile (the SDK's envconfig: the TOML config file's
    profile with TEMPORAL_* variables over it) and how to name it in a message."""
    profile_name = environ.get("TEMPORAL_PROFILE") or "default"
    config_file = environ.get("TEMPORAL_CONFIG_FILE") or "Temporal's config file"
    where = f"profile {profile_name!r} of {config_file}"
    try:
        return ClientConfigProfile.load(override_env_vars=dict(environ)), where
    except (OSError, ValueError, TypeError) as error:
        raise TemporalConfigError(_unreadable(error, environ)) from None
    except Exception as error:  # the SDK's ConfigError (TOML, profiles): its own type
        text = str(error)
        found = re.search(r"Profile '([^']*)' not found", text)
        if found:
            raise TemporalConfigError(
                f"TEMPORAL_PROFILE names the profile {found.group(1)!r}, which {config_file} "
                "does not have: add it, or unset TEMPORAL_PROFILE"
            ) from None
        line = re.search(r"at line (\d+)", text)
        # Never the SDK's message itself: a TOML error quotes the line, which may hold a key.
        raise TemporalConfigError(
            f"{config_file} cannot be read"
            + (
                f" (line {line.group(1)} is not valid TOML)"
                if line
                else f" ({type(error).__name__})"
            )
            + ": fix it, or set TEMPORAL_CONFIG_FILE to another file"
        ) from None


def _unreadable(error: BaseException, environ: Mapping[str, str]) -> str:
    """A file Temporal's configuration names could not be read: which, and through what."""
    filename = getattr(error, "filename", None)
    reason = getattr(error, "strerror", None) or type(error).__name__
    if filename is None:
        return f"Temporal's client configuration cannot be used ({reason})"
    for what, variable in _PATH_VARIABLES.items():
        if environ.get(variable) == str(filename):
            return f"{variable} names {filename}, the {what}, which cannot be read ({reason})"
    return (
        f"Temporal's client configuration names {filename}, which cannot be read ({reason}): "
        "fix the TEMPORAL_TLS_*_PATH variable or the config file's tls paths"
    )


def _tls(
    tls: ClientConfigTLS | None, api_key: str | None, environ: Mapping[str, str]
) -> bool | TLSConfig:
    """The SDK's rule: TLS when the profile configures it, or by default with an API key."""
    if tls is None:
        return api_key is not None
    try:
        connect = tls.to_connect_tls_config()
    except OSError as error:
        raise TemporalConfigError(_unreadable(error, environ)) from None
    if isinstance(connect, TLSConfig):
        if connect.client_cert is not None and connect.client_private_key is None:
            raise TemporalConfigError(
                "Temporal's client configuration has a client certificate but not its private "
                "key: set TEMPORAL_TLS_CLIENT_KEY_PATH (or TEMPORAL_TLS_CLIENT_KEY_DATA) too"
            )
        if connect.client_private_key is not None and connect.client_cert is None:
            raise TemporalConfigError(
                "Temporal's client configuration has a client private key but not its "
                "certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH (or TEMPORAL_TLS_CLIENT_CERT_DATA)"
            )
    return connect


def temporal_connection(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> TemporalConnection:
    """Where and how to connect to Temporal: the one place that decides.

    Address and namespace: INTERNFLOW_TEMPORAL_ADDRESS / _NAMESPACE when set (given to these
    settings), else Temporal's own (TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, else the config
    file's profile), else 127.0.0.1:7233 and `internflow`. TLS, client certificate, API key and
    gRPC metadata: Temporal's client configuration only (`temporalio.envconfig`: TEMPORAL_TLS*,
    TEMPORAL_API_KEY, TEMPORAL_GRPC_META_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE), unless
    settings.temporal_client_config is off (the embedded stack). `environ` defaults to this
    process's environment. TemporalConfigError (one line) when that configuration is unusable."""
    environ = os.environ if environ is None else environ
    # An empty variable is an unset one (the SDK would read TEMPORAL_API_KEY= as a key).
    environ = {key: value for key, value in environ.items() if value}
    if settings.temporal_client_config:
        profile, where = _load_profile(environ)
    else:
        profile, where = ClientConfigProfile(), ""
    chosen = settings.model_fields_set

    def pick(field: str, theirs: str | None, variable: str, default: str) -> tuple[str, str]:
        ours = f"INTERNFLOW_{field.upper()}"
        source = variable if environ.get(variable) else where
        if field in chosen:
            value = str(getattr(settings, field))
            if theirs and theirs != value:
                _warn_once(
                    f"{ours} ({value}) is used, not {source} ({theirs}): unset one of them",
                )
            return value, ours
        if theirs:
            return theirs, source
        return default, "the default"

    address, address_from = pick(
        "temporal_address", profile.address, "TEMPORAL_ADDRESS", DEFAULT_ADDRESS
    )
    namespace, namespace_from = pick(
        "temporal_namespace", profile.namespace, "TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE
    )
    return TemporalConnection(
        address=address,
        namespace=namespace,
        address_from=address_from,
        namespace_from=namespace_from,
        tls=_tls(profile.tls, profile.api_key, environ),
        api_key=profile.api_key,
        rpc_metadata=dict(profile.grpc_meta),
    )


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("temporal.setting_overridden", detail=message)


def refusal(error: BaseException, target: TemporalConnection) -> str | None:
    """The sentence for a failed connection that is this client's configuration, not an outage
    (credentials missing or refused, TLS on one side only, an untrusted certificate); None when
    it looks like Temporal is down or unreachable (worth waiting for)."""
    text = str(error)
    at = f"Temporal at {target.address}"
    cert_variables = "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH"
    if "Unauthenticated" in text or "401 Unauthorized" in text:
        if target.api_key is None:
            return (
                f"{at} requires credentials and none are configured: set TEMPORAL_API_KEY "
                f"(an API key for namespace {target.namespace})"
                + ("" if target.client_certificate else f", or {cert_variables} (mTLS)")
            )
        return (
            f"{at} refused the API key in TEMPORAL_API_KEY (unauthenticated): check that it is "
            f"current and meant for namespace {target.namespace}"
        )
    if "PermissionDenied" in text or "403 Forbidden" in text:
        return (
            f"{at} refused namespace {target.namespace} to these credentials (permission "
            "denied): give the API key or client certificate access to it, or set "
            "TEMPORAL_NAMESPACE to one they may use"
        )
    if target.uses_tls and (
        "400 Bad Request" in text
        or re.search(r"CertificateRequired|BadCertificate|UnknownCA|HandshakeFailure", text)
    ):
        if not target.client_certificate:
            return (
                f"{at} requires a client certificate (mTLS) and none is configured: set "
                f"{cert_variables} (or the _DATA variables)"
            )
        return (
            f"{at} refused the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH): it must be "
            "signed by a certificate authority the server accepts, and not expired"
        )
    if "InvalidCertificate" in text:
        detail = re.search(r"InvalidCertificate\((\w+)", text)
        return (
            f"the certificate of {at} is not trusted"
            + (f" ({detail.group(1)})" if detail else "")
            + ": set TEMPORAL_TLS_SERVER_CA_CERT_PATH to the certificate authority that signed "
            "it, or TEMPORAL_TLS_SERVER_NAME to the name it was issued for"
        )
    if target.uses_tls and re.search(r"InvalidContentType|InvalidMessage|CorruptMessage", text):
        return (
            f"{at} does not answer TLS: if it is a plain-text server, unset TEMPORAL_TLS* and "
            "TEMPORAL_API_KEY (or set TEMPORAL_TLS=false); else check the address"
        )
    if not target.uses_tls and ("h2 protocol error" in text or "FRAME_SIZE_ERROR" in text):
        return (
            f"{at} does not answer in clear text, so it probably requires TLS: set "
            f"TEMPORAL_TLS=true (and TEMPORAL_API_KEY or {cert_variables})"
        )
    return None


async def open_temporal_client(
    settings: Settings,
    *,
    data_converter: DataConverter = PYDANTIC,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
    target: TemporalConnection | None = None,
) -> Client:
    """A Temporal client on `target` (default: temporal_connection(settings)). TemporalRefused
    (one line, no secret) when Temporal answers but refuses it; the SDK's RuntimeError when it
    cannot be reached (runtime.availability.unreachable says so)."""
    target = target if target is not None else temporal_connection(settings)
    try:
        return await Client.connect(
            target.address,
            namespace=target.namespace,
            api_key=target.api_key,
            tls=target.tls,
            rpc_metadata=target.rpc_metadata,
            data_converter=data_converter,
            interceptors=interceptors,
            runtime=runtime,
        )
    except (RuntimeError, RPCError) as error:
        sentence = refusal(error, target)
        if sentence is not None:
            raise TemporalRefused(sentence) from None
        raise


async def connect_temporal(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """The Temporal client of every process (worker, API, CLI): where and how
    temporal_connection says, the configured data converter (payload encryption), tracing
    interceptors if configured, and `runtime` (the worker passes one serving metrics; None is
    the SDK's default)."""
    return await open_temporal_client(
        settings,
        data_converter=data_converter(settings),
        interceptors=tracing_interceptors(settings),
        runtime=runtime,
    )


async def temporal_answers(settings: Settings, within: float = 2.0) -> bool:
    """Whether Temporal answers a health check within `within` seconds (a connection of its
    own, without the data converter: no codec keys needed to ask). A refusal (credentials) or
    an unusable configuration counts as not answering."""
    try:
        async with asyncio.timeout(within):
            client = await open_temporal_client(settings)
            return await client.service_client.check_health(timeout=timedelta(seconds=within))
    except (RPCError, RuntimeError, OSError, TimeoutError, StackError):
        return False


@asynccontextmanager
async def connect_records(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the application's database, as the application role, for a
    short-lived command."""
    dsn = application_dsn(settings)
    with named_refusals(dsn, "INTERNFLOW_DATABASE_URL"):
        conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A released connection's reset: nothing beyond what asyncpg does on its side anyway (roll
    back a transaction left open, forget listeners). Its default sends RESET ALL, CLOSE ALL,
    UNLISTEN * and an advisory unlock as one more round trip for every use of the pool; the
    application never sets session state, listens, or takes advisory locks on a pooled
    connection (the migrations' lock is on a connection of their own)."""


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The process's one connection pool (as the application role); its owner closes it on
    shutdown. A connection refused for a setting's sake (TLS, credentials) is a StackError
    naming INTERNFLOW_DATABASE_URL."""
    dsn = application_dsn(settings)
    with named_refusals(dsn, "INTERNFLOW_DATABASE_URL"):
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, reset=_keep_session)
    assert pool is not None
    return pool
