"""The strict base model and the small constrained types every internflow model shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$", strip_whitespace=True)
]
"""A stable id chosen by the institution: lowercase letters, digits, '.', '_' or '-'."""

Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254, strip_whitespace=True),
]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class StrictModel(BaseModel):
    """Refuses unknown fields: a typo in a plan or a submission is an error, not a silent drop."""

    model_config = ConfigDict(extra="forbid", frozen=True)
