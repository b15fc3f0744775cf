"""The badge e-mail's HTML part on a phone (390 px, Chromium): nothing scrolls sideways, every
button shows its words whole and inside the screen, the wallet offer's QR code shows (its inline
image given as a mail reader gives it). Screenshots, Italian and German, into
`internflow-screenshots/` in the system's temporary directory."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

import pytest
from playwright.async_api import Browser

from runtime.settings import Settings
from tests.conftest import make_settings
from tests.test_badge_mail import compose_badge_mail, html_of
from tests.test_browser import browser

__all__ = ["browser"]

SCREENSHOTS = Path(tempfile.gettempdir()) / "internflow-screenshots"
WIDTH = 390


@pytest.fixture(scope="module")
def mail_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("badge-mail-phone"))


@pytest.mark.parametrize("language", ["it", "de", "en", "fr", "es"])
async def test_the_badge_e_mail_fits_a_phone_with_its_buttons_and_qr_code(
    browser: Browser, mail_settings: Settings, language: str
) -> None:
    message, _ = compose_badge_mail(mail_settings, language)
    html = html_of(message)
    # The inline image where the mail reader shows it: its Content-ID's part, as data.
    for part in message.walk():
        if part["Content-ID"]:
            cid = str(part["Content-ID"]).strip("<>")
            data = base64.b64encode(part.get_content()).decode()
            html = html.replace(f"cid:{cid}", f"data:{part.get_content_type()};base64,{data}")
    assert "cid:" not in html

    context = await browser.new_context(viewport={"width": WIDTH, "height": 844})
    try:
        page = await context.new_page()
        await page.set_content(html)
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= WIDTH, width
        # Every link is whole on the screen: inside its width, its words not cut.
        boxes = await page.eval_on_selector_all(
            "a",
            """links => links.map(a => {
                const box = a.getBoundingClientRect();
                return {text: a.innerText.trim(), left: box.left, right: box.right,
                        height: box.height,
                        clipped: getComputedStyle(a).display !== "inline"
                            && a.scrollWidth > a.clientWidth + 1};
            })""",
        )
        assert len(boxes) == 10
        for box in boxes:
            assert box["text"] and box["height"] > 0, box
            assert box["left"] >= 0 and box["right"] <= WIDTH, box
            assert not box["clipped"], box
        # The QR code shows, large enough to scan from the screen.
        qr = await page.eval_on_selector(
            "img",
            "img => ({loaded: img.complete && img.naturalWidth > 0,"
            " width: img.getBoundingClientRect().width})",
        )
        assert qr["loaded"] and qr["width"] >= 200, qr
        if language in ("it", "de"):
            await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
            path = SCREENSHOTS / f"badge-mail-{language}-390.png"
            await page.screenshot(path=str(path), full_page=True)
    finally:
        await context.close()
