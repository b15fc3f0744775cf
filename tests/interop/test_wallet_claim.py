"""An independent wallet client claims a badge with OpenID for Verifiable Credential Issuance 1.0
(the pre-authorized code flow), against the live issuer.

The badge is issued by the real badge activity and e-mailed into the mail sink; the offer and the
transaction code are read from that e-mail; `internflow serve` answers on loopback; Node.js runs
the OpenWallet Foundation's `@openid4vc/openid4vci` client (tests/interop/claim.mjs), which
resolves the offer and the issuer's metadata, redeems the code, asks for a c_nonce, proves
possession of a key it makes itself and receives the credential, which Digital Bazaar's verifier
then checks, fetching the issuer's key over HTTP."""

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

import asyncpg
import httpx

from badges.conformance import schema_errors
from badges.oid4vci import CONFIGURATION_ID, credential_offer, offer_qr_png, offer_url
from embedded.mail_sink import MailSink
from mail.wallet_offer import make_offer
from runtime import wallet_codes as codes
from runtime.settings import Settings
from tests.interop.test_interop import NODE_MODULES, cli, issue, node, served, write

HERE = Path(__file__).resolve().parent
OFFER = re.compile(r"openid-credential-offer://\S+")


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
    return urls[0], expected_code


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

        # The same offer again: a pre-authorized code is redeemed once.
        replayed = wallet("token", url, "--api", base, "--tx-code", code)
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
            from_page = wallet("claim", html.unescape(links[0]), "--api", base,
                               "--tx-code", code, "--key-as", "did:jwk")  # fmt: skip
            assert from_page["ok"] is True, from_page
            assert from_page["verification"]["verified"] is True
            assert from_page["credential"]["credentialSubject"]["id"] == from_page["holder"]
            # ... and so does its public page to share.
            shared = await http.get(f"/badges/{uuid}")
            assert shared.status_code == 200
            offered = re.findall(r'href="(openid-credential-offer://[^"]+)" id="wallet-offer-link"',
                                 shared.text)  # fmt: skip
            assert len(offered) == 1 and tx_code not in shared.text
            redeemed = wallet("token", html.unescape(offered[0]), "--api", base, "--tx-code", code)
            assert redeemed["ok"] is True, redeemed

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

        # One c_nonce serves one credential; a nonce the issuer did not make is refused.
        offer = make_offer(settings, uuid, timedelta(minutes=5))
        stale = wallet("stale-nonce", offer.url, "--api", base, "--tx-code", tx_code)
        assert stale["first"]["ok"] is True, stale
        assert stale["again"]["ok"] is False and stale["again"]["error"] == "invalid_nonce", stale
        assert stale["forged"]["error"] == "invalid_nonce", stale

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
            unauthorized = await http.post(
                "/oid4vci/credential",
                json={"credential_configuration_id": CONFIGURATION_ID},
                headers={"Authorization": "Bearer not-a-token"},
            )
            assert unauthorized.status_code == 401
            assert unauthorized.json()["error"] == "invalid_token"
            assert "invalid_token" in unauthorized.headers["www-authenticate"]

    events = await claims(pool, credential_id)
    assert ("code_refused", "wrong transaction code") in events
    assert ("code_refused", "expired") in events
    assert sum(1 for event, _ in events if event == "credential_issued") == 2
    assert any(e == "proof_refused" and r and r.startswith("invalid_nonce") for e, r in events)
    assert any(e == "proof_refused" and r and r.startswith("invalid_proof") for e, r in events)
