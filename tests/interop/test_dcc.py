"""The Digital Credentials Consortium's verifier (@digitalcredentials/verifier-core 1.0.0-beta.11,
the engine of Learner Credential Wallet and VerifierPlus) checks a live badge: issued by the
real badge activity, served by `internflow serve`, everything fetched over HTTP from that API
(tests/interop/dcc.mjs), including the schema check it applies through `credentialSchema`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from runtime.settings import Settings
from tests.interop.test_interop import HERE, NODE_MODULES, cli, issue, served, write

SCHEMA = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
)


def dcc(badge: str, api: str) -> dict[str, Any]:
    """Run tests/interop/dcc.mjs on one badge file; its one JSON line."""
    executable = shutil.which("node")
    assert executable, "Node.js (node) is needed for the interoperability tests"
    assert (NODE_MODULES / "@digitalcredentials" / "verifier-core").is_dir(), (
        "run `npm ci --prefix tests/interop` (`make test` does it)"
    )
    done = subprocess.run(
        [executable, str(HERE / "dcc.mjs"), badge, "--api", api],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"dcc.mjs printed nothing (exit {done.returncode}): {done.stderr}"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def steps(result: dict[str, Any]) -> dict[str, Any]:
    return {step["id"]: step.get("valid") for step in result["log"]}


async def test_dcc_verifier_core_verifies_a_live_badge_and_its_schema(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    credential_id, credential = await issue(pool, settings)
    badge = write(tmp_path, "badge.json", credential)
    document = json.loads(credential)
    before = dict(document, proof=document["proof"][0])  # as badges were signed before
    old = write(tmp_path, "old.json", json.dumps(before))
    forged = json.loads(credential)
    forged["credentialSubject"]["achievement"]["name"] += " (with honours)"
    tampered = write(tmp_path, "tampered.json", json.dumps(forged))

    async with served(settings, tmp_path / "api.log") as base:
        result = dcc(badge, base)
        assert result["errors"] == [], result
        # Its checks: the signature (the key and the issuer's profile fetched from the API),
        # the status list (fetched and verified), the dates; no issuer registry is configured.
        assert steps(result) == {
            "valid_signature": True,
            "revocation_status": True,
            "expiration": True,
            "registered_issuer": False,
        }, result
        issuer = document["issuer"]["id"]
        status_list = document["credentialStatus"]["statusListCredential"]
        assert {f"{issuer}/keys/key-1", issuer, status_list} <= set(result["fetched"])
        # The schema the credential names, applied strictly: the badge passes it as it is.
        assert result["schema"] == [{"schema": SCHEMA, "valid": True, "errors": []}], result
        assert SCHEMA in result["fetched"]

        # A badge signed before, with its single proof object: its signature and status still
        # hold, and the schema check says why badges now carry an array.
        earlier = dcc(old, base)
        assert earlier["errors"] == [] and steps(earlier)["valid_signature"] is True, earlier
        assert steps(earlier)["revocation_status"] is True
        [checked] = earlier["schema"]
        assert checked["valid"] is False and "/proof must be array" in checked["errors"], earlier

        refused = dcc(tampered, base)
        assert [error["name"] for error in refused["errors"]] == ["invalid_signature"], refused

        done = await cli(settings, "badge", "revoke", credential_id, "--reason", "x")
        assert done.returncode == 0, done
        revoked = dcc(badge, base)
        assert steps(revoked)["valid_signature"] is True, revoked
        assert steps(revoked)["revocation_status"] is False, revoked
