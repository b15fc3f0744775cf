"""A badge template's own image: a school's PNG or SVG (checked by its content, kept by its hash,
served to verifiers, baked into the badge), or, when it names none, an image drawn from the
school's name, the badge's name and the EQF level in a colour of the school's own. Refused images
say which field and what to change, and nothing is recorded."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import struct
import zlib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from PIL import Image
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from badges.artwork import (
    MAX_BYTES,
    ImageRefused,
    checked_image,
    default_colour,
    draw_png,
    draw_svg,
)
from badges.bake import unbake
from models.plan import InternshipPlan
from models.status import Phase
from operations.badge_images import rehearsed_plan_image
from operations.internships import PlanRefused
from runtime.settings import Settings
from tests.helpers import eventually, load_outbox, running_worker, wait_for_phase
from tests.test_api_harness import Api, api, detail, finished_internship, planned
from tests.test_cli import cli_for
from tests.test_start_rules import flat, workflow_exists

__all__ = ["api"]

ORIGIN = "https://wallet.example.net"


def png(width: int = 300, height: int = 300, colour: str = "#2a6f97") -> bytes:
    image = Image.new("RGB", (width, height), colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


SCHOOL_SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400">'
    b'<circle cx="200" cy="200" r="190" fill="#b5179e"/>'
    b'<text x="200" y="210" text-anchor="middle" fill="#fff">IPSIA</text></svg>\n'
)


def data_uri(content: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode()}"


def with_badge(plan: InternshipPlan, **fields: Any) -> InternshipPlan:
    return plan.model_copy(update={"badge": plan.badge.model_copy(update=fields)})


# -- Checked, drawn: no parts needed ----------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


REFUSED = {
    "not an image": (b"GIF89a\x01\x00\x01\x00", "is neither a PNG nor an SVG image"),
    "a text file": (b"just some text, named badge.png", "is neither a PNG nor an SVG image"),
    "too small": (png(50, 50), "is 50x50 pixels: each side must be 200 to 2048 pixels"),
    "too large a side": (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0)),
        "is 4000x4000 pixels",
    ),
    "too wide": (png(600, 300), "a badge image must be square or nearly"),
    "too many bytes": (b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_BYTES, "more than 512 KiB"),
    "a script": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><script>alert(1)</script>'
        b"</svg>",
        "is an SVG with a <script> element",
    ),
    "an event handler": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)"/>',
        "is an SVG with an event handler (onload)",
    ),
    "an external image": (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        b'viewBox="0 0 10 10"><image xlink:href="https://tracker.example.com/p.png"/></svg>',
        "refers to something outside itself",
    ),
    "an external style": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><style>'
        b"@import url(https://fonts.example.com/f.css);</style></svg>",
        "whose style loads something outside itself",
    ),
    "entities": (
        b'<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg" '
        b'viewBox="0 0 10 10"><text>&a;</text></svg>',
        "is an SVG with a DTD or entities",
    ),
    "XML that is no SVG": (b"<html><body/></html>", "is XML but not an SVG"),
    "a broken PNG": (png()[:60], "cannot carry a credential"),
}


@pytest.mark.pure
@pytest.mark.parametrize("case", REFUSED)
def test_an_image_that_cannot_be_a_badge_image_is_refused_saying_why(case: str) -> None:
    content, said = REFUSED[case]
    with pytest.raises(ImageRefused) as refused:
        checked_image(content)
    assert said in str(refused.value)


@pytest.mark.pure
def test_png_and_svg_are_told_by_their_content() -> None:
    checked = checked_image(png(256, 240))
    assert (checked.media_type, checked.width, checked.height) == ("image/png", 256, 240)
    assert checked_image(SCHOOL_SVG).media_type == "image/svg+xml"
    local = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><use href="#a"/></svg>'
    )
    assert checked_image(local).media_type == "image/svg+xml"


@pytest.mark.pure
def test_a_name_with_accents_is_drawn_as_written() -> None:
    """The PNG's font has the letters of European schools' names: Zürich is not drawn as
    Zurich, nor Lycée as Lycee (a font without them draws both the same)."""
    for written, plain in (("Zürich", "Zurich"), ("Lycée", "Lycee"), ("Łódź", "Lodz")):
        accented = draw_png(f"Scuola {written}", "Mechatronik", 5, "#1f6f43")
        unaccented = draw_png(f"Scuola {plain}", "Mechatronik", 5, "#1f6f43")
        assert accented != unaccented, written


@pytest.mark.pure
def test_three_templates_draw_three_different_images_that_fit() -> None:
    templates = [
        ("Istituto Professionale Bassano", "Work-based learning: web development", 4, None, "a"),
        ("Berufsfachschule Zürich", "Mechatronik", 5, "#1f6f43", "b"),
        ("Lycée <Lumière> & Co", "Accueil & tourisme " * 10, 3, "#7a1f5c", "c"),
    ]
    pngs, svgs = [], []
    for institution, title, level, colour, institution_id in templates:
        chosen = colour or default_colour(institution_id)
        drawn_png = draw_png(institution, title, level, chosen)
        drawn_svg = draw_svg(institution, title, level, chosen)
        assert checked_image(drawn_png).media_type == "image/png"
        assert checked_image(drawn_svg).media_type == "image/svg+xml"
        assert Image.open(io.BytesIO(drawn_png)).size == (512, 512)
        # The same template draws the same image.
        assert draw_png(institution, title, level, chosen) == drawn_png
        text = drawn_svg.decode()
        assert f"EQF {level}" in text and chosen in text
        pngs.append(drawn_png)
        svgs.append(text)
    assert len(set(pngs)) == len(set(svgs)) == 3
    # Escaped, and a long title wrapped into lines and cut short to fit.
    assert "LYCÉE &lt;LUMIÈRE&gt; &amp;" in svgs[2]
    lines = re.findall(r'font-weight="bold">([^<]*)</text>', svgs[2])
    assert 2 <= len(lines) <= 5 and lines[-2].endswith("…")
    # The PNG shows the disc in the template's colour.
    centre = Image.open(io.BytesIO(pngs[1])).convert("RGB").getpixel((60, 256))
    assert centre == (0x1F, 0x6F, 0x43)


@pytest.mark.pure
def test_schools_get_colours_of_their_own_and_a_colour_is_checked() -> None:
    colours = {default_colour(f"school-{n}") for n in range(50)}
    assert len(colours) == 50
    assert default_colour("ipsia-bassano") == default_colour("ipsia-bassano")
    plan = planned()
    data = plan.model_dump(mode="json")
    data["badge"]["colour"] = "red"
    with pytest.raises(ValidationError) as refused:
        InternshipPlan.model_validate(data)
    assert refused.value.errors()[0]["loc"] == ("badge", "colour")
    data["badge"]["colour"] = "#A1B2C3"
    assert InternshipPlan.model_validate(data).badge.colour == "#a1b2c3"


# -- Through the API, to the badge -------------------------------------------------------------


async def _badge_mail(api: Api, internship_id: str) -> EmailMessage:
    found: list[EmailMessage] = []

    async def arrived() -> bool:
        found[:] = [
            m
            for m in load_outbox(api.settings)
            if m["X-Internflow-Internship"] == internship_id and m["X-Internflow-Kind"] == "badge"
        ]
        return bool(found)

    await eventually(arrived, "the badge e-mail arrived", within=30)
    return found[0]


async def _issued(api: Api, badge: dict[str, Any]) -> tuple[InternshipPlan, dict[str, Any], str]:
    plan = await finished_internship(api, badge=badge)
    stored = await api.pool.fetchval(
        "SELECT credential FROM credentials WHERE internship_id = $1", plan.internship_id
    )
    credential = json.loads(stored)
    uuid = credential["id"].removeprefix("urn:uuid:")
    return plan, credential, uuid


async def _served_image(api: Api, credential: dict[str, Any]) -> tuple[str, bytes]:
    url = credential["credentialSubject"]["achievement"]["image"]["id"]
    base = api.settings.public_base_url.rstrip("/")
    assert re.fullmatch(re.escape(base) + r"/images/sha256-[0-9a-f]{64}\.(png|svg)", url), url
    served = await api.http.get(url.removeprefix(base), headers={"Origin": ORIGIN})
    assert served.status_code == 200, served.text
    assert served.headers["access-control-allow-origin"] == "*"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "etag" in served.headers
    digest = url.rsplit("sha256-", 1)[1].split(".")[0]
    assert hashlib.sha256(served.content).hexdigest() == digest
    return served.headers["content-type"], served.content


@pytest.mark.timeout(240)
async def test_a_schools_png_svg_and_drawn_images_are_served_and_baked(api: Api) -> None:
    school_png = png(320, 300, "#2a6f97")
    images: dict[str, bytes] = {}

    # 1. The school's PNG: served as given, the e-mail's badge.png and the page's downloads are
    # that image with the credential baked in.
    plan, credential, uuid = await _issued(api, {"image": data_uri(school_png)})
    recorded = await api.pool.fetchval(
        "SELECT plan->'badge'->>'image' FROM plan_versions WHERE internship_id = $1",
        plan.internship_id,
    )
    assert recorded == f"sha256-{hashlib.sha256(school_png).hexdigest()}.png"
    media, images["png"] = await _served_image(api, credential)
    assert (media, images["png"]) == ("image/png", school_png)
    mail = await _badge_mail(api, plan.internship_id)
    attached = {part.get_filename(): part for part in mail.iter_attachments()}
    baked = attached["badge.png"].get_payload(decode=True)
    assert isinstance(baked, bytes)
    assert json.loads(unbake(baked)) == credential
    assert Image.open(io.BytesIO(baked)).tobytes() == Image.open(io.BytesIO(school_png)).tobytes()
    page_png = await api.http.get(f"/badges/{uuid}/badge.png")
    assert json.loads(unbake(page_png.content)) == credential
    page_svg = await api.http.get(f"/badges/{uuid}/badge.svg")
    assert json.loads(unbake(page_svg.content)) == credential
    assert base64.b64encode(school_png) in page_svg.content

    # 2. The school's SVG: served with a policy that runs nothing; the e-mail and the page bake
    # the SVG itself (there is no PNG of it).
    plan, credential, uuid = await _issued(api, {"image": data_uri(SCHOOL_SVG, "image/svg+xml")})
    media, images["svg"] = await _served_image(api, credential)
    assert (media, images["svg"]) == ("image/svg+xml", SCHOOL_SVG)
    url = credential["credentialSubject"]["achievement"]["image"]["id"]
    served = await api.http.get("/images/" + url.split("/images/")[1])
    assert "sandbox" in served.headers["content-security-policy"]
    mail = await _badge_mail(api, plan.internship_id)
    attached = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(attached) == {"badge.svg", "credential.json"}
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    said = " ".join(str(text.get_content()).split())
    # (In the intern's language: "l'immagine badge.svg contiene la credenziale firmata".)
    assert "immagine badge.svg contiene" in said and "badge.png" not in said
    assert f"/badges/{uuid}/badge.svg" in said
    baked = attached["badge.svg"].get_payload(decode=True)
    assert isinstance(baked, bytes)
    assert json.loads(unbake(baked)) == credential
    assert b'<circle cx="200" cy="200" r="190" fill="#b5179e"/>' in baked
    page_svg = await api.http.get(f"/badges/{uuid}/badge.svg")
    assert json.loads(unbake(page_svg.content)) == credential
    missing = await api.http.get(f"/badges/{uuid}/badge.png")
    assert missing.status_code == 404 and "badge.svg" in missing.text
    page = await api.http.get(f"/badges/{uuid}")
    assert f"/badges/{uuid}/badge.svg" in page.text
    assert 'id="download-png"' not in page.text

    # 3. None named: drawn from the school's name, the badge's name and the EQF level, in the
    # template's colour; the page's SVG is the drawn SVG itself.
    plan, credential, uuid = await _issued(api, {"image": None, "colour": "#1f6f43"})
    media, images["drawn"] = await _served_image(api, credential)
    assert media == "image/png"
    assert images["drawn"] == draw_png(
        plan.institution.name, plan.badge.name, plan.eqf_level(), "#1f6f43"
    )
    mail = await _badge_mail(api, plan.internship_id)
    attached = {part.get_filename(): part for part in mail.iter_attachments()}
    baked = attached["badge.png"].get_payload(decode=True)
    assert isinstance(baked, bytes)
    assert json.loads(unbake(baked)) == credential
    page_svg = await api.http.get(f"/badges/{uuid}/badge.svg")
    assert json.loads(unbake(page_svg.content)) == credential
    assert b"EQF 4" in page_svg.content and b"#1f6f43" in page_svg.content

    assert len(set(images.values())) == 3


@pytest.mark.parametrize(
    ("image", "said"),
    [
        (data_uri(png(60, 60)), "badge.image is 60x60 pixels: each side must be 200 to 2048"),
        (
            data_uri(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9" onclick="x()"/>'),
            "badge.image is an SVG with an event handler (onclick): remove it",
        ),
        ("data:image/png;base64,%%%", "badge.image has base64 content that does not decode"),
        ("sha256-" + "0" * 64 + ".png", "names no image kept here"),
    ],
)
async def test_a_refused_image_names_the_field_and_nothing_is_recorded(
    api: Api, image: str, said: str
) -> None:
    plan = with_badge(planned(), image=image)
    kept = await api.pool.fetchval("SELECT count(*) FROM badge_images")
    refused = await api.start(plan)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["errors"] == [{"field": "body.badge.image", "message": body["detail"]}]
    assert said in detail(refused)
    assert await api.pool.fetchval("SELECT count(*) FROM badge_images") == kept
    assert not await workflow_exists(api.client, plan.internship_id)
    assert await api.recorded(plan.internship_id) == (0, 0)


async def test_the_same_image_again_is_the_same_plan(api: Api) -> None:
    """Starting again with the same image is harmless: the plan names the same kept image."""
    plan = with_badge(planned(), image=data_uri(png(240, 240, "#ffb703")))
    assert (await api.start(plan)).status_code == 201
    again = await api.start(plan)
    assert again.status_code == 200, again.text
    assert await api.pool.fetchval("SELECT count(*) FROM badge_images") >= 1


async def test_the_cli_reads_the_image_file_beside_the_plan(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    cli = cli_for(time_skipping_env, settings)
    plan = planned()
    (tmp_path / "our-badge.svg").write_bytes(SCHOOL_SVG)
    (tmp_path / "tiny.png").write_bytes(png(40, 40))
    data = plan.model_dump(mode="json")
    data["badge"]["image"] = "our-badge.svg"
    (tmp_path / "plan.json").write_text(json.dumps(data))
    data["internship_id"] = f"{plan.internship_id}-tiny"
    data["badge"]["image"] = "tiny.png"
    (tmp_path / "tiny.json").write_text(json.dumps(data))
    data["internship_id"] = f"{plan.internship_id}-gone"
    data["badge"]["image"] = "images/gone.png"
    (tmp_path / "gone.json").write_text(json.dumps(data))
    async with running_worker(time_skipping_env.client, settings, pool):
        code, out = await cli("start", str(tmp_path / "plan.json"))
        assert code == 0, out
        code, out = await cli("start", str(tmp_path / "tiny.json"))
        assert code == 2, out
        assert "badge.image is 40x40 pixels: each side must be 200 to 2048 pixels" in flat(out)
        code, out = await cli("start", str(tmp_path / "gone.json"))
        assert code == 2, out
        assert "badge.image: there is no file" in flat(out)
    digest = hashlib.sha256(SCHOOL_SVG).hexdigest()
    assert (
        await pool.fetchval("SELECT media_type FROM badge_images WHERE digest = $1", digest)
        == "image/svg+xml"
    )
    assert not await workflow_exists(time_skipping_env.client, f"{plan.internship_id}-tiny")

    async def recorded() -> bool:
        named = await pool.fetchval(
            "SELECT plan->'badge'->>'image' FROM plan_versions WHERE internship_id = $1",
            plan.internship_id,
        )
        return bool(named == f"sha256-{digest}.svg")

    await eventually(recorded, "the plan naming the kept image recorded", within=20)


async def test_an_amendment_gives_the_badge_its_own_image_or_is_refused(api: Api) -> None:
    plan = planned()
    assert (await api.start(plan)).status_code == 201
    iid = plan.internship_id
    await wait_for_phase(api.client, iid, Phase.PLANNING)
    refused_plan = with_badge(plan, image=data_uri(png(900, 300)))
    body = {
        "submission_id": "am-1",
        "plan": refused_plan.model_copy(update={"version": 2}).model_dump(mode="json"),
        "concerns": ["intern"],
        "reason": "our own badge",
    }
    refused = await api.http.post(
        f"/api/internships/{iid}/amendments", json=body, headers=api.operator
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "body.plan.badge.image"
    assert "a badge image must be square or nearly" in detail(refused)

    own = png(400, 400, "#8338ec")
    body["plan"] = with_badge(plan, image=data_uri(own)).model_copy(update={"version": 2})
    body["plan"] = body["plan"].model_dump(mode="json")
    amended = await api.http.post(
        f"/api/internships/{iid}/amendments", json=body, headers=api.operator
    )
    assert amended.status_code == 200, amended.text

    async def recorded() -> bool:
        named = await api.pool.fetchval(
            "SELECT plan->'badge'->>'image' FROM plan_versions "
            "WHERE internship_id = $1 AND version = 2",
            iid,
        )
        return bool(named == f"sha256-{hashlib.sha256(own).hexdigest()}.png")

    await eventually(recorded, "version 2 names the kept image", within=20)


@pytest.mark.pure
def test_a_rehearsal_checks_the_schools_image_and_keeps_nothing() -> None:
    plan = with_badge(planned(), image=data_uri(png(300, 300)))
    assert rehearsed_plan_image(plan).badge.image is None
    with pytest.raises(PlanRefused) as refused:
        rehearsed_plan_image(with_badge(plan, image=data_uri(b"<html/>")))
    assert refused.value.field == "badge.image"
    assert "badge.image is XML but not an SVG" in str(refused.value)
