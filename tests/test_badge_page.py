"""The earner's side of a badge, in a real browser (headless Chromium) on a real stack: the badge
e-mail leads to the badge's public page, whose preview tags, share links and LinkedIn "Add to
profile" link are exactly what the sites document; its PNG, SVG and JSON downloads verify with
`internflow verify` run as a user runs it; and the intern's own link from the e-mail shows or
hides their name and takes the page down and back up, each choice recorded."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Page

from badges.bake import unbake
from runtime.badge_links import make_badge_token
from tests.helpers import eventually, load_outbox
from tests.test_api_harness import Api, api, finished_internship
from tests.test_browser import SCREENSHOTS, browser, site
from tests.test_cli_verify import Cli

__all__ = ["api", "browser", "site"]

PAGE = re.compile(r"https?://[^\s\"'<>]+/badges/[0-9a-f-]{36}")
CHOICES = re.compile(r"https?://[^\s\"'<>]+/b/[A-Za-z0-9_.=-]+")
ADD_TO_PROFILE = re.compile(r"https://www\.linkedin\.com/profile/add\?[^\s\"'<>]+")


async def _badge_mail(site: Api, internship_id: str, to: str) -> EmailMessage:
    found: list[EmailMessage] = []

    async def arrived() -> bool:
        found[:] = [
            m
            for m in load_outbox(site.settings)
            if m["X-Internflow-Internship"] == internship_id
            and m["X-Internflow-Kind"] == "badge"
            and m["To"].addresses[0].addr_spec == to
        ]
        return bool(found)

    await eventually(arrived, "the badge e-mail arrived", within=30)
    return found[0]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _q(value: str) -> str:
    return quote(value, safe="")


async def _meta(page: Page, attribute: str, name: str) -> str | None:
    return await page.get_attribute(f"meta[{attribute}='{name}']", "content")


async def _shot(page: Page, name: str) -> None:
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.timeout(240)
async def test_the_badge_page_previews_shares_and_downloads_badges_that_verify(
    site: Api, browser: Browser, tmp_path: Path
) -> None:
    plan = await finished_internship(site)
    message = await _badge_mail(site, plan.internship_id, plan.intern.email)
    text = " ".join(_text(message).split())
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    base = site.settings.public_base_url
    stored = await site.pool.fetchval(
        "SELECT credential FROM credentials WHERE internship_id = $1", plan.internship_id
    )
    credential = json.loads(stored)
    uuid = credential["id"].removeprefix("urn:uuid:")
    url = f"{base}/badges/{uuid}"
    # The e-mail's button and text lead to the page; the text carries the share links.
    assert set(PAGE.findall(text)) == {url} and f'href="{url}"' in str(html.get_content())
    issued = datetime.fromisoformat(credential["validFrom"])
    expected_add = (
        "https://www.linkedin.com/profile/add?startTask=CERTIFICATION_NAME"
        f"&name={_q(plan.badge.name)}&organizationName={_q(plan.institution.name)}"
        f"&issueYear={issued.year}&issueMonth={issued.month}"
        f"&certUrl={_q(url)}&certId={uuid}"
    )
    assert ADD_TO_PROFILE.findall(text) == [expected_add]
    assert f"https://www.linkedin.com/sharing/share-offsite/?url={_q(url)}" in text
    assert f"https://www.facebook.com/sharer/sharer.php?u={_q(url)}" in text

    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None and response.status == 200
    # What a link preview reads: absolute URLs, the badge's own words and image.
    assert await _meta(page, "property", "og:title") == plan.badge.name
    assert await _meta(page, "property", "og:description") == plan.badge.description
    assert await _meta(page, "property", "og:url") == url
    assert await _meta(page, "property", "og:image") == f"{url}/badge.png"
    assert await _meta(page, "name", "twitter:card") == "summary"
    assert await _meta(page, "name", "twitter:title") == plan.badge.name
    assert await _meta(page, "name", "twitter:image") == f"{url}/badge.png"
    image = await page.request.get(f"{url}/badge.png")
    assert image.ok and image.headers["content-type"] == "image/png"

    main = await page.inner_text("main")
    assert "Awarded to a verified recipient" in main
    assert plan.intern.name not in await page.content()
    assert await page.get_attribute("#status", "data-status") == "verified"
    assert plan.institution.name in main
    rows = page.locator("#outcomes tr[data-outcome]")
    assert await rows.count() == len(plan.learning_outcomes)
    for index, outcome in enumerate(plan.learning_outcomes):
        cells = rows.nth(index).locator("td")
        assert await cells.nth(0).inner_text() == outcome.title
        assert (await cells.nth(1).inner_text()).startswith("Good")  # the lower assessment
        assert await cells.nth(2).inner_text() == str(outcome.eqf_level)

    shares = {
        "#add-to-linkedin": expected_add,
        "#share-linkedin": f"https://www.linkedin.com/sharing/share-offsite/?url={_q(url)}",
        "#share-x": "https://x.com/intent/tweet?text="
        + _q(f"I earned the Open Badge “{plan.badge.name}” from {plan.institution.name}.")
        + f"&url={_q(url)}",
        "#share-facebook": f"https://www.facebook.com/sharer/sharer.php?u={_q(url)}",
        "#share-email": "mailto:?subject="
        + _q(f"My Open Badge: {plan.badge.name}")
        + "&body="
        + _q(
            f"I earned the Open Badge “{plan.badge.name}” from {plan.institution.name}. "
            f"See it and check it here:\n\n{url}"
        ),
    }
    for selector, expected in shares.items():
        assert await page.get_attribute(selector, "href") == expected, selector
    embed = await page.input_value("#embed")
    assert f'<a href="{url}"' in embed and f'<img src="{url}/badge.png"' in embed
    await _shot(page, "badge-page-1280")

    # Each download verifies as a user verifies it, and carries this credential.
    cli = Cli(site.settings)
    for selector, name in (
        ("#download-png", "badge.png"),
        ("#download-svg", "badge.svg"),
        ("#download-json", "credential.json"),
    ):
        async with page.expect_download() as waiting:
            await page.click(selector)
        download = await waiting.value
        assert download.suggested_filename == name
        path = tmp_path / name
        await download.save_as(path)
        data = path.read_bytes()
        if name != "credential.json":
            assert json.loads(unbake(data))["id"] == credential["id"]
        else:
            assert json.loads(data) == credential
        result = await cli("verify", str(path), "--email", plan.intern.email, "--json")
        assert result.code == 0, result
        assert result.json()["verdict"] == "verified", result.out
    assert (tmp_path / "badge.svg").read_text().count("<openbadges:credential>") == 1

    # On a phone the page does not scroll sideways.
    phone = await browser.new_context(viewport={"width": 390, "height": 844})
    small = await phone.new_page()
    await small.goto(url)
    assert await small.evaluate("document.scrollingElement.scrollWidth") <= 390
    await _shot(small, "badge-page-390")
    await phone.close()

    # The status is live: revoked, the page says so and stops offering to share.
    revoked = await site.http.post(
        f"/api/admin/credentials/{uuid}/revoke",
        json={"reason": "awarded by mistake"},
        headers=site.admin,
    )
    assert revoked.status_code == 200, revoked.text
    await page.reload()
    assert await page.get_attribute("#status", "data-status") == "revoked"
    assert await page.locator("#share").count() == 0
    await context.close()


@pytest.mark.timeout(240)
async def test_the_intern_shows_their_name_and_takes_the_page_down_from_the_e_mail(
    site: Api, browser: Browser
) -> None:
    plan = await finished_internship(site)
    message = await _badge_mail(site, plan.internship_id, plan.intern.email)
    text = _text(message)
    [url] = set(PAGE.findall(" ".join(text.split())))
    [link] = CHOICES.findall(text)
    credential_id = await site.pool.fetchval(
        "SELECT credential_id FROM credentials WHERE internship_id = $1", plan.internship_id
    )

    context = await browser.new_context(viewport={"width": 390, "height": 844})
    choices = await context.new_page()
    badge = await context.new_page()
    response = await choices.goto(link)
    assert response is not None and response.status == 200
    state = choices.locator("#page-state")
    assert await state.get_attribute("data-name") == "hidden"
    assert await state.get_attribute("data-published") == "yes"

    await choices.click("#show-name")
    await choices.wait_for_selector("#done[data-choice='show_name']")
    assert await state.get_attribute("data-name") == "shown"
    await badge.goto(url)
    assert await badge.inner_text("#recipient") == f"Awarded to {plan.intern.name}"
    assert await choices.evaluate("document.scrollingElement.scrollWidth") <= 390
    await _shot(choices, "badge-choices-390")

    await choices.click("#hide-name")
    await choices.wait_for_selector("#done[data-choice='hide_name']")
    await badge.reload()
    assert await badge.inner_text("#recipient") == "Awarded to a verified recipient"
    assert plan.intern.name not in await badge.content()

    await choices.click("#take-down")
    await choices.wait_for_selector("#done[data-choice='take_down']")
    gone = await badge.goto(url)
    assert gone is not None and gone.status == 404
    assert await badge.locator("#gone").count() == 1
    for path in ("badge.png", "badge.svg", "credential"):
        assert (await badge.request.get(f"{url}/{path}")).status == 404, path
    # The verification page and the credential's JSON are gone too (decision 0044); the badge
    # itself is still valid, and what a holder needs to check it stays
    # (tests/test_badge_take_down.py).
    uuid = url.rsplit("/", 1)[1]
    assert (await site.http.get(f"/verify/{uuid}")).status_code == 404
    assert (await site.http.get(f"/credentials/{uuid}.json")).status_code == 404

    await choices.click("#publish")
    await choices.wait_for_selector("#done[data-choice='publish']")
    back = await badge.goto(url)
    assert back is not None and back.status == 200
    assert await choices.locator("#history li").count() == 4
    await context.close()

    recorded = await site.pool.fetch(
        "SELECT choice FROM badge_page_choices WHERE credential_id = $1 ORDER BY seq",
        credential_id,
    )
    assert [row["choice"] for row in recorded] == ["show_name", "hide_name", "take_down", "publish"]

    # The link is the intern's alone: altered, or a party link in its place, it is refused and
    # changes nothing.
    token = link.rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    party = site.party(plan.internship_id, "intern", "approve")["Authorization"].split()[1]
    for bad in (altered, party):
        refused = await site.http.post(f"/b/{bad}", data={"choice": "take_down"})
        assert refused.status_code == 401, refused.text
    other = make_badge_token(b"another deployment's secret key!", uuid)
    assert (await site.http.get(f"/b/{other}")).status_code == 401
    assert (await site.http.get(url)).status_code == 200


async def test_the_badge_page_s_language_and_a_wrong_choice_as_pages(api: Api) -> None:
    """The public page of a badge written in Italian: a browser that asks for no language of
    ours reads it all in Italian (`lang="it"`); one that asks for English reads the page in
    English with the badge's own texts marked Italian. A form on the intern's page that sends
    no choice, or one the page does not offer, gets the error page in the intern's language,
    not JSON."""
    plan = await finished_internship(api, language="it", badge_language="it")
    message = await _badge_mail(api, plan.internship_id, plan.intern.email)
    text = _text(message)
    [url] = set(PAGE.findall(" ".join(text.split())))
    [link] = CHOICES.findall(text)
    path = url.removeprefix(api.settings.public_base_url)

    unasked = await api.http.get(path, headers={"Accept": "text/html"})
    assert unasked.status_code == 200, unasked.text
    assert '<html lang="it">' in unasked.text
    assert "Condividi questo badge" in unasked.text and "Share this badge" not in unasked.text
    english = await api.http.get(path, headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.text and "Share this badge" in english.text
    assert re.search(r'<h1 lang="it">[^<]*</h1>', english.text), english.text
    assert 'id="outcomes"' in english.text and '<span lang="it">' in english.text
    german = await api.http.get(path, headers={"Accept-Language": "de"})
    assert '<html lang="de">' in german.text and '<h1 lang="it">' in german.text

    choices = link.removeprefix(api.settings.public_base_url)
    browser_post = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": "en"}
    for form in ({"choice": "delete_everything"}, {}):
        refused = await api.http.post(choices, data=form, headers=browser_post)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("text/html"), refused.headers
        assert '<html lang="it">' in refused.text, refused.text  # the intern's language
        assert "Questo indirizzo non è valido" in refused.text, refused.text
        assert '"detail"' not in refused.text
    # Nothing was recorded: the page still shows what it did.
    page = await api.http.get(choices)
    assert page.status_code == 200 and 'data-published="yes"' in page.text
