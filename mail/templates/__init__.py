"""E-mail texts: one Jinja2 template per notification kind, rendered as text and HTML in the
reader's language (its words from the gettext catalogues in `i18n/locale`).

Each message is one template, `<kind>.j2`, with a `subject` block, a `body` block
(paragraphs separated by blank lines) and, when the reader has something to do, an `action` block:
the label of the link `link`. Two layouts turn it into a plain-text part (`layout.txt.j2`) and an
HTML part (`layout.html.j2`, autoescaped); so both parts always say the same thing. A message
laid out by itself (the badge's: a button for each thing to do) overrides what lies between the
greeting and the signature in both, with the blocks `html_content` and `text_content`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from markupsafe import Markup

from i18n import translations
from models.activities import NotificationKind
from models.plan import Language

__all__ = ["CONTEXT", "RenderedMessage", "TemplateError", "render", "template_names"]

TEMPLATE_DIR = Path(__file__).resolve().parent
TEXT_WIDTH = 76

#: What the templates may say about the internship beyond what the workflow passes (read from
#: the records by `mail.context`): empty when unknown, and the message names the
#: internship by its id alone. A value a kind needs from the workflow (`milestone`, `reason`...)
#: has no default: without it rendering fails.
CONTEXT: dict[str, object] = {
    "intern": "",
    "company": "",
    "institution": "",
    "institution_email": "",
    "tutor": "",
    "tutor_email": "",
    "mentor": "",
    "period": "",
    "end": "",
    "role": "",
    "party_name": "",
    "deadline": "",
    "deadline_day": "",
    "due": "",
    "due_day": "",
    "missed_on": "",
    "outstanding": [],
    "comment": "",
    "link": "",
    # The badge e-mail: the page to share and its image to download, the intern's link to their
    # choices, the share links.
    "badge_page_url": "",
    "badge_image_url": "",
    "badge_image_svg": False,
    "choices_url": "",
    "share_linkedin_add": "",
    "share_linkedin": "",
    "share_x": "",
    "share_facebook": "",
    "share_email": "",
    # The badge e-mail's offer to a wallet: link, transaction code, days, QR code's Content-ID.
    "wallet_offer_url": "",
    "wallet_tx_code": "",
    "wallet_offer_days": 0,
    "wallet_qr_cid": "",
    # The intern's further links: a milestone's self-assessment, the end's placement evaluation.
    "self_assessment": "",
    "self_assessment_url": "",
    "placement_url": "",
}


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def _paragraphs(body: str) -> list[str]:
    """The body's paragraphs (split at blank lines), each on one line; escaped HTML stays so."""
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", str(body).strip())]
    if isinstance(body, Markup):
        # Already escaped by the autoescaping environment: only whitespace was changed.
        return [Markup(block) for block in blocks if block]  # noqa: S704
    return [block for block in blocks if block]


def _sentence(text: str) -> str:
    """The text with its first letter in upper case and the rest as it is (jinja's `capitalize`
    would lower a name's capitals); escaped HTML stays so."""
    changed = text[:1].upper() + text[1:]
    return Markup(changed) if isinstance(text, Markup) else changed  # noqa: S704


def _wrap(paragraph: str) -> str:
    """A text paragraph wrapped for mail readers; links and long words are never broken."""
    return textwrap.fill(paragraph, TEXT_WIDTH, break_long_words=False, break_on_hyphens=False)


#: The Jinja options of the e-mail templates (also those their messages are extracted with).
OPTIONS: dict[str, Any] = {
    "extensions": ["jinja2.ext.i18n"],
    "trim_blocks": True,
    "lstrip_blocks": True,
}


@cache
def _environment(mode: Literal["text", "html"], language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # The text part is not HTML: escaping it would show entities to the reader. The HTML
        # environment escapes every value.
        autoescape=mode == "html",  # noqa: S701
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        # The templates ship with the code: no file is looked at again once compiled (Jinja's
        # default checks every template's modification time at each use).
        auto_reload=False,
        **OPTIONS,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["paragraphs"] = _paragraphs
    env.filters["wrap"] = _wrap
    env.filters["sentence"] = _sentence
    env.globals["layout"] = "layout.txt.j2" if mode == "text" else "layout.html.j2"
    return env


def template_names() -> list[str]:
    """The kind of every message template shipped."""
    return sorted(
        path.stem
        for path in TEMPLATE_DIR.glob("*.j2")
        if not path.name.startswith(("_", "layout."))
    )


def render(kind: NotificationKind, language: Language, values: dict[str, Any]) -> RenderedMessage:
    """The subject, text and HTML of one message. `values` fill the template (every template has
    `name`; most have `internship` and `link`; `CONTEXT` lists the optional ones); a missing value
    raises jinja2's UndefinedError, a TemplateError."""
    name = f"{kind}.j2"
    context = {**CONTEXT, **values, "language": language}
    text_template = _environment("text", language).get_template(name)
    subject_block = text_template.blocks["subject"]
    # One line; no-break spaces (French punctuation) stay.
    lines = "".join(subject_block(text_template.new_context(dict(context))))
    subject = " ".join(re.split(r"[ \t\r\n]+", lines.strip(" \t\r\n")))
    text = text_template.render(context)
    html = _environment("html", language).get_template(name).render(context)
    return RenderedMessage(subject=subject, text=text, html=html)
