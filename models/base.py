"""The strict base model and the small constrained types every internflow model shares."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

#: C0 controls, DEL and C1 controls: never part of a name, an address or an id. A pasted line
#: break in a name would otherwise reach an e-mail header (and, before, wedged the e-mail).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: In multi-line texts, tab and line breaks are words' company; the other controls are not (NUL
#: cannot even be stored in PostgreSQL).
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _single_line(value: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"must be one line without control characters, but has {_describe(found[0])} at "
            f"position {found.start() + 1}: remove it (a line break pasted along is the usual one)"
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
    return names.get(character, f"U+{ord(character):04X}")


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


class StrictModel(BaseModel):
    """Refuses unknown fields: a typo in a plan or a submission is an error, not a silent drop."""

    model_config = ConfigDict(extra="forbid", frozen=True)
