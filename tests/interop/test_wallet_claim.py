"""An independent wallet client claims a badge with OpenID for Verifiable Credential Issuance 1.0
(the pre-authorized code flow), against the live issuer.

The badge is issued by the real badge activity and e-mailed into the mail sink; the offer (by
reference: `credential_offer_uri`) and the transaction code are read from that e-mail;
`internflow serve` answers on loopback; Node.js runs the OpenWallet Foundation's
`@openid4vc/openid4vci` client (tests/interop/claim.mjs), which fetches the offer, resolves the
issuer's metadata, redeems the code, asks for a c_nonce, proves possession of a key it makes
itself and receives the credential, which Digital Bazaar's verifier then checks, fetching the
issuer's key over HTTP. Offers built here by value test the token endpoint: the issuer does not
care how an offer travelled."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from badges.conformance import schema_errors
from badges.holder_proof import holder_did_of_jwk
from badges.keyring import KeyRing
from badges.oid4vci import (
    CONFIGURATION_ID,
    PRE_AUTHORIZED_GRANT,
    credential_offer,
    offer_qr_png,
    offer_qr_svg,
    offer_url,
)
from badges.verify import verify_badge
from embedded.mail_sink import MailSink
from issuance.issuers import institution_key_dir, institution_ring, public_keys
from mail.wallet_offer import make_offer, store_offer
from operations import wallet_claims
from runtime import wallet_codes as codes
from runtime.settings import Settings
from tests.interop.test_interop import NODE_MODULES, cli, issue, node, served, write
from tests.test_badges_holder_proof import Holder

HERE = Path(__file__).resolve().parent
OFFER = re.compile(r"openid-credential-offer://\S+")
BY_REFERENCE = "openid-credential-offer://?credential_offer_uri="


def wallet(*args: str, timeout: float = 120) -> dict[str, Any]:
    """Run tests/interop/claim.mjs; its one JSON line."""
    executable = shutil.which("node")
    assert executable, "Node.js (node) is needed for the interoperability tests"
    assert NODE_MODULES.is_dir(), "run `npm ci --prefix tests/interop` (`make test` does it)"
    done = subprocess.run(
        [executable, str(HERE / "claim.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"claim.mjs printed nothing (exit {done.returncode}): {done.stderr}"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def badge_mail(sink: MailSink) -> EmailMessage:
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sink.messages()
    ]
    badges = [m for m in messages if any(p.get_filename() == "badge.png" for p in m.walk())]
    assert len(badges) == 1, [m["Subject"] for m in messages]
    message = badges[0]
    assert isinstance(message, EmailMessage)
    return message


def offer_of_mail(message: EmailMessage, expected_code: str) -> tuple[str, str]:
    """(offer URL, transaction code) as the intern reads them in the badge e-mail; checks the
    HTML part shows the same offer as a QR code (an inline image of that very URL)."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    words = text.get_content()
    urls = OFFER.findall(words)
    assert len(urls) == 1, words
    codes_in_mail = set(re.findall(r"\b\d{6}\b", words))
    assert expected_code in codes_in_mail, words
    related = [p for p in message.walk() if p.get_content_type() == "image/png"]
    qr = [p for p in related if p.get_filename() == "wallet-offer.png"]
    assert len(qr) == 1
    cid = qr[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()
    assert qr[0].get_content() == offer_qr_png(urls[0])
    # The offer travels by reference: a short URL, a small QR code.
    assert urls[0].startswith(BY_REFERENCE), urls[0]
    assert len(urls[0]) <= 125, urls[0]
    return urls[0], expected_code


def offer_uri(url: str) -> str:
    """The https address in an offer by reference, as a wallet reads it."""
    assert url.startswith(BY_REFERENCE), url
    [uri] = parse_qs(urlsplit(url).query)["credential_offer_uri"]
    return uri


def offer_refused(answer: dict[str, Any]) -> None:
    """What the wallet client says when the offer's address answers 404."""
    assert answer["ok"] is False, answer
    assert "unsuccessful response with status '404'" in answer["thrown"], answer


async def claims(pool: asyncpg.Pool, credential_id: str) -> list[tuple[str, str | None]]:
    rows = await pool.fetch(
        "SELECT event, reason FROM wallet_claims WHERE credential_id = $1 ORDER BY seq",
        credential_id,
    )
    return [(row["event"], row["reason"]) for row in rows]


async def test_a_wallet_claims_the_badge_and_verifies_it(
    settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink, tmp_path: Path
) -> None:
    credential_id, stored = await issue(pool, settings)
    badge = json.loads(stored)
    uuid = credential_id.removeprefix("urn:uuid:")
    secret = codes.claim_secret(settings)
    tx_code = codes.transaction_code(secret, uuid)
    url, code = offer_of_mail(badge_mail(mail_sink), tx_code)

    async with served(settings, tmp_path / "api.log") as base:
        assert offer_uri(url).startswith(f"{base}/oid4vci/offers/")
        claimed = wallet("claim", url, "--api", base, "--tx-code", code)
        assert claimed["ok"] is True, claimed
        # The client read the metadata as OpenID4VCI 1.0 and was asked for the code.
        assert claimed["version"] == "v1" or claimed["version"] == "V1", claimed["version"]
        assert claimed["configurationId"] == CONFIGURATION_ID
        assert claimed["txCodeAsked"] is True
        credential = claimed["credential"]
        holder = claimed["holder"]
        assert holder.startswith("did:key:z6Mk"), holder  # an Ed25519 did:key
        # Bound to the wallet's key; the same award, under its own id.
        assert credential["credentialSubject"]["id"] == holder
        assert credential["id"] != credential_id and credential["id"].startswith("urn:uuid:")
        assert credential["issuer"] == badge["issuer"]
        assert (
            credential["credentialSubject"]["achievement"]
            == (badge["credentialSubject"]["achievement"])
        )
        assert credential["credentialSubject"]["result"] == badge["credentialSubject"]["result"]
        assert credential["credentialStatus"] == badge["credentialStatus"]
        assert credential["proof"][0]["cryptosuite"] == "eddsa-rdfc-2022"
        # Still an Open Badge by 1EdTech's AchievementCredential schema.
        assert schema_errors(credential) == []
        # Digital Bazaar's verifier, the key fetched from the live issuer.
        verification = claimed["verification"]
        assert verification["verified"] is True, verification
        assert verification["proofVerified"] is True
        assert verification["verificationMethod"] == f"{badge['issuer']['id']}/keys/key-1"
        assert verification["fetched"][0] == verification["verificationMethod"]
        assert verification["revoked"] is False

        # The claim is on record against the award, with the holder and what was issued.
        row = await pool.fetchrow(
            "SELECT holder, claimed_credential_id, credential FROM wallet_claims "
            "WHERE credential_id = $1 AND event = 'credential_issued'",
            credential_id,
        )
        assert row is not None
        assert row["holder"] == holder and row["claimed_credential_id"] == credential["id"]
        assert json.loads(row["credential"]) == credential

        # The offer was fetched once: its address answers no more, to a wallet or anyone,
        # and the stored offer (its pre-authorized code) is gone.
        offer_refused(wallet("token", url, "--api", base, "--tx-code", code))
        async with httpx.AsyncClient(trust_env=False) as http:
            again = await http.get(offer_uri(url))
        assert again.status_code == 404 and again.json()["error"] == "invalid_request"
        assert "open the badge's page" in again.json()["error_description"]
        assert (
            await pool.fetchval("SELECT count(*) FROM wallet_offers WHERE offer IS NOT NULL") == 0
        )
        # The offer the wallet fetched, again (by value): its code is redeemed once.
        assert claimed["offer"]["credential_issuer"] == settings.public_base_url
        replayed = wallet("token", offer_url(claimed["offer"]), "--api", base, "--tx-code", code)
        assert replayed["ok"] is False, replayed
        assert replayed["status"] == 400
        assert replayed["error"] == "invalid_grant"
        assert "already been redeemed" in replayed["error_description"]
        assert (await claims(pool, credential_id))[-1] == ("code_refused", "already redeemed")

        # The badge's verification page offers it too (a fresh code at each view), without
        # the transaction code, which only the e-mail carries.
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            page = await http.get(f"/verify/{uuid}")
            assert page.status_code == 200
            links = re.findall(r'href="(openid-credential-offer://[^"]+)" id="wallet-offer-link"',
                               page.text)  # fmt: skip
            assert len(links) == 1, page.text
            assert tx_code not in page.text and "<svg" in page.text
            page_link = html.unescape(links[0])
            # By reference too, its QR code that very link (small: quick to draw and scan).
            assert page_link.startswith(BY_REFERENCE) and len(page_link) <= 125, page_link
            assert offer_qr_svg(page_link, scale=3) in page.text
            from_page = wallet("claim", page_link, "--api", base,
                               "--tx-code", code, "--key-as", "did:jwk")  # fmt: skip
            assert from_page["ok"] is True, from_page
            offer_refused(wallet("claim", page_link, "--api", base, "--tx-code", code))
            assert from_page["verification"]["verified"] is True
            assert from_page["credential"]["credentialSubject"]["id"] == from_page["holder"]
            # ... and so does its public page to share.
            shared = await http.get(f"/badges/{uuid}")
            assert shared.status_code == 200
            offered = re.findall(r'href="(openid-credential-offer://[^"]+)" id="wallet-offer-link"',
                                 shared.text)  # fmt: skip
            assert len(offered) == 1 and tx_code not in shared.text
            assert html.unescape(offered[0]).startswith(BY_REFERENCE)
            redeemed = wallet("token", html.unescape(offered[0]), "--api", base, "--tx-code", code)
            assert redeemed["ok"] is True, redeemed
            # An offer whose time is up is not served: the page's offers last 15 minutes.
            expired = make_offer(settings, uuid, timedelta(seconds=-1))
            await store_offer(pool, expired)
            offer_refused(wallet("token", expired.uri_url, "--api", base, "--tx-code", code))
            assert (await http.get(expired.uri)).status_code == 404

        # Revoking the badge revokes what the wallet holds (the same status list entry), and
        # the e-mailed badge stays what it was until then.
        held = write(tmp_path, "held.json", json.dumps(credential))
        assert node("di", held, "--api", base)["revoked"] is False
        done = await cli(settings, "badge", "revoke", credential_id, "--reason", "x")
        assert done.returncode == 0, done
        after = node("di", held, "--api", base)
        assert after["revoked"] is True and after["proofVerified"] is True, after
        # ... and a revoked badge is not offered any more.
        fresh = make_offer(settings, uuid, timedelta(minutes=5))
        refused = wallet("token", fresh.url, "--api", base, "--tx-code", code)
        assert refused["error"] == "invalid_grant", refused
        assert "revoked" in refused["error_description"]
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            page = await http.get(f"/verify/{uuid}")
            assert "openid-credential-offer://" not in page.text
            shared = await http.get(f"/badges/{uuid}")
            assert "openid-credential-offer://" not in shared.text


async def test_refused_codes_and_proofs(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A wrong transaction code, an expired code, a code not signed here; a c_nonce used twice
    and one the issuer never gave; each refused with its OAuth error and recorded. Another key
    type (ES256, as a bare jwk) is accepted."""
    credential_id, _ = await issue(pool, settings)
    uuid = credential_id.removeprefix("urn:uuid:")
    secret = codes.claim_secret(settings)
    tx_code = codes.transaction_code(secret, uuid)
    wrong = f"{(int(tx_code) + 1) % 10**6:06d}"

    async with served(settings, tmp_path / "api.log") as base:
        offer = make_offer(settings, uuid, timedelta(minutes=5))
        refused = wallet("token", offer.url, "--api", base, "--tx-code", wrong)
        assert refused["ok"] is False and refused["error"] == "invalid_grant", refused
        assert "transaction code is wrong" in refused["error_description"]
        # A wrong code does not spend the offer: the right one still redeems it.
        assert wallet("token", offer.url, "--api", base, "--tx-code", tx_code)["ok"] is True

        expired_code = codes.make_code(
            secret, uuid, timedelta(minutes=10), now=datetime.now(UTC) - timedelta(hours=1)
        )
        expired = offer_url(credential_offer(base, expired_code, codes.TX_CODE_LENGTH, "code"))
        refused = wallet("token", expired, "--api", base, "--tx-code", tx_code)
        assert refused["error"] == "invalid_grant", refused
        assert "expired" in refused["error_description"]

        forged_code = codes.make_code(b"another deployment's secret", uuid, timedelta(minutes=5))
        forged = offer_url(credential_offer(base, forged_code, codes.TX_CODE_LENGTH, "code"))
        refused = wallet("token", forged, "--api", base, "--tx-code", tx_code)
        assert refused["error"] == "invalid_grant", refused

        # An access token serves one credential, and so does a c_nonce; a nonce the issuer did
        # not make, or none at all, is refused. Each refusal leaves the token good.
        offer = make_offer(settings, uuid, timedelta(minutes=5))
        second = make_offer(settings, uuid, timedelta(minutes=5))
        stale = wallet("stale-nonce", offer.url, "--api", base, "--tx-code", tx_code,
                       "--second-offer", second.url)  # fmt: skip
        assert stale["first"]["ok"] is True, stale
        spent = stale["spent"]
        assert spent["ok"] is False and spent["status"] == 401, stale
        assert spent["error"] == "invalid_token", stale
        # ... and the client read RFC 6750's challenge from WWW-Authenticate.
        assert spent["challenge"] == {"scheme": "Bearer", "error": "invalid_token"}, stale
        assert stale["again"]["status"] == 400, stale
        assert stale["again"]["error"] == "invalid_nonce", stale
        assert stale["forged"]["error"] == "invalid_nonce", stale
        assert stale["missing"]["error"] == "invalid_proof", stale
        assert "no nonce" in stale["missing"]["error_description"], stale
        assert stale["last"]["ok"] is True, stale

        offer = make_offer(settings, uuid, timedelta(minutes=5))
        es256 = wallet(
            "claim", offer.url, "--api", base, "--tx-code", tx_code,
            "--alg", "ES256", "--key-as", "jwk",
        )  # fmt: skip
        assert es256["ok"] is True, es256
        assert es256["holder"].startswith("did:jwk:")
        assert es256["credential"]["credentialSubject"]["id"] == es256["holder"]
        assert es256["verification"]["verified"] is True, es256["verification"]

        # Proofs the wallet library would not make: wrong typ, wrong audience.
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            offer = make_offer(settings, uuid, timedelta(minutes=5))
            code = offer.offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"][
                "pre-authorized_code"
            ]
            token = await http.post(
                "/oid4vci/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
                    "pre-authorized_code": code,
                    "tx_code": tx_code,
                },
            )
            assert token.status_code == 200, token.text
            access = token.json()["access_token"]
            answer = await http.post(
                "/oid4vci/credential",
                json={"credential_configuration_id": CONFIGURATION_ID,
                      "proofs": {"jwt": ["e30.e30.AA"]}},
                headers={"Authorization": f"Bearer {access}"},
            )  # fmt: skip
            assert answer.status_code == 400
            assert answer.json()["error"] == "invalid_proof"
            bearer = {"Authorization": f"Bearer {access}"}
            for body, error in (
                ({"proofs": {"jwt": ["e30.e30.AA"]}}, "invalid_credential_request"),
                ({"credential_configuration_id": "Other"}, "unknown_credential_configuration"),
                ([], "invalid_credential_request"),
            ):
                answer = await http.post("/oid4vci/credential", json=body, headers=bearer)
                assert answer.status_code == 400 and answer.json()["error"] == error, body
            unauthorized = await http.post(
                "/oid4vci/credential",
                json={"credential_configuration_id": CONFIGURATION_ID},
                headers={"Authorization": "Bearer not-a-token"},
            )
            assert unauthorized.status_code == 401
            assert unauthorized.json()["error"] == "invalid_token"
            challenge = unauthorized.headers["www-authenticate"]
            assert challenge.startswith('Bearer error="invalid_token", error_description="')
            # RFC 6750 section 3.1: no token at all is answered without an error code.
            anonymous = await http.post(
                "/oid4vci/credential", json={"credential_configuration_id": CONFIGURATION_ID}
            )
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert "error" not in anonymous.json()

    events = await claims(pool, credential_id)
    assert ("code_refused", "wrong transaction code") in events
    assert ("code_refused", "expired") in events
    assert sum(1 for event, _ in events if event == "credential_issued") == 3
    assert ("proof_refused", "invalid_token: access token used before") in events
    assert any(e == "proof_refused" and r and r.startswith("invalid_nonce") for e, r in events)
    assert any(e == "proof_refused" and r and r.startswith("invalid_proof") for e, r in events)


async def test_sphereons_client_claims_the_badge_too(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Sphereon's @sphereon/oid4vci-client, a second wallet-side implementation, claims a live
    badge from an offer: it redeems the code with the transaction code, gets its c_nonce from
    the nonce endpoint, has its proof signed (an Ed25519 did:key) and receives the badge bound to
    that key, which Digital Bazaar's verifier verifies with the issuer's key fetched over HTTP."""
    credential_id, stored = await issue(pool, settings)
    badge = json.loads(stored)
    uuid = credential_id.removeprefix("urn:uuid:")
    tx_code = codes.transaction_code(codes.claim_secret(settings), uuid)
    async with served(settings, tmp_path / "api.log") as base:
        offer = make_offer(settings, uuid, timedelta(minutes=5))
        await store_offer(pool, offer)
        claimed = wallet("sphereon", offer.uri_url, "--api", base, "--tx-code", tx_code)
        assert claimed["ok"] is True, claimed
        assert claimed["configurationId"] == CONFIGURATION_ID
        assert claimed["tokenType"] == "Bearer"
        assert claimed["nonceEndpoint"] == f"{settings.public_base_url}/oid4vci/nonce"
        credential, holder = claimed["credential"], claimed["holder"]
        assert holder.startswith("did:key:z6Mk"), holder
        assert credential["credentialSubject"]["id"] == holder
        assert credential["issuer"] == badge["issuer"]
        assert credential["credentialStatus"] == badge["credentialStatus"]
        assert schema_errors(credential) == []
        verification = claimed["verification"]
        assert verification["verified"] is True, verification
        assert verification["verificationMethod"] == f"{badge['issuer']['id']}/keys/key-1"
        # The same offer again is refused to Sphereon's client as to any other: its address
        # answers once, and its code (sent by value) is redeemed once.
        fetched = wallet("sphereon", offer.uri_url, "--api", base, "--tx-code", tx_code)
        assert fetched["ok"] is False and "http code 404" in fetched["thrown"], fetched
        again = wallet("sphereon", offer.url, "--api", base, "--tx-code", tx_code)
        assert again["ok"] is False, again
        assert again["step"] == "token" and "status: 400" in again["message"], again
    issued = await pool.fetchrow(
        "SELECT holder, claimed_credential_id FROM wallet_claims "
        "WHERE credential_id = $1 AND event = 'credential_issued'",
        credential_id,
    )
    assert issued is not None
    assert issued["holder"] == holder and issued["claimed_credential_id"] == credential["id"]
    assert (await claims(pool, credential_id))[-1] == ("code_refused", "already redeemed")


async def test_a_claimed_copy_of_an_institutions_did_badge_is_signed_by_that_institution(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    """A badge an institution issued under its own DID, claimed after a rotation of its keys:
    the copy is signed by the institution's current key under its DID (not by the deployment's),
    and the deployment's verifier accepts it with that institution's keys only."""
    public = "https://badges.example.org"
    did_settings = settings.model_copy(
        update={"public_base_url": public, "did_web_institutions": "school-a"}
    )
    credential_id, stored = await issue(pool, did_settings, institution="school-a")
    did = "did:web:badges.example.org:issuers:school-a"
    assert json.loads(stored)["proof"][0]["verificationMethod"] == f"{did}#key-1"
    institution_ring(did_settings, "school-a").rotate(institution_key_dir(did_settings, "school-a"))
    uuid = credential_id.removeprefix("urn:uuid:")
    secret = codes.claim_secret(did_settings)
    code = codes.make_code(secret, uuid, timedelta(minutes=5))
    token = await wallet_claims.redeem_code(
        pool, did_settings, PRE_AUTHORIZED_GRANT, code, codes.transaction_code(secret, uuid)
    )
    holder = Holder("EdDSA")
    nonce = wallet_claims.new_nonce(did_settings)["c_nonce"]
    proof = holder.proof(
        payload={"aud": public, "iat": int(datetime.now(UTC).timestamp()), "nonce": nonce}
    )
    answer = await wallet_claims.issue_to_wallet(
        pool,
        did_settings,
        f"Bearer {token['access_token']}",
        {"credential_configuration_id": CONFIGURATION_ID, "proofs": {"jwt": [proof]}},
    )
    claimed = answer["credentials"][0]["credential"]
    assert claimed["issuer"]["id"] == did
    assert claimed["proof"][0]["verificationMethod"] == f"{did}#key-2"
    assert claimed["credentialSubject"]["id"] == holder_did_of_jwk(holder.jwk)
    text = json.dumps(claimed)
    assert verify_badge(text, issuer_keys=public_keys(did_settings)).verified
    deployment_only = KeyRing.load(did_settings.keys_path).public_keys()
    assert not verify_badge(text, issuer_keys=deployment_only).verified
