"""`internflow verify`: check a badge file offline, and its status lists over the network."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from badges.verify import VerificationReport
from cli.app import app
from cli.common import USER_ERROR, _settings
from models.ids import credential_uuid_from_id


@app.command()
def verify(
    file: Annotated[
        Path, typer.Argument(help="A credential .json or .jwt, or a baked .png or .svg.")
    ],
    email: Annotated[
        str | None, typer.Option(help="Also check that the badge was awarded to this address.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as one JSON object (with `verdict` and `status_checked`).",
        ),
    ] = False,
) -> None:
    """Verify a badge: its JSON-LD terms, its proof (eddsa-rdfc-2022 or VC-JWT) against this
    deployment's issuer keys, its validity window, with --email its recipient and, once all of
    that holds, its revocation and suspension status, fetched over HTTP from the status list URLs
    the badge names (the issuer's API: `internflow up` or `serve`, or the deployment's public
    URL). A badge carries one status entry, its revocation; whether an internflow issuer has
    suspended it is asked of that issuer's API (`/credentials/<id>/status`).

    Exit codes:

    * **0**: verified: valid, and the issuer says it is neither revoked nor suspended.
    * **1**: not valid: unreadable as a badge, tampered or wrong proof, not yet valid or
    expired, revoked, suspended, or (with --email) awarded to someone else.
    * **2**: usage error: e.g. the file cannot be read.
    * **3**: status not checked: signature and content are valid, but the issuer's status list
    could not be had (e.g. the issuer cannot be reached), so the badge may be revoked.

    Example: internflow verify badge.png --email giulia@example.org"""
    from badges.verify import verify_badge
    from issuance.issuers import public_keys

    settings = _settings()
    try:
        data = file.read_bytes()
    except OSError as error:
        print(f"error: cannot read {file}: {error.strerror or error}", file=sys.stderr)
        raise typer.Exit(USER_ERROR) from None
    try:
        keys = public_keys(settings)
    except (OSError, ValueError) as error:
        print(
            f"error: cannot read the issuer keys in {settings.keys_path}: {error}", file=sys.stderr
        )
        raise typer.Exit(USER_ERROR) from None
    moment = datetime.now(UTC)
    report = verify_badge(data, issuer_keys=keys, email=email, now=moment)
    fetcher: _StatusListFetcher | None = None
    if report.verified and report.credential and report.credential.get("credentialStatus"):
        # Only a badge whose proof holds is worth asking its issuer about (and only then is the
        # status list URL the issuer's own).
        fetcher = _StatusListFetcher(STATUS_FETCH_TIMEOUT)
        report = verify_badge(data, issuer_keys=keys, status_lists=fetcher, email=email, now=moment)
        if report.verified and report.suspended is None:
            _ask_issuer_about_suspension(report, fetcher)
    outcome = _judge(report, fetcher)
    if as_json:
        print(json.dumps(outcome.as_dict(), indent=2))
    else:
        _print_verification(file, outcome)
    raise typer.Exit(outcome.exit_code)


VERIFY_NOT_VALID = 1
VERIFY_STATUS_NOT_CHECKED = 3
STATUS_FETCH_TIMEOUT = 5.0
"""Seconds to wait for the issuer when fetching a status list."""
STATUS_LIST_MAX_BYTES = 8 * 1024 * 1024
_NO_RESOLVER_WARNING = "status not checked: no status list resolver was given"


class _StatusListFetcher:
    """Status list credentials fetched over HTTP(S) from the URLs a badge names, as any verifier
    fetches them; remembers, in plain words, why a fetch failed."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.failures: list[str] = []
        self._unreachable: dict[str, str] = {}

    def __call__(self, url: str) -> bytes:
        import urllib.error
        import urllib.request

        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            usable = False
        if not usable:
            raise self._failed(f"its status list URL {url!r} is not an http(s) URL")
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin in self._unreachable:
            raise self._failed(self._unreachable[origin])
        opener = urllib.request.OpenerDirector()  # http(s) only: no file:, ftp: or data:
        for handler in (
            urllib.request.ProxyHandler(),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPRedirectHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url,
            headers={
                "Accept": "application/ld+json, application/json;q=0.9, application/vc+jwt;q=0.8",
                "User-Agent": "internflow-verify",
            },
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body: bytes = response.read(STATUS_LIST_MAX_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            raise self._failed(
                f"the issuer at {origin} answered HTTP {error.code} for its status list {url}"
            ) from None
        except Exception as error:  # any network failure: the status is unknown
            why = _network_reason(error, self.timeout)
            reason = f"the issuer at {origin} could not be reached ({why})"
            self._unreachable[origin] = reason
            raise self._failed(reason) from None
        if len(body) > STATUS_LIST_MAX_BYTES:
            raise self._failed(f"the status list at {url} is larger than a status list can be")
        return body

    def _failed(self, reason: str) -> LookupError:
        if reason not in self.failures:
            self.failures.append(reason)
        return LookupError(reason)


def _ask_issuer_about_suspension(report: VerificationReport, fetcher: _StatusListFetcher) -> None:
    """A badge whose one status entry is its revocation: ask the issuer's API whether it is
    suspended (an internflow issuer keeps suspension itself). Any issuer that does not answer
    this question leaves the report as it was."""
    entry = (report.credential or {}).get("credentialStatus")
    url = entry.get("statusListCredential") if isinstance(entry, dict) else None
    credential_id = report.credential_id or ""
    if not isinstance(url, str) or not credential_id.startswith("urn:uuid:"):
        return
    parts = urlsplit(url)
    question = f"{parts.scheme}://{parts.netloc}/credentials/{credential_uuid_from_id(credential_id)}/status"
    try:
        answer = json.loads(fetcher(question))
    except (LookupError, ValueError):
        fetcher.failures.clear()  # not a question every issuer answers: not a failure
        return
    if isinstance(answer, dict) and answer.get("credential_id") == credential_id:
        report.suspended = answer.get("status") == "suspended"
        if report.suspended:
            report.fail("status", "the credential is suspended by its issuer")


def _network_reason(error: BaseException, timeout: float) -> str:
    import socket
    import ssl
    import urllib.error

    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, socket.gaierror):
        return "its host name could not be resolved"
    if isinstance(cause, ssl.SSLError):
        return f"TLS failed: {cause}"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__


@dataclass(frozen=True)
class _Outcome:
    """What `verify` concludes from a report: the verdict, its exit code, and why the status
    could not be checked (if so)."""

    verdict: Literal["verified", "not valid", "revoked", "suspended", "status not checked"]
    exit_code: int
    status_checked: bool
    unchecked_because: list[str]
    report: VerificationReport

    def as_dict(self) -> dict[str, Any]:
        details = self.report.as_dict()
        del details["verified"]
        if not self.status_checked:
            details["checks"] = {k: v for k, v in details["checks"].items() if k != "status"}
            details["errors"] = [e for e in details["errors"] if not e.startswith("status:")]
        details["warnings"] = [w for w in details["warnings"] if w != _NO_RESOLVER_WARNING]
        return {
            "verdict": self.verdict,
            "verified": self.verdict == "verified",
            "status_checked": self.status_checked,
            "status_not_checked_because": self.unchecked_because,
            **details,
            "exit_code": self.exit_code,
        }


def _judge(report: VerificationReport, fetcher: _StatusListFetcher | None) -> _Outcome:
    """The verdict: revoked or suspended is never verified, and a badge whose status could not be
    had is "status not checked" (exit 3), not verified."""
    other_checks = [ok for check, ok in report.checks.items() if check != "status"]
    content_ok = bool(other_checks) and all(other_checks)
    status_errors = [e.removeprefix("status: ") for e in report.errors if e.startswith("status:")]
    if not content_ok or len(status_errors) < len(report.errors):
        return _Outcome("not valid", VERIFY_NOT_VALID, False, [], report)
    if fetcher is None:  # nothing to check: the badge names no status list
        return _Outcome("verified", 0, True, [], report)
    if report.revoked:
        return _Outcome("revoked", VERIFY_NOT_VALID, True, [], report)
    if report.suspended:
        return _Outcome("suspended", VERIFY_NOT_VALID, True, [], report)
    if report.verified:
        return _Outcome("verified", 0, True, [], report)
    fetched = "could not get the status list "
    because = fetcher.failures + [e for e in status_errors if not e.startswith(fetched)]
    return _Outcome(
        "status not checked", VERIFY_STATUS_NOT_CHECKED, False, because or status_errors, report
    )


def _plain(value: object) -> str:
    """Text from a badge, safe to print: control characters (terminal escapes) made visible."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(value)
    )


def _print_verification(file: Path, outcome: _Outcome) -> None:
    report = outcome.report
    unchecked = "; ".join(outcome.unchecked_because) or "no reason was given"
    status_named = bool(report.credential and report.credential.get("credentialStatus"))
    headline = {
        "verified": "VERIFIED: the badge is authentic and valid, and its issuer says it is "
        "neither revoked nor suspended."
        if status_named
        else "VERIFIED: the badge is authentic and valid (it names no status list: its issuer "
        "cannot revoke it).",
        "not valid": "NOT VALID: the badge does not verify (see the problems below).",
        "revoked": "NOT VALID: the badge has been revoked by its issuer.",
        "suspended": "NOT VALID: the badge is suspended by its issuer.",
        "status not checked": "STATUS NOT CHECKED: the badge's signature and content are valid, "
        "but whether its issuer has revoked or suspended it could not be checked.",
    }[outcome.verdict]
    print(_plain(headline))
    rows = [
        ("file", str(file)),
        ("credential", report.credential_id),
        ("issuer", report.issuer_id),
        ("format", ", ".join(p for p in (report.container, report.proof_format) if p)),
    ]
    if report.recipient_matches is not None:
        rows.append(("recipient", "matches" if report.recipient_matches else "does NOT match"))
    if outcome.verdict == "status not checked":
        rows.append(("status", f"NOT CHECKED: {unchecked}"))
    elif outcome.status_checked and status_named:
        flags = [("revoked", report.revoked), ("suspended", report.suspended)]
        said = [
            name if flag else f"not {name}" if flag is False else f"{name}: not listed"
            for name, flag in flags
        ]
        rows.append(("status", "checked with the issuer: " + ", ".join(said)))
    for name, value in rows:
        if value:
            print(f"  {name + ':':<12}{_plain(value)}")
    shown = outcome.as_dict()
    if shown["errors"]:
        print("problems:")
        for error in shown["errors"]:
            print(f"  - {_plain(error)}")
    if shown["warnings"]:
        print("warnings:")
        for warning in shown["warnings"]:
            print(f"  - {_plain(warning)}")
    if outcome.verdict == "status not checked":
        print(
            "Do not rely on this badge until its status can be checked (for this deployment's "
            "badges, `internflow up` or `internflow serve` publishes the status lists)."
        )
