"""The strict base model and the small constrained types every internflow model shares."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

#: The bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): invisible,
#: they reorder the text after them (a right-to-left override shows "gpj.exe" as "exe.jpg").
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
#: The invisible direction marks (left-to-right, right-to-left, Arabic letter mark).
_BIDI_MARKS = "\u200e\u200f\u061c"
#: C0 controls, DEL, C1 controls and the bidirectional controls and marks: never part of a name,
#: an address or an id. A pasted line break in a name would otherwise reach an e-mail header
#: (and, before, wedged the e-mail); an override would show a name other than the one stored.
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI_CONTROLS}{_BIDI_MARKS}]")
#: In multi-line texts, tab and line breaks are words' company; the other controls are not (NUL
#: cannot even be stored in PostgreSQL), nor are the bidirectional embeddings, overrides and
#: isolates (a direction mark stays: right-to-left writing uses it within a sentence).
_TEXT_CONTROL = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI_CONTROLS}]")


def _single_line(value: str) -> str:
    found = _CONTROL.search(value)
    if found:
        usual = (
            "it comes along when text is pasted: type it again"
            if found[0] in _BIDI_NAMES
            else "a line break pasted along is the usual one"
        )
        raise ValueError(
            f"must be one line without control characters, but has {_describe(found[0])} at "
            f"position {found.start() + 1}: remove it ({usual})"
        )
    return value


def _text(value: str) -> str:
    found = _TEXT_CONTROL.search(value)
    if found:
        raise ValueError(
            f"contains a control character ({_describe(found[0])} at position "
            f"{found.start() + 1}) that is not text: remove it"
        )
    return value


def _describe(character: str) -> str:
    names = {"\r": "a carriage return", "\n": "a line break", "\x00": "a NUL character"}
    if character in names:
        return names[character]
    bidi = _BIDI_NAMES.get(character)
    code = f"U+{ord(character):04X}"
    return f"{code} (a {bidi}, invisible)" if bidi else code


_BIDI_NAMES = {
    "\u202a": "left-to-right embedding",
    "\u202b": "right-to-left embedding",
    "\u202c": "pop directional formatting",
    "\u202d": "left-to-right override",
    "\u202e": "right-to-left override",
    "\u2066": "left-to-right isolate",
    "\u2067": "right-to-left isolate",
    "\u2068": "first strong isolate",
    "\u2069": "pop directional isolate",
    "\u200e": "left-to-right mark",
    "\u200f": "right-to-left mark",
    "\u061c": "Arabic letter mark",
}


Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$", strip_whitespace=True),
]
"""A stable id chosen by the institution: lowercase letters, digits, '.', '_' or '-'."""

Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254, strip_whitespace=True),
    AfterValidator(_single_line),
]
Url = Annotated[
    str,
    StringConstraints(pattern=r"^https?://\S+$", max_length=2000),
    AfterValidator(_single_line),
]
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4000, strip_whitespace=True),
    AfterValidator(_text),
]
"""Multi-line text people write (comments, summaries, reasons); never put into a header."""
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    AfterValidator(_single_line),
]
"""One line: names, titles, company names."""


_FIELD_SETS: dict[frozenset[str], set[str]] = {}
"""One set of field names per combination: the sets frozen models share (`StrictModel`). Bounded
by the models' fields (unknown fields are refused), a few hundred at most."""


class StrictModel(BaseModel):
    """Refuses unknown fields: a typo in a plan or a submission is an error, not a silent drop.

    Frozen, so the set of its fields that were given (`model_fields_set`, what
    `exclude_unset` leaves out) never changes after validation: models with the same fields given
    share one set instead of each keeping its own (a decoded plan is 21 models, and a worker keeps
    one per cached internship). Pydantic only ever adds to a model's set on assignment (which a
    frozen model refuses) and gives a copy its own set (`model_copy`), so no shared set changes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        given = self.__pydantic_fields_set__
        shared = _FIELD_SETS.setdefault(frozenset(given), given)
        if shared is not given:
            object.__setattr__(self, "__pydantic_fields_set__", shared)
