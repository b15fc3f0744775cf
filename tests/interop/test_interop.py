"""Independent implementations verify internflow's badges against the live issuer.

Badges are issued by the real badge activity into a real database; `internflow serve` serves the
issuer's API over HTTP on loopback; Node.js runs Digital Bazaar's verifier, its Bitstring Status
List reader and `jose` (tests/interop/verify.mjs, packages pinned in package.json and
package-lock.json; `make test` installs them with `npm ci`). Nothing is handed to the verifiers
but the badge and the API's address: keys, controller documents, status lists and the JWKS are
fetched over HTTP from the running API (contexts come from the bundled copies)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from badges.keyring import KeyRing
from badges.proof import sign
from badges.status import MIN_STATUS_LIST_SIZE, StatusList, credential_status
from embedded.ports import free_port
from issuance.award import build_credential
from issuance.issuers import did_web_id, institution_key_dir, institution_ring
from models.activities import BadgeRequest
from runtime.settings import Settings
from tests.helpers import issue_badge_through_activities, sample_plan

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"


def node(*args: str, timeout: float = 120) -> dict[str, Any]:
    """Run tests/interop/verify.mjs; its one JSON line."""
    executable = shutil.which("node")
    assert executable, "Node.js (node) is needed for the interoperability tests"
    assert NODE_MODULES.is_dir(), (
        "the interoperability packages are not installed: run `npm ci --prefix tests/interop` "
        "(`make test` does it)"
    )
    done = subprocess.run(
        [executable, str(HERE / "verify.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"verify.mjs printed nothing (exit {done.returncode}): {done.stderr}"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERNFLOW_")}
    env.update(
        INTERNFLOW_STATE_DIR=str(settings.state_dir),
        INTERNFLOW_DATABASE_URL=settings.database_url,
        INTERNFLOW_TEMPORAL_ADDRESS=settings.temporal_address,
        INTERNFLOW_SMTP_PORT=str(settings.smtp_port),
        INTERNFLOW_API_PORT=str(settings.api_port),
        INTERNFLOW_PUBLIC_BASE_URL=settings.public_base_url,
        INTERNFLOW_LOG_LEVEL="warning",
        INTERNFLOW_DEMO="true",  # a trial: no shared secret or codec keys needed
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if settings.did_web_institutions:
        env["INTERNFLOW_DID_WEB_INSTITUTIONS"] = settings.did_web_institutions
    return env


def api_base(settings: Settings) -> str:
    """Where the API under test answers (plain HTTP on loopback)."""
    return f"http://127.0.0.1:{settings.api_port}"


async def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


@asynccontextmanager
async def served(settings: Settings, log: Path) -> AsyncIterator[str]:
    """`internflow serve` with the test's settings until the block ends; yields its address."""
    base = api_base(settings)
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "serve",
            env=cli_env(settings),
            stdout=output,
            stderr=output,
        )
    try:
        deadline = asyncio.get_running_loop().time() + 30
        async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
            while True:
                assert process.returncode is None, _read(log)
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, _read(log)
                await asyncio.sleep(0.1)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def issue(
    pool: asyncpg.Pool,
    settings: Settings,
    proof_format: str = "data-integrity",
    institution: str | None = None,
) -> tuple[str, str]:
    """(credential id, the stored credential: JSON text, or the compact VC-JWT) of one badge
    issued by the real badge activity (for the example's institution, or another id)."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    if institution is not None:
        school = plan.institution.model_copy(update={"id": institution, "name": institution})
        plan = plan.model_copy(update={"institution": school})
    if proof_format != "data-integrity":
        plan = plan.model_copy(
            update={"badge": plan.badge.model_copy(update={"proof_format": proof_format})}
        )
    request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=now - timedelta(hours=1),
        workflow_id=f"internship-{plan.internship_id}",
    )
    # The records of the internship, as the workflow leaves them (the issuer profile is read
    # from the latest plan).
    await pool.execute(
        "INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase, "
        "plan_version, start_at, end_at, updated_at) "
        "VALUES ($1, $2, $3, $4, 'certification', 1, $5, $6, now())",
        plan.internship_id,
        request.workflow_id,
        plan.institution.id,
        plan.company.id,
        plan.period.start,
        plan.period.end,
    )
    await pool.execute(
        "INSERT INTO plan_versions (internship_id, version, plan) VALUES ($1, 1, $2)",
        plan.internship_id,
        plan.model_dump_json(),
    )
    credential_id = await issue_badge_through_activities(pool, settings, request)
    stored = await pool.fetchval(
        "SELECT credential FROM credentials WHERE credential_id = $1", credential_id
    )
    value = json.loads(stored)
    return credential_id, value if isinstance(value, str) else json.dumps(value)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_digital_bazaar_verifies_fetching_the_key_from_the_live_issuer(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    credential_id, credential = await issue(pool, settings)
    document = json.loads(credential)
    method = document["proof"][0]["verificationMethod"]
    issuer_id = document["issuer"]["id"]
    assert method == f"{issuer_id}/keys/key-1"
    badge = write(tmp_path, "badge.json", credential)
    forged = json.loads(credential)
    forged["credentialSubject"]["achievement"]["name"] += " (with honours)"
    tampered = write(tmp_path, "tampered.json", json.dumps(forged))

    async with served(settings, tmp_path / "api.log") as base:
        result = node("di", badge, "--api", base)
        assert result["verified"] is True, result
        assert result["proofVerified"] is True
        # The key came over HTTP from the running API: the Multikey document, controlled by the
        # issuer, whose profile lists it under assertionMethod.
        assert result["verificationMethod"] == method
        assert result["verificationMethodType"] == "Multikey"
        assert result["keyController"] == issuer_id
        # ... and it checked that the issuer's profile lists the key under assertionMethod (and
        # that the key's controller is the credential's issuer: CredentialIssuancePurpose).
        assert result["fetched"][:2] == [method, issuer_id], result["fetched"]
        assert result["status"] == [
            {"purpose": "revocation", "index": document["credentialStatus"]["statusListIndex"],
             "set": False}
        ]  # fmt: skip

        refused = node("di", tampered, "--api", base)
        assert refused["verified"] is False, refused
        assert refused["proofVerified"] is False

        # Revoked with the CLI: the verifier reads it from the live list from then on.
        assert node("status", badge, "--api", base)["status"][0]["set"] is False
        done = await cli(settings, "badge", "revoke", credential_id, "--reason", "x")
        assert done.returncode == 0, done
        status = node("status", badge, "--api", base)
        assert status["verified"] is True, status
        assert status["status"][0] == {
            "purpose": "revocation",
            "index": document["credentialStatus"]["statusListIndex"],
            "set": True,
        }
        after = node("di", badge, "--api", base)
        assert after["revoked"] is True and after["proofVerified"] is True, after


async def test_status_list_reader_sees_a_revocation_only_after_it(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """@digitalbazaar/vc-bitstring-status-list on its own, against the live list: not revoked
    before `internflow badge revoke`, revoked after; another badge on the list stays as it was;
    suspending a badge does not touch what independent verifiers read (one status entry)."""
    revoked_id, revoked = await issue(pool, settings)
    other_id, other = await issue(pool, settings)
    first, second = write(tmp_path, "a.json", revoked), write(tmp_path, "b.json", other)
    async with served(settings, tmp_path / "api.log") as base:
        before = node("status", first, "--api", base)
        assert before["verified"] is True and before["status"][0]["set"] is False, before
        done = await cli(settings, "badge", "revoke", revoked_id, "--reason", "awarded by mistake")
        assert done.returncode == 0, done
        done = await cli(settings, "badge", "suspend", other_id, "--reason", "under review")
        assert done.returncode == 0, done
        assert node("status", first, "--api", base)["status"][0]["set"] is True
        assert node("status", second, "--api", base)["status"][0]["set"] is False
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            uuid = other_id.removeprefix("urn:uuid:")
            answer = (await http.get(f"/credentials/{uuid}/status")).json()
        assert answer["status"] == "suspended"


async def test_jose_verifies_the_vc_jwt_with_the_live_jwks(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    credential_id, token = await issue(pool, settings, "vc-jwt")
    badge = write(tmp_path, "badge.jwt", token)
    async with served(settings, tmp_path / "api.log") as base:
        result = node("jwt", badge, "--api", base)
    assert result["verified"] is True, result
    header, claims = result["header"], result["claims"]
    issuer_id = result["issuerId"]
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] == f"{issuer_id}/keys/rsa-1"
    # The kid chain: the header's kid is in the JWKS under that same kid, and dereferences to
    # that very JWK.
    assert result["kidListedInJwks"] == 1 and result["kidDereferencesToJwk"] is True
    assert result["dereferencedKid"] == header["kid"]
    assert f"{issuer_id}/.well-known/jwks.json" not in result["fetched"]
    # sub is always there: the subject's pseudonymous id (a URN), equal to credentialSubject.id.
    assert claims["sub"] == result["subjectId"] and claims["sub"].startswith("urn:uuid:")
    assert claims["iss"] == issuer_id and claims["jti"] == credential_id == result["credentialId"]


def tls_for_localhost(folder: Path) -> tuple[Path, Path, Path]:
    """(authority certificate, server certificate, server key) for https://localhost: a test
    certificate authority of its own, which the Node.js side trusts (NODE_EXTRA_CA_CERTS)."""
    now = datetime.now(UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority = (
        x509.CertificateBuilder()
        .subject_name(name("internflow interop test authority"))
        .issuer_name(name("internflow interop test authority"))
        .public_key(authority_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(authority_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(authority.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def did_web(*files: str, api: str, public: str, tls: tuple[Path, Path, Path]) -> dict[str, Any]:
    """Run tests/interop/didweb.mjs (two did:web resolvers) on the badges in files: for each,
    the outcome of each resolver, by its name."""
    executable = shutil.which("node")
    assert executable and NODE_MODULES.is_dir(), "run `npm ci --prefix tests/interop`"
    authority, certificate, key = tls
    done = subprocess.run(
        [executable, str(HERE / "didweb.mjs"), *files, "--api", api, "--public", public,
         "--cert", str(certificate), "--key", str(key)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(authority)},
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines, f"didweb.mjs printed nothing (exit {done.returncode}): {done.stderr}"
    result = json.loads(lines[-1])
    assert "badges" in result, result
    return {badge["file"]: badge["resolvers"] for badge in result["badges"]}


def badge_under_the_deployments_did(settings: Settings, list_id: str, index: int) -> str:
    """A badge as internflow issued it before each institution on did:web had a DID of its
    own: issuer the deployment's DID, signed by the deployment's key, on its shared list."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    did = did_web_id(settings.public_base_url)
    credential = build_credential(
        plan,
        {o.id: "good" for o in plan.learning_outcomes},
        issuer_id=did,
        image_url=f"{settings.public_base_url}/images/badge.png",  # as badges named it then
        issued_at=now - timedelta(hours=1),
        credential_status=credential_status((list_id, index)),
    )
    key = KeyRing.load_or_create(settings.keys_path).signing_key
    method = KeyRing.verification_method(did, key)
    return json.dumps(sign(credential, key, method, now - timedelta(hours=1)))


async def test_each_institution_is_its_own_did_web_issuer_for_two_resolvers(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    """Two institutions on did:web, each its own DID with its own keys. Two independent did:web
    resolvers (did-resolver with web-did-resolver; Digital Bazaar's did-io with
    did-method-web) fetch each DID document over HTTPS, by themselves, and verify live badges
    with the keys they resolved: school A's badge before and after a rotation of its keys (the
    old key stays in its DID document), a VC-JWT of school B, and a badge issued before under
    the deployment's one DID, which stays served."""
    port = free_port()
    public = f"https://localhost:{port}"
    did_settings = settings.model_copy(
        update={"public_base_url": public, "did_web_institutions": "school-a,school-b"}
    )
    shared_list = f"{public}/status/revocation"
    await pool.execute(
        "INSERT INTO status_lists (list_id, purpose, size, bits) VALUES ($1, 'revocation', $2, $3)",
        shared_list,
        MIN_STATUS_LIST_SIZE,
        bytes(MIN_STATUS_LIST_SIZE // 8),
    )
    before = badge_under_the_deployments_did(did_settings, shared_list, 7)
    old_a_id, old_a = await issue(pool, did_settings, institution="school-a")
    institution_ring(did_settings, "school-a").rotate(institution_key_dir(did_settings, "school-a"))
    _, new_a = await issue(pool, did_settings, institution="school-a")
    _, jwt_b = await issue(pool, did_settings, "vc-jwt", institution="school-b")
    did_a = f"did:web:localhost%3A{port}:issuers:school-a"
    did_b = f"did:web:localhost%3A{port}:issuers:school-b"
    for credential, key_id in ((old_a, "key-1"), (new_a, "key-2")):
        document = json.loads(credential)
        assert document["issuer"]["id"] == did_a
        assert document["proof"][0]["verificationMethod"] == f"{did_a}#{key_id}"
        status = document["credentialStatus"]["statusListCredential"]
        assert status == f"{public}/issuers/school-a/did/status/revocation"
    files = {
        "before": write(tmp_path, "before.json", before),
        "old-a": write(tmp_path, "old-a.json", old_a),
        "new-a": write(tmp_path, "new-a.json", new_a),
        "jwt-b": write(tmp_path, "b.jwt", jwt_b),
    }
    tls = tls_for_localhost(tmp_path)
    async with served(did_settings, tmp_path / "api.log") as base:
        outcomes = did_web(*files.values(), api=base, public=public, tls=tls)
        done = await cli(did_settings, "badge", "revoke", old_a_id, "--reason", "x")
        assert done.returncode == 0, done
        revoked = did_web(files["old-a"], api=base, public=public, tls=tls)[files["old-a"]]
    resolvers = {"web-did-resolver", "did-method-web"}
    for name, file in files.items():
        assert set(outcomes[file]) == resolvers, (name, outcomes[file])
        for resolver, outcome in outcomes[file].items():
            assert outcome["verified"] is True, (name, resolver, outcome)
    for resolver in resolvers:
        old, new = outcomes[files["old-a"]][resolver], outcomes[files["new-a"]][resolver]
        # School A's DID document, over TLS from its own path, lists the old key and the new.
        assert old["didDocumentId"] == new["didDocumentId"] == did_a
        assert old["assertionMethod"] == [f"{did_a}#key-1", f"{did_a}#key-2"], old
        assert old["verificationMethod"] == f"{did_a}#key-1"
        assert new["verificationMethod"] == f"{did_a}#key-2"
        assert "/issuers/school-a/did.json" in old["fetched"], old["fetched"]
        assert "/issuers/school-a/did/status/revocation" in old["fetched"], old["fetched"]
        assert old["statusVerified"] is True and old["revoked"] is False
        # School B is another issuer with other keys; its VC-JWT's kid is in its own document.
        b = outcomes[files["jwt-b"]][resolver]
        assert b["didDocumentId"] == did_b and b["verificationMethod"] == f"{did_b}#rsa-1"
        assert not set(b["assertionMethod"]) & set(old["assertionMethod"])
        # The deployment's one DID, as badges issued before name it, still resolves and holds.
        shared = outcomes[files["before"]][resolver]
        assert shared["didDocumentId"] == f"did:web:localhost%3A{port}"
        assert "/.well-known/did.json" in shared["fetched"], shared["fetched"]
        assert shared["statusVerified"] is True
        # Revoked with the CLI: both resolvers' verifiers read it from school A's own list.
        assert revoked[resolver]["revoked"] is True, revoked[resolver]
        assert revoked[resolver]["proofVerified"] is True


async def test_https_issuer_key_rotation(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    """After a rotation of the deployment's keys, badges of an HTTPS profile issuer signed with
    the earlier key and the new one verify, each key fetched from the live API."""
    old_https = await issue(pool, settings)
    KeyRing.load_or_create(settings.keys_path).rotate(settings.keys_path)
    new_https = await issue(pool, settings)
    assert json.loads(new_https[1])["proof"][0]["verificationMethod"].endswith("/keys/key-2")
    async with served(settings, tmp_path / "api.log") as base:
        for name, (_, credential) in {"old-https": old_https, "new-https": new_https}.items():
            result = node("di", write(tmp_path, f"{name}.json", credential), "--api", base)
            assert result["verified"] is True, (name, result)


def test_the_status_list_reader_ignores_status_size(tmp_path: Path) -> None:
    """Why suspension is not a multi-bit `message` entry: @digitalbazaar/vc-bitstring-status-list
    reads one bit at statusListIndex as a boolean, whatever statusSize says. With statusSize 2,
    entry 1 is bits 2 and 3; set it to 0b10 and the reader, asked for index 1, answers bit 1."""
    bits = StatusList()
    bits.set(2)  # entry 1 of a 2-bit list = 0b10 (a non-zero state)
    encoded = write(tmp_path, "list.txt", bits.encode())
    result = node("bits", encoded, "1", "2")
    assert result["length"] == MIN_STATUS_LIST_SIZE
    assert result["status"] == [False, True]  # entry 1 read as "not set"; bit 2 is another entry
