"""A TLS-terminating gRPC proxy (Debian's nginx, `grpc_pass`) in front of a Temporal frontend,
for tests: one listener that requires a client certificate (mTLS, as a secured self-hosted
cluster does) and one that requires an API key (`authorization: Bearer <key>`, as Temporal Cloud
does). The certificates are made here, for the test's own certificate authority.

nginx runs as our child with its own configuration, pid file, logs and temp paths under a
directory of the test's; nothing of the system's nginx is read or touched."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from embedded.ports import answers, free_port
from tests.certificates import authority as new_authority

NGINX = "/usr/sbin/nginx"


def nginx_binary() -> str:
    """Debian's nginx (`apt-get install nginx`; .ci/run installs it when it is missing)."""
    found = shutil.which("nginx") or (NGINX if Path(NGINX).is_file() else None)
    if found is None:
        raise AssertionError("nginx is not installed: `apt-get install -y nginx` (see .ci/run)")
    return found


@dataclass(frozen=True)
class Pki:
    """A certificate authority, the proxy's server certificate and a client certificate, as
    PEM files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    """A client certificate from another authority: refused by the mTLS listener."""
    stranger_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _leaf(
    authority: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    name: str,
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key, ca_cert = authority
    key = _key()
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """A new certificate authority in `directory`, a server certificate for localhost and
    127.0.0.1, a client certificate it signed, and one another authority signed."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = new_authority("internflow test CA")
    server_key, server_cert = _leaf(authority, "localhost", server=True)
    client_key, client_cert = _leaf(authority, "internflow-worker", server=False)
    stranger_key, stranger_cert = _leaf(new_authority("someone else"), "stranger", server=False)
    return Pki(
        ca_cert=_write_cert(directory / "ca.pem", authority[1]),
        server_cert=_write_cert(directory / "server.pem", server_cert),
        server_key=_write_key(directory / "server.key", server_key),
        client_cert=_write_cert(directory / "client.pem", client_cert),
        client_key=_write_key(directory / "client.key", client_key),
        stranger_cert=_write_cert(directory / "stranger.pem", stranger_cert),
        stranger_key=_write_key(directory / "stranger.key", stranger_key),
    )


def nginx_config(
    directory: Path, pki: Pki, upstream: str, mtls_port: int, api_key_port: int, api_key: str
) -> str:
    """The proxy's whole configuration: everything it writes stays under `directory`."""
    # The master process reads the certificates; a worker needs the temp paths. Running as root
    # (CI), keep the workers root too rather than `nobody`, who could not write there.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    tls = f"""
        ssl_certificate {pki.server_cert};
        ssl_certificate_key {pki.server_key};
        ssl_protocols TLSv1.2 TLSv1.3;"""
    return f"""{user}daemon off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} notice;
events {{ worker_connections 512; }}
http {{
    # Which listener, which gRPC method, which HTTP status: what a test checks went through.
    log_format grpc '$server_port $request_uri $status';
    access_log {directory / "access.log"} grpc;
{temp}
    # Temporal's long polls last about a minute: never cut one short.
    grpc_read_timeout 600s;
    grpc_send_timeout 600s;
    client_body_timeout 600s;
    client_max_body_size 0;
    keepalive_timeout 600s;

    # mTLS: a client certificate of the test's authority, or nothing.
    server {{
        listen 127.0.0.1:{mtls_port} ssl http2;{tls}
        ssl_client_certificate {pki.ca_cert};
        ssl_verify_client on;
        location / {{
            grpc_pass grpc://{upstream};
        }}
    }}

    # An API key, as Temporal Cloud takes one: `authorization: Bearer <key>`, or UNAUTHENTICATED.
    server {{
        listen 127.0.0.1:{api_key_port} ssl http2;{tls}
        location / {{
            if ($http_authorization != "Bearer {api_key}") {{
                return 418;
            }}
            grpc_pass grpc://{upstream};
        }}
        # The refusal as a gRPC status (16, UNAUTHENTICATED), as Temporal Cloud answers it.
        error_page 418 = @unauthenticated;
        location @unauthenticated {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "Request unauthorized" always;
            return 200;
        }}
    }}
}}
"""


class GrpcTlsProxy:
    """nginx in front of `upstream` (a Temporal frontend's host:port) on two free loopback
    ports: `mtls_address` requires a client certificate of `pki`'s authority, `api_key_address`
    the header `authorization: Bearer <api_key>`. A context manager: started on entry (once both
    ports answer), stopped on exit."""

    def __init__(self, directory: Path, pki: Pki, upstream: str) -> None:
        self.directory = directory
        self.pki = pki
        self.upstream = upstream
        self.api_key = secrets.token_urlsafe(24)
        self.mtls_port = free_port()
        self.api_key_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def mtls_address(self) -> str:
        return f"127.0.0.1:{self.mtls_port}"

    @property
    def api_key_address(self) -> str:
        return f"127.0.0.1:{self.api_key_port}"

    @property
    def pid(self) -> int | None:
        """nginx's master process while it runs (its workers are its children)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def calls(self, port: int) -> list[str]:
        """The gRPC methods called through the listener on `port` (its access log), each with
        its HTTP status: `/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo 200`."""
        path = self.directory / "access.log"
        if not path.exists():
            return []
        prefix = f"{port} "
        return [
            line.removeprefix(prefix)
            for line in path.read_text().splitlines()
            if line.startswith(prefix)
        ]

    def __enter__(self) -> GrpcTlsProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, within: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "nginx.conf"
        config.write_text(
            nginx_config(
                self.directory,
                self.pki,
                self.upstream,
                self.mtls_port,
                self.api_key_port,
                self.api_key,
            )
        )
        output = (self.directory / "nginx.out").open("ab")
        log = self.error_log
        self._proc = subprocess.Popen(
            # -e: the log before the configuration is read; -p: no default prefix either.
            [nginx_binary(), "-p", str(self.directory), "-c", str(config), "-e", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        output.close()
        deadline = time.monotonic() + within
        while not (
            answers("127.0.0.1", self.mtls_port) and answers("127.0.0.1", self.api_key_port)
        ):
            if self._proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"nginx did not listen within {within} s: {self._log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)  # fast shutdown of master and workers
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def _log_tail(self) -> str:
        texts = []
        for name in ("nginx.out", "error.log"):
            path = self.directory / name
            if path.exists():
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts)
