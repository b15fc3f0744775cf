"""The wallet offer by reference (OpenID for Verifiable Credential Issuance 1.0, section 4.1.3):
the badge e-mail and the badge's pages show `openid-credential-offer://?credential_offer_uri=`
and the address of a stored offer; `GET /oid4vci/offers/<reference>` answers it once, before
its code expires, never cached, and clears it from the records as it answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
import segno

from api.app import create_app
from badges.oid4vci import OFFERS_PATH, PRE_AUTHORIZED_GRANT
from embedded.ports import throwaway_settings
from mail.wallet_offer import Offer, make_offer, store_offer, stored_mail_offer
from models.ids import credential_uuid_for
from operations import wallet_claims
from runtime import wallet_codes as codes
from runtime.settings import Settings

UUID = "7df75bb7-7d94-5f3c-a315-8ff118ac372a"


@pytest_asyncio.fixture(loop_scope="session")
async def http(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, pool=pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_base_url) as client:
        yield client


def path_of(offer: Offer) -> str:
    """The path the wallet fetches, read from the offer by reference as a wallet reads it."""
    [uri] = parse_qs(urlsplit(offer.uri_url).query)["credential_offer_uri"]
    assert uri == offer.uri
    return urlsplit(uri).path


async def stored_row(pool: asyncpg.Pool, offer: Offer) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT * FROM wallet_offers WHERE offer_id = $1", codes.offer_id_of(offer.reference)
    )


def assert_gone(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": wallet_claims.OFFER_GONE,
    }
    assert "open the badge's page for a new offer" in answer.json()["error_description"]


async def test_an_offer_is_served_once_then_cleared(
    settings: Settings, pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    offer = make_offer(settings, UUID, codes.PAGE_OFFER_VALIDITY)
    await store_offer(pool, offer)
    row = await stored_row(pool, offer)
    assert row is not None and row["served_at"] is None and row["offer"] is not None
    # The reference itself is nowhere in the records.
    assert offer.reference not in str(dict(row))

    path = path_of(offer)
    assert path == f"{OFFERS_PATH}/{offer.reference}"
    answer = await http.get(path, headers={"Origin": "https://wallet.example.net"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    # A wallet in a browser may fetch it from its own origin, as it does the metadata.
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.json() == offer.offer
    grant = answer.json()["grants"][PRE_AUTHORIZED_GRANT]
    assert grant["tx_code"]["length"] == codes.TX_CODE_LENGTH

    # Served: marked so, and the offer (its pre-authorized code) is gone from the records.
    row = await stored_row(pool, offer)
    assert row is not None and row["offer"] is None and row["served_at"] is not None
    code = grant["pre-authorized_code"]
    dumped = await pool.fetchval("SELECT string_agg(t::text, ' ') FROM wallet_offers t")
    assert code not in dumped

    # A second fetch (a replay, another wallet) is refused.
    assert_gone(await http.get(path))


async def test_an_expired_offer_is_refused_and_deleted_when_a_new_one_is_stored(
    settings: Settings, pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    expired = make_offer(settings, UUID, timedelta(seconds=-1))
    await store_offer(pool, expired)
    assert_gone(await http.get(path_of(expired)))
    row = await stored_row(pool, expired)
    assert row is not None and row["served_at"] is None  # refused, not served

    served = make_offer(settings, UUID, timedelta(minutes=5))
    await store_offer(pool, served)
    assert (await http.get(path_of(served))).status_code == 200
    # The next offer stored clears the expired one (never served) ...
    fresh = make_offer(settings, UUID, timedelta(minutes=5))
    await store_offer(pool, fresh)
    assert await stored_row(pool, expired) is None
    # ... and keeps those still within their time, served or not.
    assert await stored_row(pool, served) is not None
    assert await stored_row(pool, fresh) is not None


@pytest.mark.parametrize(
    "reference",
    [
        "AAAAAAAAAAAAAAAA",  # well formed, never made
        "short",
        "A" * 300,
        "not%20a%20reference%2A%2A%2A%2A%2A%2A%2A",
    ],
    ids=["unknown", "too-short", "too-long", "other-characters"],
)
async def test_an_unknown_reference_is_refused_alike(
    http: httpx.AsyncClient, reference: str
) -> None:
    assert_gone(await http.get(f"{OFFERS_PATH}/{reference}"))


async def test_two_fetches_at_once_get_the_offer_once(
    settings: Settings, pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    offer = make_offer(settings, UUID, timedelta(minutes=5))
    await store_offer(pool, offer)
    answers = await asyncio.gather(*(http.get(path_of(offer)) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 404, 404, 404]


async def test_the_offers_expire_with_their_codes(settings: Settings, pool: asyncpg.Pool) -> None:
    """The e-mail's offer lasts as its code does (30 days), a page's 15 minutes; the offer by
    reference is short enough for a small QR code."""
    secret = codes.claim_secret(settings)
    link = await stored_mail_offer(pool, settings, "t-1", "de")
    assert link.startswith("openid-credential-offer://?credential_offer_uri=")
    page = await wallet_claims.page_offer(pool, settings, credential_uuid_for("t-1"), "it")
    assert page.url.startswith("openid-credential-offer://?credential_offer_uri=")
    assert "<svg" in page.qr_svg and page.minutes == 15
    rows = await pool.fetch(
        "SELECT credential_uuid::text, offer, expires_at, created_at FROM wallet_offers "
        "ORDER BY expires_at"
    )
    assert [r["credential_uuid"] for r in rows] == [credential_uuid_for("t-1")] * 2
    for row, validity in zip(
        rows, (codes.PAGE_OFFER_VALIDITY, codes.EMAIL_OFFER_VALIDITY), strict=True
    ):
        offer = asyncpg_json(row["offer"])
        code = offer["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
        assert codes.read_code(secret, code).expires_at == row["expires_at"]
        assert abs(row["expires_at"] - row["created_at"] - validity) < timedelta(seconds=5)
    for url in (link, page.url):
        assert len(url) <= 125, url
        assert segno.make(url, error="m", micro=False).version <= 7, url
    # A school's own https host name of ordinary length keeps the code at version 7 too.
    public = settings.model_copy(update={"public_base_url": "https://internflow.example.org"})
    hosted = make_offer(public, UUID, timedelta(minutes=5)).uri_url
    assert segno.make(hosted, error="m", micro=False).version <= 7, hosted


def asyncpg_json(value: str) -> dict[str, object]:
    answer: dict[str, object] = json.loads(value)
    return answer


async def test_the_offer_endpoint_says_503_while_postgresql_is_away(tmp_path: Path) -> None:
    settings = throwaway_settings(tmp_path)  # nothing listens on its PostgreSQL port
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get(f"{OFFERS_PATH}/{codes.make_offer_reference()}")
    assert answer.status_code == 503, answer.text
    assert settings.database_url not in answer.text


def test_each_offer_has_its_own_reference_stored_under_a_hash(tmp_path: Path) -> None:
    settings = throwaway_settings(tmp_path)
    offers = [make_offer(settings, UUID, timedelta(minutes=5)) for _ in range(50)]
    assert len({o.reference for o in offers}) == 50
    for offer in offers:
        assert codes.OFFER_REFERENCE.match(offer.reference)
        offer_id = codes.offer_id_of(offer.reference)
        assert len(offer_id) == 32 and offer.reference not in offer_id
        assert offer_id == codes.offer_id_of(offer.reference)
        # By value, the offer is still there for whoever builds one by hand.
        assert offer.url.startswith("openid-credential-offer://?credential_offer=")
        assert offer.uri == f"{settings.public_base_url}{OFFERS_PATH}/{offer.reference}"
