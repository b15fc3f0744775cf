"""The messages of e-mails and pages, found where they are written (Babel's extraction from the
Jinja templates and the Python modules), and the catalogues brought up to date with them.

`python -m i18n.extract` adds every new message to each catalogue (untranslated) and keeps
what is gone as obsolete; `python -m i18n.extract xx` starts a catalogue for language `xx`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from i18n import LOCALE_DIR, catalogue_path

ROOT = Path(__file__).resolve().parent.parent
_JINJA = {
    "extensions": "jinja2.ext.i18n",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
}
#: Where messages are written: a folder and how its files are read.
SOURCES: tuple[tuple[str, list[tuple[str, str]]], ...] = (
    ("mail/templates", [("*.j2", "jinja2")]),
    ("api/templates", [("*.html", "jinja2")]),
    ("api", [("**.py", "python")]),
    ("mail", [("badge.py", "python")]),  # what a badge share says
    ("issuance", [("award.py", "python")]),  # the badge's label of a self-assessment
    ("issuance", [("edc.py", "python")]),  # what a European Digital Credential says
    ("mail", [("wallet_offer.py", "python")]),  # what a wallet asks for
)


#: The markers read: gettext's own, and `Np_(singular, plural)` for a message with a count
#: whose translation is picked where it is shown (api/i18n.py).
KEYWORDS = {**DEFAULT_KEYWORDS, "Np_": (1, 2)}

Message = str | tuple[str, str]
"""A message: its English text, or its singular and plural forms."""


def extracted() -> Iterator[tuple[Message, str, int]]:
    """(message, file, line) of every message marked in the sources; a message with a count
    (`ngettext`, `{% pluralize %}`, `Np_`) as its (singular, plural)."""
    for folder, methods in SOURCES:
        options = {pattern: _JINJA for pattern, method in methods if method == "jinja2"}
        for filename, line, message, _comments, _context in extract_from_dir(
            ROOT / folder, methods, options, keywords=KEYWORDS, strip_comment_tags=True
        ):
            if isinstance(message, str):
                yield message, f"{folder}/{filename}", line
            elif isinstance(message, tuple) and len(message) == 2 and all(message):
                yield (str(message[0]), str(message[1])), f"{folder}/{filename}", line


def template() -> Catalog:
    """Every message with where it is written: what each catalogue translates."""
    catalog = Catalog(project="internflow", charset="utf-8")
    for message, filename, line in extracted():
        catalog.add(message, locations=[(filename, line)], flags=["python-format"])
    return catalog


def update(language: str) -> Path:
    """The language's catalogue with every message of `template()`: translations kept, new
    messages untranslated, messages no longer used left as obsolete."""
    path = catalogue_path(language)
    if path.is_file():
        with path.open("rb") as source:
            catalog = read_po(source, locale=language)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(locale=language, project="internflow", charset="utf-8")
    catalog.update(template(), no_fuzzy_matching=True)
    with path.open("wb") as target:
        write_po(target, catalog, width=100, sort_output=False, include_previous=False)
    return path


def main(arguments: list[str]) -> None:
    languages = arguments or sorted(p.name for p in LOCALE_DIR.iterdir() if p.is_dir())
    for language in languages:
        print(update(language))


if __name__ == "__main__":
    main(sys.argv[1:])
