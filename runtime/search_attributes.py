"""The Temporal search attributes kept on each internship workflow (no personal data)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PHASE = SearchAttributeKey.for_keyword("InternshipPhase")
INSTITUTION_ID = SearchAttributeKey.for_keyword("InstitutionId")
COMPANY_ID = SearchAttributeKey.for_keyword("CompanyId")
END_DATE = SearchAttributeKey.for_datetime("InternshipEndDate")
OVERDUE = SearchAttributeKey.for_bool("Overdue")

ALL = (PHASE, INSTITUTION_ID, COMPANY_ID, END_DATE, OVERDUE)

# The names the Temporal CLI uses for each indexed value type (`--search-attribute Name=Type`).
_CLI_TYPE_NAMES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool"}


def dev_server_flags() -> list[str]:
    """Flags that register every search attribute with `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        type_name = _CLI_TYPE_NAMES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        flags += ["--search-attribute", f"{key.name}={type_name}"]
    return flags
